//! Snapshots: a restored engine answers every later input as the saved one does, and a
//! damaged, truncated, foreign, newer or crafted file is refused with an error that
//! names its byte, never a panic.

mod common;

use common::pair;
use serde_json::Value;
use trigwire::wire::{Mode, Replay};
use trigwire::{CallbackSpec, Config, Engine, ErrorKind};

/// A log touching every part of the state: labels and groups, generated labels,
/// agendas, subjobs, dependencies, a wide circuit (70 atoms), sparse and dense exact
/// tables, one-shot and repeat timers, global callbacks, custom events, maximums,
/// removals and rejected lines.
fn log() -> String {
    let wide: Vec<String> = (100..170).map(|i| format!("complete-job-{i}")).collect();
    let wide = wide.join(" || ");
    let lines = [
        r#"{"callback": {"triggers": "globalrepeat-10-5", "language": "mail", "code": "mail-status"}}"#.to_string(),
        r#"{"submit": [{"label": "up", "agenda": ["1", "2", "3"], "subjobs": 2, "callbacks": [{"triggers": "approved-job-self", "language": "qube", "code": "unblock-self"}]}, {"agenda": ["1", "2", "3"], "dependency": "link-complete-work-up", "callbacks": [{"triggers": "complete-work-up-1 && complete-work-self-1", "language": "python", "code": "print(1)", "maximum": 1}, {"triggers": "dummy-time-self-12 || complete-job-up", "language": "qube", "code": "mail-status"}, {"triggers": "dummy-repeat-self-3-4", "language": "qube", "code": "mail-status", "maximum": 2}]}]}"#.to_string(),
        format!(r#"{{"submit": [{{"callbacks": [{{"triggers": "{wide}", "language": "mail", "code": "mail-status"}}]}}]}}"#),
        r#"{"submit": [{"label": "x", "agenda": ["Seg 1-2", "a", "zz", "q9"], "callbacks": [{"triggers": "complete-work-self-zz or failed-work-self-*", "language": "qube", "code": "unblock-work-self"}, {"triggers": "done-subjob-self-0", "language": "qube", "code": "unblock-subjob-self"}]}]}"#.to_string(),
        r#"{"event": "complete", "type": "work", "job": 1, "extra": "1"}"#.to_string(),
        r#"{"event": "approved", "type": "job", "job": 1}"#.to_string(),
        r#"{"time": 4}"#.to_string(),
        r#"{"event": "complete", "type": "job", "job": 130}"#.to_string(),
        r#"{"event": "complete", "type": "work", "job": 2, "extra": "1"}"#.to_string(),
        r#"{"event": "complete", "type": "work", "job": 1, "extra": "2"}"#.to_string(),
        r#"{"event": "bogus", "type": "job", "job": 1}"#.to_string(),
        r#"{"time": 11}"#.to_string(),
        r#"{"event": "failed", "type": "work", "job": 4, "extra": "a"}"#.to_string(),
        r#"{"event": "complete", "type": "work", "job": 4, "extra": "zz"}"#.to_string(),
        r#"{"event": "complete", "type": "subjob", "job": 4, "extra": 0}"#.to_string(),
        r#"{"time": 3}"#.to_string(),
        r#"{"remove": 1}"#.to_string(),
        r#"{"submit": [{"label": "up", "callbacks": [{"triggers": "complete-job-up", "language": "qube", "code": "mail-status"}]}, {}]}"#.to_string(),
        r#"{"event": "complete", "type": "job", "job": 5}"#.to_string(),
        r#"{"callback": {"triggers": "complete-job-5 && globaltime-30", "language": "mail", "code": "mail-status"}}"#.to_string(),
        r#"{"time": 40}"#.to_string(),
        r#"{"remove": 3}"#.to_string(),
        r#"{"event": "complete", "type": "job", "job": 150}"#.to_string(),
        r#"{"remove": 9}"#.to_string(),
        r#"{"event": "approved", "type": "job", "job": 2}"#.to_string(),
        r#"{"time": 47}"#.to_string(),
    ];
    lines.iter().map(|l| format!("{l}\n")).collect()
}

fn engine(retroactive: bool) -> Engine {
    let mut engine = Engine::new(Config { retroactive, start_time: 1, ..Config::default() });
    engine.register_event_name("approved").expect("new name");
    engine.add_universal(&CallbackSpec::qube("complete-job-self || approved-job-self", "mail-status")).expect("valid");
    engine
}

fn values(out: &trigwire::wire::Output, offset: u64) -> Vec<Value> {
    out.lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).expect("JSON");
            if let Some(n) = v.get("line").and_then(Value::as_u64) {
                v["line"] = (n + offset).into();
            }
            v
        })
        .collect()
}

fn save(engine: &Engine) -> Vec<u8> {
    let mut bytes = Vec::new();
    engine.save(&mut bytes).expect("saving to memory");
    bytes
}

