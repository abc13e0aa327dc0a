//! The data-driven conformance suite: every directory under `tests/data/` is a case
//! with a farm log (`log.jsonl`), the expected output (`expected.jsonl`) and optional
//! options (`config.json`: `{"retroactive": bool, "start_time": T, "event_names": [..],
//! "limits": {"subjobs": N, "submission_instances": N, "submission_callbacks": N,
//! "submission_atoms": N, "line_bytes": N}, "refire": "each-match"|"on-rise",
//! "catch_up": "all"|"once", "ticks_per_move": N, "facts": N}`). Each case
//! runs through every execution mode: one event at a time, batches of 1, 3 and 4096
//! events, and the channel pipeline (whose outcomes are compared with `Engine::apply`
//! one command at a time, the memory figures of metrics aside), and cut in two at
//! pseudo-random lines with the engine saved and restored in between (see
//! [`cut_and_restored`]). The reference replays each case too, explain and metrics
//! lines included. Adding a case is adding a directory; `UPDATE_EXPECT=1 cargo test
//! --test conformance` writes the expected output of new or changed cases.

use std::path::{Path, PathBuf};

use serde_json::Value;
use trigwire::pipeline::{Pipeline, PipelineConfig};
use trigwire::wire::{decode, Mode, Replay};
use trigwire::{Command, Config, Engine, Outcome};
use trigwire_tools::Reference;

const MODES: [Mode; 4] = [Mode::OneByOne, Mode::Batch(1), Mode::Batch(3), Mode::Batch(4096)];

/// The pipeline squeezed so that every channel fills and every answer with more than
/// one outcome is cut into pieces, and at its defaults.
const SQUEEZED: PipelineConfig = PipelineConfig { capacity: 1, batch: 3, output_capacity: 1, chunk: 1 };

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/data exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.join("log.jsonl").exists())
        .collect();
    dirs.sort();
    dirs
}

fn engine_for(case: &Path) -> (Config, Vec<String>) {
    let mut config = Config::default();
    let mut names = Vec::new();
    if let Ok(text) = std::fs::read_to_string(case.join("config.json")) {
        let v: Value = serde_json::from_str(&text).expect("config.json is JSON");
        config.retroactive = v["retroactive"].as_bool().unwrap_or(false);
        config.start_time = v["start_time"].as_u64().unwrap_or(0);
        let limits = &mut config.limits;
        for (key, field) in [
            ("subjobs", &mut limits.subjobs),
            ("submission_instances", &mut limits.submission_instances),
            ("submission_callbacks", &mut limits.submission_callbacks),
            ("submission_atoms", &mut limits.submission_atoms),
            ("line_bytes", &mut limits.line_bytes),
        ] {
            if let Some(n) = v["limits"][key].as_u64() {
                *field = n;
            }
        }
        config.refire = match v["refire"].as_str() {
            None | Some("each-match") => trigwire::Refire::EachMatch,
            Some("on-rise") => trigwire::Refire::OnRise,
            Some(other) => panic!("unknown refire `{other}` in {}", case.display()),
        };
        config.catch_up = match v["catch_up"].as_str() {
            None | Some("all") => trigwire::CatchUp::All,
            Some("once") => trigwire::CatchUp::Once,
            Some(other) => panic!("unknown catch_up `{other}` in {}", case.display()),
        };
        if let Some(limit) = v["ticks_per_move"].as_u64() {
            config.limits.ticks_per_move = limit;
        }
        if let Some(cap) = v["facts"].as_u64() {
            config.limits.facts = cap;
        }
        if let Some(list) = v["event_names"].as_array() {
            names = list.iter().map(|n| n.as_str().expect("names are strings").to_string()).collect();
        }
    }
    (config, names)
}

fn compiled(case: &Path) -> Engine {
    let (config, names) = engine_for(case);
    let mut engine = Engine::new(config);
    for n in &names {
        engine.register_event_name(n).expect("valid custom name");
    }
    engine
}

fn replay_compiled(case: &Path, log: &[u8], mode: Mode) -> Vec<Value> {
    let engine = compiled(case);
    let line_bytes = engine.limits().line_bytes;
    let mut replay = Replay::new(engine);
    replay.limit_lines(line_bytes);
    values(&replay.run_bytes(log, mode))
}

/// The log replayed in two runs: the first `cut` lines, then the engine saved to bytes
/// and restored into a fresh replay of the rest, whose line numbers are shifted back by
/// `cut` (each run counts its own lines, as `trigwire run --load` does).
fn cut_and_restored(case: &Path, log: &[u8], cut: usize, mode: Mode) -> Vec<Value> {
    let body = log.strip_suffix(b"\n").unwrap_or(log);
    let lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    let cut = cut.min(lines.len());
    let join = |part: &[&[u8]]| part.iter().flat_map(|l| l.iter().copied().chain([b'\n'])).collect::<Vec<u8>>();
    let engine = compiled(case);
    let line_bytes = engine.limits().line_bytes;
    let mut first = Replay::new(engine);
    first.limit_lines(line_bytes);
    let mut got = values(&first.run_bytes(&join(&lines[..cut]), mode));
    let mut bytes = Vec::new();
    first.engine().save(&mut bytes).expect("saving to memory");
    let restored = Engine::restore(&bytes[..]).expect("a saved engine restores");
    assert_eq!(restored.limits(), first.engine().limits(), "the limits are state");
    let mut second = Replay::new(restored);
    second.limit_lines(line_bytes);
    for mut v in values(&second.run_bytes(&join(&lines[cut..]), mode)) {
        if let Some(n) = v.get("line").and_then(Value::as_u64) {
            v["line"] = (n + cut as u64).into();
        }
        got.push(v);
    }
    got
}

