//! The churn of a long-lived supervisor: jobs submitted, completed and removed, each
//! with its own label, work names and python code, so that nothing a job interns is
//! shared with the next. Memory must follow the live jobs, not the history
//! (`trigwire bench --churn N`, `tests/scale_memory.rs`).

use std::io::{self, Write};

use serde_json::json;
use trigwire::{CallbackSpec, Engine, Event, EventName, JobSpec, Language};

/// Jobs live at once during the churn: each cycle submits job `i` and removes job
/// `i - LIVE`, so the engine always holds this many.
pub const LIVE: u64 = 100;

/// The job of cycle `i`: label `churni`, two work names of its own, a python callback
/// per work item with its own code, and one waiting on the previous job's label.
pub fn job(i: u64) -> JobSpec {
    let label = format!("churn{i}");
    let work = [format!("shot{i}a"), format!("shot{i}b")];
    let mut callbacks: Vec<CallbackSpec> = work
        .iter()
        .map(|w| CallbackSpec {
            triggers: vec![format!("complete-work-self-{w}")],
            language: Language::Python,
            code: format!("notify('{w}', {i})"),
            maximum: None,
        })
        .collect();
    if i > 0 {
        callbacks.push(CallbackSpec::qube(&format!("complete-job-churn{}", i - 1), "unblock-self"));
    }
    JobSpec { id: Some(i + 1), label: Some(label), agenda: work.to_vec(), callbacks, ..JobSpec::default() }
}

/// The events of cycle `i`'s job: its work items and itself complete.
pub fn events(i: u64) -> Vec<Event> {
    let id = i + 1;
    vec![
        Event::work(EventName::Complete, id, &format!("shot{i}a")),
        Event::work(EventName::Complete, id, &format!("shot{i}b")),
        Event::job(EventName::Complete, id),
    ]
}

/// Runs cycles `from..to` on `engine`: submit job `i`, complete it, remove job
/// `i - LIVE`. Returns the firings.
///
/// # Panics
/// If the engine rejects a step: the churn is valid input.
pub fn run(engine: &mut Engine, from: u64, to: u64) -> usize {
    let mut out = Vec::new();
    let mut firings = 0;
    for i in from..to {
        engine.submit(&[job(i)], &mut out).expect("a churn job is valid");
        for e in events(i) {
            engine.process(&e, &mut out).expect("a churn event is valid");
        }
        if i >= LIVE {
            engine.remove_job(i - LIVE + 1, &mut out).expect("the job is live");
        }
        firings += out.len();
        out.clear();
    }
    firings
}

/// Removes the jobs [`run`] left live after `cycles` cycles.
///
/// # Panics
/// If one of them is not live.
pub fn drain(engine: &mut Engine, cycles: u64) {
    for i in cycles.saturating_sub(LIVE)..cycles {
        engine.remove_job(i + 1, &mut Vec::new()).expect("the job is live");
    }
}

/// Writes `cycles` cycles as a `trigwire run` log (the same steps as [`run`]), so that
/// any build of the binary can replay it under `/usr/bin/time -v`.
///
/// # Errors
/// A write error.
pub fn write_log(cycles: u64, out: &mut impl Write) -> io::Result<()> {
    for i in 0..cycles {
        let job = job(i);
        let callbacks: Vec<_> = job
            .callbacks
            .iter()
            .map(|c| {
                let language = if c.language == Language::Python { "python" } else { "qube" };
                json!({"triggers": c.triggers, "language": language, "code": c.code})
            })
            .collect();
        let submit =
            json!({"submit": [{"id": i + 1, "label": job.label, "agenda": job.agenda, "callbacks": callbacks}]});
        writeln!(out, "{submit}")?;
        for w in &job.agenda {
            writeln!(out, "{}", json!({"event": "complete", "type": "work", "job": i + 1, "extra": w}))?;
        }
        writeln!(out, "{}", json!({"event": "complete", "type": "job", "job": i + 1}))?;
        if i >= LIVE {
            writeln!(out, "{}", json!({"remove": i - LIVE + 1}))?;
        }
    }
    Ok(())
}

/// Peak resident memory of this process in KiB (`VmHWM` of `/proc/self/status`), where
/// the system reports it.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
