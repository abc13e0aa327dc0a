//! Hostile input: huge, deep, overflowing, malformed and binary triggers, logs and
//! configuration. Each is rejected with the error that names the limit or the fault,
//! and the engine that rejected it goes on exactly as one that never saw it: every
//! test that feeds an engine bad input then runs the same probe on it and on a fresh
//! engine, and compares what fires.
//!
//! The inputs are large but the work is bounded by construction: every limit trips
//! after a fixed amount of work (the length check before lexing, the nesting and atom
//! counters during parsing, the tick count before the clock moves).

use serde_json::Value;
use trigwire::qube::parse_callbacks_conf;
use trigwire::syntax::{parse, CustomNames, ParseErrorKind, ParseLimits};
use trigwire::wire::{Mode, Replay};
use trigwire::{CallbackSpec, Config, Engine, Error, ErrorKind, Event, EventName, Firing, JobSpec, JobStatus, Limits};

const MB: usize = 1 << 20;

/// Limits with the length limit raised far enough that nesting and atom counts trip.
fn roomy() -> Config {
    let parse = ParseLimits { length: 32 * MB, ..ParseLimits::default() };
    Config { limits: Limits { parse, ..Limits::default() }, ..Config::default() }
}

/// A farm in the middle of its life: `ribgen` (job 1, frames 1 and 2) feeds `render`
/// (job 2) frame by frame, `comp` (job 3) waits for ribgen as a whole and for time 100,
/// and a global callback ticks every 50 seconds. Frame 1 has completed.
fn farm(config: Config) -> Engine {
    let mut engine = Engine::new(config);
    let frames = vec!["1".to_string(), "2".to_string()];
    let jobs = [
        JobSpec { label: Some("ribgen".into()), agenda: frames.clone(), ..JobSpec::default() },
        JobSpec {
            label: Some("render".into()),
            status: JobStatus::Blocked,
            agenda: frames,
            callbacks: vec![CallbackSpec::qube("complete-work-ribgen-*", "unblock-work-self")],
            ..JobSpec::default()
        },
        JobSpec {
            label: Some("comp".into()),
            status: JobStatus::Blocked,
            callbacks: vec![CallbackSpec::qube("complete-job-ribgen && dummy-time-self-100", "unblock-self")],
            ..JobSpec::default()
        },
    ];
    let mut out = Vec::new();
    engine.submit(&jobs, &mut out).expect("the farm is valid");
    engine.add_global(&CallbackSpec::qube("globalrepeat-0-50", "mail-status"), &mut out).expect("valid global");
    engine.process(&Event::work(EventName::Complete, 1, "1"), &mut out).expect("valid event");
    engine
}

/// A firing in words, so that engines can be compared whatever ids they handed out.
fn describe(f: &Firing) -> String {
    let target = f.target.as_ref().map_or("-".to_string(), ToString::to_string);
    format!("{:?}#{} {} {} {:?}", f.owner, f.index, f.action.code, target, f.cause)
}

/// The rest of the farm's life: frame 2, ribgen as a whole, the clock to 120, and a
/// late job waiting on render. Returns what fired, in words.
fn probe(engine: &mut Engine) -> Vec<String> {
    let mut out = Vec::new();
    engine.process(&Event::work(EventName::Complete, 1, "2"), &mut out).expect("valid event");
    engine.process(&Event::job(EventName::Complete, 1), &mut out).expect("valid event");
    engine.advance_clock(120, &mut out).expect("a short clock move");
    let late = JobSpec { callbacks: vec![CallbackSpec::qube("done-job-render", "unblock-self")], ..JobSpec::default() };
    engine.submit(&[late], &mut out).expect("valid late job");
    engine.process(&Event::job(EventName::Failed, 2), &mut out).expect("valid event");
    let mut fired: Vec<String> = out.iter().map(describe).collect();
    fired.push(format!("now {} live {} labels {:?}", engine.now(), engine.live_jobs(), labels(engine)));
    fired
}

