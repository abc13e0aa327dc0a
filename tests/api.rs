//! The public API as a Rust engineer meets it: every public type crosses threads, the
//! small enums print and parse, and errors say which job, callback and field failed
//! through accessors.

use trigwire::syntax::{ParseError, UnknownWord};
use trigwire::{
    Apply, BatchFiring, CallbackSpec, Cause, Command, Config, Engine, Error, ErrorKind, Event, EventExtra, EventName,
    EventType, Firing, JobSpec, JobStatus, Language, Limits, MemoryUsage, Outcome, Reply, Stats, Submission, Target,
};

#[test]
fn every_public_type_is_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Engine>();
    send_sync::<Config>();
    send_sync::<Limits>();
    send_sync::<Command>();
    send_sync::<Outcome>();
    send_sync::<Reply>();
    send_sync::<Error>();
    send_sync::<ErrorKind>();
    send_sync::<ParseError>();
    send_sync::<UnknownWord>();
    send_sync::<JobSpec>();
    send_sync::<CallbackSpec>();
    send_sync::<Event>();
    send_sync::<EventExtra>();
    send_sync::<Firing>();
    send_sync::<BatchFiring>();
    send_sync::<Target>();
    send_sync::<Cause>();
    send_sync::<Submission>();
    send_sync::<MemoryUsage>();
    send_sync::<Stats>();
    send_sync::<trigwire::Action>();
    send_sync::<trigwire::wire::Replay>();
    send_sync::<trigwire::qube::ConfError>();
    send_sync::<trigwire::qube::DependencyError>();
}

#[test]
fn small_enums_print_and_parse_ignoring_case() {
    for name in EventName::ALL {
        assert_eq!(name.to_string().parse::<EventName>(), Ok(name));
        assert_eq!(name.to_string().to_uppercase().parse::<EventName>(), Ok(name));
    }
    for ty in EventType::ALL {
        assert_eq!(ty.to_string().parse::<EventType>(), Ok(ty));
    }
    for language in Language::ALL {
        assert_eq!(language.to_string().parse::<Language>(), Ok(language));
    }
    assert_eq!("Blocked".parse::<JobStatus>(), Ok(JobStatus::Blocked));
    let err = "compelte".parse::<EventName>().unwrap_err();
    assert_eq!(err.word(), "compelte");
    assert!(err.to_string().starts_with("unknown event name `compelte`; expected one of submit"), "{err}");
    assert!("cobol".parse::<Language>().unwrap_err().to_string().contains("expected one of qube"));
}

fn rejected(jobs: &[JobSpec]) -> Error {
    let mut engine = Engine::default();
    engine.submit(&[JobSpec { label: Some("taken".into()), ..JobSpec::default() }], &mut Vec::new()).expect("valid");
    engine.submit(jobs, &mut Vec::new()).expect_err("a bad submission")
}

#[test]
fn errors_name_the_job_callback_trigger_and_field() {
    let bad_trigger = JobSpec {
        callbacks: vec![
            CallbackSpec::qube("complete-job-1", "unblock-self"),
            CallbackSpec {
                triggers: vec!["complete-job-1".into(), "compelte-job-1".into()],
                ..CallbackSpec::qube("", "unblock-self")
            },
        ],
        ..JobSpec::default()
    };
    let e = rejected(&[JobSpec::default(), bad_trigger]);
    assert!(matches!(e.kind(), ErrorKind::Parse(_)));
    assert_eq!((e.job(), e.callback(), e.trigger(), e.field()), (Some((1, 3)), Some(1), Some(1), Some("triggers")));
    assert_eq!(e.message(), "job 1 (id 3): callback 1: trigger 1: unknown event name `compelte`; expected one of submit, complete, failed, killed, done, blocked, running, waiting, assigned, removed, modified, timeout, dummy or a registered custom name");

    let bad_code =
        JobSpec { callbacks: vec![CallbackSpec::qube("complete-job-1", "unblock-everything")], ..JobSpec::default() };
    let e = rejected(&[bad_code]);
    assert_eq!((e.job(), e.callback(), e.trigger(), e.field()), (Some((0, 2)), Some(0), None, Some("code")));

    let e = rejected(&[JobSpec { pgrp: Some(1), label: Some("taken".into()), ..JobSpec::default() }]);
    assert_eq!((e.job(), e.callback(), e.field()), (Some((0, 2)), None, Some("label")));
    assert_eq!(e.kind(), &ErrorKind::BadLabel);

    let e = rejected(&[JobSpec::default(), JobSpec { id: Some(1), ..JobSpec::default() }]);
    assert_eq!((e.job(), e.field()), (Some((1, 0)), Some("id")), "an id error comes before ids are known");

    let e = rejected(&[JobSpec { dependency: Some("link-complete-work-".into()), ..JobSpec::default() }]);
    assert_eq!((e.job(), e.field(), e.kind()), (Some((0, 2)), Some("dependency"), &ErrorKind::Dependency));
}

