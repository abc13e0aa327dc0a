//! Scale hostility: what a 10,000-job farm, or a careless or hostile client, can send
//! in one line or one submission (issue 12). Every amplification is refused with an
//! error that names its limit, before the work it would cost, and the engine that
//! refused it goes on exactly as one that never saw it (the same probe, the same
//! firings); every submission path is near-linear, shown by the engine's own count of
//! its planning work (`Stats::plan_steps`) at sizes 4× apart, never by a clock.
//!
//! The sizes are small enough for CI in a debug build: the near-linear cases compare
//! n = 1,000 with 4n, and the amplification cases run at 1/1000 of the default limits.
//! By hand, `TRIGWIRE_SCALE=N` multiplies n by N, and `TRIGWIRE_FULL_LIMITS=1` runs the
//! amplification cases at the default limits (8 jobs of 1,000,000 subjobs each):
//!
//! ```sh
//! TRIGWIRE_SCALE=50 TRIGWIRE_FULL_LIMITS=1 cargo test --release --test scale_hostility
//! ```
//!
//! At that scale the near-linear cases submit 200,000 unlabelled jobs in one submission,
//! 200,000 labelled jobs, and triggers of 200,000 atoms; before they were made linear,
//! 16,000 unlabelled jobs took 7 minutes, 200,000 labelled jobs 15 s, and 160,000 atoms
//! 31 s.

use trigwire::pipeline::{Pipeline, PipelineConfig};
use trigwire::syntax::{ParseErrorKind, ParseLimits};
use trigwire::wire::{Mode, Replay};
use trigwire::{
    CallbackSpec, Command, Config, Engine, ErrorKind, Event, EventName, Firing, JobSpec, JobStatus, LimitName, Limits,
    WireFault,
};

