//! Batch and thread equivalence: `process_batch` at batch sizes 1, 64 and 4096, in
//! rayon pools of 1, 2 and 4 threads, gives exactly the firings (and rejections, and
//! work counters) of processing the same events one at a time, on seeded random farms
//! that span several callback chunks (so that the parallel path runs several shards).

use trigwire::pipeline::{Pipeline, PipelineConfig};
use trigwire::{BatchFiring, CallbackSpec, Command, Engine, Event, EventName, JobSpec};
use trigwire_tools::bench_farm::{fanout, Farm, FarmSpec, Order, Rng, TriggerShape};

const NAMES: [EventName; 5] =
    [EventName::Complete, EventName::Failed, EventName::Killed, EventName::Running, EventName::Done];

/// One step of a scenario: a run of events, or a job removal between runs.
#[derive(Clone, Debug)]
enum Step {
    Events(Vec<Event>),
    Remove(u64),
}

/// A random farm: submissions of jobs with random per-frame triggers (ANDs, ORs,
/// nesting, labels, ids, `self`, `*`, `done`, maxima), and random steps.
struct Scenario {
    /// Whether a circuit is wider than 64 atoms (the batch path is sequential then).
    wide: bool,
    submissions: Vec<Vec<JobSpec>>,
    steps: Vec<Step>,
}

fn atom(rng: &mut Rng, job: u64, jobs: u64, group: &[u64], frames: u64, f: u64) -> String {
    let name = ["complete", "failed", "done", "running", "killed"][rng.below(5) as usize];
    let ctx = match rng.below(4) {
        0 => "self".to_string(),
        1 => (rng.below(jobs + 3) + 1).to_string(),
        _ => format!("L{}", group[rng.below(group.len() as u64) as usize]),
    };
    let _ = job;
    match rng.below(9) {
        // Names outside every agenda, interned late and scattered: sparse index tables.
        8 => format!("{name}-work-{ctx}-x{}", rng.below(300)),
        0 => format!("{name}-job-{ctx}"),
        1 => format!("{name}-work-{ctx}-*"),
        2 => format!("{name}-subjob-{ctx}-{}", rng.below(3)),
        3 => format!("{name}-work-{ctx}-{}", rng.below(frames) + 1),
        _ => format!("{name}-work-{ctx}-{f}"),
    }
}

fn trigger(rng: &mut Rng, depth: u32, args: (u64, u64, &[u64], u64, u64)) -> String {
    let (job, jobs, group, frames, f) = args;
    if depth == 0 || rng.below(3) == 0 {
        return atom(rng, job, jobs, group, frames, f);
    }
    let n = 2 + rng.below(2);
    let op = if rng.below(2) == 0 { " && " } else { " || " };
    let parts: Vec<String> = (0..n).map(|_| trigger(rng, depth - 1, args)).collect();
    format!("({})", parts.join(op))
}

fn scenario(seed: u64, jobs: u64, frames: u64, wide: bool) -> Scenario {
    let mut rng = Rng::new(seed);
    let mut submissions = Vec::new();
    let mut id = 1;
    while id <= jobs {
        let size = (1 + rng.below(8)).min(jobs - id + 1);
        let group: Vec<u64> = (id..id + size).collect();
        let sub = group
            .iter()
            .map(|&j| {
                let agenda: Vec<String> = (1..=frames).map(|f| f.to_string()).collect();
                let callbacks = (1..=frames)
                    .map(|f| {
                        let text = trigger(&mut rng, 2, (j, jobs, &group, frames, f));
                        let maximum = [None, Some(1), Some(2)][rng.below(3) as usize];
                        CallbackSpec { maximum, ..CallbackSpec::qube(&text, "unblock-work-self") }
                    })
                    .collect();
                JobSpec {
                    id: Some(j),
                    label: Some(format!("L{j}")),
                    agenda,
                    subjobs: 3,
                    callbacks,
                    ..JobSpec::default()
                }
            })
            .collect();
        submissions.push(sub);
        id += size;
    }
    if wide {
        let atoms: Vec<String> = (1..=70).map(|f| format!("complete-work-1-{}", f % frames + 1)).collect();
        let job = JobSpec {
            id: Some(jobs + 1),
            callbacks: vec![CallbackSpec::qube(&atoms.join(" && "), "unblock-self")],
            ..JobSpec::default()
        };
        submissions.push(vec![job]);
    }
    let mut steps = Vec::new();
    for _ in 0..4 {
        let events = (0..800).map(|_| random_event(&mut rng, jobs, frames)).collect();
        steps.push(Step::Events(events));
        steps.push(Step::Remove(rng.below(jobs) + 1));
    }
    Scenario { wide, submissions, steps }
}