#[test]
fn a_command_applies_like_its_method_and_outcomes_carry_text() {
    let job = JobSpec {
        agenda: vec!["5".into()],
        callbacks: vec![CallbackSpec::qube("complete-work-1-5", "unblock-work-self")],
        ..JobSpec::default()
    };
    let upstream = JobSpec { agenda: vec!["5".into()], ..JobSpec::default() };
    let mut engine = Engine::default();
    let mut out = Vec::new();
    engine.apply(&Command::Submit(vec![upstream, job]), &mut out).expect("valid");
    assert_eq!(out, vec![Outcome::Submitted(Submission { ids: vec![1, 2], pgrp: 1, warnings: Vec::new() })]);
    out.clear();
    let done = Command::Event(Event::work(EventName::Complete, 1, "5"));
    engine.apply(&done, &mut out).expect("valid");
    let [Outcome::Fired(f)] = &out[..] else { panic!("one firing, got {out:?}") };
    assert_eq!((f.owner, f.index, &*f.action.code), (Some(2), 0, "unblock-work-self"));
    assert_eq!(f.target, Some(Target::Work("5".into())));
    assert_eq!(f.target.as_ref().map(ToString::to_string).as_deref(), Some("5"));

    // A rejected command appends nothing and changes nothing.
    out.clear();
    let err = engine.apply(&Command::Remove(99), &mut out).expect_err("not live");
    assert_eq!(err.kind(), &ErrorKind::UnknownJob);
    assert!(out.is_empty());

    // `apply_all` tags each outcome with its command and batches runs of events.
    let mut replies = Vec::new();
    let commands = [Command::Time(5), done.clone(), Command::Remove(99), done];
    Apply::apply_all(&mut engine, &commands, &mut replies);
    let tags: Vec<(usize, &str)> = replies
        .iter()
        .map(|r| {
            let what = match &r.outcome {
                Outcome::Fired(_) => "fired",
                Outcome::Rejected(_) => "rejected",
                _ => "other",
            };
            (r.command, what)
        })
        .collect();
    assert_eq!(tags, vec![(1, "fired"), (2, "rejected"), (3, "fired")]);
}

#[test]
fn a_custom_event_name_matches_in_any_case_however_the_event_is_built() {
    let mut engine = Engine::default();
    engine.register_event_name("Approved").expect("a new name");
    let job =
        JobSpec { callbacks: vec![CallbackSpec::qube("APPROVED-job-self", "unblock-self")], ..JobSpec::default() };
    engine.submit(&[job], &mut Vec::new()).expect("valid");
    let mut out = Vec::new();
    let event = Event { name: trigwire::syntax::Name::Custom("Approved".into()), job: 1, extra: EventExtra::None };
    engine.process(&event, &mut out).expect("a registered name");
    assert_eq!(out.len(), 1, "the event built by hand with its own spelling matches");
}
