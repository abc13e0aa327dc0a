//! Memory that follows live jobs, removal in any order, amortised index sweeps, and
//! rejected commands that leave memory as it was (issues 9 and 12). Every check counts
//! bytes or operations; none times anything.
//!
//! The soak test runs 2,000 churn cycles in CI; run it larger by hand with
//! `TRIGWIRE_SOAK_CYCLES=200000 cargo test --release --test scale_memory soak`.

use trigwire::{CallbackSpec, Engine, Event, EventName, JobSpec, Language, MemoryUsage};

/// Jobs live at once during churn.
const LIVE: u64 = 50;

/// The job of churn cycle `i`: its own label, work names and python codes, and a
/// trigger naming another label.
fn churn_job(i: u64) -> JobSpec {
    let work = vec![format!("shot{i}a"), format!("shot{i}b")];
    let mut callbacks: Vec<CallbackSpec> = work
        .iter()
        .map(|w| CallbackSpec {
            triggers: vec![format!("complete-work-self-{w}")],
            language: Language::Python,
            code: format!("notify('{w}', {i})"),
            maximum: None,
        })
        .collect();
    callbacks.push(CallbackSpec::qube(&format!("complete-job-churn{}", i + 1), "unblock-self"));
    JobSpec { id: Some(i + 1), label: Some(format!("churn{i}")), agenda: work, callbacks, ..JobSpec::default() }
}

/// Cycles `from..to`: submit, complete (work items, then the job), remove the job
/// submitted `LIVE` cycles earlier.
fn churn(engine: &mut Engine, from: u64, to: u64) {
    let mut out = Vec::new();
    for i in from..to {
        engine.submit(&[churn_job(i)], &mut out).unwrap();
        for w in ["a", "b"] {
            engine.process(&Event::work(EventName::Complete, i + 1, &format!("shot{i}{w}")), &mut out).unwrap();
        }
        engine.process(&Event::job(EventName::Complete, i + 1), &mut out).unwrap();
        assert_eq!(out.len(), 2, "cycle {i}: the two work callbacks fire");
        out.clear();
        if i >= LIVE {
            engine.remove_job(i - LIVE + 1, &mut out).unwrap();
        }
    }
}

fn drain(engine: &mut Engine, cycles: u64) {
    for i in cycles.saturating_sub(LIVE)..cycles {
        engine.remove_job(i + 1, &mut Vec::new()).unwrap();
    }
}

/// Bytes a drained engine may hold beyond a fresh one: tables sized for a handful of
/// entries, event buffers, and 12 bytes per 4,096 callback ids ever registered.
const SLACK: usize = 16 * 1024;

fn assert_near(what: &str, got: MemoryUsage, base: MemoryUsage, slack: usize) {
    assert!(
        got.total() <= base.total() + slack,
        "{what}: {} bytes, baseline {}: {got:?} vs {base:?}",
        got.total(),
        base.total()
    );
}

