//! Runs the built `trigwire` binary as a user would.

mod common;

use common::{text, trigwire};
use std::io::Write;
use std::process::{Command, Output, Stdio};

#[test]
fn demo_releases_in_order_and_nothing_early() {
    let out = trigwire(&["demo"], "");
    assert!(out.status.success());
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{}", lines.join("\n")))
    };
    for f in 1..=4 {
        assert!(at(&format!("ribgen frame {f} complete")) < at(&format!("render frame {f} released")));
        assert!(at(&format!("render frame {f} released")) < at(&format!("render frame {f} complete")));
        for job in ["composite", "preview"] {
            assert!(at(&format!("ribgen frame {f} complete")) < at(&format!("{job} frame {f} released")));
            assert!(at(&format!("render frame {f} complete")) < at(&format!("{job} frame {f} released")));
            assert!(at(&format!("{job} frame {f} released")) < at(&format!("{job} frame {f} complete")));
        }
        assert!(at(&format!("composite frame {f} complete")) < at(&format!("preview frame {f} released again")));
    }
    assert!(at("composite complete") < at("dailies released"));
    assert!(at("dailies released") < at("dailies frame 1 complete"));
    assert!(at("archive released") < at("archive frame all complete"));
    assert!(
        lines[..at("archive released")].iter().all(|l| !l.starts_with("[t=20]")),
        "the release is the first thing at t=20"
    );
    assert!(lines[at("archive released")].starts_with("[t=20]"), "the delayed start happens at t=20");
}

#[test]
fn check_prints_the_circuit_or_the_error() {
    let ok = trigwire(&["check", "complete-work-a-5 and complete-work-b-5"], "");
    assert!(ok.status.success());
    assert_eq!(
        text(&ok.stdout),
        "canonical: complete-work-a-5 && complete-work-b-5\n\
         circuit: AND of 2 latch bit(s): true when all are set\n  bit0: complete-work-a-5\n  bit1: complete-work-b-5\n"
    );
    let bad = trigwire(&["check", "complete-job-self &&"], "");
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad.stderr).contains("missing operand"), "{}", text(&bad.stderr));
    assert!(text(&bad.stderr).contains('^'));
}

#[test]
fn run_reports_firings_errors_and_exit_status() {
    let log = concat!(
        r#"{"submit": [{"label": "a"}, {"callbacks": [{"triggers": "complete-job-a", "code": "unblock-self"}]}]}"#,
        "\n",
        r#"{"submit": [{"callbacks": [{"triggers": "complete-job-a &&", "code": "unblock-self"}]}]}"#,
        "\n",
        r#"{"event": "complete", "type": "job", "job": 1}"#,
        "\n"
    );
    for args in [&["run"][..], &["run", "-"], &["run", "--batch", "2"]] {
        let out = trigwire(args, log);
        assert_eq!(out.status.code(), Some(1), "a rejected line makes the exit status 1");
        let lines: Vec<serde_json::Value> =
            text(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1]["line"], 2);
        assert!(lines[1]["error"]["span"].is_array());
        assert_eq!(lines[2]["fired"]["job"], 2);
        assert!(text(&out.stderr).contains("line 2:"), "stderr renders the error: {}", text(&out.stderr));
    }
    let clean = trigwire(&["run"], r#"{"time": 5}"#);
    assert!(clean.status.success());
}

