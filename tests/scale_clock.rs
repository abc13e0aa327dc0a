//! Scale and hostility tests of the clock and of what the engine keeps over time
//! (issue 12, items 1 and 6): the tick limit counts only catch-up that will be done, so
//! no input wedges the clock; a rejected move changes nothing; a removed job's timers go
//! with it; kept facts (`retroactive`) are bounded.
//!
//! The sizes here run in CI in a debug build. `SCALE=10 cargo test --release --test
//! scale_clock` runs them ten times larger.

use trigwire::{CallbackSpec, CatchUp, Config, Engine, ErrorKind, Event, EventName, Firing, JobSpec, Limits};

/// A size multiplier: `SCALE` from the environment, 1 by default.
fn scale() -> u64 {
    std::env::var("SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1)
}

fn engine(limits: Limits) -> Engine {
    Engine::new(Config { limits, ..Config::default() })
}

fn job(callbacks: Vec<CallbackSpec>) -> JobSpec {
    JobSpec { callbacks, ..JobSpec::default() }
}

/// What a firing says, for comparing runs.
fn describe(f: &Firing) -> String {
    format!("{:?} {:?} {:?} {} {:?} {}", f.callback, f.owner, f.cause, f.action.code, f.target, f.count)
}

#[test]
fn a_million_one_shot_atoms_due_at_one_instant_do_not_stop_the_clock() {
    // 1,000 jobs x 1,000 frames, each frame's callback waiting on one nightly start time,
    // and one more global: 1,000,001 atoms due at once, past the default limit of
    // 1,000,000 ticks that used to count each of them.
    let jobs = 1_000 * scale();
    let mut e = Engine::default();
    let mut out = Vec::new();
    let frame = CallbackSpec::qube("dummy-time-self-5000 && complete-job-self", "unblock-self");
    let one = job(vec![frame; 1_000]);
    for _ in 0..jobs {
        e.submit(std::slice::from_ref(&one), &mut out).expect("valid job");
    }
    e.add_global(&CallbackSpec::qube("globaltime-5000", "mail-status"), &mut out).expect("valid global");
    assert_eq!(e.pending_timers() as u64, jobs * 1_000 + 1);
    e.advance_clock(5_000, &mut out).expect("one-shot atoms do not count against the limit");
    assert_eq!(e.now(), 5_000);
    assert_eq!(e.pending_timers(), 0, "every one-shot atom came due");
    assert_eq!(out.len(), 1, "only the global fires: {:?}", out.iter().map(describe).collect::<Vec<_>>());
    // Their latches are set: each job's completion now fires its thousand callbacks.
    out.clear();
    e.process(&Event::job(EventName::Complete, 7), &mut out).expect("valid event");
    assert_eq!(out.len(), 1_000);
    // Even a limit of 0 lets one-shot atoms through, however many share an instant.
    let mut strict = engine(Limits { ticks_per_move: 0, ..Limits::default() });
    strict.submit(&[job(vec![CallbackSpec::qube("dummy-time-self-9", "unblock-self"); 5_000])], &mut out).unwrap();
    strict.advance_clock(u64::MAX, &mut out).expect("no catch-up at all");
}

#[test]
fn an_exhausted_global_repeat_does_not_reject_a_long_jump() {
    let mut e = Engine::default();
    let mut out = Vec::new();
    let spec = CallbackSpec { maximum: Some(3), ..CallbackSpec::qube("globalrepeat-0-1", "mail-status") };
    e.add_global(&spec, &mut out).expect("valid global");
    e.advance_clock(10, &mut out).expect("a short move");
    assert_eq!(out.len(), 3, "fires up to its maximum");
    assert_eq!(e.pending_timers(), 0, "the repeat that can no longer fire is dropped");
    // More than 12 days: 1,036,800 one-second ticks, past the default limit.
    let thirteen_days = 10 + 13 * 86_400;
    e.advance_clock(thirteen_days, &mut out).expect("an exhausted repeat counts for nothing");
    assert_eq!(e.now(), thirteen_days);
    assert_eq!(out.len(), 3);

    // One that has not used up its maximum counts every catch-up tick (while its
    // trigger is false each tick is visited without firing), so it is refused...
    let mut e = Engine::default();
    let spec =
        CallbackSpec { maximum: Some(1_000), ..CallbackSpec::qube("globalrepeat-0-1 && globaltime-99", "mail-status") };
    e.add_global(&spec, &mut out).expect("valid global");
    out.clear();
    e.advance_clock(thirteen_days, &mut out).expect_err("1,123,209 catch-up ticks, all visited");
    assert_eq!(e.now(), 0);
    assert!(out.is_empty());
    // ... as one without a maximum is, with the clock where it was.
    let mut e = Engine::default();
    e.add_global(&CallbackSpec::qube("globalrepeat-0-1", "mail-status"), &mut out).expect("valid global");
    let err = e.advance_clock(thirteen_days, &mut out).expect_err("1,036,809 catch-up ticks");
    assert_eq!(err.kind(), &ErrorKind::TooManyTicks { limit: 1_000_000 });
    assert!(err.message().contains("one second always does"), "{err}");
    assert_eq!(e.now(), 0);
    // With catch-up `once` the same jump fires it once.
    let mut e = Engine::new(Config { catch_up: CatchUp::Once, ..Config::default() });
    e.add_global(&CallbackSpec::qube("globalrepeat-0-1", "mail-status"), &mut out).expect("valid global");
    out.clear();
    e.advance_clock(thirteen_days, &mut out).expect("once per repeat");
    assert_eq!(out.iter().map(|f| f.cause).collect::<Vec<_>>(), [trigwire::Cause::Tick(thirteen_days)]);
}

/// Repeats enough to exceed the limit on any move longer than a second, and every move
/// tried from a deterministic sequence: each rejected move leaves the engine exactly as
/// it was (its answers to what follows, its memory, its timers), and a later move passes.
#[test]
fn every_rejected_move_changes_nothing_and_a_later_move_passes() {
    let limits = Limits { ticks_per_move: 50, ..Limits::default() };
    let mut e = engine(limits);
    let mut out = Vec::new();
    // 100 repeats each second: under the old count (every tick of every repeat) no move
    // at all could pass a limit of 50.
    let repeats = 100 * scale() as usize;
    e.submit(&[job(vec![CallbackSpec::qube("dummy-repeat-self-0-1", "mail-status"); repeats])], &mut out).unwrap();
    e.add_global(&CallbackSpec::qube("globalrepeat-3-7", "mail-report-status"), &mut out).unwrap();
    let mut seed: u64 = 0x5eed;
    let (mut rejected, mut passed) = (0, 0);
    for _ in 0..200 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let step = match seed >> 61 {
            0 => 1,
            1 => 2,
            2 => 1 + (seed >> 20) % 3,
            _ => 1 + (seed >> 20) % 1_000_000,
        };
        let to = e.now() + step;
        let before = (e.now(), e.memory_usage(), e.pending_timers());
        let twin = e.clone();
        out.clear();
        match e.advance_clock(to, &mut out) {
            Ok(()) => passed += 1,
            Err(err) => {
                rejected += 1;
                assert_eq!(err.kind(), &ErrorKind::TooManyTicks { limit: 50 });
                assert!(out.is_empty(), "a rejected move fires nothing");
                assert_eq!((e.now(), e.memory_usage(), e.pending_timers()), before, "unchanged");
                // The same answers from here on as an engine that never saw the move.
                let (mut a, mut b) = (Vec::new(), Vec::new());
                let mut twin = twin;
                e.clone().advance_clock(e.now() + 1, &mut a).expect("one second always passes");
                twin.advance_clock(twin.now() + 1, &mut b).expect("one second always passes");
                assert_eq!(a.iter().map(describe).collect::<Vec<_>>(), b.iter().map(describe).collect::<Vec<_>>());
                // A later, shorter move passes.
                e.advance_clock(e.now() + 1, &mut out).expect("one second always passes");
            }
        }
    }
    assert!(rejected > 20 && passed > 20, "{rejected} rejected, {passed} passed");
}

