//! What `Engine::explain` costs on a frame farm: `jobs × 1000` two-atom frame callbacks
//! (ten jobs per process group, each frame waiting on the same frame of two others),
//! then three explanations of a whole job and three of one frame, timed.
//!
//! `cargo run --release -p trigwire-tools --example explain_cost -- 10000` (10M callbacks).

use std::time::Instant;

use trigwire::{CallbackSpec, Engine, JobSpec};

fn main() {
    let jobs: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1000).max(10);
    let frames: Vec<String> = (1..=1000).map(|f| f.to_string()).collect();
    let mut engine = Engine::default();
    for g in 0..jobs / 10 {
        let specs: Vec<JobSpec> = (0..10u64)
            .map(|k| JobSpec {
                id: Some(g * 10 + k + 1),
                label: Some(format!("j{k}")),
                agenda: frames.clone(),
                callbacks: frames
                    .iter()
                    .map(|f| {
                        let (a, b) = ((k + 1) % 10, (k + 2) % 10);
                        CallbackSpec::qube(
                            &format!("complete-work-j{a}-{f} && complete-work-j{b}-{f}"),
                            "unblock-work-self",
                        )
                    })
                    .collect(),
                ..JobSpec::default()
            })
            .collect();
        if let Err(e) = engine.submit(&specs, &mut Vec::new()) {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
    let callbacks = (jobs / 10 * 10 * 1000) as f64;
    println!("callbacks {callbacks} bytes/callback {:.2}", engine.memory_usage().total() as f64 / callbacks);
    let last = jobs / 10 * 10;
    for work in [None, Some("500")] {
        let start = Instant::now();
        let mut explained = 0;
        for job in [1, last / 2, last] {
            explained += engine.explain(job, work).map_or(0, |e| e.callbacks.len());
        }
        let ms = start.elapsed().as_secs_f64() * 1000.0 / 3.0;
        println!("explain work={work:?}: {ms:.1} ms per call ({explained} callbacks in 3 calls)");
    }
}