fn labels(engine: &Engine) -> Vec<Option<&str>> {
    (1..=4).map(|id| engine.label(id)).collect()
}

/// Checks that `engine`, which has seen bad input after [`farm`], behaves exactly like
/// a fresh farm with the same configuration.
fn assert_intact(mut engine: Engine, config: Config) {
    let expected = probe(&mut farm(config));
    assert!(expected.len() > 4, "the probe must fire something: {expected:?}");
    assert_eq!(probe(&mut engine), expected);
}

fn submit_one(engine: &mut Engine, trigger: &str) -> Error {
    let job = JobSpec { callbacks: vec![CallbackSpec::qube(trigger, "unblock-self")], ..JobSpec::default() };
    engine.submit(&[job], &mut Vec::new()).expect_err("the trigger is hostile")
}

fn parse_kind(e: &Error) -> &ParseErrorKind {
    match e.kind() {
        ErrorKind::Parse(kind) => kind,
        other => panic!("expected a parse error, got {other:?}: {e}"),
    }
}

fn parse_default(text: &str) -> Result<trigwire::syntax::Expr, trigwire::syntax::ParseError> {
    parse(text, &ParseLimits::default(), &CustomNames::default())
}

#[test]
fn a_megabyte_of_open_parens_trips_the_length_limit() {
    let text = "(".repeat(MB);
    let err = parse_default(&text).expect_err("too long");
    assert_eq!(err.kind(), &ParseErrorKind::TooLong { limit: 65_536 });
    assert!(err.to_string().contains("65536"), "{err}");

    let config = Config::default();
    let mut engine = farm(config);
    let err = submit_one(&mut engine, &text);
    assert_eq!(parse_kind(&err), &ParseErrorKind::TooLong { limit: 65_536 });
    assert_intact(engine, config);
}

#[test]
fn a_megabyte_of_open_parens_trips_the_nesting_limit_when_length_allows() {
    let text = "(".repeat(MB);
    let limits = roomy().limits.parse;
    let err = parse(&text, &limits, &CustomNames::default()).expect_err("too deep");
    assert_eq!(err.kind(), &ParseErrorKind::NestTooDeep { limit: 128 });
    assert_eq!(err.span().range(), 128..129, "points at the first `(` past the limit");
    assert!(err.message().contains("limit of 128"), "{}", err.message());

    let config = roomy();
    let mut engine = farm(config);
    let err = submit_one(&mut engine, &text);
    assert_eq!(parse_kind(&err), &ParseErrorKind::NestTooDeep { limit: 128 });
    assert_intact(engine, config);
}

#[test]
fn nesting_at_the_limit_parses_and_one_more_does_not() {
    let limits = ParseLimits::default();
    let nested = |depth: usize| format!("{}complete-job-self{}", "(".repeat(depth), ")".repeat(depth));
    assert!(parse(&nested(128), &limits, &CustomNames::default()).is_ok());
    let err = parse(&nested(129), &limits, &CustomNames::default()).expect_err("too deep");
    assert_eq!(err.kind(), &ParseErrorKind::NestTooDeep { limit: 128 });
}

#[test]
fn a_million_atoms_trip_the_atom_limit() {
    let text = "done-job-1||".repeat(999_999) + "done-job-1";
    let err = parse_default(&text).expect_err("too long for the default limits");
    assert_eq!(err.kind(), &ParseErrorKind::TooLong { limit: 65_536 });

    let limits = roomy().limits.parse;
    let err = parse(&text, &limits, &CustomNames::default()).expect_err("too many atoms");
    assert_eq!(err.kind(), &ParseErrorKind::TooManyAtoms { limit: 1024 });
    assert_eq!(err.span().range(), 1024 * 12..1024 * 12 + 10, "points at atom 1025");
    assert!(err.message().contains("limit of 1024"), "{}", err.message());

    let config = roomy();
    let mut engine = farm(config);
    let err = submit_one(&mut engine, &text);
    assert_eq!(parse_kind(&err), &ParseErrorKind::TooManyAtoms { limit: 1024 });
    assert_intact(engine, config);
}