#[test]
fn timers_of_removed_jobs_are_freed_with_them() {
    let jobs = 2_000 * scale();
    let mut e = Engine::default();
    let empty = e.memory_usage().timers;
    let mut out = Vec::new();
    let mut ids = Vec::new();
    for i in 0..jobs {
        let spec = job(vec![
            CallbackSpec::qube(&format!("dummy-time-self-{}", 1_000_000 + i), "unblock-self"),
            CallbackSpec::qube("dummy-time-self-2000000000 && complete-job-self", "unblock-self"),
            CallbackSpec::qube(&format!("dummy-repeat-self-{}-86400", 500_000 + i), "mail-status"),
        ]);
        ids.extend(e.submit(&[spec], &mut out).expect("valid job").ids);
    }
    assert_eq!(e.pending_timers() as u64, 3 * jobs);
    let full = e.memory_usage().timers;
    assert!(full > empty + 3 * jobs as usize * 8, "{full} bytes for {jobs} jobs' timers");
    // Remove the older half, then the rest, in no particular order: nothing is left
    // waiting to come due.
    for &id in ids.iter().step_by(2) {
        e.remove_job(id, &mut out).expect("live");
    }
    assert_eq!(e.pending_timers() as u64, 3 * (jobs / 2));
    let half = e.memory_usage().timers;
    assert!(half < full * 3 / 4, "half the jobs, {half} of {full} bytes");
    for &id in ids.iter().skip(1).step_by(2).rev() {
        e.remove_job(id, &mut out).expect("live");
    }
    assert_eq!(e.pending_timers(), 0);
    // What is left is a constant: the owner map's smallest table.
    assert!(e.memory_usage().timers <= empty + 4096, "{} bytes left", e.memory_usage().timers);
    assert!(out.is_empty(), "nothing was due");
    // The clock still moves, and nothing of theirs fires.
    e.advance_clock(3_000_000_000, &mut out).expect("nothing pending");
    assert!(out.is_empty());
}

