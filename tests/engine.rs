//! Engine properties that the conformance cases cannot show: the work per event does
//! not grow with unrelated callbacks, removal frees memory, and the public types can
//! cross threads.

mod common;

use common::pair;
use trigwire::{CallbackSpec, Config, Engine, Event, EventName, Firing, JobSpec};

/// Registers `pairs` pairs and returns the postings touched by one frame event of the
/// first upstream job.
fn postings_for_one_event(pairs: usize) -> u64 {
    let mut engine = Engine::default();
    let mut firings = Vec::new();
    for i in 0..pairs {
        engine.submit(&pair(i, 20), &mut firings).expect("valid submission");
    }
    let before = engine.stats().postings_touched;
    engine.process(&Event::work(EventName::Complete, 1, "7"), &mut firings).expect("valid event");
    engine.stats().postings_touched - before
}

#[test]
fn work_per_event_does_not_grow_with_unrelated_callbacks() {
    let small = postings_for_one_event(1);
    let large = postings_for_one_event(500);
    assert_eq!(small, 1, "the event meets exactly the one frame callback waiting on it");
    assert_eq!(small, large, "10,000 unrelated callbacks changed the work of one event");
}

#[test]
fn fanout_touches_each_dependent_once() {
    let mut engine = Engine::default();
    let mut firings = Vec::new();
    let waiting: Vec<JobSpec> = (0..300)
        .map(|_| JobSpec {
            pgrp: Some(1),
            callbacks: vec![CallbackSpec::qube("complete-job-root", "unblock-self")],
            ..JobSpec::default()
        })
        .collect();
    engine.submit(&[JobSpec { label: Some("root".into()), ..JobSpec::default() }], &mut firings).unwrap();
    engine.submit(&waiting, &mut firings).unwrap();
    firings.clear();
    let before = engine.stats().postings_touched;
    engine.process(&Event::job(EventName::Complete, 1), &mut firings).unwrap();
    assert_eq!(engine.stats().postings_touched - before, 300);
    assert_eq!(firings.len(), 300);
    let owners: Vec<u64> = firings.iter().filter_map(|f| f.owner).collect();
    assert!(owners.windows(2).all(|w| w[0] < w[1]), "firings are in registration order");
}

#[test]
fn removal_frees_callbacks_and_postings() {
    let mut engine = Engine::default();
    let mut firings = Vec::new();
    let mut ids = Vec::new();
    for i in 0..50 {
        ids.extend(engine.submit(&pair(i, 200), &mut firings).unwrap().ids);
    }
    let full = engine.memory_usage();
    for id in ids {
        engine.remove_job(id, &mut Vec::new()).unwrap();
    }
    let empty = engine.memory_usage();
    assert_eq!(engine.live_jobs(), 0);
    assert!(empty.callbacks < full.callbacks / 4, "callbacks: {} -> {}", full.callbacks, empty.callbacks);
    assert!(engine.stats().sweeps >= 1, "removing every callback sweeps the index");
    let before = engine.stats().postings_touched;
    engine.process(&Event::work(EventName::Complete, 1, "7"), &mut firings).unwrap();
    assert_eq!(engine.stats().postings_touched, before, "swept postings are not visited again");
}

#[test]
fn memory_usage_reports_every_part() {
    let mut engine = Engine::new(Config { retroactive: true, ..Config::default() });
    let mut firings = Vec::new();
    engine.submit(&pair(0, 100), &mut firings).unwrap();
    engine.process(&Event::work(EventName::Complete, 1, "1"), &mut firings).unwrap();
    let m = engine.memory_usage();
    for (part, bytes) in [
        ("callbacks", m.callbacks),
        ("index", m.index_tables),
        ("jobs", m.jobs),
        ("symbols", m.symbols),
        ("facts", m.facts),
        ("actions", m.actions),
    ] {
        assert!(bytes > 0, "{part} reports no memory");
    }
    assert_eq!(
        m.total(),
        m.callbacks
            + m.templates
            + m.index_heads
            + m.index_tables
            + m.timers
            + m.jobs
            + m.symbols
            + m.facts
            + m.actions
    );
}

#[test]
fn rejected_submission_leaves_no_trace() {
    let mut engine = Engine::default();
    let mut firings = Vec::new();
    engine.submit(&pair(0, 5), &mut firings).unwrap();
    let bad = vec![
        JobSpec {
            pgrp: Some(1),
            label: Some("fine".into()),
            callbacks: vec![CallbackSpec::qube("complete-job-up0", "mail-status")],
            ..JobSpec::default()
        },
        JobSpec {
            pgrp: Some(1),
            callbacks: vec![CallbackSpec::qube("complete-job-up0 &&", "mail-status")],
            ..JobSpec::default()
        },
    ];
    assert!(engine.submit(&bad, &mut firings).is_err());
    assert_eq!(engine.label(3), None);
    firings.clear();
    engine.process(&Event::job(EventName::Complete, 1), &mut firings).unwrap();
    assert_eq!(firings, Vec::<Firing>::new(), "no callback of the rejected submission fires");
    let next = engine.submit(&[JobSpec::default()], &mut firings).unwrap();
    assert_eq!(next.ids, vec![3], "the rejected submission took no id");
}

#[test]
fn public_types_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Engine>();
    send_sync::<trigwire::Error>();
    send_sync::<trigwire::Firing>();
    send_sync::<trigwire::syntax::ParseError>();
    send_sync::<trigwire::wire::Replay>();
}

/// Under `on-rise`, a batch large enough for the parallel path gives exactly the
/// firings of one event at a time: once per job and frame, however often a frame fails.
#[test]
fn on_rise_batches_fire_as_events_one_by_one() {
    use trigwire::Refire;
    let config = Config { refire: Refire::OnRise, ..Config::default() };
    let jobs: Vec<JobSpec> = (0..200)
        .map(|_| JobSpec {
            callbacks: vec![CallbackSpec::qube("failed-work-self-*", "retry-work-self")],
            ..JobSpec::default()
        })
        .collect();
    let events: Vec<Event> = (0..3)
        .flat_map(|_| (1..=200u64).flat_map(|job| (1..=10).map(move |f| (job, f))))
        .map(|(job, f)| Event::work(EventName::Failed, job, &f.to_string()))
        .collect();
    let mut one = Engine::new(config);
    let mut batch = Engine::new(config);
    one.submit(&jobs, &mut Vec::new()).expect("valid jobs");
    batch.submit(&jobs, &mut Vec::new()).expect("valid jobs");
    let mut a = Vec::new();
    for e in &events {
        one.process(e, &mut a).expect("valid event");
    }
    let mut b = Vec::new();
    assert!(batch.process_batch(&events, &mut b).is_empty());
    assert_eq!(a.len(), 200 * 10, "once per job and frame");
    assert_eq!(a, b.into_iter().map(|f| f.firing).collect::<Vec<_>>());
    // The items kept go with their callbacks.
    let kept = one.memory_usage().callbacks;
    for job in 1..=200 {
        one.remove_job(job, &mut Vec::new()).expect("live");
    }
    assert!(one.memory_usage().callbacks < kept / 4, "{} of {kept} bytes", one.memory_usage().callbacks);
}
