//! Runs the built `trigwire` binary as a user would.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn trigwire(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_trigwire"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    child.wait_with_output().expect("the binary finishes")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

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