#[test]
fn retroactive_facts_are_capped_oldest_first_and_dropped_with_their_job() {
    let cap = 1_000;
    let events = 20_000 * scale();
    let limits = Limits { facts: cap, ..Limits::default() };
    let mut e = Engine::new(Config { retroactive: true, limits, ..Config::default() });
    let mut out = Vec::new();
    // Memory is bounded by the cap, not by the events: at most 400 bytes a fact (a job
    // map entry, a fact map and an order entry, with hash-table slack), after 2,000 or
    // 20,000 facts about 1,000 or 10,000 jobs each alike.
    for id in 1..=events {
        e.process(&Event::job(EventName::Complete, 1_000_000 + id), &mut out).expect("valid event");
        if id == 2 * cap || id == events {
            let bytes = e.memory_usage().facts;
            assert!(bytes < 400 * cap as usize, "{bytes} bytes for {cap} facts after {id} events");
        }
    }
    assert_eq!(e.kept_facts(), Some((cap as usize, events - cap)));
    // The newest facts still release a late submission; the oldest have been evicted.
    let late = |id: u64| job(vec![CallbackSpec::qube(&format!("complete-job-{id}"), "unblock-self")]);
    out.clear();
    e.submit(&[late(1_000_000 + events)], &mut out).expect("valid job");
    assert_eq!(out.len(), 1, "the newest fact is kept");
    out.clear();
    e.submit(&[late(1_000_001)], &mut out).expect("valid job");
    assert!(out.is_empty(), "the oldest fact was evicted");

    // A removed job's facts go with it.
    let mut e = Engine::new(Config { retroactive: true, ..Config::default() });
    let id = e.submit(&[JobSpec::default()], &mut out).expect("valid job").ids[0];
    e.process(&Event::work(EventName::Complete, id, "1"), &mut out).expect("valid event");
    e.process(&Event::job(EventName::Complete, id), &mut out).expect("valid event");
    assert_eq!(e.kept_facts(), Some((4, 0)), "submit, the work event (under `*` and `1`), complete");
    e.remove_job(id, &mut out).expect("live");
    assert_eq!(e.kept_facts(), Some((0, 0)), "submit, work (two), complete and removed: all dropped");
    out.clear();
    e.submit(&[late(id)], &mut out).expect("valid job");
    assert!(out.is_empty(), "a removed job's history is forgotten");
}
