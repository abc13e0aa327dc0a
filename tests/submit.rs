//! Submissions planned job by job: errors take precedence by phase (ids, groups,
//! labels, then each job's body) whatever job they are in, and generated labels fill
//! the smallest free `qubeN` of each group.

use trigwire::{CallbackSpec, Engine, ErrorKind, JobSpec};

fn labelled(label: &str) -> JobSpec {
    JobSpec { label: Some(label.into()), ..JobSpec::default() }
}

fn bad_trigger() -> JobSpec {
    JobSpec { callbacks: vec![CallbackSpec::qube("compelte-job-self", "unblock-self")], ..JobSpec::default() }
}

fn kind_of(jobs: &[JobSpec]) -> (ErrorKind, Option<(usize, u64)>) {
    let mut engine = Engine::default();
    engine.submit(&[labelled("taken")], &mut Vec::new()).expect("valid");
    let before = engine.live_jobs();
    let e = engine.submit(jobs, &mut Vec::new()).expect_err("rejected");
    assert_eq!(engine.live_jobs(), before, "a rejected submission registers nothing");
    (e.kind().clone(), e.job())
}

#[test]
fn the_earliest_phase_wins_whatever_job_it_is_in() {
    let dup_label = JobSpec { pgrp: Some(1), ..labelled("taken") };
    let dup_id = JobSpec { id: Some(1), ..JobSpec::default() };
    let bad_group = JobSpec { pgrp: Some(77), ..JobSpec::default() };
    let parse = |k: &ErrorKind| matches!(k, ErrorKind::Parse(_));

    let (k, job) = kind_of(&[bad_trigger(), dup_label.clone(), bad_group.clone(), dup_id.clone()]);
    assert_eq!((k, job), (ErrorKind::BadJobId, Some((3, 0))));
    let (k, job) = kind_of(&[bad_trigger(), dup_label.clone(), bad_group.clone()]);
    assert_eq!((k, job), (ErrorKind::UnknownGroup, Some((2, 0))));
    let (k, job) = kind_of(&[bad_trigger(), bad_trigger(), dup_label.clone()]);
    assert_eq!((k, job), (ErrorKind::BadLabel, Some((2, 4))));
    let (k, job) = kind_of(&[JobSpec::default(), bad_trigger(), bad_trigger()]);
    assert!(parse(&k), "{k:?}");
    assert_eq!(job, Some((1, 3)), "the first job with a bad body");
}

#[test]
fn generated_labels_take_the_smallest_free_number_in_each_group() {
    let mut engine = Engine::default();
    let out = &mut Vec::new();
    // Group 1 keeps `qube0` and `qube2` live once job 2 (`qube1`) is removed.
    let first = engine.submit(&[JobSpec::default(), JobSpec::default(), JobSpec::default()], out).expect("valid");
    assert_eq!(first.ids, vec![1, 2, 3]);
    engine.remove_job(2, &mut Vec::new()).expect("live");
    let joined = |label: Option<&str>| JobSpec { pgrp: Some(1), label: label.map(Into::into), ..JobSpec::default() };
    let jobs = [joined(None), joined(Some("qube4")), joined(None), joined(None), JobSpec::default()];
    let second = engine.submit(&jobs, out).expect("valid");
    let labels: Vec<&str> = second.ids.iter().map(|&id| engine.label(id).expect("live")).collect();
    assert_eq!(labels, ["qube1", "qube4", "qube3", "qube5", "qube0"], "ids {:?}", second.ids);
}

#[test]
fn thousands_of_unlabelled_jobs_in_one_submission() {
    let mut engine = Engine::default();
    let jobs = vec![JobSpec::default(); 5000];
    let sub = engine.submit(&jobs, &mut Vec::new()).expect("valid");
    assert_eq!(engine.label(sub.ids[4999]), Some("qube4999"));
}
