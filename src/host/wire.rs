//! The JSON-lines wire format of `trigwire run` (a documented contract; see README).
//!
//! Each input line is one submission, global callback, event, clock move or removal;
//! each output line is a submission, a firing or an error, tagged with the input line.
//! A rejected line changes nothing and the following lines are still processed.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::engine::Engine;
use crate::error::{Error, ErrorKind};
use crate::front::model::{CallbackSpec, Cause, Event, EventExtra, Firing, JobSpec, JobStatus, Language, Target};
use crate::host::command::{Apply, Command, Outcome, Reply};
use crate::syntax::{EventName, EventType};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobWire {
    id: Option<u64>,
    #[serde(default)]
    name: String,
    label: Option<String>,
    pgrp: Option<u64>,
    pid: Option<u64>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    agenda: Vec<TextOrNumber>,
    #[serde(default)]
    subjobs: u64,
    dependency: Option<String>,
    #[serde(default)]
    callbacks: Vec<CallbackWire>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallbackWire {
    triggers: OneOrMany,
    #[serde(default = "default_language")]
    language: String,
    code: String,
    maximum: Option<i64>,
}

fn default_language() -> String {
    "qube".to_string()
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum TextOrNumber {
    Text(String),
    Number(u64),
}

impl TextOrNumber {
    fn into_text(self) -> String {
        match self {
            TextOrNumber::Text(s) => s,
            TextOrNumber::Number(n) => n.to_string(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventWire {
    event: String,
    #[serde(rename = "type")]
    ty: String,
    job: u64,
    extra: Option<TextOrNumber>,
}

fn bad(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::BadValue, message)
}

/// Decodes one line.
///
/// # Errors
/// Bad JSON (with the column), an unknown command, a missing or ill-typed field.
pub fn decode(line: &str) -> Result<Command, Error> {
    let value: Value = serde_json::from_str(line).map_err(|e| json_error(&e, line))?;
    let Value::Object(map) = &value else {
        return Err(bad("expected a JSON object with one of submit, callback, event, time, remove"));
    };
    let field = |k: &str| map.get(k).cloned().unwrap_or(Value::Null);
    let only = |k: &str| -> Result<(), Error> {
        match map.len() {
            1 => Ok(()),
            _ => Err(bad(format!("`{k}` takes no other keys"))),
        }
    };
    let decode_as = |k: &str| -> Result<Value, Error> { only(k).map(|_| field(k)) };
    if map.contains_key("submit") {
        let jobs: Vec<JobWire> = from_value(decode_as("submit")?, "submit")?;
        return jobs
            .into_iter()
            .enumerate()
            .map(|(i, j)| job_spec(j, i))
            .collect::<Result<_, _>>()
            .map(Command::Submit);
    }
    if map.contains_key("callback") {
        return callback_spec(from_value(decode_as("callback")?, "callback")?).map(Command::Global);
    }
    if map.contains_key("event") {
        return event(from_value(value.clone(), "event")?).map(Command::Event);
    }
    if map.contains_key("time") {
        return from_value(decode_as("time")?, "time").map(Command::Time);
    }
    if map.contains_key("remove") {
        return from_value(decode_as("remove")?, "remove").map(Command::Remove);
    }
    Err(bad("unknown command; expected one of submit, callback, event, time, remove"))
}

fn from_value<T: serde::de::DeserializeOwned>(value: Value, what: &str) -> Result<T, Error> {
    serde_json::from_value(value).map_err(|e| bad(format!("bad `{what}`: {e}")))
}

fn utf8_error(e: &std::str::Utf8Error) -> Error {
    let at = e.valid_up_to();
    bad(format!("invalid UTF-8 at byte {at}; expected a JSON line in UTF-8"))
        .spanned(crate::syntax::Span::new(at, at + 1))
}

fn json_error(e: &serde_json::Error, line: &str) -> Error {
    // serde_json counts columns in bytes from 1; point at the character holding that byte.
    let mut at = line.len().min(e.column().saturating_sub(1));
    while !line.is_char_boundary(at) {
        at -= 1;
    }
    let end = line[at..].chars().next().map_or(at, |c| at + c.len_utf8());
    bad(format!("bad JSON: {e}")).at(crate::syntax::Span::new(at, end), line)
}

fn job_spec(j: JobWire, i: usize) -> Result<JobSpec, Error> {
    let status = match j.status.as_deref() {
        None | Some("pending") => JobStatus::Pending,
        Some("blocked") => JobStatus::Blocked,
        Some(s) => return Err(bad(format!("job {i}: unknown status `{s}`; expected pending or blocked"))),
    };
    let callbacks = j
        .callbacks
        .into_iter()
        .enumerate()
        .map(|(c, cb)| callback_spec(cb).map_err(|e| e.prefixed(&format!("job {i}, callback {c}"))))
        .collect::<Result<_, _>>()?;
    Ok(JobSpec {
        id: j.id,
        name: j.name,
        label: j.label,
        pgrp: j.pgrp,
        pid: j.pid,
        status,
        agenda: j.agenda.into_iter().map(TextOrNumber::into_text).collect(),
        subjobs: j.subjobs,
        dependency: j.dependency,
        callbacks,
    })
}

fn callback_spec(c: CallbackWire) -> Result<CallbackSpec, Error> {
    let language = Language::parse(&c.language)
        .ok_or_else(|| bad(format!("unknown language `{}`; expected qube, python, perl or mail", c.language)))?;
    let maximum = match c.maximum {
        None | Some(-1) => None,
        Some(m) if m >= 0 => Some(m as u64),
        Some(m) => return Err(bad(format!("maximum {m}; expected -1 (unlimited) or a count >= 0"))),
    };
    let triggers = match c.triggers {
        OneOrMany::One(t) => vec![t],
        OneOrMany::Many(ts) => ts,
    };
    Ok(CallbackSpec { triggers, language, code: c.code, maximum })
}

fn event(e: EventWire) -> Result<Event, Error> {
    let ty = EventType::parse(&e.ty).ok_or_else(|| {
        Error::new(ErrorKind::BadEvent, format!("unknown event type `{}`; expected job, work, subjob or host", e.ty))
    })?;
    let missing = || Error::new(ErrorKind::BadEvent, format!("a {} event needs `extra`", ty.as_str()));
    let extra = match (ty, e.extra) {
        (EventType::Job, None) => EventExtra::None,
        (EventType::Job, Some(_)) => return Err(Error::new(ErrorKind::BadEvent, "a job event takes no `extra`")),
        (_, None) => return Err(missing()),
        (EventType::Subjob, Some(TextOrNumber::Number(n))) => EventExtra::Subjob(n),
        (EventType::Subjob, Some(TextOrNumber::Text(t))) => EventExtra::Subjob(
            crate::syntax::parse_number(&t)
                .ok_or_else(|| Error::new(ErrorKind::BadEvent, format!("subjob extra `{t}` is not a decimal u64")))?,
        ),
        (EventType::Work, Some(x)) => EventExtra::Work(x.into_text()),
        (_, Some(x)) => EventExtra::Host(x.into_text()),
    };
    Ok(Event::named(&e.event, e.job, extra))
}

/// Replays a log against an engine (or anything that applies commands), producing
/// the output lines.
#[derive(Debug)]
pub struct Replay<A = Engine> {
    engine: A,
    line: usize,
    rejected: usize,
    /// Events held for the next batch, and the line of each.
    pending: Vec<Command>,
    pending_lines: Vec<usize>,
    replies: Vec<Reply>,
}

/// What replaying produces: output lines, and the same errors rendered for a person.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Output {
    /// The JSON output lines, in order.
    pub lines: Vec<Value>,
    /// Each rejected line's error, with the caret rendering.
    pub errors: Vec<String>,
}

/// How `Replay` feeds runs of consecutive events to the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One [`Engine::process`] call per event.
    OneByOne,
    /// [`Engine::process_batch`] on runs of up to this many consecutive events.
    Batch(usize),
}

impl<A: Apply> Replay<A> {
    /// Replays onto `engine`.
    pub fn new(engine: A) -> Replay<A> {
        Replay { engine, line: 0, rejected: 0, pending: Vec::new(), pending_lines: Vec::new(), replies: Vec::new() }
    }

    /// The engine, for inspection.
    pub fn engine(&self) -> &A {
        &self.engine
    }

    /// How many lines were rejected so far.
    pub fn rejected(&self) -> usize {
        self.rejected
    }

    /// Replays a whole log; returns the output lines and the human-readable errors.
    /// Lines are split at `\n`; a line that is not UTF-8 is rejected like bad JSON.
    pub fn run_bytes(&mut self, text: &[u8], mode: Mode) -> (Vec<Value>, Vec<String>) {
        let mut out = Output::default();
        let body = text.strip_suffix(b"\n").unwrap_or(text);
        for raw in body.split(|&b| b == b'\n') {
            self.feed(raw, mode, &mut out);
        }
        self.finish(&mut out);
        (out.lines, out.errors)
    }

    /// Replays one line (without its `\n`). Output may be held back while a batch of
    /// events fills up; [`Replay::finish`] flushes it.
    pub fn feed(&mut self, raw: &[u8], mode: Mode, out: &mut Output) {
        self.line += 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        match std::str::from_utf8(raw).map_err(|e| utf8_error(&e)).and_then(decode) {
            Ok(command @ Command::Event(_)) if mode != Mode::OneByOne => {
                self.pending.push(command);
                self.pending_lines.push(self.line);
                if matches!(mode, Mode::Batch(n) if self.pending.len() >= n) {
                    self.flush(out);
                }
            }
            decoded => {
                self.flush(out);
                let line = self.line;
                if let Err(e) = decoded.and_then(|c| self.apply(line, c, &mut out.lines)) {
                    self.reject(line, &e, out);
                }
            }
        }
    }

    /// Flushes the events held for a batch.
    pub fn finish(&mut self, out: &mut Output) {
        self.flush(out);
    }

    fn flush(&mut self, out: &mut Output) {
        if self.pending.is_empty() {
            return;
        }
        let mut replies = std::mem::take(&mut self.replies);
        replies.clear();
        self.engine.apply_all(&self.pending, &mut replies);
        for reply in &replies {
            let line = self.pending_lines[reply.command];
            match &reply.outcome {
                Outcome::Rejected(e) => self.reject(line, e, out),
                Outcome::Fired(f) => {
                    let event = match &self.pending[reply.command] {
                        Command::Event(e) => Some(e),
                        _ => None,
                    };
                    out.lines.push(fired(line, f, event));
                }
                _ => {}
            }
        }
        self.pending.clear();
        self.pending_lines.clear();
        self.replies = replies;
    }

    fn apply(&mut self, line: usize, command: Command, out: &mut Vec<Value>) -> Result<(), Error> {
        let mut outcomes = Vec::new();
        let result = self.engine.apply(&command, &mut outcomes);
        let event = match &command {
            Command::Event(e) => Some(e),
            _ => None,
        };
        for outcome in &outcomes {
            match outcome {
                Outcome::Submitted(s) => out.push(json!({"line": line, "submitted": s.ids, "pgrp": s.pgrp})),
                Outcome::Fired(f) => out.push(fired(line, f, event)),
                _ => {}
            }
        }
        result
    }

    fn reject(&mut self, line: usize, e: &Error, out: &mut Output) {
        self.rejected += 1;
        let span = e.span().map(|s| json!([s.start, s.end])).unwrap_or(Value::Null);
        out.lines.push(json!({"line": line, "error": {"message": e.message(), "span": span}}));
        out.errors.push(format!("line {line}: {e}"));
    }
}

fn fired(line: usize, f: &Firing, event: Option<&Event>) -> Value {
    let action = &f.action;
    let target = match &f.target {
        Some(Target::Work(w)) => json!(&**w),
        Some(Target::Subjob(i)) => json!(i),
        None => Value::Null,
    };
    let cause = match (f.cause, event) {
        (Cause::Event, Some(e)) => event_json(e),
        (Cause::Submitted(job), _) => event_json(&Event::job(EventName::Submit, job)),
        (Cause::Tick(t), _) => json!({"time": t}),
        _ => json!({"registration": true}),
    };
    json!({"line": line, "fired": {
        "job": f.owner, "callback": f.index, "language": action.language.as_str(),
        "code": &*action.code, "target": target, "cause": cause,
    }})
}

/// An event as the wire format writes it.
pub fn event_json(e: &Event) -> Value {
    let mut v = json!({"event": e.name.as_str(), "type": e.event_type().as_str(), "job": e.job});
    match &e.extra {
        EventExtra::None => {}
        EventExtra::Subjob(i) => v["extra"] = json!(i),
        EventExtra::Work(s) | EventExtra::Host(s) => v["extra"] = json!(s),
    }
    v
}