/// Cut points for a case: three, spread pseudo-randomly over its lines by its name.
fn cuts(name: &str, lines: usize) -> [usize; 3] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let n = lines as u64 + 1;
    [h % n, (h >> 21) % n, (h >> 42) % n].map(|c| c as usize)
}

/// The log's commands (blank and undecodable lines left out) through the pipeline from
/// one producer: each command's outcomes, in send order.
fn through_pipeline(case: &Path, commands: &[Command], config: PipelineConfig) -> Vec<Vec<Outcome>> {
    let (mut producer, outcomes, pipeline) = Pipeline::start(compiled(case), config);
    let to_send = commands.to_vec();
    let sender = std::thread::spawn(move || {
        for c in to_send {
            producer.send(c).expect("pipeline open");
        }
    });
    let mut got = vec![Vec::new()];
    for answers in &outcomes {
        for answer in answers.iter() {
            assert_eq!(answer.ticket.seq() as usize, got.len() - 1, "answers in send order");
            got.last_mut().expect("one open answer").extend_from_slice(answer.outcomes);
            if answer.complete {
                got.push(Vec::new());
            }
        }
    }
    sender.join().expect("producer");
    pipeline.join().expect("worker");
    got.pop();
    got
}

/// What `Engine::apply` gives for each command, a rejection as its one outcome.
fn one_by_one(case: &Path, commands: &[Command]) -> Vec<Vec<Outcome>> {
    let mut engine = compiled(case);
    commands
        .iter()
        .map(|c| {
            let mut out = Vec::new();
            if let Err(e) = engine.apply(c, &mut out) {
                out.push(Outcome::Rejected(e));
            }
            out
        })
        .collect()
}

fn decode_log(log: &[u8]) -> Vec<Command> {
    String::from_utf8_lossy(log).lines().filter(|l| !l.trim().is_empty()).filter_map(|l| decode(l).ok()).collect()
}

fn replay_reference(case: &Path, log: &[u8]) -> Vec<Value> {
    let (config, names) = engine_for(case);
    let mut engine = Reference::new(config);
    for n in &names {
        engine.register_event_name(n).expect("valid custom name");
    }
    let mut replay = Replay::new(engine);
    replay.limit_lines(config.limits.line_bytes);
    values(&replay.run_bytes(log, Mode::OneByOne))
}

fn render(lines: &[Value]) -> String {
    lines.iter().map(|v| format!("{v}\n")).collect()
}

#[test]
fn conformance() {
    let cases = cases();
    assert!(cases.len() >= 20, "expected the conformance cases under tests/data");
    let bless = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut failures = Vec::new();
    let mut piped = (0, 0);
    for case in &cases {
        let log = std::fs::read(case.join("log.jsonl")).expect("log.jsonl");
        let got = replay_compiled(case, &log, Mode::OneByOne);
        let expected_path = case.join("expected.jsonl");
        if bless {
            std::fs::write(&expected_path, render(&got)).expect("write expected.jsonl");
        }
        let expected: Vec<Value> = std::fs::read_to_string(&expected_path)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("expected.jsonl holds JSON lines"))
            .collect();
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        for mode in MODES {
            let got = replay_compiled(case, &log, mode);
            if got != expected {
                failures.push(format!(
                    "{name} ({mode:?}):\n--- expected\n{}--- got\n{}",
                    render(&expected),
                    render(&got)
                ));
            }
        }
        let lines = log.iter().filter(|&&b| b == b'\n').count();
        for (cut, mode) in cuts(&name, lines).into_iter().zip([Mode::OneByOne, Mode::Batch(3), Mode::Batch(4096)]) {
            let got = cut_and_restored(case, &log, cut, mode);
            if got != expected {
                failures.push(format!(
                    "{name} (saved and restored after line {cut}, {mode:?}):\n--- expected\n{}--- got\n{}",
                    render(&expected),
                    render(&got)
                ));
            }
        }
        let commands = decode_log(&log);
        let expected_outcomes = one_by_one(case, &commands);
        piped.0 += commands.len();
        piped.1 += expected_outcomes.iter().map(Vec::len).sum::<usize>();
        let expected_outcomes = without_memory(expected_outcomes);
        for config in [SQUEEZED, PipelineConfig::default()] {
            if without_memory(through_pipeline(case, &commands, config)) != expected_outcomes {
                failures.push(format!("{name} (pipeline {config:?}): outcomes differ from Engine::apply"));
            }
        }
        let reference = replay_reference(case, &log);
        if reference != expected {
            failures.push(format!(
                "{name} (reference):\n--- expected\n{}--- got\n{}",
                render(&expected),
                render(&reference)
            ));
        }
    }
    assert!(piped.0 > 200 && piped.1 > 200, "the pipeline mode saw (commands, outcomes) {piped:?}");
    assert!(failures.is_empty(), "{} failing:\n{}", failures.len(), failures.join("\n"));
}

/// The outcomes with the memory figures of metrics zeroed: they count the scratch
/// buffers of the path that applied the commands (a batch's buffers are larger), which
/// is no part of what the modes must agree on. The counters are compared.
fn without_memory(mut outcomes: Vec<Vec<Outcome>>) -> Vec<Vec<Outcome>> {
    for o in outcomes.iter_mut().flatten() {
        if let Outcome::Metrics(m) = o {
            m.memory = trigwire::MemoryUsage::default();
        }
    }
    outcomes
}

/// The output lines of a replay as JSON values.
fn values(out: &trigwire::wire::Output) -> Vec<serde_json::Value> {
    out.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
}