/// The scale factor: `TRIGWIRE_SCALE`, default 1.
fn scale() -> u64 {
    std::env::var("TRIGWIRE_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1).max(1)
}

/// The default limits, the per-submission and per-job ones at 1/1000 of their
/// defaults unless `TRIGWIRE_FULL_LIMITS` is set.
fn scaled_limits() -> Limits {
    let d = Limits::default();
    if std::env::var_os("TRIGWIRE_FULL_LIMITS").is_some() {
        return d;
    }
    let s = |v: u64| (v / 1000).max(1);
    Limits {
        subjobs: s(d.subjobs),
        submission_instances: s(d.submission_instances),
        submission_callbacks: s(d.submission_callbacks),
        submission_atoms: s(d.submission_atoms),
        ..d
    }
}

/// A farm in the middle of its life: `ribgen` (job 1, frames 1 and 2) feeds `render`
/// (job 2) frame by frame, `comp` (job 3) waits for ribgen as a whole.
fn farm(limits: Limits) -> Engine {
    let mut engine = Engine::new(Config { limits, ..Config::default() });
    let frames = vec!["1".to_string(), "2".to_string()];
    let jobs = [
        JobSpec { label: Some("ribgen".into()), agenda: frames.clone(), ..JobSpec::default() },
        JobSpec {
            label: Some("render".into()),
            status: JobStatus::Blocked,
            agenda: frames,
            callbacks: vec![CallbackSpec::qube("complete-work-ribgen-*", "unblock-work-self")],
            ..JobSpec::default()
        },
        JobSpec {
            label: Some("comp".into()),
            callbacks: vec![CallbackSpec::qube("complete-job-ribgen", "unblock-self")],
            ..JobSpec::default()
        },
    ];
    engine.submit(&jobs, &mut Vec::new()).expect("the farm is valid");
    engine.process(&Event::work(EventName::Complete, 1, "1"), &mut Vec::new()).expect("valid event");
    engine
}

fn describe(f: &Firing) -> String {
    let target = f.target.as_ref().map_or("-".to_string(), ToString::to_string);
    format!("{:?}#{} {} {} {:?}", f.owner, f.index, f.action.code, target, f.cause)
}

/// The rest of the farm's life, on a clone: frame 2, ribgen as a whole, a late job
/// waiting on render (its id shows the ids the engine hands out next). What fired, in
/// words, and the live jobs and labels.
fn probe(engine: &Engine) -> Vec<String> {
    let mut engine = engine.clone();
    let mut out = Vec::new();
    engine.process(&Event::work(EventName::Complete, 1, "2"), &mut out).expect("valid event");
    engine.process(&Event::job(EventName::Complete, 1), &mut out).expect("valid event");
    let late = JobSpec { callbacks: vec![CallbackSpec::qube("done-job-render", "unblock-self")], ..JobSpec::default() };
    let sub = engine.submit(&[late], &mut out).expect("valid late job");
    engine.process(&Event::job(EventName::Failed, 2), &mut out).expect("valid event");
    let mut fired: Vec<String> = out.iter().map(describe).collect();
    let labels: Vec<Option<&str>> = (1..=5).map(|id| engine.label(id)).collect();
    fired.push(format!("late {:?} live {} labels {labels:?}", sub.ids, engine.live_jobs()));
    fired
}

/// Checks that `engine`, which refused something after [`farm`], behaves as a fresh
/// farm with the same limits.
fn intact(engine: &Engine, limits: Limits) {
    assert_eq!(probe(engine), probe(&farm(limits)), "the refused input changed the engine");
}

fn subjob_links(jobs: u64, subjobs: u64) -> Vec<JobSpec> {
    (0..jobs)
        .map(|i| JobSpec {
            label: Some(format!("shot{i}")),
            subjobs,
            dependency: Some(format!("link-complete-subjob-{}", 100 + i)),
            ..JobSpec::default()
        })
        .collect()
}

// -- bounded amplification (item 2) ----------------------------------------------------

#[test]
fn subjob_links_cannot_amplify_a_small_submission_into_millions_of_callbacks() {
    // The issue's 545-byte line: 8 jobs of 1M subjobs, each with a subjob link, would
    // register 8M callbacks. Each job is within the per-job subjob limit.
    let limits = scaled_limits();
    let mut engine = farm(limits);
    let jobs = subjob_links(8, limits.subjobs);
    let e = engine.submit(&jobs, &mut Vec::new()).expect_err("past the callback limit");
    let max = limits.submission_callbacks;
    assert_eq!(e.kind(), &ErrorKind::OverLimit { limit: LimitName::SubmissionCallbacks, max });
    assert_eq!((e.job().map(|j| j.0), e.field()), (Some(2), Some("dependency")), "{}", e.message());
    assert!(e.message().contains(&format!("limit of {max} callbacks")), "{}", e.message());
    assert!(e.message().contains("Limits::submission_callbacks"), "{}", e.message());
    intact(&engine, limits);
    // Two such jobs are exactly at the limit, and accepted.
    let sub = engine.submit(&jobs[..2], &mut Vec::new()).expect("at the limit");
    assert_eq!(sub.ids.len(), 2);
}

#[test]
fn the_instances_of_a_submission_are_limited() {
    let limits = scaled_limits();
    let mut engine = farm(limits);
    // Five jobs at the per-job subjob limit: the fifth passes 4× that.
    let jobs: Vec<JobSpec> = (0..5).map(|_| JobSpec { subjobs: limits.subjobs, ..JobSpec::default() }).collect();
    let e = engine.submit(&jobs, &mut Vec::new()).expect_err("past the instance limit");
    let max = limits.submission_instances;
    assert_eq!(e.kind(), &ErrorKind::OverLimit { limit: LimitName::SubmissionInstances, max });
    assert_eq!((e.job().map(|j| j.0), e.field()), (Some(4), Some("subjobs")), "{}", e.message());
    intact(&engine, limits);
    // Every job has at least one instance, so the limit also bounds the jobs.
    let tight = Limits { submission_instances: 3, ..limits };
    let mut engine = farm(tight);
    let e = engine.submit(&vec![JobSpec::default(); 4], &mut Vec::new()).expect_err("four jobs, one instance each");
    assert_eq!(e.kind(), &ErrorKind::OverLimit { limit: LimitName::SubmissionInstances, max: 3 });
    intact(&engine, tight);
    engine.submit(&vec![JobSpec::default(); 3], &mut Vec::new()).expect("three");
}

#[test]
fn the_atoms_of_a_submission_count_trigger_lists_and_dependency_links() {
    let limits = Limits { submission_atoms: 100, ..Limits::default() };
    let mut engine = farm(limits);
    // 40 atoms as a list of triggers, then 2 × 40 generated by work links: 120 > 100.
    let list: Vec<String> = (0..40).map(|i| format!("complete-job-{}", 1000 + i)).collect();
    let links: Vec<String> = (0..40).map(|i| format!("link-complete-work-{}", 1000 + i)).collect();
    let jobs = [
        JobSpec {
            callbacks: vec![CallbackSpec { triggers: list, ..CallbackSpec::qube("", "unblock-self") }],
            ..JobSpec::default()
        },
        JobSpec { agenda: vec!["1".into(), "2".into()], dependency: Some(links.join(",")), ..JobSpec::default() },
    ];
    let e = engine.submit(&jobs, &mut Vec::new()).expect_err("past the atom limit");
    assert_eq!(e.kind(), &ErrorKind::OverLimit { limit: LimitName::SubmissionAtoms, max: 100 });
    assert_eq!((e.job().map(|j| j.0), e.field()), (Some(1), Some("dependency")), "{}", e.message());
    intact(&engine, limits);
    // One frame fewer: 80 atoms.
    let jobs = [jobs[0].clone(), JobSpec { agenda: vec!["1".into()], ..jobs[1].clone() }];
    engine.submit(&jobs, &mut Vec::new()).expect("within the atom limit");
}

#[test]
fn the_atom_limit_of_one_trigger_holds_for_lists_and_links() {
    // On main before this suite (tests/limits.rs); here with the earlier state shown intact.
    let limits = Limits::default();
    let mut engine = farm(limits);
    let one: Vec<String> = (1..=1025).map(|i| format!("complete-job-{i}")).collect();
    let list = JobSpec {
        callbacks: vec![CallbackSpec { triggers: one, ..CallbackSpec::qube("", "unblock-self") }],
        ..JobSpec::default()
    };
    let e = engine.submit(&[list], &mut Vec::new()).expect_err("1,025 atoms in a list");
    assert_eq!(e.kind(), &ErrorKind::Parse(ParseErrorKind::TooManyAtoms { limit: 1024 }));
    let links: Vec<String> = (1..=1025).map(|i| format!("{}", 1000 + i)).collect();
    let dep = JobSpec { dependency: Some(links.join(",")), ..JobSpec::default() };
    let e = engine.submit(&[dep], &mut Vec::new()).expect_err("1,025 job links");
    assert_eq!((e.kind(), e.field()), (&ErrorKind::Dependency, Some("dependency")));
    intact(&engine, limits);
}

#[test]
fn generated_callbacks_do_not_copy_the_dependency_text() {
    // A long attribute (40 links naming 400-byte labels: 16 KB) made into one callback
    // per instance: copied into each of 500 callbacks it would be 8 MB.
    let label = |i: usize| format!("l{i}{}", "x".repeat(400));
    let dep: Vec<String> = (0..40).map(|i| format!("link-complete-subjob-{}", label(i))).collect();
    let dep = dep.join(",");
    assert!(dep.len() > 16_000);
    let mut engine = Engine::default();
    let before = engine.memory_usage().total();
    let job = JobSpec { subjobs: 500, dependency: Some(dep.clone()), ..JobSpec::default() };
    engine.submit(&[job], &mut Vec::new()).expect("valid");
    let grown = engine.memory_usage().total() - before;
    assert!(grown < 500 * dep.len() / 4, "{grown} bytes for 500 callbacks of a {}-byte attribute", dep.len());
}

#[test]
fn a_long_line_is_refused_with_its_position_and_changes_nothing() {
    let mut replay = Replay::new(farm(Limits::default()));
    replay.limit_lines(64);
    let long = format!("{{\"submit\": [{{\"label\": \"{}\"}}]}}", "a".repeat(100));
    let log = format!("{long}\n{{\"remove\": 3}}\n");
    let out = replay.run_bytes(log.as_bytes(), Mode::OneByOne);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "{\"line\":1,\"error\":{\"message\":\"the line is longer than the limit of 64 bytes \
         (Limits::line_bytes, --max-line-bytes); byte 64 is past it\",\"span\":[64,65]}}"
    );
    assert_eq!(lines.len(), 1, "the removal of job 3 is answered by nothing but its effect");
    assert_eq!(replay.rejected(), 1);
    assert_eq!(replay.engine().live_jobs(), 2, "the long line submitted nothing; the removal applied");
    // A line of exactly the limit is read.
    let mut replay = Replay::new(farm(Limits::default()));
    let exact = format!("{{\"remove\": 3}}{}", " ".repeat(64 - 13));
    assert_eq!(exact.len(), 64);
    replay.limit_lines(64);
    let out = replay.run_bytes(exact.as_bytes(), Mode::OneByOne);
    assert_eq!(replay.rejected(), 0, "{:?}", out.errors);
}