fn random_event(rng: &mut Rng, jobs: u64, frames: u64) -> Event {
    let name = NAMES[rng.below(NAMES.len() as u64) as usize];
    let job = rng.below(jobs + 3) + 1;
    match rng.below(10) {
        9 => Event::work(name, job, &format!("x{}", rng.below(300))),
        0 => Event::job(name, job),
        1 => Event::subjob(name, job, rng.below(4)),
        2 => Event::host(name, job, "render01"),
        _ => Event::work(name, job, &(rng.below(frames + 1) + 1).to_string()),
    }
}

fn build(s: &Scenario) -> Engine {
    let mut engine = Engine::default();
    for sub in &s.submissions {
        engine.submit(sub, &mut Vec::new()).expect("valid submission");
    }
    engine
}

/// The firings and rejected positions of the whole scenario, with positions counted
/// over all events of all steps.
type Outcome = (Vec<BatchFiring>, Vec<usize>, trigwire::Stats);

fn one_at_a_time(s: &Scenario) -> Outcome {
    let mut engine = build(s);
    let (mut fired, mut rejected, mut at) = (Vec::new(), Vec::new(), 0);
    let mut out = Vec::new();
    for step in &s.steps {
        match step {
            Step::Remove(id) => drop(engine.remove_job(*id, &mut Vec::new())),
            Step::Events(events) => {
                for e in events {
                    out.clear();
                    match engine.process(e, &mut out) {
                        Ok(()) => {
                            fired.extend(out.iter().map(|firing| BatchFiring { event: at, firing: firing.clone() }))
                        }
                        Err(_) => rejected.push(at),
                    }
                    at += 1;
                }
            }
        }
    }
    (fired, rejected, engine.stats())
}

fn batched(s: &Scenario, size: usize) -> Outcome {
    let mut engine = build(s);
    let (mut fired, mut rejected, mut at) = (Vec::new(), Vec::new(), 0);
    let mut out = Vec::new();
    for step in &s.steps {
        match step {
            Step::Remove(id) => drop(engine.remove_job(*id, &mut Vec::new())),
            Step::Events(events) => {
                for chunk in events.chunks(size) {
                    out.clear();
                    let errs = engine.process_batch(chunk, &mut out);
                    fired.extend(out.iter().map(|bf| BatchFiring { event: at + bf.event, firing: bf.firing.clone() }));
                    rejected.extend(errs.iter().map(|(i, _)| at + i));
                    at += chunk.len();
                }
            }
        }
    }
    (fired, rejected, engine.stats())
}

fn check_equivalence(s: &Scenario) {
    let expected = one_at_a_time(s);
    assert!(expected.0.len() > 100, "the scenario should fire plenty: {}", expected.0.len());
    for threads in [1, 2, 4] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool");
        for size in [1, 64, 4096] {
            let got = pool.install(|| batched(s, size));
            assert_eq!(got.1, expected.1, "rejections, {threads} threads, batch {size}");
            assert_eq!(got.0.len(), expected.0.len(), "firing count, {threads} threads, batch {size}");
            assert_eq!(got.0, expected.0, "firings, {threads} threads, batch {size}");
            let counters = |s: trigwire::Stats| (s.postings_touched, s.circuits_checked, s.sweeps);
            assert_eq!(counters(got.2), counters(expected.2), "work counters, {threads} threads, batch {size}");
            // Batches of 64 may lose rejected events and fall under the parallel threshold.
            if threads == 1 || s.wide || size == 1 {
                assert_eq!(got.2.parallel_batches, 0, "sequential path, {threads} threads, batch {size}");
            } else if size == 4096 {
                assert!(got.2.parallel_batches > 0, "parallel path, {threads} threads, batch {size}");
            }
        }
    }
}

#[test]
fn random_farms_batch_like_one_at_a_time() {
    for seed in [1, 2, 3] {
        check_equivalence(&scenario(seed, 60, 150, false));
    }
}

#[test]
fn many_shards_batch_like_one_at_a_time() {
    // 40,000 callbacks: ten chunks, so four threads run ten shards.
    check_equivalence(&scenario(7, 100, 400, false));
}

#[test]
fn wide_circuits_batch_like_one_at_a_time() {
    check_equivalence(&scenario(11, 40, 120, true));
}

fn farm_scenario(shape: TriggerShape, order: Order) -> Scenario {
    let farm = Farm::new(FarmSpec { jobs: 50, frames: 200, shape, seed: 5, group: 10, job_or: false });
    let events: Vec<Event> = farm.events(order).collect();
    // One long run, so that a 4096-event batch fires thousands (targets in parallel).
    let steps = events.chunks(8000).map(|c| Step::Events(c.to_vec())).collect();
    Scenario { wide: false, submissions: farm.submissions().collect(), steps }
}