#[test]
fn run_reads_a_file_and_universal_callbacks() {
    let dir = std::env::temp_dir().join(format!("trigwire-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("callbacks.conf"),
        "# site callbacks\nmailme.qcb = failed-work-self-*  # every failed frame\n",
    )
    .unwrap();
    std::fs::write(dir.join("mailme.qcb"), "mail-status\n").unwrap();
    let log = dir.join("farm.jsonl");
    std::fs::write(
        &log,
        "{\"submit\": [{\"agenda\": [1, 2]}]}\n{\"event\": \"failed\", \"type\": \"work\", \"job\": 1, \"extra\": 2}\n",
    )
    .unwrap();
    let conf = dir.join("callbacks.conf");
    let out = trigwire(&["run", log.to_str().unwrap(), "--callbacks-conf", conf.to_str().unwrap()], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains(r#""code":"mail-status""#) && stdout.contains(r#""line":2"#), "{stdout}");
    // A bad line is reported with its file and line and skipped; the rest still loads.
    std::fs::write(dir.join("callbacks.conf"), "mailme.qcb failed-work-self-*\nmailme.qcb = failed-work-self-*\n")
        .unwrap();
    let skipped = trigwire(&["run", log.to_str().unwrap(), "--callbacks-conf", conf.to_str().unwrap()], "");
    assert!(skipped.status.success(), "{}", text(&skipped.stderr));
    assert!(text(&skipped.stderr).contains("callbacks.conf:1: missing `=`"), "{}", text(&skipped.stderr));
    assert!(text(&skipped.stdout).contains(r#""code":"mail-status""#), "{}", text(&skipped.stdout));
    // Nothing readable at all is an error.
    let gone = dir.join("gone.conf");
    let bad = trigwire(&["run", log.to_str().unwrap(), "--callbacks-conf", gone.to_str().unwrap()], "");
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("cannot read it"), "{}", text(&bad.stderr));
    std::fs::remove_dir_all(&dir).ok();
}

/// `trigwire run -` answers each line before it waits for the next: the test writes one
/// line, reads its answer, and only then writes the next. With `--batch`, a partial
/// batch is processed when the input stalls.
#[test]
fn run_answers_each_line_before_reading_the_next() {
    use std::io::BufRead;
    use std::sync::mpsc;
    use std::time::Duration;
    let steps = [
        (
            r#"{"submit": [{"label": "a"}, {"callbacks": [{"triggers": "complete-job-a", "code": "unblock-self"}]}]}"#,
            r#"{"line":1,"submitted":[1,2],"pgrp":1}"#,
        ),
        (r#"{"event": "complete", "type": "job", "job": 1}"#, r#""fired":{"job":2,"callback":0"#),
        ("not json", r#"{"line":3,"error":{"message":"bad JSON"#),
    ];
    for args in [&["run", "-"][..], &["run", "-", "--batch", "4096"]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_trigwire"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the binary runs");
        let mut stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (send, answers) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                if send.send(line.expect("UTF-8 output")).is_err() {
                    break;
                }
            }
        });
        for (input, answer) in steps {
            writeln!(stdin, "{input}").expect("write a line");
            stdin.flush().expect("flush the line");
            let got = answers
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("{args:?}: no answer to {input} while the input stays open"));
            assert!(got.contains(answer), "{args:?}: {input} gave {got}");
        }
        drop(stdin);
        assert_eq!(child.wait().expect("the binary finishes").code(), Some(1), "line 3 was rejected");
        reader.join().expect("the reader finishes");
        assert!(answers.try_recv().is_err(), "nothing more after the last answer");
    }
}

/// The options of a conformance case (`config.json`) as `trigwire run` flags.
fn case_flags(case: &std::path::Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(case.join("config.json")) else { return Vec::new() };
    let v: serde_json::Value = serde_json::from_str(&text).expect("config.json is JSON");
    let mut flags = Vec::new();
    if v["retroactive"].as_bool() == Some(true) {
        flags.push("--retroactive".to_string());
    }
    if let Some(t) = v["start_time"].as_u64() {
        flags.extend(["--start-time".to_string(), t.to_string()]);
    }
    for n in v["event_names"].as_array().into_iter().flatten() {
        flags.extend(["--event-name".to_string(), n.as_str().expect("a name").to_string()]);
    }
    flags
}

/// A run's stdout lines with their line numbers shifted by `by`.
fn shifted(stdout: &[u8], by: u64) -> Vec<serde_json::Value> {
    text(stdout)
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).expect("JSON lines");
            if let Some(n) = v.get("line").and_then(serde_json::Value::as_u64) {
                v["line"] = (n + by).into();
            }
            v
        })
        .collect()
}