#[test]
fn a_duplicate_key_is_an_error_with_its_position() {
    // On main before this suite: `{"remove": 1, "remove": 2}` used to remove job 2.
    let mut replay = Replay::new(farm(Limits::default()));
    let out = replay.run_bytes(b"{\"remove\": 1, \"remove\": 2}\n", Mode::OneByOne);
    let line: serde_json::Value = serde_json::from_str(out.lines().next().expect("an error line")).expect("JSON");
    assert!(line["error"]["message"].as_str().is_some_and(|m| m.contains("remove")), "{line}");
    assert_eq!(line["error"]["span"], serde_json::json!([14, 22]), "{line}");
    intact(replay.engine(), Limits::default());
    let e = trigwire::wire::decode("{\"remove\": 1, \"remove\": 2}").expect_err("duplicate");
    assert_eq!(e.kind(), &ErrorKind::Wire(WireFault::DuplicateKey));
}

// -- near-linear submission (item 3) ---------------------------------------------------

/// The planning work of one submission on a fresh engine (or `engine` as given).
fn plan_steps(mut engine: Engine, jobs: &[JobSpec]) -> u64 {
    let before = engine.stats().plan_steps;
    engine.submit(jobs, &mut Vec::new()).expect("valid submission");
    engine.stats().plan_steps - before
}

