//! The wire format's decoder and writer on their own: each fault has its kind and a
//! span into the line, and the writer prints strings exactly as `serde_json` does.

use trigwire::wire::{decode, write_str, write_u64};
use trigwire::{Command, ErrorKind, WireFault};

/// Decodes `line`, expecting `fault` with a span over `at` (a piece of the line).
fn check_fault(line: &str, fault: WireFault, at: &str) {
    let err = decode(line).expect_err(line);
    assert_eq!(err.kind(), &ErrorKind::Wire(fault), "{line}: {err}");
    let span = err.span().unwrap_or_else(|| panic!("{line}: no span in {err}"));
    assert_eq!(&line[span.range()], at, "{line}: {err}");
    assert_eq!(err.source_text(), Some(line));
    let _ = err.to_string();
}

#[test]
fn duplicate_keys_are_errors_pointing_at_the_second_key() {
    check_fault(r#"{"time": 5, "time": 6}"#, WireFault::DuplicateKey, r#""time""#);
    check_fault(r#"{"remove": 5, "remove": 6}"#, WireFault::DuplicateKey, r#""remove""#);
    check_fault(r#"{"event": "complete", "type": "job", "job": 1, "job": 2}"#, WireFault::DuplicateKey, r#""job""#);
    check_fault(
        r#"{"job": 1, "extra": null, "event": "complete", "type": "job", "extra": "x"}"#,
        WireFault::DuplicateKey,
        r#""extra""#,
    );
    check_fault(r#"{"submit": [{"name": "a", "name": "b"}]}"#, WireFault::DuplicateKey, r#""name""#);
    check_fault(
        r#"{"callback": {"triggers": "globaltime-5", "code": "x", "code": "y"}}"#,
        WireFault::DuplicateKey,
        r#""code""#,
    );
    let err = decode(r#"{"time": 5, "time": 6}"#).unwrap_err();
    assert_eq!(err.message(), "duplicate field `time`");
    let err = decode(r#"{"submit": [{"name": "a", "name": "b"}]}"#).unwrap_err();
    assert_eq!(err.message(), "bad `submit`: duplicate field `name`");
}

#[test]
fn unknown_keys_and_commands_are_named() {
    check_fault(r#"{"frobnicate": 1}"#, WireFault::UnknownCommand, r#""frobnicate""#);
    check_fault(r#"{"time": 5, "remove": 1}"#, WireFault::UnknownKey, r#""remove""#);
    check_fault(r#"{"event": "complete", "type": "job", "job": 1, "jobb": 2}"#, WireFault::UnknownKey, r#""jobb""#);
    check_fault(r#"{"submit": [{"nmae": "a"}]}"#, WireFault::UnknownKey, r#""nmae""#);
    check_fault(r#"{"submit": [{"na\"me": "a"}]}"#, WireFault::UnknownKey, r#""na\"me""#);
    for (line, key) in [
        (r#"{"frobnicate": 1}"#, "`frobnicate`"),
        (r#"{"time": 5, "remove": 1}"#, "`remove`"),
        (r#"{"type": "job", "job": 1, "jobb": 2}"#, "`jobb`"),
        (r#"{"submit": [{"nmae": "a"}]}"#, "`nmae`"),
    ] {
        let err = decode(line).unwrap_err();
        assert!(err.message().contains(key), "{line}: {err}");
    }
    let err = decode("{}").unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Wire(WireFault::UnknownCommand));
}

#[test]
fn bad_json_and_bad_fields_keep_a_span_into_the_line() {
    check_fault("not json", WireFault::BadJson, "o");
    check_fault(r#"{"time": 5} x"#, WireFault::BadJson, "x");
    check_fault("[1]", WireFault::NotAnObject, "[");
    check_fault(r#"{"time": "5"}"#, WireFault::BadField, "\"");
    check_fault(r#"{"event": "complete", "type": "job"}"#, WireFault::MissingField, "}");
    check_fault(r#"{"submit": [{"callbacks": [{"code": "x"}]}]}"#, WireFault::MissingField, "}");
    check_fault(r#"{"event": "complete", "type": "work", "job": 1, "extra": -1}"#, WireFault::BadField, "1");
    // Values that decode but that the field does not take have the kind and no span.
    for (line, fault) in [
        (r#"{"event": "complete", "type": "time", "job": 1}"#, WireFault::BadField),
        (r#"{"event": "complete", "type": "work", "job": 1}"#, WireFault::MissingField),
        (r#"{"submit": [{"status": "lost"}]}"#, WireFault::BadField),
        (r#"{"callback": {"triggers": "globaltime-5", "code": "x", "language": "cobol"}}"#, WireFault::BadField),
    ] {
        let err = decode(line).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Wire(fault), "{line}: {err}");
    }
}

#[test]
fn events_decode_in_any_key_order_and_with_escapes() {
    let want = decode(r#"{"event": "complete", "type": "work", "job": 7, "extra": "3"}"#).unwrap();
    for line in [
        r#"{"extra": "3", "job": 7, "type": "work", "event": "complete"}"#,
        r#"{"type":"work","event":"complete","extra":3,"job":7}"#,
        r#"{"ev\u0065nt": "compl\u0065te", "type": "work", "job": 7, "extra": "\u0033"}"#,
    ] {
        assert_eq!(decode(line).unwrap(), want, "{line}");
    }
    assert!(matches!(decode(r#"{"time": 5}"#), Ok(Command::Time(5))));
}

#[test]
fn strings_are_written_as_serde_json_writes_them() {
    let mut all: String = (0u8..0x80).map(char::from).collect();
    all.push_str("é😀\u{2028}\u{2029}\u{7f}\u{80}\u{ffff}");
    let cases = [all.as_str(), "", "plain", "\"", "\\", "tab\there", "\u{0}"];
    for s in cases {
        let mut out = Vec::new();
        write_str(&mut out, s);
        assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(s).unwrap(), "{s:?}");
    }
    for n in [0, 1, 9, 10, 99, 100, 12345, u64::MAX] {
        let mut out = Vec::new();
        write_u64(&mut out, n);
        assert_eq!(String::from_utf8(out).unwrap(), n.to_string());
    }
}

/// `Replay` plans a plainly written submission job by job as it decodes it; whatever
/// the line holds, its answer is the one of decoding it whole and applying the command.
#[test]
fn a_streamed_submission_answers_as_a_decoded_one() {
    use trigwire::wire::{Mode, Replay};
    use trigwire::{Engine, Outcome};
    let cb = r#"{"triggers": "complete-job-1", "code": "unblock-self"}"#;
    let lines = [
        format!(r#"{{"submit": [{{"label": "a"}}, {{"callbacks": [{cb}]}}]}}"#),
        format!(r#"  {{ "submit": [{{"status": "sleeping"}}, {{"callbacks": [{cb}]}}]}}"#),
        r#"{"submit": [{"status": "sleeping"}, {"id": "x"}]}"#.to_string(),
        r#"{"submit": [{"label": "a"}, {"label": "a"}]}"#.to_string(),
        r#"{"submit": [{"callbacks": [{"triggers": "compelte-job-1", "code": "unblock-self"}]}], "time": 3}"#
            .to_string(),
        r#"{"submit": [{"callbacks": [{"triggers": "compelte-job-1", "code": "unblock-self"}]}]} junk"#.to_string(),
        r#"{"submit": [{"callbacks": [{"triggers": "complete-job-1", "code": "unblock-self", "maximum": -5}]}]}"#
            .to_string(),
        r#"{"submit": []}"#.to_string(),
        r#"{"submit": [{"pgrp": 9}], "submit": []}"#.to_string(),
        r#"{"\u0073ubmit": [{"label": "b"}]}"#.to_string(),
        r#"{"submit": [{"agenda": [1, "2"], "dependency": "link-complete-work-a"}]}"#.to_string(),
    ];
    for line in &lines {
        let out = Replay::new(Engine::default()).run_bytes(line.as_bytes(), Mode::OneByOne);
        let streamed: Vec<serde_json::Value> =
            out.lines().map(|l| serde_json::from_str(l).expect("an output line is JSON")).collect();
        let mut engine = Engine::default();
        let mut outcomes = Vec::new();
        let expected = match decode(line).and_then(|c| engine.apply(&c, &mut outcomes)) {
            Ok(()) => match &outcomes[0] {
                Outcome::Submitted(s) => serde_json::json!({"line": 1, "submitted": s.ids, "pgrp": s.pgrp}),
                other => panic!("a submission first, got {other:?}"),
            },
            Err(e) => {
                let span = e.span().map(|s| serde_json::json!([s.start, s.end]));
                serde_json::json!({"line": 1, "error": {"message": e.message(), "span": span}})
            }
        };
        assert_eq!(streamed.first(), Some(&expected), "{line}");
    }
}

/// Qube job dicts as `qb.submit` takes them: work dicts and frame ranges for agendas,
/// `cpus` for the instance count, and the job keys the engine does not use.
#[test]
fn qube_job_dicts_decode_as_they_are() {
    let Command::Submit(jobs) = decode(
        r#"{"submit": [
            {"name": "ribgen", "prototype": "cmdrange", "package": {"cmdline": "ribgen -f QB_FRAME_NUMBER"},
             "priority": 9999, "cpus": 4, "hosts": ["a", "b"], "env": {"X": "1"}, "user": "jo",
             "agenda": [{"name": "1", "status": "blocked", "resultpackage": null}, {"name": 2}, "3", 4]},
            {"agenda": "1-9x4,20"}
        ]}"#,
    )
    .expect("a Qube job dict") else {
        panic!("a submission")
    };
    assert_eq!(jobs[0].agenda, ["1", "2", "3", "4"]);
    assert_eq!(jobs[0].subjobs, 4);
    assert_eq!(jobs[1].agenda, ["1", "5", "9", "20"]);
    assert_eq!(jobs[1].subjobs, 0);
    for key in trigwire::wire::IGNORED_JOB_KEYS {
        let line = format!(r#"{{"submit": [{{"{key}": {{"any": ["value"]}}}}]}}"#);
        assert!(decode(&line).is_ok(), "{key} is accepted");
    }
}

#[test]
fn bad_job_dicts_name_what_is_wrong() {
    let fails = [
        (r#"{"submit": [{"agenda": [{"status": "blocked"}]}]}"#, "missing field `name`"),
        (r#"{"submit": [{"agenda": "1-5x0"}]}"#, "job 0: agenda: bad frame range item `1-5x0`"),
        (r#"{"submit": [{"agenda": "5-1"}]}"#, "runs backwards"),
        (r#"{"submit": [{"subjobs": 2, "cpus": 3}]}"#, "`subjobs` 2 and `cpus` 3 disagree"),
        (r#"{"submit": [{"frobnicate": 1}]}"#, "unknown field `frobnicate`"),
        (r#"{"submit": [{"prototype": "a", "prototype": "b"}]}"#, "duplicate field `prototype`"),
    ];
    for (line, message) in fails {
        let e = decode(line).expect_err(line);
        assert!(e.message().contains(message), "{line}: {}", e.message());
        assert!(matches!(e.kind(), ErrorKind::Wire(_)), "{line}: {:?}", e.kind());
    }
}

/// A writer that refuses everything.
struct Refusing;

impl std::io::Write for Refusing {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "closed"))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `feed_writing` reports the first write error, after applying the line: the engine
/// went on, and the next line sees what it did.
#[test]
fn a_failed_write_is_reported_and_the_line_still_applied() {
    use trigwire::wire::{Mode, Output, Replay, WRITE_AT};
    let callback = r#"{"triggers": "complete-job-1", "code": "unblock-self"}"#;
    // Enough firings that their lines pass `WRITE_AT` inside the event's command.
    let n = WRITE_AT / 100 + 1;
    let submit = format!(r#"{{"submit": [{{}}, {{"callbacks": [{}]}}]}}"#, vec![callback; n].join(","));
    let mut replay = Replay::new(trigwire::Engine::default());
    let mut out = Output::default();
    replay.feed_writing(submit.as_bytes(), Mode::OneByOne, &mut out, &mut Refusing).expect("a small answer is kept");
    assert_eq!(out.lines().count(), 1, "the submitted line waits in the buffer");
    let event = br#"{"event": "complete", "type": "job", "job": 1}"#;
    let e = replay.feed_writing(event, Mode::OneByOne, &mut out, &mut Refusing).expect_err("the writer refuses");
    assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
    assert!(out.bytes.len() < WRITE_AT, "what could not be written was dropped, not kept");
    let mut written = Vec::new();
    replay.feed_writing(event, Mode::OneByOne, &mut out, &mut written).expect("a writer that takes all");
    written.extend_from_slice(&out.bytes);
    let text = String::from_utf8(written).expect("UTF-8 lines");
    let fired_again = text.lines().filter(|l| l.contains(r#""fired""#) && l.contains(r#""count":2"#)).count();
    assert_eq!(fired_again, n, "the second event fires each callback a second time: the first was applied");
}
