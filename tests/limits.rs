//! Limits that no way of writing a submission gets around: the atom limit holds for a
//! list of triggers as a whole and for the links of a `dependency` attribute, and a
//! rejected submission leaves the engine as it was.

use trigwire::syntax::ParseErrorKind;
use trigwire::{CallbackSpec, Engine, ErrorKind, JobSpec};

fn with_triggers(triggers: Vec<String>) -> JobSpec {
    JobSpec {
        callbacks: vec![CallbackSpec { triggers, ..CallbackSpec::qube("", "unblock-self") }],
        ..JobSpec::default()
    }
}

#[test]
fn a_list_of_triggers_is_one_trigger_for_the_atom_limit() {
    let mut engine = Engine::default();
    // 160 triggers of 1,000 atoms each: every one within the limit, the list far past it.
    let one: String = (1..=1000).map(|i| format!("complete-job-{i}")).collect::<Vec<_>>().join(" || ");
    let e = engine.submit(&[with_triggers(vec![one.clone(); 160])], &mut Vec::new()).expect_err("past the limit");
    assert_eq!(e.kind(), &ErrorKind::Parse(ParseErrorKind::TooManyAtoms { limit: 1024 }));
    assert_eq!((e.trigger(), e.field()), (Some(1), Some("triggers")), "the second element crosses it");
    let span = e.span().expect("a span");
    assert_eq!(&e.source_text().expect("the joined list")[span.range()], one, "it points at that element");
    assert_eq!(engine.live_jobs(), 0);
    // Exactly at the limit is fine.
    let at_limit: Vec<String> = (1..=1024).map(|i| format!("complete-job-{i}")).collect();
    engine.submit(&[with_triggers(at_limit)], &mut Vec::new()).expect("1,024 atoms in all");
}

#[test]
fn the_links_of_a_dependency_attribute_count_as_atoms() {
    let mut engine = Engine::default();
    let links = |n: u64| (1..=n).map(|i| format!("link-complete-job-{}", i + 100)).collect::<Vec<_>>().join(",");
    let job = |n| JobSpec { dependency: Some(links(n)), ..JobSpec::default() };
    let e = engine.submit(&[job(1025)], &mut Vec::new()).expect_err("past the limit");
    assert_eq!((e.kind(), e.field()), (&ErrorKind::Dependency, Some("dependency")));
    assert!(e.message().contains("limit of 1024 atoms"), "{}", e.message());
    assert_eq!(engine.live_jobs(), 0);
    engine.submit(&[job(1024)], &mut Vec::new()).expect("1,024 links");
}