/// Asserts that the work at 4n is at most 6× the work at n: linear is 4×, quadratic 16×.
fn near_linear(what: &str, steps: impl Fn(u64) -> u64) {
    let n = 1000 * scale();
    let (small, large) = (steps(n), steps(4 * n));
    assert!(small > 0, "{what}: no work counted");
    assert!(large <= 6 * small, "{what}: {small} steps at {n}, {large} at {}", 4 * n);
}

#[test]
fn unlabelled_jobs_take_linear_work() {
    // 16,000 unlabelled jobs in one line took 7 minutes (label probes restarted per job).
    near_linear("unlabelled jobs", |n| plan_steps(Engine::default(), &vec![JobSpec::default(); n as usize]));
    // Half of them labelled with what the generated labels would be, so the search skips.
    near_linear("generated labels past taken ones", |n| {
        let jobs: Vec<JobSpec> =
            (0..n).map(|i| JobSpec { label: (i % 2 == 0).then(|| format!("QUBE{i}")), ..JobSpec::default() }).collect();
        plan_steps(Engine::default(), &jobs)
    });
}

#[test]
fn a_group_joined_one_unlabelled_job_at_a_time_takes_linear_work() {
    // Each submission's search for a free `qubeN` started at qube0: quadratic over a
    // group that grows one submission at a time.
    near_linear("one job per submission into one group", |n| {
        let mut engine = Engine::default();
        engine.submit(&[JobSpec::default()], &mut Vec::new()).expect("group 1");
        let before = engine.stats().plan_steps;
        for _ in 1..n {
            engine.submit(&[JobSpec { pgrp: Some(1), ..JobSpec::default() }], &mut Vec::new()).expect("joins");
        }
        engine.stats().plan_steps - before
    });
    // Still the smallest free label: a removed one is taken again first.
    let mut engine = Engine::default();
    let mut out = Vec::new();
    engine.submit(&vec![JobSpec::default(); 5], &mut out).expect("qube0..qube4");
    engine.remove_job(3, &mut out).expect("qube2");
    engine.remove_job(2, &mut out).expect("qube1");
    let sub = engine.submit(&vec![JobSpec { pgrp: Some(1), ..JobSpec::default() }; 3], &mut out).expect("joins");
    let labels: Vec<Option<&str>> = sub.ids.iter().map(|&id| engine.label(id)).collect();
    assert_eq!(labels, [Some("qube1"), Some("qube2"), Some("qube5")]);
}

