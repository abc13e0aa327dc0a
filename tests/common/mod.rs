//! Farms that several test files build.
#![allow(dead_code)]

use trigwire::{CallbackSpec, JobSpec};

/// A job labelled `up{i}` with `frames` agenda items, and a downstream job whose frame
/// f waits on `up{i}`'s frame f and its own.
pub fn pair(i: usize, frames: usize) -> Vec<JobSpec> {
    let agenda: Vec<String> = (1..=frames).map(|f| f.to_string()).collect();
    let callbacks = agenda
        .iter()
        .map(|f| CallbackSpec::qube(&format!("complete-work-up{i}-{f} && complete-work-self-{f}"), "mail-status"))
        .collect();
    vec![
        JobSpec { label: Some(format!("up{i}")), agenda: agenda.clone(), ..JobSpec::default() },
        JobSpec { agenda, callbacks, ..JobSpec::default() },
    ]
}