#[test]
fn bench_farms_batch_like_one_at_a_time() {
    for shape in TriggerShape::ALL {
        for order in [Order::Random, Order::InOrder] {
            check_equivalence(&farm_scenario(shape, order));
        }
    }
}

#[test]
fn bench_farm_and2_releases_each_callback_once() {
    let farm =
        Farm::new(FarmSpec { jobs: 30, frames: 40, shape: TriggerShape::And2, seed: 9, group: 10, job_or: false });
    let mut engine = Engine::default();
    for sub in farm.submissions() {
        engine.submit(&sub, &mut Vec::new()).expect("valid farm");
    }
    let mut out = Vec::new();
    for e in farm.events(Order::InOrder) {
        engine.process(&e, &mut out).expect("valid event");
    }
    assert_eq!(out.len() as u64, farm.callbacks());
    let mut ids: Vec<u32> = out.iter().map(|f| f.callback.as_u32()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len() as u64, farm.callbacks());
}

#[test]
fn fanout_event_releases_every_callback() {
    let (subs, event) = fanout(10_000, 100);
    let mut engine = Engine::default();
    for sub in &subs {
        engine.submit(sub, &mut Vec::new()).expect("valid fanout");
    }
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool");
        let mut e = engine.clone();
        let mut out = Vec::new();
        let batch = vec![event.clone(); 64];
        pool.install(|| e.process_batch(&batch, &mut out));
        assert_eq!(out.len(), 64 * 10_000);
        assert!(out.windows(2).all(|w| (w[0].event, w[0].firing.callback) < (w[1].event, w[1].firing.callback)));
    }
}

#[test]
fn pipeline_gives_the_firings_of_one_at_a_time() {
    let s = farm_scenario(TriggerShape::Mixed, Order::Random);
    let expected = one_at_a_time(&s);
    let engine = build(&s);
    let config = PipelineConfig { capacity: 100, batch: 300, output_capacity: 4, chunk: 50 };
    let (mut producer, outcomes, pipeline) = Pipeline::start(engine, config);
    let all: Vec<Event> = s
        .steps
        .iter()
        .flat_map(|st| match st {
            Step::Events(e) => e.clone(),
            Step::Remove(_) => Vec::new(),
        })
        .collect();
    let count = all.len();
    let thread = std::thread::spawn(move || {
        for e in all {
            producer.send(Command::Event(e)).expect("pipeline open");
        }
    });
    let mut fired = Vec::new();
    let mut answered = 0;
    for answers in &outcomes {
        assert!(answers.outcomes().len() <= config.chunk);
        for answer in answers.iter() {
            // One producer: the tickets are the event positions.
            let event = answer.ticket.seq() as usize;
            assert_eq!(event, answered, "answers in send order");
            for outcome in answer.outcomes {
                let trigwire::Outcome::Fired(firing) = outcome else { panic!("no rejection expected: {outcome:?}") };
                fired.push(BatchFiring { event, firing: firing.clone() });
            }
            answered += usize::from(answer.complete);
        }
    }
    thread.join().expect("producer");
    let finished = pipeline.join().expect("worker");
    assert_eq!(answered, count);
    assert_eq!(fired, expected.0);
    assert_eq!(finished.engine.stats().postings_touched, expected.2.postings_touched);
    assert!(finished.peak_queued_outcomes <= (config.output_capacity + 2) * config.chunk);
}

#[test]
fn pipeline_shuts_down_when_every_producer_drops() {
    let (producer, outcomes, pipeline) = Pipeline::start(Engine::default(), PipelineConfig::default());
    let threads: Vec<_> = (0..4)
        .map(|p| {
            let mut tx = producer.clone();
            std::thread::spawn(move || {
                for i in 0..1000 {
                    tx.send(Command::Event(Event::job(EventName::Running, p * 1000 + i + 1))).expect("pipeline open");
                }
            })
        })
        .collect();
    drop(producer);
    let answered: usize = outcomes.iter().map(|a| a.iter().filter(|a| a.complete).count()).sum();
    threads.into_iter().for_each(|p| p.join().expect("producer"));
    assert_eq!(answered, 4000);
    assert!(!pipeline.is_closed(), "the input ended because every producer dropped");
    let finished = pipeline.join().expect("worker");
    assert_eq!((finished.commands, finished.undelivered_answers), (4000, 0));
    assert_eq!(finished.engine.live_jobs(), 0);
}

#[test]
fn public_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Engine>();
    send_sync::<Farm>();
    send_sync::<Pipeline>();
    send_sync::<trigwire::pipeline::Producer>();
    send_sync::<trigwire::pipeline::Outcomes>();
    send_sync::<trigwire::pipeline::Answers>();
    send_sync::<trigwire::pipeline::Ticket>();
    send_sync::<trigwire::pipeline::Finished>();
}