#[test]
fn labelled_jobs_and_ids_take_linear_work() {
    // 200,000 labelled jobs took 15 s; explicit ids were checked with Vec::contains.
    near_linear("labelled jobs with ids", |n| {
        let jobs: Vec<JobSpec> = (0..n)
            .map(|i| JobSpec { id: Some(10 * n - i), label: Some(format!("shot{i}")), ..JobSpec::default() })
            .collect();
        plan_steps(Engine::default(), &jobs)
    });
}

#[test]
fn triggers_with_many_atoms_take_linear_work() {
    // 160,000 atoms took 31 s: each atom's slot was found by a scan of the slots so far.
    let roomy = |n: u64| {
        let parse = ParseLimits { atoms: 8 * n as u32, length: 64 << 20, ..ParseLimits::default() };
        Engine::new(Config { limits: Limits { parse, ..Limits::default() }, ..Config::default() })
    };
    near_linear("a list of distinct atoms", |n| {
        let list: Vec<String> = (0..n).map(|i| format!("complete-job-{}", 100 + i)).collect();
        let cb = CallbackSpec { triggers: list, ..CallbackSpec::qube("", "unblock-self") };
        plan_steps(roomy(n), &[JobSpec { callbacks: vec![cb], ..JobSpec::default() }])
    });
    near_linear("one trigger of repeated atoms", |n| {
        let text: Vec<String> = (0..n).map(|i| format!("complete-job-{}", 100 + i % (n / 2))).collect();
        let cb = CallbackSpec::qube(&text.join(" && "), "unblock-self");
        plan_steps(roomy(n), &[JobSpec { callbacks: vec![cb], ..JobSpec::default() }])
    });
    near_linear("dependency links", |n| {
        let links: Vec<String> = (0..n).map(|i| format!("{}", 100 + i)).collect();
        plan_steps(roomy(n), &[JobSpec { dependency: Some(links.join(",")), ..JobSpec::default() }])
    });
}

// -- ids and groups (item 5) -----------------------------------------------------------