#[test]
fn soak_memory_returns_to_a_fresh_engine() {
    let cycles: u64 = std::env::var("TRIGWIRE_SOAK_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000);
    let fresh = Engine::default().memory_usage();
    let mut engine = Engine::default();
    churn(&mut engine, 0, cycles);
    let live = engine.memory_usage();
    assert_eq!(engine.live_jobs(), LIVE as usize);
    drain(&mut engine, cycles);
    assert_eq!(engine.live_jobs(), 0);
    let slack = SLACK + 12 * (cycles as usize * 3 / 4096 + 1);
    assert_near("drained after churn", engine.memory_usage(), fresh, slack);
    // The drained engine still works, and nothing of the old jobs is found.
    let mut out = Vec::new();
    engine.submit(&[churn_job(cycles)], &mut out).unwrap();
    engine.process(&Event::work(EventName::Complete, cycles + 1, &format!("shot{cycles}a")), &mut out).unwrap();
    assert_eq!(out.len(), 1);
    assert!(live.total() > engine.memory_usage().total());
}

#[test]
fn memory_follows_live_jobs_not_history() {
    let at = |cycles: u64| {
        let mut engine = Engine::default();
        churn(&mut engine, 0, cycles);
        engine.memory_usage()
    };
    let (short, long) = (at(500), at(2_000));
    // Four times the history, the same live jobs: within a few KiB (table capacities
    // are powers of two), where every symbol and action kept would add ~100 KiB.
    assert!(long.total() <= short.total() + SLACK, "500 cycles: {short:?}\n2000 cycles: {long:?}");
    assert!(long.symbols <= short.symbols + 4096, "symbols {} -> {}", short.symbols, long.symbols);
    assert!(long.actions <= short.actions + 4096, "actions {} -> {}", short.actions, long.actions);
}

#[test]
fn removed_global_and_job_callbacks_free_their_memory() {
    let fresh = Engine::default().memory_usage();
    let mut engine = Engine::default();
    let mut out = Vec::new();
    let mut ids = Vec::new();
    for i in 0..500 {
        let spec = CallbackSpec {
            triggers: vec![format!("complete-work-{i}-frame{i}")],
            language: Language::Python,
            code: format!("print({i})"),
            maximum: None,
        };
        ids.push(engine.add_global(&spec, &mut out).unwrap().0);
    }
    assert!(engine.memory_usage().total() > fresh.total() + 20_000);
    for (n, id) in ids.iter().enumerate() {
        engine.remove_callback(*id).unwrap();
        let err = engine.remove_callback(*id).unwrap_err();
        assert_eq!(err.kind(), &trigwire::ErrorKind::UnknownCallback, "removal {n} twice");
    }
    engine.process(&Event::work(EventName::Complete, 3, "frame3"), &mut out).unwrap();
    assert!(out.is_empty(), "a removed global callback does not fire");
    assert_near("globals removed", engine.memory_usage(), fresh, SLACK);
}

/// A submission of `names` jobs with their own labels and agendas whose last job has
/// a bad trigger: rejected after interning everything before it.
fn rejected(line: u64, names: u64) -> Vec<JobSpec> {
    let mut jobs: Vec<JobSpec> = (0..names)
        .map(|k| JobSpec {
            label: Some(format!("r{line}x{k}")),
            agenda: vec![format!("w{line}x{k}")],
            callbacks: vec![CallbackSpec {
                triggers: vec![format!("complete-work-self-w{line}x{k}")],
                language: Language::Python,
                code: format!("rejected({line}, {k})"),
                maximum: None,
            }],
            ..JobSpec::default()
        })
        .collect();
    jobs.push(JobSpec {
        callbacks: vec![CallbackSpec::qube("complete-job-self &&", "unblock-self")],
        ..JobSpec::default()
    });
    jobs
}

#[test]
fn rejected_lines_leave_memory_unchanged() {
    let mut engine = Engine::default();
    let mut out = Vec::new();
    churn(&mut engine, 0, 20);
    let before = engine.memory_usage();
    let mut after_ten = before;
    for line in 0..100 {
        if line == 10 {
            after_ten = engine.memory_usage();
        }
        engine.submit(&rejected(line, 1_000), &mut out).unwrap_err();
        let bad_global = CallbackSpec {
            triggers: vec![format!("complete-work-{line}-x{line} ||")],
            language: Language::Python,
            code: format!("global({line})"),
            maximum: None,
        };
        engine.add_global(&bad_global, &mut out).unwrap_err();
        let bad_universal = CallbackSpec::qube(&format!("complete-work-self-u{line} && ("), "unblock-self");
        engine.add_universal(&bad_universal).unwrap_err();
    }
    assert!(out.is_empty());
    let after_many = engine.memory_usage();
    // Table capacities settle after the first lines; from then on nothing grows.
    assert_eq!(after_many, after_ten, "100 rejected lines hold what 10 do");
    // Nothing else changed; the symbol and action tables may keep up to twice the room
    // their live entries need (they shrink to that when mostly empty), never more.
    let tables = |m: MemoryUsage| MemoryUsage { symbols: 0, actions: 0, ..m };
    assert_eq!(tables(after_many), tables(before));
    assert!(after_many.symbols <= 2 * before.symbols + 1024, "symbols {} -> {}", before.symbols, after_many.symbols);
    assert!(after_many.actions <= 2 * before.actions + 1024, "actions {} -> {}", before.actions, after_many.actions);
    // And the engine behaves as before.
    churn(&mut engine, 20, 40);
}

/// Submits `n` jobs of `callbacks` callbacks (each waiting on its own job's work and
/// on the previous job), one submission each.
fn farm(n: u64, callbacks: u64) -> Engine {
    let mut engine = Engine::default();
    let mut out = Vec::new();
    for j in 1..=n {
        let cbs = (0..callbacks)
            .map(|c| {
                CallbackSpec::qube(
                    &format!("complete-work-self-{c} && complete-job-{}", j.max(2) - 1),
                    "unblock-work-self",
                )
            })
            .collect();
        let agenda = (0..callbacks).map(|c| c.to_string()).collect();
        engine.submit(&[JobSpec { id: Some(j), agenda, callbacks: cbs, ..JobSpec::default() }], &mut out).unwrap();
    }
    engine
}

/// A fixed shuffle (an LCG), so the test is the same on every run.
fn shuffled(n: u64) -> Vec<u64> {
    let mut ids: Vec<u64> = (1..=n).collect();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for i in (1..ids.len()).rev() {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ids.swap(i, (x >> 33) as usize % (i + 1));
    }
    ids
}

#[test]
fn removal_work_is_logarithmic_in_any_order() {
    fn oldest(n: u64) -> Vec<u64> {
        (1..=n).collect()
    }
    fn newest(n: u64) -> Vec<u64> {
        (1..=n).rev().collect()
    }
    type Order = fn(u64) -> Vec<u64>;
    let orders: [(&str, Order); 3] = [("oldest first", oldest), ("newest first", newest), ("random", shuffled)];
    for (order, ids) in orders {
        let per_removal = |n: u64| {
            let mut engine = farm(n, 2);
            for id in ids(n) {
                engine.remove_job(id, &mut Vec::new()).unwrap();
            }
            assert_eq!(engine.live_jobs(), 0);
            engine.stats().removal_steps as f64 / n as f64
        };
        let (small, large) = (per_removal(2_000), per_removal(8_000));
        eprintln!("{order}: {small:.1} and {large:.1} owner-run steps per removal at 2,000 and 8,000 jobs");
        // A binary search (log2 n steps) plus amortised compaction (a few moves per
        // removal). Taking runs out of a vector moved n/2 of them per removal on
        // average: 1,000 and 4,000 here.
        assert!(small < 20.0 && large < 22.0, "{order}: {small:.1} and {large:.1} steps per removal");
        assert!(large < small + 3.0, "{order}: 4x the jobs adds about log2(4) steps: {small:.1} -> {large:.1}");
    }
}

#[test]
fn index_sweeps_are_spread_over_removals() {
    let sweep = |n: u64| {
        let mut engine = farm(n, 4);
        // Remove all but one job in four, in a fixed random order.
        for id in shuffled(n).into_iter().filter(|id| id % 4 != 0) {
            engine.remove_job(id, &mut Vec::new()).unwrap();
        }
        let stats = engine.stats();
        // Nothing removed is matched: only the survivors' postings are visited.
        let before = stats.postings_touched;
        engine.process(&Event::work(EventName::Complete, 1, "0"), &mut Vec::new()).unwrap();
        assert!(engine.stats().postings_touched - before <= 2, "a removed job's postings are not visited");
        stats
    };
    let (small, large) = (sweep(2_000), sweep(8_000));
    eprintln!("2,000 jobs: {small:?}\n8,000 jobs: {large:?}");
    assert!(small.sweeps >= 1 && large.sweeps >= 1, "the index is swept: {small:?} {large:?}");
    // One call never sweeps more than its budget plus one table: the same bound for an
    // engine four times the size (the old sweep examined the whole index at once).
    assert!(large.sweep_work_max <= small.sweep_work_max.max(256), "{small:?}\n{large:?}");
    assert!(large.sweep_work_max <= 256, "{large:?}");
    // In all, a few examinations per posting removed.
    let removed = |n: u64| (n - n / 4) * 4 * 2;
    // In all, work proportional to what was removed: the budget is four per posting
    // removed and 64 per call.
    assert!(small.sweep_work <= 16 * removed(2_000), "{small:?}");
    assert!(large.sweep_work * 2 <= small.sweep_work * 9, "4x the removals, about 4x the work: {small:?}\n{large:?}");
}

#[test]
fn memory_usage_counts_what_a_host_registers() {
    let mut engine = Engine::default();
    let start = engine.memory_usage();
    for i in 0..100 {
        engine.register_event_name(&format!("approved{i}")).unwrap();
    }
    let named = engine.memory_usage();
    assert!(named.actions >= start.actions + 100 * 9, "custom names: {start:?} -> {named:?}");
    assert!(named.symbols > start.symbols, "custom names are interned for good");
    for i in 0..100 {
        let spec = CallbackSpec {
            triggers: vec![format!("complete-work-self-frame{i}")],
            language: Language::Python,
            code: format!("universal({i})"),
            maximum: None,
        };
        engine.add_universal(&spec).unwrap();
    }
    let universal = engine.memory_usage();
    assert!(universal.actions >= named.actions + 100 * 40, "universal callbacks: {named:?} -> {universal:?}");
}
