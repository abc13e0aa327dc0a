//! Criterion benchmarks of the wire format of `trigwire run`, with the cost of only
//! parsing the same line into a `serde_json::Value` (the first step of the old decoder)
//! measured in the same group, so every figure is also a ratio.
//!
//! What is measured:
//! - `decode`: lines decoded into a `Command` per second: a work event (the hot path),
//!   a job event, a subjob event with a numeric extra, and a submission of ten jobs of
//!   ten frames with one frame callback each; `serde_json_value/*` parses the same
//!   line into a `Value` and nothing more.
//! - `write`: output lines written per second: a firing caused by a work event, a
//!   submission and an error; `json_value/*` builds the same line with `json!` and
//!   prints it, as the writer did before (byte for byte the same line).
//!
//! How to run: `cargo bench --bench wire` (under a minute), or one group:
//! `cargo bench --bench wire -- decode`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde_json::{json, Value};
use trigwire::wire::{decode, write_error, write_fired, write_submitted};
use trigwire::{Cause, Command, Engine, Event, EventExtra, Firing, Outcome, Target};

fn config() -> Criterion {
    Criterion::default().sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(2))
}

fn submission_line() -> String {
    let jobs: Vec<String> = (0..10)
        .map(|j| {
            let agenda: Vec<String> = (1..=10).map(|f| format!("\"{f}\"")).collect();
            format!(
                r#"{{"name": "shot010_render_{j}", "label": "j{j}", "agenda": [{}], "callbacks": [{{"triggers": "complete-work-j0-5 && complete-work-j1-5", "code": "unblock-work-self"}}]}}"#,
                agenda.join(", ")
            )
        })
        .collect();
    format!(r#"{{"submit": [{}]}}"#, jobs.join(", "))
}

fn bench_decode(c: &mut Criterion) {
    let lines = [
        ("work_event", r#"{"event": "complete", "type": "work", "job": 1234, "extra": "57"}"#.to_string()),
        ("job_event", r#"{"event": "complete", "type": "job", "job": 1234}"#.to_string()),
        ("subjob_event", r#"{"event": "failed", "type": "subjob", "job": 1234, "extra": 7}"#.to_string()),
        ("submission_10_jobs", submission_line()),
    ];
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(1));
    for (name, line) in &lines {
        group.bench_with_input(BenchmarkId::new("decode", name), line, |b, line| {
            b.iter(|| decode(black_box(line)).expect("a valid line"))
        });
        group.bench_with_input(BenchmarkId::new("serde_json_value", name), line, |b, line| {
            b.iter(|| serde_json::from_str::<Value>(black_box(line)).expect("JSON"))
        });
    }
    group.finish();
}

/// A firing of a frame callback, caused by a work event, from a real engine.
fn firing() -> (Firing, Event) {
    let mut engine = Engine::default();
    let submit = decode(
        r#"{"submit": [{"label": "ribgen", "agenda": ["57"]}, {"agenda": ["57"], "callbacks": [{"triggers": "complete-work-ribgen-57", "code": "unblock-work-self"}]}]}"#,
    )
    .expect("a valid submission");
    let event = Event::named("complete", 1, EventExtra::Work("57".into()));
    let mut out = Vec::new();
    engine.apply(&submit, &mut out).expect("accepted");
    out.clear();
    engine.apply(&Command::Event(event.clone()), &mut out).expect("accepted");
    match out.pop() {
        Some(Outcome::Fired(f)) => (f, event),
        other => panic!("expected a firing, got {other:?}"),
    }
}

/// The output line as the writer built it before: a `json!` value, then printed.
fn fired_value(line: usize, f: &Firing, e: &Event) -> Value {
    let target = match &f.target {
        Some(Target::Work(w)) => json!(&**w),
        Some(Target::Subjob(i)) => json!(i),
        None => Value::Null,
    };
    let mut cause = json!({"event": e.name.as_str(), "type": e.event_type().as_str(), "job": e.job});
    if let EventExtra::Work(w) = &e.extra {
        cause["extra"] = json!(w);
    }
    assert!(matches!(f.cause, Cause::Event));
    json!({"line": line, "fired": {
        "job": f.owner, "callback": f.index, "language": f.action.language.as_str(),
        "code": &*f.action.code, "target": target, "cause": cause,
    }})
}

fn bench_write(c: &mut Criterion) {
    let (f, event) = firing();
    let submitted = trigwire::Submission { ids: (1..=10).collect(), pgrp: 1, warnings: Vec::new() };
    let error = decode(r#"{"time": 5, "time": 6}"#).expect_err("a duplicate key");
    let mut buffer = Vec::with_capacity(4096);
    write_fired(&mut buffer, 123_456, &f, Some(&event));
    let old = format!("{}\n", fired_value(123_456, &f, &event));
    assert_eq!(String::from_utf8_lossy(&buffer), old, "the writer prints what json! printed");

    let mut group = c.benchmark_group("write");
    group.throughput(Throughput::Elements(1));
    group.bench_function("write/fired", |b| {
        b.iter(|| {
            buffer.clear();
            write_fired(&mut buffer, black_box(123_456), black_box(&f), Some(&event));
        })
    });
    group.bench_function("json_value/fired", |b| {
        b.iter(|| {
            buffer.clear();
            serde_json::to_writer(&mut buffer, &fired_value(black_box(123_456), black_box(&f), &event))
                .expect("printed");
            buffer.push(b'\n');
        })
    });
    group.bench_function("write/submitted", |b| {
        b.iter(|| {
            buffer.clear();
            write_submitted(&mut buffer, black_box(7), black_box(&submitted));
        })
    });
    group.bench_function("json_value/submitted", |b| {
        b.iter(|| {
            buffer.clear();
            let v = json!({"line": black_box(7), "submitted": submitted.ids, "pgrp": submitted.pgrp});
            serde_json::to_writer(&mut buffer, &v).expect("printed");
            buffer.push(b'\n');
        })
    });
    group.bench_function("write/error", |b| {
        b.iter(|| {
            buffer.clear();
            write_error(&mut buffer, black_box(9), black_box(&error));
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_decode, bench_write
}
criterion_main!(benches);
