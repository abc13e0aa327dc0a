//! Introspection: `Engine::explain`, `Engine::metrics`, and their command-API forms.

use trigwire::{CallbackSpec, Command, Engine, Event, EventName, GateKind, JobSpec, Outcome};

fn frames(n: u32) -> Vec<String> {
    (1..=n).map(|f| f.to_string()).collect()
}

/// A, B render frames; C's frame f waits on A's and B's frame f.
fn farm(engine: &mut Engine, n: u32) {
    let a = JobSpec { label: Some("ribGen".into()), agenda: frames(n), ..JobSpec::default() };
    let b = JobSpec { label: Some("render".into()), agenda: frames(n), ..JobSpec::default() };
    let c = JobSpec {
        agenda: frames(n),
        callbacks: frames(n)
            .iter()
            .map(|f| {
                CallbackSpec::qube(
                    &format!("complete-work-ribgen-{f} && complete-work-render-{f}"),
                    "unblock-work-self",
                )
            })
            .collect(),
        ..JobSpec::default()
    };
    engine.submit(&[a, b, c], &mut Vec::new()).unwrap();
}

#[test]
fn explain_says_which_atom_a_frame_still_waits_for() {
    let mut engine = Engine::default();
    farm(&mut engine, 100);
    let mut out = Vec::new();
    engine.process(&Event::work(EventName::Complete, 1, "42"), &mut out).unwrap();
    assert!(out.is_empty());

    let all = engine.explain(3, None).unwrap();
    assert_eq!(all.callbacks.len(), 100);
    let e = engine.explain(3, Some("42")).unwrap();
    assert_eq!(e.callbacks.len(), 1);
    let cb = &e.callbacks[0];
    assert_eq!(cb.index, 41);
    assert_eq!(cb.trigger, "complete-work-ribgen-42 && complete-work-render-42");
    assert_eq!((cb.fired, cb.maximum), (0, None));
    let atoms: Vec<(&str, bool)> = cb.atoms.iter().map(|a| (a.atom.as_str(), a.met)).collect();
    assert_eq!(atoms, [("complete-work-ribgen-42", true), ("complete-work-render-42", false)]);
    assert_eq!(cb.gate.kind, GateKind::And);
    assert!(!cb.gate.value);
    assert_eq!(cb.gate.children.iter().map(|g| g.value).collect::<Vec<_>>(), [true, false]);
    let text = e.to_string();
    assert!(text.contains("[x] complete-work-ribgen-42") && text.contains("[ ] complete-work-render-42"), "{text}");

    engine.process(&Event::work(EventName::Complete, 2, "42"), &mut out).unwrap();
    assert_eq!(out.len(), 1);
    let cb = &engine.explain(3, Some("42")).unwrap().callbacks[0];
    assert_eq!(cb.fired, 1);
    assert!(cb.gate.value && cb.atoms.iter().all(|a| a.met));
}

#[test]
fn explain_survives_removals_and_sweeps_of_other_jobs() {
    let mut engine = Engine::default();
    farm(&mut engine, 5000);
    farm(&mut engine, 1000);
    // Removing the first farm's downstream job leaves 10,000 of 12,000 postings dead,
    // enough to sweep the index; the second farm's terms must still be found.
    engine.remove_job(3, &mut Vec::new()).unwrap();
    assert_eq!(engine.stats().sweeps, 1);
    engine.process(&Event::work(EventName::Complete, 5, "7"), &mut Vec::new()).unwrap();
    let e = engine.explain(6, Some("7")).unwrap();
    assert_eq!(e.callbacks.len(), 1);
    assert_eq!(e.callbacks[0].trigger, "complete-work-ribgen-7 && complete-work-render-7");
    assert_eq!(e.callbacks[0].atoms.iter().map(|a| a.met).collect::<Vec<_>>(), [false, true]);
    assert!(engine.explain(3, None).is_err());
}

#[test]
fn explain_reads_wide_circuits_and_clock_atoms() {
    let mut engine = Engine::default();
    let trigger: Vec<String> = (0..70).map(|i| format!("complete-work-9-w{i}")).collect();
    let trigger = format!("({}) || globaltime-100", trigger.join(" && "));
    let job = JobSpec { callbacks: vec![CallbackSpec::qube(&trigger, "unblock-self")], ..JobSpec::default() };
    engine.submit(&[job], &mut Vec::new()).unwrap();
    engine.process(&Event::work(EventName::Complete, 9, "w65"), &mut Vec::new()).unwrap();
    let cb = &engine.explain(1, None).unwrap().callbacks[0];
    assert_eq!(cb.atoms.len(), 71);
    assert_eq!(cb.atoms[65].atom, "complete-work-9-w65");
    assert!(cb.atoms[65].met && cb.atoms.iter().filter(|a| a.met).count() == 1);
    assert_eq!(cb.atoms[70].atom, "globaltime-100");
    assert!(cb.trigger.ends_with("complete-work-9-w69 || globaltime-100"), "{}", cb.trigger);
    let mut out = Vec::new();
    engine.advance_clock(100, &mut out).unwrap();
    assert_eq!(out.len(), 1);
    let cb = &engine.explain(1, None).unwrap().callbacks[0];
    assert!(cb.atoms[70].met && cb.gate.value && cb.fired == 1);
}

