//! Criterion benchmarks of the trigger engine, with the naive reference measured in the
//! same group wherever it finishes in reasonable time, so every figure is also a ratio.
//!
//! What is measured (all farms come from `trigwire_tools::bench_farm`, seeded, so every run
//! measures the same farm):
//! - `parse`: triggers parsed per second, for the per-frame shapes and a wide OR (the
//!   reference shares this parser, so it has no figure of its own here).
//! - `register`: frame-level callbacks registered per second: one submission of ten
//!   1,000-frame jobs with per-frame `&&` triggers (10,000 callbacks) into a fresh engine.
//! - `frame_events`: frame completion events per second, one at a time, against farms of
//!   10k and 1M registered two-atom `&&` callbacks (and 10M with `TRIGWIRE_BENCH_HUGE=1`,
//!   about 1 GB and a minute to build), in random and in-order streams. The stream
//!   repeats, so after the first pass every event re-fires what it releases: the
//!   steady-state cost of an event that finds its postings and fires them.
//! - `fanout`: one job-level event releasing N frame callbacks, N = 10k, 100k, 1M;
//!   throughput is callbacks released per second.
//! - `batch_scaling`: 4,096 random frame events against 1M callbacks through
//!   `process_batch` at batch sizes 1, 64 and 4,096, in rayon pools of 1..N threads
//!   (N = the machine's parallelism); throughput is events per second. The reference
//!   has no parallel path; `frame_events` gives its per-event cost.
//!
//! How to run: `cargo bench --bench engine` (all groups, a few minutes), or one group:
//! `cargo bench --bench engine -- frame_events`. `cargo bench --no-run` only builds.
//! Samples are few and short (10 samples, 2 s) because the farms are large; the
//! per-iteration work is thousands of events, so the figures are stable to a few per
//! cent on a quiet machine.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use trigwire::syntax::{parse, CustomNames, ParseLimits};
use trigwire::{Config, Engine, Event};
use trigwire_tools::bench_farm::{fanout, Farm, FarmSpec, Order, TriggerShape};
use trigwire_tools::Reference;

/// The reference re-checks every callback on every event; beyond this it takes minutes.
const REFERENCE_MAX_CALLBACKS: u64 = 10_000;

fn config() -> Criterion {
    Criterion::default().sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(2))
}

fn farm(callbacks: u64, shape: TriggerShape) -> Farm {
    let frames = 1000.min(callbacks) as u32;
    Farm::new(FarmSpec {
        jobs: (callbacks / u64::from(frames)) as u32,
        frames,
        shape,
        seed: 1,
        group: 10,
        job_or: false,
    })
}

fn compiled_engine(farm: &Farm) -> Engine {
    let mut engine = Engine::default();
    for sub in farm.submissions() {
        engine.submit(&sub, &mut Vec::new()).expect("valid farm");
    }
    engine
}

fn reference_engine(farm: &Farm) -> Reference {
    let mut engine = Reference::new(Config::default());
    for sub in farm.submissions() {
        engine.submit(&sub, &mut Vec::new()).expect("valid farm");
    }
    engine
}

fn bench_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    let wide: Vec<String> = (1..=16).map(|f| format!("complete-work-render-{f}")).collect();
    let cases = [
        ("single", "complete-work-ribgen-17".to_string()),
        ("and2", "complete-work-ribgen-17 && complete-work-render-17".to_string()),
        ("mixed", "(complete-work-ribgen-17 && complete-work-render-17) || complete-work-comp-17".to_string()),
        ("segment", "complete-work-self-Segment: 1-200 and complete-work-self-Segment: 201-400".to_string()),
        ("or16", wide.join(" || ")),
    ];
    let (limits, custom) = (ParseLimits::default(), CustomNames::default());
    group.throughput(Throughput::Elements(1));
    for (name, text) in &cases {
        group.bench_with_input(BenchmarkId::new("trigwire", name), text, |b, text| {
            b.iter(|| parse(black_box(text), &limits, &custom).expect("valid trigger"))
        });
    }
    group.finish();
}