/// The engine after the first `cut` lines of the log.
fn after(retroactive: bool, cut: usize) -> Engine {
    let text = log();
    let head: String = text.lines().take(cut).map(|l| format!("{l}\n")).collect();
    let mut replay = Replay::new(engine(retroactive));
    replay.run_bytes(head.as_bytes(), Mode::OneByOne);
    replay.engine().clone()
}

#[test]
fn a_restored_engine_answers_as_the_saved_one_at_every_cut() {
    let text = log();
    let lines: Vec<&str> = text.lines().collect();
    for retroactive in [false, true] {
        for mode in [Mode::OneByOne, Mode::Batch(3)] {
            let whole = values(&Replay::new(engine(retroactive)).run_bytes(text.as_bytes(), mode), 0);
            assert!(whole.iter().filter(|v| v.get("fired").is_some()).count() > 10, "the log fires");
            for cut in 0..=lines.len() {
                let head: String = lines[..cut].iter().map(|l| format!("{l}\n")).collect();
                let tail: String = lines[cut..].iter().map(|l| format!("{l}\n")).collect();
                let mut first = Replay::new(engine(retroactive));
                let mut got = values(&first.run_bytes(head.as_bytes(), mode), 0);
                let bytes = save(first.engine());
                let restored = Engine::restore(&bytes[..]).expect("restores");
                assert_eq!(save(&restored), bytes, "a restored engine saves the same bytes (cut {cut})");
                got.extend(values(&Replay::new(restored).run_bytes(tail.as_bytes(), mode), cut as u64));
                assert_eq!(got, whole, "retroactive {retroactive}, {mode:?}, cut after line {cut}");
            }
        }
    }
}