#[test]
fn a_ten_megabyte_work_name_in_a_trigger_is_too_long() {
    let text = format!("complete-work-self-{}", "w".repeat(10 * MB));
    let err = parse_default(&text).expect_err("too long");
    assert_eq!(err.kind(), &ParseErrorKind::TooLong { limit: 65_536 });

    let config = Config::default();
    let mut engine = farm(config);
    let err = submit_one(&mut engine, &text);
    assert_eq!(parse_kind(&err), &ParseErrorKind::TooLong { limit: 65_536 });
    assert!(err.message().contains("65536"), "{}", err.message());
    assert_intact(engine, config);
}

#[test]
fn a_ten_megabyte_work_name_in_an_event_is_accepted_and_matches_nothing() {
    let name = "w".repeat(10 * MB);
    let config = Config::default();
    let mut engine = farm(config);
    let mut out = Vec::new();
    for job in [1, 2, 3, 99] {
        engine.process(&Event::work(EventName::Complete, job, &name), &mut out).expect("any work name is valid");
    }
    engine.process(&Event::host(EventName::Running, 1, &name), &mut out).expect("any host name is valid");
    // `complete-work-ribgen-*` waits for any frame of ribgen: the one firing allowed.
    let fired: Vec<String> = out.iter().map(describe).collect();
    assert_eq!(fired, vec!["Some(2)#0 unblock-work-self - Event".to_string()]);

    // The same through the wire format: one line of 10 MB.
    let log = format!(
        "{{\"submit\": [{{\"agenda\": [\"1\"], \"callbacks\": [{{\"triggers\": \"complete-work-self-1\", \"code\": \"unblock-self\"}}]}}]}}\n\
         {{\"event\": \"complete\", \"type\": \"work\", \"job\": 1, \"extra\": \"{name}\"}}\n\
         {{\"event\": \"complete\", \"type\": \"work\", \"job\": 1, \"extra\": \"1\"}}\n"
    );
    let out = Replay::new(Engine::default()).run_bytes(log.as_bytes(), Mode::OneByOne);
    let (lines, errors) = (values(&out), out.errors);
    assert!(errors.is_empty(), "{errors:?}");
    let fired: Vec<u64> =
        lines.iter().filter(|v| v.get("fired").is_some()).map(|v| v["line"].as_u64().unwrap()).collect();
    assert_eq!(fired, vec![3], "only the real frame fires");
}

#[test]
fn numbers_past_u64_are_bad_numbers_with_their_span() {
    let big = "18446744073709551616"; // u64::MAX + 1
    let huge = "99999999999999999999999999";
    let cases = [
        (format!("complete-job-{big}"), big),
        (format!("complete-subjob-self-{big}"), big),
        (format!("complete-subjob-1-{huge}"), huge),
        (format!("dummy-time-self-{big}"), big),
        (format!("dummy-repeat-self-{big}-60"), big),
        (format!("dummy-repeat-self-0-{big}"), big),
        (format!("globaltime-{big}"), big),
        (format!("globalrepeat-1-{big}"), big),
        (format!("complete-job-1 || failed-job-{big}"), big),
    ];
    let config = Config::default();
    let mut engine = farm(config);
    for (text, number) in &cases {
        let start = text.rfind(number).expect("the number is in the text");
        let span = start..start + number.len();
        let err = parse_default(text).expect_err(text);
        assert_eq!(err.kind(), &ParseErrorKind::BadNumber(number.to_string()), "{text}");
        assert_eq!(err.span().range(), span, "{text}");
        let err = submit_one(&mut engine, text);
        assert_eq!(parse_kind(&err), &ParseErrorKind::BadNumber(number.to_string()), "{text}");
        assert_eq!(err.span().map(|s| s.range()), Some(span), "{text}");
    }
    // The largest u64 itself is a number.
    assert!(parse_default(&format!("complete-job-{}", u64::MAX)).is_ok());
    assert_intact(engine, config);
}