fn bench_register(c: &mut Criterion) {
    let mut group = c.benchmark_group("register");
    let farm = farm(10_000, TriggerShape::And2);
    let sub = farm.submission(0);
    let callbacks: usize = sub.iter().map(|j| j.callbacks.len()).sum();
    group.throughput(Throughput::Elements(callbacks as u64));
    group.bench_function("trigwire/and2_10x1000", |b| {
        b.iter_batched(
            Engine::default,
            |mut engine| engine.submit(&sub, &mut Vec::new()).expect("valid farm"),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("reference/and2_10x1000", |b| {
        b.iter_batched(
            || Reference::new(Config::default()),
            |mut engine| engine.submit(&sub, &mut Vec::new()).expect("valid farm"),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// The first `n` events of `farm`'s stream in `order`, built once.
fn stream(farm: &Farm, order: Order, n: usize) -> Vec<Event> {
    farm.events(order).take(n).collect()
}

fn bench_frame_events(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame_events");
    let mut sizes = vec![10_000u64, 1_000_000];
    if std::env::var_os("TRIGWIRE_BENCH_HUGE").is_some() {
        sizes.push(10_000_000);
    }
    group.throughput(Throughput::Elements(1));
    for &n in &sizes {
        let farm = farm(n, TriggerShape::And2);
        let mut engine = compiled_engine(&farm);
        for order in [Order::Random, Order::InOrder] {
            let events = stream(&farm, order, 1 << 16);
            let name = format!("{}/{order:?}", label(n));
            group.bench_function(BenchmarkId::new("trigwire", &name), |b| {
                each_event(b, &events, &mut engine, run_engine)
            });
            if n <= REFERENCE_MAX_CALLBACKS {
                let mut reference = reference_engine(&farm);
                group.bench_function(BenchmarkId::new("reference", &name), |b| {
                    each_event(b, &events, &mut reference, run_reference)
                });
            }
        }
    }
    group.finish();
}

fn run_engine(engine: &mut Engine, event: &Event, out: &mut Vec<trigwire::Firing>) {
    engine.process(event, out).expect("valid event");
}

fn run_reference(engine: &mut Reference, event: &Event, out: &mut Vec<trigwire::Firing>) {
    engine.process(event, out).expect("valid event");
}

/// One iteration is one event, cycling through `events`.
fn each_event<E>(
    b: &mut criterion::Bencher<'_>,
    events: &[Event],
    engine: &mut E,
    run: fn(&mut E, &Event, &mut Vec<trigwire::Firing>),
) {
    let mut out = Vec::new();
    let mut i = 0;
    b.iter(|| {
        out.clear();
        run(engine, &events[i % events.len()], &mut out);
        i += 1;
        out.len()
    });
}

fn label(n: u64) -> String {
    match n {
        n if n >= 1_000_000 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

fn bench_fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout");
    for n in [10_000u32, 100_000, 1_000_000] {
        let (subs, event) = fanout(n, 1000);
        let mut engine = Engine::default();
        subs.iter().for_each(|s| drop(engine.submit(s, &mut Vec::new()).expect("valid fanout")));
        group.throughput(Throughput::Elements(u64::from(n)));
        let mut out = Vec::with_capacity(n as usize);
        group.bench_function(BenchmarkId::new("trigwire", label(n.into())), |b| {
            b.iter(|| {
                out.clear();
                engine.process(&event, &mut out).expect("valid event");
                out.len()
            })
        });
        if u64::from(n) <= REFERENCE_MAX_CALLBACKS {
            let mut reference = Reference::new(Config::default());
            subs.iter().for_each(|s| drop(reference.submit(s, &mut Vec::new()).expect("valid fanout")));
            group.bench_function(BenchmarkId::new("reference", label(n.into())), |b| {
                b.iter(|| {
                    out.clear();
                    reference.process(&event, &mut out).expect("valid event");
                    out.len()
                })
            });
        }
    }
    group.finish();
}

fn bench_batch_scaling(c: &mut Criterion) {
    let mut group = c.benchmark_group("batch_scaling");
    let farm = farm(1_000_000, TriggerShape::And2);
    let events = stream(&farm, Order::Random, 4096);
    let max_threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    group.throughput(Throughput::Elements(events.len() as u64));
    for threads in 1..=max_threads {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("thread pool");
        let mut engine = compiled_engine(&farm);
        for size in [1usize, 64, 4096] {
            let id = BenchmarkId::new(format!("threads{threads}"), format!("batch{size}"));
            let mut out = Vec::new();
            group.bench_function(id, |b| {
                b.iter(|| {
                    pool.install(|| {
                        for chunk in events.chunks(size) {
                            out.clear();
                            engine.process_batch(chunk, &mut out);
                        }
                    })
                })
            });
        }
    }
    group.finish();
}

/// Removing every job of a farm, oldest first and newest first, at two sizes 4x apart:
/// the time per job removed stays flat (removal is O(log n) plus amortised O(1), and
/// the index is swept a budget per removal; see `tests/scale_memory.rs` for the counts).
fn bench_removal(c: &mut Criterion) {
    let mut group = c.benchmark_group("removal");
    for callbacks in [100_000u64, 400_000] {
        let farm = farm(callbacks, TriggerShape::And2);
        let engine = compiled_engine(&farm);
        let mut ids: Vec<u64> = farm.submissions().flat_map(|s| s.into_iter().filter_map(|j| j.id)).collect();
        if ids.is_empty() {
            ids = (1..=u64::from(farm.spec().jobs)).collect();
        }
        group.throughput(Throughput::Elements(ids.len() as u64));
        for (order, list) in [("oldest_first", ids.clone()), ("newest_first", ids.iter().rev().copied().collect())] {
            group.bench_function(BenchmarkId::new(order, label(callbacks)), |b| {
                b.iter_batched(
                    || engine.clone(),
                    |mut engine| {
                        for &id in &list {
                            engine.remove_job(id, &mut Vec::new()).expect("live job");
                        }
                        engine
                    },
                    BatchSize::LargeInput,
                )
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_parse, bench_register, bench_frame_events, bench_fanout, bench_batch_scaling, bench_removal
}
criterion_main!(benches);