#[test]
fn save_to_path_replaces_the_file_atomically() {
    let dir = std::env::temp_dir().join(format!("trigwire-snapshot-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("state.twst");
    let small = after(false, 2);
    small.save_to_path(&path).expect("saves");
    after(true, 12).save_to_path(&path).expect("saves over it");
    let back = Engine::restore_from_path(&path).expect("restores");
    assert_eq!(save(&back), save(&after(true, 12)));
    let left: Vec<_> = std::fs::read_dir(&dir).expect("dir").map(|e| e.expect("entry").file_name()).collect();
    assert_eq!(left.len(), 1, "no temporary file is left behind: {left:?}");
    let missing = Engine::restore_from_path(dir.join("absent")).expect_err("no file");
    assert_eq!(missing.kind(), &ErrorKind::Io);
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

fn offset_of(e: &trigwire::Error) -> u64 {
    match e.kind() {
        ErrorKind::Snapshot { offset } => *offset,
        other => panic!("expected a snapshot error, got {other:?}: {e}"),
    }
}

#[test]
fn a_truncated_snapshot_is_refused_at_every_length() {
    let bytes = save(&after(true, 12));
    assert!(bytes.len() > 500, "a snapshot of {} bytes", bytes.len());
    for n in 0..bytes.len() {
        let e = Engine::restore(&bytes[..n]).expect_err("truncated");
        assert_eq!(offset_of(&e), n as u64, "cut at {n}: {e}");
        assert!(e.message().contains("early"), "{e}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    let e = Engine::restore(&longer[..]).expect_err("trailing byte");
    assert_eq!(offset_of(&e), bytes.len() as u64);
}

#[test]
fn every_flipped_bit_is_caught() {
    let bytes = save(&after(true, 12));
    for at in 0..bytes.len() {
        for bit in [0, 3, 7] {
            let mut bad = bytes.clone();
            bad[at] ^= 1 << bit;
            let e = Engine::restore(&bad[..]).expect_err("a flipped bit");
            assert!(offset_of(&e) <= bytes.len() as u64, "{e}");
        }
    }
}

#[test]
fn foreign_and_newer_files_are_refused_by_name() {
    let bytes = save(&Engine::default());
    let mut foreign = bytes.clone();
    foreign[..8].copy_from_slice(b"PK\x03\x04abcd");
    let e = Engine::restore(&foreign[..]).expect_err("foreign");
    assert_eq!(offset_of(&e), 0);
    assert!(e.message().contains("not a trigwire snapshot"), "{e}");
    let mut newer = bytes.clone();
    newer[8..12].copy_from_slice(&2u32.to_le_bytes());
    let e = Engine::restore(&newer[..]).expect_err("newer");
    assert_eq!(offset_of(&e), 8);
    assert!(e.message().contains("format version 2 is a newer version"), "{e}");
    let e = Engine::restore(&b"{\"submit\": []}\n"[..]).expect_err("a log is not a snapshot");
    assert_eq!(offset_of(&e), 0);
}

/// The sections of a snapshot: (tag offset, payload range).
fn sections(bytes: &[u8]) -> Vec<(usize, std::ops::Range<usize>)> {
    let mut at = 12;
    let mut out = Vec::new();
    while at < bytes.len() {
        let len = u64::from_le_bytes(bytes[at + 4..at + 12].try_into().unwrap()) as usize;
        out.push((at, at + 16..at + 16 + len));
        at += 16 + len;
    }
    out
}

/// Rewrites each section's checksum to match its payload: a crafted file.
fn reseal(bytes: &mut [u8]) {
    for (at, payload) in sections(bytes) {
        let crc = crc32(&bytes[payload]);
        bytes[at + 12..at + 16].copy_from_slice(&crc.to_le_bytes());
    }
}

/// CRC-32 (IEEE), bit by bit: the test's own, independent of the crate's.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[test]
fn lying_lengths_are_refused_without_allocating_them() {
    let bytes = save(&after(false, 12));
    for (at, payload) in sections(&bytes) {
        // The section's own length.
        let mut bad = bytes.clone();
        bad[at + 4..at + 12].copy_from_slice(&u64::MAX.to_le_bytes());
        let e = Engine::restore(&bad[..]).expect_err("a section longer than the file");
        assert!(offset_of(&e) >= at as u64, "{e}");
        // The first count inside it, resealed so that the checksum holds.
        if payload.len() >= 8 {
            let mut bad = bytes.clone();
            bad[payload.start..payload.start + 8].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
            reseal(&mut bad);
            let e = Engine::restore(&bad[..]).expect_err("a count larger than the section");
            assert!(offset_of(&e) >= payload.start as u64, "{e}");
        }
    }
}

/// A crafted file (every checksum valid) with any one byte changed either is refused or
/// restores an engine that runs the rest of the log without panicking.
#[test]
fn crafted_snapshots_never_panic() {
    let text = log();
    let tail: String = text.lines().skip(12).map(|l| format!("{l}\n")).collect();
    let bytes = save(&after(true, 12));
    let (mut refused, mut restored) = (0, 0);
    for (_, payload) in sections(&bytes) {
        for at in payload {
            for value in [0xff, bytes[at].wrapping_add(1)] {
                let mut bad = bytes.clone();
                bad[at] = value;
                reseal(&mut bad);
                match Engine::restore(&bad[..]) {
                    Err(e) => {
                        offset_of(&e);
                        refused += 1;
                    }
                    Ok(engine) => {
                        Replay::new(engine).run_bytes(tail.as_bytes(), Mode::Batch(4));
                        restored += 1;
                    }
                }
            }
        }
    }
    assert!(refused > 1000 && restored > 50, "refused {refused}, restored {restored}");
}

#[test]
fn stats_are_not_state() {
    let engine = after(false, 12);
    assert!(engine.stats().postings_touched > 0);
    let restored = Engine::restore(&save(&engine)[..]).expect("restores");
    assert_eq!(restored.stats(), trigwire::Stats::default());
    assert_eq!(restored.now(), engine.now());
    assert_eq!(restored.live_jobs(), engine.live_jobs());
    assert_eq!(restored.label(4), engine.label(4));
}

/// Writes the seeds of the `restore` fuzz target (small snapshots):
/// `cargo test --test snapshot -- --ignored write_restore_seeds`.
#[test]
#[ignore]
fn write_restore_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/restore");
    std::fs::create_dir_all(&dir).expect("seeds dir");
    let lines = log().lines().count();
    let seeds = [
        ("empty", Engine::default()),
        ("after-2-lines", after(false, 2)),
        ("after-9-lines-retroactive", after(true, 9)),
        ("after-all-lines", after(false, lines)),
    ];
    for (name, engine) in seeds {
        std::fs::write(dir.join(format!("{name}.state")), save(&engine)).expect("write seed");
    }
}

/// After removals that swept the index (free tables, a rebuilt arena, chunks of
/// callback states freed), a restored engine still answers as the saved one.
#[test]
fn a_restored_engine_after_sweeps_answers_the_same() {
    use trigwire::{Event, EventName};
    let mut engine = Engine::default();
    let mut out = Vec::new();
    for i in 0..6 {
        engine.submit(&pair(i, 900), &mut out).expect("valid");
    }
    for id in [2, 4, 6, 8, 1] {
        engine.remove_job(id, &mut out).expect("live");
    }
    assert!(engine.stats().sweeps > 0, "the removals swept the index");
    let mut restored = Engine::restore(&save(&engine)[..]).expect("restores");
    let script = |e: &mut Engine| {
        let mut fired = Vec::new();
        e.submit(&pair(6, 300), &mut fired).expect("valid");
        for f in (1..=900).step_by(7) {
            for job in [3, 5, 9, 10, 11, 12, 13, 14] {
                let _ = e.process(&Event::work(EventName::Complete, job, &f.to_string()), &mut fired);
            }
        }
        e.remove_job(10, &mut fired).expect("live");
        e.remove_job(3, &mut fired).expect("live");
        e.submit(&pair(7, 50), &mut fired).expect("valid");
        for f in 1..=50 {
            for job in [15, 16, 9] {
                let _ = e.process(&Event::work(EventName::Complete, job, &f.to_string()), &mut fired);
            }
        }
        fired
    };
    let (a, b) = (script(&mut engine), script(&mut restored));
    assert!(a.len() > 300, "the script fires ({} firings)", a.len());
    assert_eq!(a, b);
    assert_eq!(save(&engine), save(&restored));
}