#[test]
fn bench_measure_agrees_with_the_reference() {
    use trigwire_tools::bench_farm::{measure, ReplayOptions, Subject};
    for shape in TriggerShape::ALL {
        let farm = Farm::new(FarmSpec { jobs: 20, frames: 30, shape, seed: 3, group: 5, job_or: false });
        for batch in [None, Some(64)] {
            let replay = ReplayOptions { order: Order::Random, events: Some(500), batch };
            let engine = measure(&farm, Subject::Compiled, replay, &mut |_| {}).expect("farm runs");
            let reference = measure(&farm, Subject::Reference, replay, &mut |_| {}).expect("farm runs");
            assert_eq!(engine.events, 500);
            assert_eq!((engine.firings, engine.checksum), (reference.firings, reference.checksum), "{shape:?}");
            assert!(engine.bytes_per_callback.is_some() && reference.bytes_per_callback.is_none());
        }
    }
}

#[test]
fn removals_and_sweeps_match_the_reference() {
    let mut s = scenario(13, 60, 150, false);
    // Remove two thirds of the jobs between runs of events, so the index sweeps.
    let events: Vec<Event> =
        s.steps.iter().flat_map(|st| if let Step::Events(e) = st { e.clone() } else { Vec::new() }).collect();
    s.steps.clear();
    for (round, chunk) in events.chunks(400).enumerate() {
        s.steps.push(Step::Events(chunk.to_vec()));
        for j in 0..5 {
            s.steps.push(Step::Remove((round * 5 + j + 1) as u64));
        }
    }
    let expected = one_at_a_time(&s);
    assert!(expected.2.sweeps > 0, "the scenario should sweep the index");
    let mut reference = trigwire_tools::Reference::new(trigwire::Config::default());
    for sub in &s.submissions {
        reference.submit(sub, &mut Vec::new()).expect("valid submission");
    }
    let (mut fired, mut at, mut out) = (Vec::new(), 0, Vec::new());
    for step in &s.steps {
        match step {
            Step::Remove(id) => drop(reference.remove_job(*id, &mut Vec::new())),
            Step::Events(events) => {
                for e in events {
                    out.clear();
                    if reference.process(e, &mut out).is_ok() {
                        fired.extend(out.iter().map(|firing| BatchFiring { event: at, firing: firing.clone() }));
                    }
                    at += 1;
                }
            }
        }
    }
    assert_eq!(fired, expected.0);
}

#[test]
fn frames_registered_in_descending_order_match_the_reference() {
    // The upstream's frame names are interned in ascending order, the downstream's
    // callbacks name them in descending order: the index's dense tables grow at the front.
    let frames = 3000;
    let agenda: Vec<String> = (1..=frames).map(|f| f.to_string()).collect();
    let up = JobSpec { id: Some(1), label: Some("up".into()), agenda: agenda.clone(), ..JobSpec::default() };
    let callbacks =
        (1..=frames).rev().map(|f| CallbackSpec::qube(&format!("complete-work-up-{f}"), "unblock-work-self")).collect();
    let down = JobSpec { id: Some(2), agenda, callbacks, ..JobSpec::default() };
    let mut engine = Engine::default();
    let mut reference = trigwire_tools::Reference::new(trigwire::Config::default());
    engine.submit(&[up.clone(), down.clone()], &mut Vec::new()).expect("valid");
    reference.submit(&[up, down], &mut Vec::new()).expect("valid");
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for f in [1, frames, frames / 2, 7] {
        let e = Event::work(EventName::Complete, 1, &f.to_string());
        engine.process(&e, &mut a).expect("valid");
        reference.process(&e, &mut b).expect("valid");
    }
    assert_eq!(a.len(), 4);
    assert_eq!(a, b);
}

#[test]
fn bench_command_prints_the_figures_as_json() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trigwire"))
        .args(["bench", "--jobs", "20", "--frames", "50", "--shape", "mixed", "--order", "inorder", "--reference"])
        .output()
        .expect("run trigwire bench");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    for key in [
        "callbacks",
        "register_s",
        "events",
        "match_s",
        "events_per_s",
        "firings",
        "bytes_per_callback",
        "peak_rss_bytes",
        "huge_page_bytes",
        "reference",
        "speedup_vs_reference",
    ] {
        assert!(report.get(key).is_some(), "missing `{key}` in {report}");
    }
    assert_eq!(report["callbacks"], 1000);
    assert_eq!(report["firings"], report["reference"]["firings"]);
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_trigwire"))
        .args(["bench", "--shape", "triangle"])
        .output()
        .expect("run trigwire bench");
    assert!(!bad.status.success());
}