#[test]
fn numbers_past_u64_in_the_log_are_rejected_lines() {
    let big = "18446744073709551616";
    let log = format!(
        "{{\"submit\": [{{\"id\": {big}}}]}}\n\
         {{\"event\": \"complete\", \"type\": \"job\", \"job\": {big}}}\n\
         {{\"event\": \"complete\", \"type\": \"subjob\", \"job\": 1, \"extra\": \"{big}\"}}\n\
         {{\"time\": {big}}}\n\
         {{\"remove\": {big}}}\n\
         {{\"submit\": [{{\"callbacks\": [{{\"triggers\": \"submit-job-self\", \"code\": \"mail-status\"}}]}}]}}\n"
    );
    let mut replay = Replay::new(Engine::default());
    let out = replay.run_bytes(log.as_bytes(), Mode::OneByOne);
    let (lines, errors) = (values(&out), out.errors);
    assert_eq!(replay.rejected(), 5, "{errors:?}");
    assert_eq!(error_lines(&lines), vec![1, 2, 3, 4, 5]);
    assert_eq!(lines.last().unwrap()["fired"]["code"], "mail-status", "line 6 still runs: {lines:?}");
}

fn error_lines(lines: &[Value]) -> Vec<u64> {
    lines.iter().filter(|v| v.get("error").is_some()).map(|v| v["line"].as_u64().unwrap()).collect()
}

/// The farm of [`farm`] as a log, with line 3 left blank for a hostile line.
fn farm_log(line3: &[u8]) -> Vec<u8> {
    let mut log = Vec::new();
    log.extend_from_slice(
        b"{\"submit\": [{\"label\": \"ribgen\", \"agenda\": [\"1\", \"2\"]}, {\"label\": \"render\", \"status\": \"blocked\", \"agenda\": [\"1\", \"2\"], \"callbacks\": [{\"triggers\": \"complete-work-ribgen-*\", \"code\": \"unblock-work-self\"}]}]}\n",
    );
    log.extend_from_slice(b"{\"event\": \"complete\", \"type\": \"work\", \"job\": 1, \"extra\": \"1\"}\n");
    log.extend_from_slice(line3);
    log.push(b'\n');
    log.extend_from_slice(b"{\"event\": \"complete\", \"type\": \"work\", \"job\": 1, \"extra\": \"2\"}\n");
    log.extend_from_slice(b"{\"remove\": 2}\n{\"remove\": 2}\n");
    log
}

/// Replays the farm log with `line3` and checks that it gives exactly the output of the
/// clean log plus one error line for line 3. Returns that error line.
fn assert_one_bad_line(line3: &[u8]) -> Value {
    let clean = values(&Replay::new(Engine::default()).run_bytes(&farm_log(b""), Mode::OneByOne));
    let mut replay = Replay::new(Engine::default());
    let out = replay.run_bytes(&farm_log(line3), Mode::OneByOne);
    let (mut lines, errors) = (values(&out), out.errors);
    assert_eq!(replay.rejected(), 2, "line 3 and the second removal: {errors:?}");
    let at = lines.iter().position(|v| v["line"] == 3).expect("an output line for line 3");
    let error = lines.remove(at);
    assert!(error.get("error").is_some(), "{error}");
    assert_eq!(lines, clean, "the lines after the bad one are processed as before");
    assert_eq!(error_lines(&clean), vec![6]);
    error
}