#[test]
fn explain_and_metrics_through_the_command_api() {
    let mut engine = Engine::default();
    farm(&mut engine, 2);
    let mut out = Vec::new();
    engine.apply(&Command::Explain { job: 3, work: Some("2".into()) }, &mut out).unwrap();
    let Outcome::Explained(e) = &out[0] else { panic!("an explanation") };
    assert_eq!(e.callbacks.len(), 1);
    assert!(engine.apply(&Command::Explain { job: 4, work: None }, &mut out).is_err());
    engine.apply(&Command::Event(Event::work(EventName::Complete, 1, "1")), &mut out).unwrap();
    engine.apply(&Command::Event(Event::work(EventName::Complete, 2, "1")), &mut out).unwrap();
    out.clear();
    engine.apply(&Command::Metrics, &mut out).unwrap();
    let Outcome::Metrics(m) = &out[0] else { panic!("metrics") };
    assert_eq!(m.commands["explain"], 2);
    assert_eq!(m.commands["event"], 2);
    assert_eq!(m.commands["metrics"], 1);
    assert_eq!(m.commands["submit"], 0, "the farm was submitted through Engine::submit, not a command");
    assert_eq!((m.events, m.firings, m.rejections), (2, 1, 1));
    assert_eq!((m.jobs, m.callbacks_waiting, m.callbacks_fired), (3, 1, 1));
    assert_eq!(m.memory, engine.memory_usage());
}

#[test]
fn jobs_and_callbacks_list_their_state() {
    let mut engine = Engine::default();
    farm(&mut engine, 3);
    let jobs = engine.jobs();
    assert_eq!(
        jobs.iter().map(|j| (j.id, j.label.as_str(), j.callbacks)).collect::<Vec<_>>(),
        [(1, "ribgen", 0), (2, "render", 0), (3, "qube0", 3)]
    );
    engine.process(&Event::work(EventName::Complete, 1, "2"), &mut Vec::new()).unwrap();
    engine.process(&Event::work(EventName::Complete, 2, "2"), &mut Vec::new()).unwrap();
    let cbs = engine.callbacks(3).unwrap();
    assert_eq!(
        cbs.iter().map(|c| (c.index, c.fired, c.met)).collect::<Vec<_>>(),
        [(0, 0, false), (1, 1, true), (2, 0, false)]
    );
    assert!(engine.callbacks(4).is_err());
}

#[test]
fn satisfy_fires_through_the_latch_loop_and_rearm_waits_again() {
    let mut engine = Engine::default();
    let trigger: Vec<String> = (0..70).map(|i| format!("complete-work-9-w{i}")).collect();
    let job = JobSpec {
        callbacks: vec![CallbackSpec { maximum: Some(1), ..CallbackSpec::qube(&trigger.join(" && "), "unblock-self") }],
        ..JobSpec::default()
    };
    engine.submit(&[job], &mut Vec::new()).unwrap();
    let mut out = Vec::new();
    engine.satisfy(1, 0, Some("complete-work-9-w69"), &mut out).unwrap();
    assert!(out.is_empty());
    assert!(engine.satisfy(1, 0, Some("complete-work-9-w70"), &mut out).is_err());
    assert!(engine.satisfy(1, 1, None, &mut out).is_err());
    let e = engine.explain(1, None).unwrap();
    assert_eq!(e.callbacks[0].atoms.iter().filter(|a| a.met).count(), 1);
    engine.satisfy(1, 0, None, &mut out).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].cause, trigwire::Cause::Forced);
    assert_eq!((out[0].count, out[0].target.clone()), (1, None));
    // At its maximum: forcing again fires nothing.
    engine.satisfy(1, 0, None, &mut out).unwrap();
    assert_eq!(out.len(), 1);
    engine.rearm(1, 0).unwrap();
    let cb = &engine.explain(1, None).unwrap().callbacks[0];
    assert!(cb.fired == 0 && cb.atoms.iter().all(|a| !a.met));
    // Re-armed, it waits for every atom again, through events.
    for i in 0..70 {
        engine.process(&Event::work(EventName::Complete, 9, &format!("w{i}")), &mut out).unwrap();
    }
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].cause, trigwire::Cause::Event);
    let m = engine.metrics();
    assert_eq!((m.firings, m.callbacks_fired, m.callbacks_waiting), (2, 1, 0));
}