/// A log split anywhere and replayed in two runs, the first saving its state with
/// `--save` and the second starting from it with `--load`, prints what one run prints
/// (each run numbering its own lines), with the same exit status.
#[test]
fn a_log_split_anywhere_replays_in_two_runs_as_in_one() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data");
    let dir = std::env::temp_dir().join(format!("trigwire-cli-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let state = dir.join("state");
    let state = state.to_str().expect("UTF-8 path");
    let mut splits = 0;
    for name in [
        "clock_repeat_and_backwards",
        "custom_event_names",
        "retroactive_releases_late_submissions",
        "removal_and_unknown_jobs",
        "time_as_farms_keep_it",
        "spec7_3_and_per_frame",
    ] {
        let case = root.join(name);
        let log = std::fs::read_to_string(case.join("log.jsonl")).expect("log.jsonl");
        let flags = case_flags(&case);
        let mut args: Vec<&str> = vec!["run"];
        args.extend(flags.iter().map(String::as_str));
        let whole = trigwire(&args, &log);
        let lines: Vec<&str> = log.lines().collect();
        for cut in 0..=lines.len() {
            let head: String = lines[..cut].iter().map(|l| format!("{l}\n")).collect();
            let tail: String = lines[cut..].iter().map(|l| format!("{l}\n")).collect();
            let mut first_args = args.clone();
            first_args.extend(["--save", state]);
            let first = trigwire(&first_args, &head);
            assert!(first.status.code().is_some_and(|c| c < 2), "{name} cut {cut}: {}", text(&first.stderr));
            let second = trigwire(&["run", "--load", state], &tail);
            let mut got = shifted(&first.stdout, 0);
            got.extend(shifted(&second.stdout, cut as u64));
            assert_eq!(got, shifted(&whole.stdout, 0), "{name} split after line {cut}");
            let rejected = |o: &Output| o.status.code() == Some(1);
            assert_eq!(rejected(&first) || rejected(&second), rejected(&whole), "{name} cut {cut}: exit status");
            splits += 1;
        }
    }
    assert!(splits > 40, "{splits} splits tried");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn a_bad_state_file_is_refused_with_its_byte() {
    let dir = std::env::temp_dir().join(format!("trigwire-cli-bad-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let state = dir.join("state");
    std::fs::write(&state, b"TRIGWIRE\x01\x00\x00\x00CONF").expect("write");
    let out = trigwire(&["run", "--load", state.to_str().expect("UTF-8")], "");
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("cannot load") && err.contains("snapshot byte 16"), "{err}");
    let out = trigwire(&["run", "--load", state.to_str().expect("UTF-8"), "--retroactive"], "");
    assert_eq!(out.status.code(), Some(2), "the state holds the options: {}", text(&out.stderr));
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn demo_says_which_event_completed_each_release() {
    let out = trigwire(&["demo"], "");
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    let releases: Vec<&str> = stdout.lines().filter(|l| l.contains(" released")).collect();
    assert_eq!(releases.len(), 18, "{stdout}");
    for line in &releases {
        assert!(line.contains(", fired because "), "a release without its cause: {line}");
    }
    for expected in [
        "render frame 3 released, fired because complete-work-ribgen-3 (trigger complete-work-ribgen-3)",
        "composite frame 2 released, fired because complete-work-render-2 \
         (trigger complete-work-ribgen-2 && complete-work-render-2)",
        "preview frame 4 released again, already running or done, fired because complete-work-composite-4",
        "dailies released, fired because complete-job-composite (trigger complete-job-composite)",
        "archive released, fired because the clock reached 20 (trigger dummy-time-self-20)",
    ] {
        assert!(stdout.contains(expected), "no {expected:?} in:\n{stdout}");
    }
}

/// A small farm log: two labelled jobs in one group, a frame-level and a job-level
/// callback, a clock move, and one rejected line.
const TIMELINE_LOG: &str = r#"{"submit": [{"name": "ribgen", "label": "ribgen", "agenda": ["1", "2"]}, {"name": "render", "label": "render", "status": "blocked", "agenda": ["1", "2"], "callbacks": [{"triggers": "complete-work-ribgen-*", "language": "qube", "code": "unblock-work-self"}, {"triggers": "complete-job-ribgen", "language": "qube", "code": "unblock-self"}]}]}
{"event": "complete", "type": "work", "job": 1, "extra": "1"}
{"event": "running", "type": "work", "job": 1, "extra": "2"}
{"event": "compelte", "type": "work", "job": 1, "extra": "2"}
{"event": "complete", "type": "work", "job": 1, "extra": "2"}
{"time": 100}
{"event": "complete", "type": "job", "job": 1}
"#;

fn timeline_page(dir: &std::path::Path, name: &str, extra: &[&str]) -> (Output, String) {
    let page = dir.join(name);
    let mut args = vec!["run", "-", "--timeline", page.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    let out = trigwire(&args, TIMELINE_LOG);
    let html = std::fs::read_to_string(&page).expect("the page was written");
    (out, html)
}

#[test]
fn run_timeline_writes_a_page_and_changes_no_output() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-timeline");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let plain = trigwire(&["run", "-"], TIMELINE_LOG);
    let (out, html) = timeline_page(&dir, "one.html", &[]);
    assert_eq!(out.status.code(), Some(1), "one line is rejected");
    assert_eq!(text(&out.stdout), text(&plain.stdout), "--timeline changes nothing on stdout");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains(" src=") && !html.contains("<link") && !html.contains("url(http"), "nothing from elsewhere");
    assert!(!html.contains("@@DATA@@") && !html.contains("@@TITLE@@"), "placeholders filled");
    let start = html.find("id=\"timeline-data\">").expect("the data element") + "id=\"timeline-data\">".len();
    let end = start + html[start..].find("</script>").expect("its end");
    let data: serde_json::Value = serde_json::from_str(&html[start..end]).expect("the data is JSON");
    assert_eq!(data["axis"], "commands in log order");
    assert_eq!((data["commands"].as_u64(), data["rejected"].as_u64()), (Some(7), Some(1)));
    assert_eq!(data["clock"], serde_json::json!([[6, 100]]));
    assert_eq!(data["edges"], serde_json::json!([[0, 1, "complete-job, complete-work"]]));
    // Each firing: [time, job, item, callback, count, code, cause].
    assert_eq!(
        data["fired"],
        serde_json::json!([
            [2, 1, 0, 0, 1, "unblock-work-self", "complete-work-ribgen-1"],
            [5, 1, 1, 0, 2, "unblock-work-self", "complete-work-ribgen-2"],
            [7, 1, -1, 1, 1, "unblock-self", "complete-job-ribgen"],
        ])
    );
    // States as [time, state, ...] (0 waiting, 1 blocked, 2 running, 3 complete): ribgen's
    // items follow their events; render's wait, held blocked by their job until t=7.
    assert_eq!(data["jobs"][0]["items"], serde_json::json!([[1, 0, 2, 3], [1, 0, 3, 2, 5, 3]]));
    assert_eq!(data["jobs"][1]["s"], serde_json::json!([1, 1, 7, 0]));
    assert_eq!(data["jobs"][1]["items"], serde_json::json!([[1, 1, 7, 0], [1, 1, 7, 0]]));

    // The same page whatever the batch size: the recorder sees the same outcomes.
    for batch in ["1", "2", "64"] {
        let (_, batched) = timeline_page(&dir, &format!("batch{batch}.html"), &["--batch", batch]);
        assert_eq!(batched, html, "--batch {batch} drew another page");
    }
}

#[test]
fn run_timeline_to_an_unwritable_path_fails_before_replaying() {
    let out = trigwire(&["run", "-", "--timeline", "/nonexistent-dir/page.html"], TIMELINE_LOG);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot write /nonexistent-dir/page.html"), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "", "nothing was replayed");
}

#[test]
fn run_refuses_a_line_past_max_line_bytes_and_goes_on() {
    // A 1 MB line against a 1 KB limit, with `\r\n` line ends around it: the line is
    // refused with the position of the first byte past the limit, and the next line
    // (exactly at the limit, `\r` aside) is applied.
    let long = format!("{{\"submit\": [{{\"label\": \"{}\"}}]}}", "a".repeat(1 << 20));
    let head = "{\"submit\": [{\"id\": 7}]}";
    let exact = format!("{head}{}", " ".repeat(1024 - head.len()));
    let out = trigwire(&["run", "--max-line-bytes", "1024"], &format!("{long}\r\n{exact}\r\n"));
    assert_eq!(out.status.code(), Some(1), "a line was rejected");
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "{\"line\":1,\"error\":{\"message\":\"the line is longer than the limit of 1024 bytes \
             (Limits::line_bytes, --max-line-bytes); byte 1024 is past it\",\"span\":[1024,1025]}}",
            "{\"line\":2,\"submitted\":[7],\"pgrp\":7}",
        ]
    );
    assert!(text(&out.stderr).contains("line 1: error: the line is longer than the limit of 1024 bytes"));
}