#[test]
fn invalid_utf8_in_a_log_line_is_an_error_with_a_span() {
    let line: &[u8] = b"{\"event\": \"complete\", \"type\": \"job\", \"job\": 1\xff\xfe}";
    let at = line.iter().position(|&b| b == 0xff).unwrap();
    let error = assert_one_bad_line(line);
    assert_eq!(error["error"]["span"], serde_json::json!([at, at + 1]), "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("UTF-8"), "{error}");
    // A truncated multi-byte character at the very end of a line.
    assert_one_bad_line(b"{\"event\": \"complete\", \"type\": \"job\", \"job\": 1}\xe2\x82");
}

#[test]
fn bad_json_at_a_non_ascii_character_is_an_error_spanning_the_character() {
    // Found by the `wire` fuzz target: the span cut the character and rendering panicked.
    for line in ["\u{7a3}", "\u{7a3}{", "{\"time\": \u{e9}}", "{\"submit\": [{\"label\": \u{1f600}\"x\"}]}"] {
        let error = assert_one_bad_line(line.as_bytes());
        let span: Vec<usize> = serde_json::from_value(error["error"]["span"].clone()).expect("a span");
        let at = line.find(|c: char| !c.is_ascii()).expect("one non-ASCII character");
        let width = line[at..].chars().next().unwrap().len_utf8();
        assert_eq!(span, vec![at, at + width], "{line}: {error}");
    }
}

#[test]
fn nul_bytes_in_a_log_are_rejected_lines() {
    // A raw NUL outside a string, a raw NUL inside one, and an escaped NUL in a trigger.
    assert_one_bad_line(b"\0{\"time\": 5}");
    assert_one_bad_line(b"{\"event\": \"complete\", \"type\": \"work\", \"job\": 1, \"extra\": \"1\0\"}");
    let error = assert_one_bad_line(
        b"{\"submit\": [{\"callbacks\": [{\"triggers\": \"complete-job-self\\u0000\", \"code\": \"unblock-self\"}]}]}",
    );
    assert!(error["error"]["message"].as_str().unwrap().contains("control character"), "{error}");
    assert_eq!(error["error"]["span"], serde_json::json!([17, 18]), "{error}");
}

#[test]
fn nul_bytes_in_triggers_are_control_characters() {
    let config = Config::default();
    let mut engine = farm(config);
    for (text, at) in [("complete-job-self\0", 17), ("\0", 0), ("complete-job-\0self", 13), ("(a\0b)", 2)] {
        let err = parse_default(text).expect_err(text);
        assert_eq!(err.kind(), &ParseErrorKind::ControlCharacter, "{text:?}");
        assert_eq!(err.span().range(), at..at + 1, "{text:?}");
        let _ = err.to_string();
        assert_eq!(parse_kind(&submit_one(&mut engine, text)), &ParseErrorKind::ControlCharacter);
    }
    // An escape character is as unwelcome as a NUL.
    let err = parse_default("complete-job-self && \u{1b}[31m").expect_err("escape");
    assert_eq!(err.kind(), &ParseErrorKind::ControlCharacter);
    assert_intact(engine, config);
}

#[test]
fn an_empty_label_or_one_taken_in_another_case_rejects_the_whole_submission() {
    let config = Config::default();
    let mut engine = farm(config);
    // The farm's first job is labelled `ribgen` in group 1.
    for label in ["", "RibGen", "RIBGEN"] {
        let jobs = [
            JobSpec { id: Some(10), label: Some("fine".into()), pgrp: Some(1), ..JobSpec::default() },
            JobSpec { label: Some(label.into()), pgrp: Some(1), ..JobSpec::default() },
        ];
        let err = engine.submit(&jobs, &mut Vec::new()).expect_err(label);
        assert_eq!(err.kind(), &ErrorKind::BadLabel, "{label}: {err}");
        assert!(err.message().contains(&format!("`{label}`")) || label.is_empty(), "{err}");
    }
    assert_eq!(engine.live_jobs(), 3, "nothing of the rejected submissions was registered");
    assert_eq!(engine.label(10), None);
    assert_intact(engine, config);
}

/// Any non-empty label is accepted, as Qube accepts it; one the grammar cannot spell in
/// a trigger context is simply never named by one.
#[test]
fn labels_the_grammar_cannot_spell_are_accepted() {
    let mut engine = Engine::default();
    let labels = ["job A", "ribgen-sh010", "010", "(x)", "a&&b"];
    let jobs: Vec<JobSpec> =
        labels.iter().map(|l| JobSpec { label: Some((*l).into()), ..JobSpec::default() }).collect();
    let sub = engine.submit(&jobs, &mut Vec::new()).expect("any non-empty label");
    assert_eq!(engine.label(sub.ids[1]), Some("ribgen-sh010"));
    assert_eq!(engine.label(sub.ids[0]), Some("job a"), "labels are kept in lowercase");
}
#[test]
fn a_callbacks_conf_line_without_equals_is_named() {
    let text =
        "# site callbacks\nnotify.py = done-job-self\n\nrelease.qcb complete-job-self\nlate.py = done-job-self\n";
    let (entries, errors) = parse_callbacks_conf(text);
    let [err] = &errors[..] else { panic!("line 4 has no `=`: {errors:?}") };
    assert_eq!(err.line, 4);
    assert!(err.message.contains("missing `=`"), "{err}");
    assert!(err.to_string().contains("line 4"), "{err}");
    assert_eq!(entries.iter().map(|e| e.line).collect::<Vec<_>>(), [2, 5], "the other lines are read");
    // A NUL and a huge line are just text to the file reader.
    let huge = format!("x.py = complete-work-self-{}\0\n", "w".repeat(MB));
    let (entries, errors) = parse_callbacks_conf(&huge);
    assert!(errors.is_empty());
    assert_eq!(entries.len(), 1);
    let spec = CallbackSpec::qube(&entries[0].trigger, "unblock-self");
    let err = Engine::default().add_universal(&spec).expect_err("too long");
    assert_eq!(parse_kind(&err), &ParseErrorKind::TooLong { limit: 65_536 });
}

#[test]
fn a_clock_jump_past_the_tick_limit_is_rejected_and_the_clock_stays() {
    let config = Config::default();
    let mut engine = farm(config);
    let mut out = Vec::new();
    engine.add_global(&CallbackSpec::qube("globalrepeat-0-1", "mail-status"), &mut out).expect("valid global");
    // A fresh farm does not have the extra global, so compare against one that got it
    // the same way.
    let mut reference = farm(config);
    reference.add_global(&CallbackSpec::qube("globalrepeat-0-1", "mail-status"), &mut Vec::new()).unwrap();
    let before = out.len();
    // Ticks at 1..=to: the first is not counted, so 1,000,001 is the last time that passes.
    for to in [2_000_000, 1_000_002, u64::MAX] {
        let err = engine.advance_clock(to, &mut out).expect_err("too many ticks");
        assert_eq!(err.kind(), &ErrorKind::TooManyTicks { limit: 1_000_000 }, "{to}");
        assert!(err.message().contains("1000000"), "{err}");
        assert_eq!(engine.now(), 0, "the clock did not move");
    }
    assert_eq!(out.len(), before, "a rejected move fires nothing: {out:?}");
    assert_eq!(probe(&mut engine), probe(&mut reference));
}

#[test]
fn bad_globals_and_events_change_nothing() {
    let config = Config::default();
    let mut engine = farm(config);
    let mut out = Vec::new();
    for trigger in ["complete-job-self", "complete-job-ribgen", "(globaltime-5", "", "globalrepeat-5-0"] {
        engine.add_global(&CallbackSpec::qube(trigger, "mail-status"), &mut out).expect_err(trigger);
    }
    engine.add_global(&CallbackSpec::qube("globaltime-5", "launch-missiles"), &mut out).expect_err("bad code");
    engine.process(&Event::job(EventName::Done, 1), &mut out).expect_err("done is derived");
    engine.advance_clock(0, &mut out).expect("the clock may stay");
    engine.remove_job(77, &mut Vec::new()).expect_err("not live");
    assert!(out.is_empty(), "{out:?}");
    assert_intact(engine, config);
}

/// The output lines of a replay as JSON values.
fn values(out: &trigwire::wire::Output) -> Vec<serde_json::Value> {
    out.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
}