#[test]
fn a_reused_id_does_not_join_a_live_group() {
    let mut engine = Engine::default();
    let mut out = Vec::new();
    let jobs = [
        JobSpec { id: Some(10), label: Some("lead".into()), ..JobSpec::default() },
        JobSpec { id: Some(11), label: Some("render".into()), ..JobSpec::default() },
    ];
    engine.submit(&jobs, &mut out).expect("group 10");
    engine.remove_job(10, &mut out).expect("live");
    let before = engine.clone();
    // A new submission whose first job reuses id 10 would have started group 10, which
    // job 11 still holds: its `complete-job-render` would wait on job 11 of the old one.
    let reuse = JobSpec {
        id: Some(10),
        label: Some("render".into()),
        callbacks: vec![CallbackSpec::qube("complete-job-render", "unblock-self")],
        ..JobSpec::default()
    };
    let e = engine.submit(std::slice::from_ref(&reuse), &mut out).expect_err("the id of a live group");
    assert_eq!((e.kind(), e.field(), e.job()), (&ErrorKind::BadJobId, Some("id"), Some((0, 0))));
    assert!(e.message().contains("process group 10, which is still live (job 11)"), "{}", e.message());
    assert_eq!(engine.live_jobs(), 1);
    let mut a = engine.clone();
    let mut b = before.clone();
    let (mut fa, mut fb) = (Vec::new(), Vec::new());
    a.process(&Event::job(EventName::Complete, 11), &mut fa).expect("valid");
    b.process(&Event::job(EventName::Complete, 11), &mut fb).expect("valid");
    assert_eq!(fa, fb);
    // Naming the group joins it on purpose; then `render` is taken there.
    let join = JobSpec { pgrp: Some(10), ..reuse.clone() };
    let e = engine.submit(std::slice::from_ref(&join), &mut out).expect_err("render is job 11's label in group 10");
    assert_eq!(e.kind(), &ErrorKind::BadLabel);
    let join = JobSpec { label: Some("second".into()), ..join };
    engine.submit(&[join], &mut out).expect("joins group 10 by name");
    engine.remove_job(10, &mut out).expect("live");
    engine.remove_job(11, &mut out).expect("live");
    // Once the group is gone, the id starts a new group, and its labels are its own.
    let sub = engine.submit(&[reuse], &mut out).expect("group 10 is gone");
    assert_eq!(sub.pgrp, 10);
    assert_eq!(engine.label(10), Some("render"));
}

// -- the pipeline's bounds (item 6, on main before this suite) -------------------------

#[test]
fn the_pipeline_bounds_one_events_fanout_and_never_drops_answers_silently() {
    let n = 2000 * scale();
    let mut engine = Engine::default();
    let jobs: Vec<JobSpec> = (0..n)
        .map(|_| JobSpec {
            callbacks: vec![CallbackSpec::qube("complete-job-1", "unblock-self")],
            ..JobSpec::default()
        })
        .collect();
    let mut all = vec![JobSpec { id: Some(1), ..JobSpec::default() }];
    all.extend(jobs);
    engine.submit(&all, &mut Vec::new()).expect("valid");
    let config = PipelineConfig { capacity: 4, batch: 4, output_capacity: 2, chunk: 64 };
    let (mut producer, outcomes, pipeline) = Pipeline::start(engine.clone(), config);
    producer.send(Command::Event(Event::job(EventName::Complete, 1))).expect("open");
    let reader = std::thread::spawn(move || {
        let (mut fired, mut most) = (0, 0);
        for answers in &outcomes {
            most = most.max(outcomes.queued_outcomes() + answers.outcomes().len());
            fired += answers.outcomes().len();
        }
        (fired, most)
    });
    // `producer` is still alive: join closes the input itself and does not wait for it.
    let finished = pipeline.join().expect("worker");
    let (fired, most) = reader.join().expect("reader");
    assert_eq!(fired as u64, n, "every firing delivered");
    let bound = (config.output_capacity + 2) * config.chunk;
    assert!(
        most <= bound && finished.peak_queued_outcomes <= bound,
        "{most}, {} > {bound}",
        finished.peak_queued_outcomes
    );
    assert!(producer.send(Command::Time(1)).is_err(), "closed");
    // A consumer that stops reading: what it never took is counted, not lost silently.
    let (mut producer, outcomes, pipeline) = Pipeline::start(engine, config);
    producer.send(Command::Event(Event::job(EventName::Complete, 1))).expect("open");
    drop(outcomes);
    let finished = pipeline.join().expect("worker");
    assert_eq!(finished.undelivered_outcomes, n);
    assert_eq!(finished.undelivered_answers, 1);
}
