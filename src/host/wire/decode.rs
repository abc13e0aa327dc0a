//! Decoding one input line straight from its text into a [`Command`].
//!
//! The line is read by `serde_json`'s streaming deserializer into borrowed structs
//! (strings without escapes are slices of the line), and only then turned into the
//! owned [`Command`]. The first key of the object picks the command; an event's keys
//! may come in any order. Nothing goes through `serde_json::Value`, and the hot path
//! (event lines) uses hand-written visitors: `#[serde(untagged)]` would buffer every
//! value into serde's `Content` first.
//!
//! PERF: `cargo bench --bench wire -- decode` (shared 2-core machine): a work event line
//! decodes into a `Command` in 0.27 µs, where `serde_json::from_str::<Value>` alone took
//! 0.73 µs to parse it (the old decoder then cloned it into typed structs); a job event
//! in 0.14 µs against 0.43 µs.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde::de::{self, Deserializer as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::error::{Error, ErrorKind, WireFault};
use crate::front::ids::CallbackId;
use crate::front::model::{CallbackSpec, Event, EventExtra, JobSpec, JobStatus, Language};
use crate::host::command::Command;
use crate::syntax::{EventType, Span};

const COMMANDS: &str = "submit, callback, event, time, remove, remove_callback, explain, metrics, satisfy, rearm";

/// Decodes one line (without its `\n`).
///
/// # Example
/// ```
/// use trigwire::{wire::decode, Command, ErrorKind, WireFault};
/// let command = decode(r#"{"event": "complete", "type": "work", "job": 7, "extra": 3}"#)?;
/// assert!(matches!(command, Command::Event(_)));
/// let error = decode(r#"{"time": 5, "time": 6}"#).unwrap_err();
/// assert_eq!(error.kind(), &ErrorKind::Wire(WireFault::DuplicateKey));
/// assert!(error.span().is_some());
/// # Ok::<(), trigwire::Error>(())
/// ```
///
/// # Errors
/// An [`ErrorKind::Wire`] error for bad JSON, a value that is not an object, an unknown
/// command, an unknown or repeated key, a missing or ill-typed field, with a byte span
/// into the line; the same kind without a span for a value the field does not accept
/// (an unknown status, language or event type, a bad `maximum` or `extra`).
///
/// # Performance
/// Allocates only what the [`Command`] owns (an event's custom name or work or host
/// name; a submission's strings), and the error.
pub fn decode(line: &str) -> Result<Command, Error> {
    decode_reusing(line, &mut Vec::new())
}

/// [`decode`], taking the string an event's work or host name needs from `spare`
/// when it has one: a host that gives the names of applied events back (as
/// [`crate::wire::Replay`] does) decodes event lines without allocating.
pub(crate) fn decode_reusing(line: &str, spare: &mut Vec<String>) -> Result<Command, Error> {
    if let Some(event) = plain_event(line) {
        return event.into_event_in(spare).map(Command::Event);
    }
    decode_full(line)
}

/// [`decode`] through serde alone.
fn decode_full(line: &str) -> Result<Command, Error> {
    let ctx = Ctx::default();
    let mut de = serde_json::Deserializer::from_str(line);
    let wire = de.deserialize_map(LineVisitor { ctx: &ctx, jobs: None }).and_then(|wire| de.end().map(|()| wire));
    match wire {
        Ok(wire) => wire.into_command(),
        Err(e) => Err(ctx.error(&e, line)),
    }
}

/// An event line in its plain form, read without serde: the four keys `event`, `type`,
/// `job` and `extra` (the last optional) in any order, each once, string values without
/// escapes or control characters, a `job` (and a numeric `extra`) of plain digits, and
/// JSON white space. Anything else, valid or not, is `None` and goes to the full
/// decoder, which then gives the same event or the error; so this only skips work.
///
/// PERF: a work event line took 0.27 µs through serde_json's deserializer and our
/// visitors (`cargo bench --bench wire -- decode`), about as much as the engine's own
/// work per event in a batch; the events of a farm log are nearly all in this form.
fn plain_event(line: &str) -> Option<EventWire<'_>> {
    let mut scan = Scan { text: line, at: 0 };
    scan.byte(b'{')?;
    let (mut event, mut ty, mut job, mut extra) = (None, None, None, None);
    loop {
        let key = scan.key()?;
        scan.byte(b':')?;
        let slot_taken = match key {
            b'v' => event.replace(Text(Cow::Borrowed(scan.string()?))).is_some(),
            b't' => ty.replace(Text(Cow::Borrowed(scan.string()?))).is_some(),
            b'j' => job.replace(scan.number()?).is_some(),
            _ => extra.replace(scan.text_or_number()?).is_some(),
        };
        if slot_taken {
            return None;
        }
        match scan.next()? {
            b',' => continue,
            b'}' => break,
            _ => return None,
        }
    }
    scan.end()?;
    Some(EventWire { event: event?, ty: ty?, job: job?, extra })
}

/// A cursor over a line for [`plain_event`]; every method skips white space first.
struct Scan<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Scan<'a> {
    fn skip_space(&mut self) {
        let bytes = self.text.as_bytes();
        while matches!(bytes.get(self.at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn next(&mut self) -> Option<u8> {
        self.skip_space();
        let b = *self.text.as_bytes().get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn byte(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// One of the keys `"event"`, `"type"`, `"job"`, `"extra"`, as `v`, `t`, `j`, `x`.
    fn key(&mut self) -> Option<u8> {
        self.skip_space();
        let rest = &self.text.as_bytes()[self.at..];
        // Fixed-size compares, which compile to a load or two instead of `memcmp` calls.
        let is = |spelling: &[u8; 7]| rest.get(..7).is_some_and(|r| r == spelling);
        let (key, len) = match rest.get(1)? {
            b'e' if is(b"\"event\"") => (b'v', 7),
            b'e' if is(b"\"extra\"") => (b'x', 7),
            b't' if rest.get(..6).is_some_and(|r| r == b"\"type\"") => (b't', 6),
            b'j' if rest.get(..5).is_some_and(|r| r == b"\"job\"") => (b'j', 5),
            _ => return None,
        };
        self.at += len;
        Some(key)
    }

    /// A string without escapes or control characters.
    fn string(&mut self) -> Option<&'a str> {
        self.byte(b'"')?;
        let rest = &self.text.as_bytes()[self.at..];
        let len = rest.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        if rest[len] != b'"' {
            return None;
        }
        let s = self.text.get(self.at..self.at + len)?;
        self.at += len + 1;
        Some(s)
    }

    /// A JSON integer that fits in a `u64`: digits, no leading zero, no sign or fraction.
    fn number(&mut self) -> Option<u64> {
        self.skip_space();
        let rest = &self.text.as_bytes()[self.at..];
        let len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let follows = rest.get(len).copied();
        if len == 0 || (len > 1 && rest[0] == b'0') || matches!(follows, Some(b'.' | b'e' | b'E')) {
            return None;
        }
        let n = self.text.get(self.at..self.at + len)?.parse().ok()?;
        self.at += len;
        Some(n)
    }

    fn text_or_number(&mut self) -> Option<TextOrNumber<'a>> {
        self.skip_space();
        match self.text.as_bytes().get(self.at)? {
            b'"' => Some(TextOrNumber::Text(Cow::Borrowed(self.string()?))),
            _ => Some(TextOrNumber::Number(self.number()?)),
        }
    }

    /// Only white space is left.
    fn end(&mut self) -> Option<()> {
        self.skip_space();
        (self.at == self.text.len()).then_some(())
    }
}

/// Whether a line's first key is `submit`, written plainly (no escapes), so that
/// [`decode_submission`] can stream it. Other spellings take [`decode`], with the same
/// result and the whole submission in memory.
pub(crate) fn starts_a_submission(line: &str) -> bool {
    let rest = line.trim_start_matches([' ', '\t', '\n', '\r']);
    let Some(rest) = rest.strip_prefix('{') else { return false };
    rest.trim_start_matches([' ', '\t', '\n', '\r']).starts_with("\"submit\"")
}

/// Decodes a submission line, handing each job to `take` as soon as it is read, so
/// that a large submission is never held as a whole. Gives the error [`decode`] would
/// give: a fault anywhere in the line wins over a bad value in a job (reading goes on
/// to the end of the line after one, without handing over more jobs).
pub(crate) fn decode_submission(line: &str, take: &mut dyn FnMut(&JobSpec)) -> Result<(), Error> {
    let ctx = Ctx::default();
    let visitor = LineVisitor { ctx: &ctx, jobs: Some(JobsSeed { take }) };
    let mut de = serde_json::Deserializer::from_str(line);
    let wire = de.deserialize_map(visitor).and_then(|wire| de.end().map(|()| wire));
    match wire {
        Err(e) => Err(ctx.error(&e, line)),
        Ok(LineWire::Streamed(None)) => Ok(()),
        Ok(LineWire::Streamed(Some(bad_value))) => Err(bad_value),
        Ok(_) => Err(not_a_submission()),
    }
}

fn not_a_submission() -> Error {
    wire(WireFault::UnknownCommand, "expected a submission")
}

/// Reads a submission's list of jobs, handing each over as it is read. Its value is the
/// error of the first job that did not convert (a bad status, language or maximum):
/// no job is handed over after it, and the list is still read to its end.
struct JobsSeed<'s> {
    take: &'s mut dyn FnMut(&JobSpec),
}

impl<'de> de::DeserializeSeed<'de> for JobsSeed<'_> {
    type Value = Option<Error>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<Error>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for JobsSeed<'_> {
    type Value = Option<Error>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of jobs")
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Option<Error>, S::Error> {
        let mut bad_value = None;
        let mut i = 0;
        while let Some(job) = seq.next_element::<JobWire<'de>>()? {
            if bad_value.is_none() {
                match job_spec(job, i) {
                    Ok(spec) => (self.take)(&spec),
                    Err(e) => bad_value = Some(e),
                }
            }
            i += 1;
        }
        Ok(bad_value)
    }
}

/// A rejected line that is not UTF-8, pointing at the first bad byte.
pub(super) fn utf8_error(e: &std::str::Utf8Error) -> Error {
    let at = e.valid_up_to();
    wire(WireFault::BadUtf8, format!("invalid UTF-8 at byte {at}; expected a JSON line in UTF-8"))
        .spanned(Span::new(at, at + 1))
}

fn wire(fault: WireFault, message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Wire(fault), message)
}

/// What the decoder knew when it failed: the command being read, and the fault when one
/// of our own visitors raised it (serde's own errors carry only text).
#[derive(Default)]
struct Ctx {
    what: Cell<Option<&'static str>>,
    fault: Cell<Option<WireFault>>,
}

impl Ctx {
    /// An error raised by our visitors: its message is complete as given.
    fn fail<E: de::Error>(&self, fault: WireFault, message: fmt::Arguments<'_>) -> E {
        self.fault.set(Some(fault));
        E::custom(message)
    }

    fn error(&self, e: &serde_json::Error, line: &str) -> Error {
        use serde_json::error::Category;
        let span = column_span(e.column(), line);
        if !matches!(e.classify(), Category::Data) {
            return wire(WireFault::BadJson, format!("bad JSON: {e}")).at(span, line);
        }
        let full = e.to_string();
        let position = format!(" at line {} column {}", e.line(), e.column());
        let text = full.strip_suffix(&position).unwrap_or(&full);
        let (fault, message) = match (self.fault.get(), self.what.get()) {
            (Some(fault), _) => (fault, text.to_string()),
            (None, Some(what)) => (serde_fault(text), format!("bad `{what}`: {text}")),
            (None, None) => (WireFault::NotAnObject, text.to_string()),
        };
        let span = match fault {
            WireFault::UnknownCommand | WireFault::UnknownKey | WireFault::DuplicateKey => key_span(span, line),
            _ => span,
        };
        wire(fault, message).at(span, line)
    }
}

/// Classifies an error that serde's derive or its primitive visitors raised, from the
/// wording `serde::de::Error`'s provided methods give it (stable since serde 1.0).
fn serde_fault(text: &str) -> WireFault {
    if text.starts_with("unknown field") {
        WireFault::UnknownKey
    } else if text.starts_with("duplicate field") {
        WireFault::DuplicateKey
    } else if text.starts_with("missing field") {
        WireFault::MissingField
    } else {
        WireFault::BadField
    }
}

/// serde_json counts columns in bytes from 1; point at the character holding that byte.
fn column_span(column: usize, line: &str) -> Span {
    let mut at = line.len().min(column.saturating_sub(1));
    while !line.is_char_boundary(at) {
        at -= 1;
    }
    let end = line[at..].chars().next().map_or(at, |c| at + c.len_utf8());
    Span::new(at, end)
}

/// A fault in a key is found at its closing quote: widen the span to the whole quoted
/// key when it points at one.
fn key_span(at: Span, line: &str) -> Span {
    let bytes = line.as_bytes();
    if bytes.get(at.start) != Some(&b'"') {
        return at;
    }
    let mut open = at.start;
    while open > 0 {
        open -= 1;
        let backslashes = bytes[..open].iter().rev().take_while(|&&b| b == b'\\').count();
        if bytes[open] == b'"' && backslashes % 2 == 0 {
            return Span::new(open, at.start + 1);
        }
    }
    at
}

// ---------------------------------------------------------------------------------------
// Borrowed text and the "string or number" values

/// A string of the line: borrowed unless it had escapes.
#[derive(Debug, Default)]
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Text(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(v.to_string())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(v)))
    }
}

/// An agenda item or an event's `extra`: text, or a number that stands for its
/// decimal text.
#[derive(Debug)]
enum TextOrNumber<'a> {
    Text(Cow<'a, str>),
    Number(u64),
}

impl TextOrNumber<'_> {
    fn into_text(self) -> String {
        self.into_text_in(&mut Vec::new())
    }

    /// The text, in a string taken from `spare` when it has one.
    fn into_text_in(self, spare: &mut Vec<String>) -> String {
        let mut text = spare.pop().unwrap_or_default();
        text.clear();
        match self {
            TextOrNumber::Text(s) => text.push_str(&s),
            TextOrNumber::Number(n) => text.push_str(itoa::Buffer::new().format(n)),
        }
        text
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for TextOrNumber<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextOrNumberVisitor)
    }
}

struct TextOrNumberVisitor;

impl<'de> Visitor<'de> for TextOrNumberVisitor {
    type Value = TextOrNumber<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or a non-negative integer")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(TextOrNumber::Number(v))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(TextOrNumber::Text(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(TextOrNumber::Text(Cow::Owned(v.to_string())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(TextOrNumber::Text(Cow::Owned(v)))
    }
}

/// `triggers`: one trigger, or a list meaning their OR.
#[derive(Debug)]
struct Triggers(Vec<String>);

impl<'de> Deserialize<'de> for Triggers {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TriggersVisitor)
    }
}

struct TriggersVisitor;

impl<'de> Visitor<'de> for TriggersVisitor {
    type Value = Triggers;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a trigger or a list of triggers")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Triggers(vec![v.to_string()]))
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        let mut all = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(Text(t)) = seq.next_element()? {
            all.push(t.into_owned());
        }
        Ok(Triggers(all))
    }
}

// ---------------------------------------------------------------------------------------
// Submissions and callbacks: derived, they are not the hot path

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobWire<'a> {
    id: Option<u64>,
    #[serde(default, borrow)]
    name: Text<'a>,
    #[serde(borrow)]
    label: Option<Text<'a>>,
    pgrp: Option<u64>,
    pid: Option<u64>,
    #[serde(default, borrow)]
    status: Option<Text<'a>>,
    #[serde(default, borrow)]
    agenda: AgendaWire<'a>,
    subjobs: Option<u64>,
    /// Qube's instance count, the same as `subjobs`.
    cpus: Option<u64>,
    #[serde(borrow)]
    dependency: Option<Text<'a>>,
    #[serde(default, borrow)]
    callbacks: Vec<CallbackWire<'a>>,
    // Qube job keys the engine does not use: accepted with any value and ignored. The
    // README lists them.
    #[serde(rename = "prototype")]
    _prototype: Option<IgnoredAny>,
    #[serde(rename = "package")]
    _package: Option<IgnoredAny>,
    #[serde(rename = "priority")]
    _priority: Option<IgnoredAny>,
    #[serde(rename = "reservations")]
    _reservations: Option<IgnoredAny>,
    #[serde(rename = "requirements")]
    _requirements: Option<IgnoredAny>,
    #[serde(rename = "restrictions")]
    _restrictions: Option<IgnoredAny>,
    #[serde(rename = "hosts")]
    _hosts: Option<IgnoredAny>,
    #[serde(rename = "groups")]
    _groups: Option<IgnoredAny>,
    #[serde(rename = "omithosts")]
    _omithosts: Option<IgnoredAny>,
    #[serde(rename = "omitgroups")]
    _omitgroups: Option<IgnoredAny>,
    #[serde(rename = "hostorder")]
    _hostorder: Option<IgnoredAny>,
    #[serde(rename = "cluster")]
    _cluster: Option<IgnoredAny>,
    #[serde(rename = "env")]
    _env: Option<IgnoredAny>,
    #[serde(rename = "user")]
    _user: Option<IgnoredAny>,
    #[serde(rename = "account")]
    _account: Option<IgnoredAny>,
    #[serde(rename = "kind")]
    _kind: Option<IgnoredAny>,
    #[serde(rename = "notes")]
    _notes: Option<IgnoredAny>,
    #[serde(rename = "flags")]
    _flags: Option<IgnoredAny>,
    #[serde(rename = "email")]
    _email: Option<IgnoredAny>,
    #[serde(rename = "mailaddress")]
    _mailaddress: Option<IgnoredAny>,
    #[serde(rename = "max_cpus")]
    _max_cpus: Option<IgnoredAny>,
    #[serde(rename = "retrywork")]
    _retrywork: Option<IgnoredAny>,
    #[serde(rename = "retrywork_delay")]
    _retrywork_delay: Option<IgnoredAny>,
    #[serde(rename = "retrysubjob")]
    _retrysubjob: Option<IgnoredAny>,
    #[serde(rename = "retrysubjob_delay")]
    _retrysubjob_delay: Option<IgnoredAny>,
    #[serde(rename = "timeout")]
    _timeout: Option<IgnoredAny>,
}

/// The Qube job keys that a submission may carry and the engine ignores.
pub const IGNORED_JOB_KEYS: &[&str] = &[
    "prototype",
    "package",
    "priority",
    "reservations",
    "requirements",
    "restrictions",
    "hosts",
    "groups",
    "omithosts",
    "omitgroups",
    "hostorder",
    "cluster",
    "env",
    "user",
    "account",
    "kind",
    "notes",
    "flags",
    "email",
    "mailaddress",
    "max_cpus",
    "retrywork",
    "retrywork_delay",
    "retrysubjob",
    "retrysubjob_delay",
    "timeout",
];

/// A clock time: a non-negative integer, or a non-negative number with a fraction,
/// rounded down (spec §9: farms that keep time in floating seconds).
struct QubeTime(u64);

impl<'de> Deserialize<'de> for QubeTime {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(QubeTimeVisitor)
    }
}

struct QubeTimeVisitor;

impl<'de> Visitor<'de> for QubeTimeVisitor {
    type Value = QubeTime;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a non-negative Qube time in seconds")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(QubeTime(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // `u64::MAX as f64` rounds up to 2^64, which no `u64` holds: below it, the
        // truncating cast is the floor of a non-negative time.
        if v.is_finite() && v >= 0.0 && v < u64::MAX as f64 {
            Ok(QubeTime(v as u64))
        } else {
            Err(E::invalid_value(de::Unexpected::Float(v), &self))
        }
    }
}

/// A job's agenda: a list of items (names, numbers, or Qube work dicts with a `name`),
/// or a frame range string such as `1-100x5`.
#[derive(Debug, Default)]
enum AgendaWire<'a> {
    #[default]
    Empty,
    Items(Vec<TextOrNumber<'a>>),
    Range(Cow<'a, str>),
}

impl<'de: 'a, 'a> Deserialize<'de> for AgendaWire<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AgendaVisitor)
    }
}

struct AgendaVisitor;

impl<'de> Visitor<'de> for AgendaVisitor {
    type Value = AgendaWire<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of work names, numbers or work dicts, or a frame range such as \"1-100x5\"")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(AgendaWire::Range(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(AgendaWire::Range(Cow::Owned(v.to_string())))
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(WorkItem(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(AgendaWire::Items(items))
    }
}

/// One agenda item: a name, a number, or a work dict (`{"name": "5", "status": ...}`,
/// what `qb.genframes` returns) whose other keys are ignored.
struct WorkItem<'a>(TextOrNumber<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for WorkItem<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(WorkItemVisitor)
    }
}

struct WorkItemVisitor;

impl<'de> Visitor<'de> for WorkItemVisitor {
    type Value = WorkItem<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a work name, a non-negative integer or a work dict with a `name`")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        TextOrNumberVisitor.visit_u64(v).map(WorkItem)
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        TextOrNumberVisitor.visit_borrowed_str(v).map(WorkItem)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        TextOrNumberVisitor.visit_str(v).map(WorkItem)
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut name = None;
        while let Some(key) = map.next_key::<Text<'de>>()? {
            match &*key.0 {
                "name" if name.is_some() => return Err(de::Error::duplicate_field("name")),
                "name" => name = Some(map.next_value::<TextOrNumber<'de>>()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        name.map(WorkItem).ok_or_else(|| de::Error::missing_field("name"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallbackWire<'a> {
    triggers: Triggers,
    #[serde(default = "default_language", borrow)]
    language: Text<'a>,
    #[serde(borrow)]
    code: Text<'a>,
    maximum: Option<i64>,
}

fn default_language() -> Text<'static> {
    Text(Cow::Borrowed("qube"))
}

/// Most frames an agenda range string may expand to.
const AGENDA_RANGE_LIMIT: u64 = 1_000_000;

fn job_spec(j: JobWire<'_>, i: usize) -> Result<JobSpec, Error> {
    let status = match j.status.as_ref().map(|s| &*s.0) {
        None | Some("pending") => JobStatus::Pending,
        Some("blocked") => JobStatus::Blocked,
        Some(s) => {
            return Err(bad_field(format!("job {i}: unknown status `{s}`; expected pending or blocked")));
        }
    };
    let callbacks = j
        .callbacks
        .into_iter()
        .enumerate()
        .map(|(c, cb)| callback_spec(cb).map_err(|e| e.prefixed(&format!("job {i}, callback {c}"))))
        .collect::<Result<_, _>>()?;
    let subjobs = match (j.subjobs, j.cpus) {
        (Some(s), Some(c)) if s != c => {
            return Err(bad_field(format!("job {i}: `subjobs` {s} and `cpus` {c} disagree; expected one of them")));
        }
        (s, c) => s.or(c).unwrap_or(0),
    };
    let agenda = match j.agenda {
        AgendaWire::Empty => Vec::new(),
        AgendaWire::Items(items) => items.into_iter().map(TextOrNumber::into_text).collect(),
        AgendaWire::Range(range) => crate::front::frame_range(&range, AGENDA_RANGE_LIMIT)
            .map_err(|e| bad_field(format!("job {i}: agenda: {e}")))?,
    };
    Ok(JobSpec {
        id: j.id,
        name: j.name.0.into_owned(),
        label: j.label.map(|t| t.0.into_owned()),
        pgrp: j.pgrp,
        pid: j.pid,
        status,
        agenda,
        subjobs,
        dependency: j.dependency.map(|t| t.0.into_owned()),
        callbacks,
    })
}

fn callback_spec(c: CallbackWire<'_>) -> Result<CallbackSpec, Error> {
    let language = Language::parse(&c.language.0).ok_or_else(|| {
        bad_field(format!(
            "unknown language `{}`; expected qube, python, perl, mail, auto_wrangling or post",
            c.language.0
        ))
    })?;
    let maximum = match c.maximum {
        None | Some(-1) => None,
        Some(m) if m >= 0 => Some(m.unsigned_abs()),
        Some(m) => return Err(bad_field(format!("maximum {m}; expected -1 (unlimited) or a count >= 0"))),
    };
    Ok(CallbackSpec { triggers: c.triggers.0, language, code: c.code.0.into_owned(), maximum })
}

fn bad_field(message: String) -> Error {
    wire(WireFault::BadField, message)
}

// ---------------------------------------------------------------------------------------
// The line and events: hand-written visitors

/// A decoded line, borrowing from its text.
enum LineWire<'a> {
    Submit(Vec<JobWire<'a>>),
    /// A submission whose jobs were handed over as they were read, and the error of
    /// the first job that did not convert.
    Streamed(Option<Error>),
    Callback(CallbackWire<'a>),
    Event(EventWire<'a>),
    Time(u64),
    Remove(u64),
    RemoveCallback(u32),
    Explain(ExplainWire),
    Metrics,
    Satisfy(SatisfyWire),
    Rearm(RearmWire),
}

/// The value of a `satisfy` line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SatisfyWire {
    job: u64,
    callback: u32,
    #[serde(default)]
    atom: Option<String>,
}

/// The value of a `rearm` line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RearmWire {
    job: u64,
    callback: u32,
}

/// The value of an `explain` line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExplainWire {
    job: u64,
    #[serde(default)]
    work: Option<String>,
}

/// The value of a `metrics` line: `true`.
struct MetricsWire;

impl<'de> Deserialize<'de> for MetricsWire {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match bool::deserialize(d)? {
            true => Ok(MetricsWire),
            false => Err(de::Error::custom("expected `true`")),
        }
    }
}

impl LineWire<'_> {
    fn into_command(self) -> Result<Command, Error> {
        match self {
            LineWire::Submit(jobs) => {
                jobs.into_iter().enumerate().map(|(i, j)| job_spec(j, i)).collect::<Result<_, _>>().map(Command::Submit)
            }
            LineWire::Streamed(_) => Err(not_a_submission()),
            LineWire::Callback(c) => callback_spec(c).map(Command::Global),
            LineWire::Event(e) => e.into_event().map(Command::Event),
            LineWire::Time(t) => Ok(Command::Time(t)),
            LineWire::Remove(j) => Ok(Command::Remove(j)),
            LineWire::RemoveCallback(c) => Ok(Command::RemoveCallback(CallbackId::from_u32(c))),
            LineWire::Explain(e) => Ok(Command::Explain { job: e.job, work: e.work }),
            LineWire::Metrics => Ok(Command::Metrics),
            LineWire::Satisfy(w) => Ok(Command::Satisfy { job: w.job, callback: w.callback, atom: w.atom }),
            LineWire::Rearm(w) => Ok(Command::Rearm { job: w.job, callback: w.callback }),
        }
    }
}

/// The keys a line's object may start with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Submit,
    Callback,
    Event,
    Type,
    Job,
    Extra,
    Time,
    Remove,
    RemoveCallback,
    Explain,
    Metrics,
    Satisfy,
    Rearm,
}

impl Key {
    fn name(self) -> &'static str {
        match self {
            Key::Submit => "submit",
            Key::Callback => "callback",
            Key::Event => "event",
            Key::Type => "type",
            Key::Job => "job",
            Key::Extra => "extra",
            Key::Time => "time",
            Key::Remove => "remove",
            Key::RemoveCallback => "remove_callback",
            Key::Explain => "explain",
            Key::Metrics => "metrics",
            Key::Satisfy => "satisfy",
            Key::Rearm => "rearm",
        }
    }

    fn parse(text: &str) -> Option<Key> {
        Some(match text {
            "submit" => Key::Submit,
            "callback" => Key::Callback,
            "event" => Key::Event,
            "type" => Key::Type,
            "job" => Key::Job,
            "extra" => Key::Extra,
            "time" => Key::Time,
            "remove" => Key::Remove,
            "remove_callback" => Key::RemoveCallback,
            "explain" => Key::Explain,
            "metrics" => Key::Metrics,
            "satisfy" => Key::Satisfy,
            "rearm" => Key::Rearm,
            _ => return None,
        })
    }

    /// The bit of this key among an event's keys.
    fn event_bit(self) -> u8 {
        match self {
            Key::Event => 1,
            Key::Type => 2,
            Key::Job => 4,
            _ => 8,
        }
    }
}

/// A key as read: one we know (no allocation), or the text of one we do not.
enum KeyWire {
    Known(Key),
    Other(String),
}

impl KeyWire {
    fn name(&self) -> &str {
        match self {
            KeyWire::Known(k) => k.name(),
            KeyWire::Other(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for KeyWire {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_identifier(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = KeyWire;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Key::parse(v).map_or_else(|| KeyWire::Other(v.to_string()), KeyWire::Known))
    }
}

struct LineVisitor<'c> {
    ctx: &'c Ctx,
    /// Where a submission's jobs go as they are read, when streaming.
    jobs: Option<JobsSeed<'c>>,
}

impl<'de> Visitor<'de> for LineVisitor<'_> {
    type Value = LineWire<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a JSON object with one of {COMMANDS}")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let ctx = self.ctx;
        let key = match map.next_key::<KeyWire>()? {
            Some(KeyWire::Known(key)) => key,
            Some(KeyWire::Other(name)) => {
                return Err(ctx.fail(
                    WireFault::UnknownCommand,
                    format_args!("unknown command `{name}`; expected one of {COMMANDS}"),
                ))
            }
            None => {
                return Err(
                    ctx.fail(WireFault::UnknownCommand, format_args!("unknown command; expected one of {COMMANDS}"))
                )
            }
        };
        ctx.what.set(Some(match key {
            Key::Submit
            | Key::Callback
            | Key::Time
            | Key::Remove
            | Key::RemoveCallback
            | Key::Explain
            | Key::Metrics
            | Key::Satisfy
            | Key::Rearm => key.name(),
            Key::Event | Key::Type | Key::Job | Key::Extra => "event",
        }));
        let line = match (key, self.jobs) {
            (Key::Submit, Some(jobs)) => LineWire::Streamed(map.next_value_seed(jobs)?),
            (key, _) => match key {
                Key::Submit => LineWire::Submit(map.next_value()?),
                Key::Callback => LineWire::Callback(map.next_value()?),
                Key::Time => LineWire::Time(map.next_value::<QubeTime>()?.0),
                Key::Remove => LineWire::Remove(map.next_value()?),
                Key::RemoveCallback => LineWire::RemoveCallback(map.next_value()?),
                Key::Explain => LineWire::Explain(map.next_value()?),
                Key::Satisfy => LineWire::Satisfy(map.next_value()?),
                Key::Rearm => LineWire::Rearm(map.next_value()?),
                Key::Metrics => {
                    map.next_value::<MetricsWire>()?;
                    LineWire::Metrics
                }
                Key::Event | Key::Type | Key::Job | Key::Extra => {
                    return event_fields(key, map, ctx).map(LineWire::Event)
                }
            },
        };
        only(key, &mut map, ctx)?;
        Ok(line)
    }
}

/// After a one-key command: the object must end there.
fn only<'de, M: MapAccess<'de>>(key: Key, map: &mut M, ctx: &Ctx) -> Result<(), M::Error> {
    match map.next_key::<KeyWire>()? {
        None => Ok(()),
        Some(KeyWire::Known(k)) if k == key => {
            Err(ctx.fail(WireFault::DuplicateKey, format_args!("duplicate field `{}`", key.name())))
        }
        Some(other) => Err(ctx.fail(
            WireFault::UnknownKey,
            format_args!("`{}` takes no other keys; found `{}`", key.name(), other.name()),
        )),
    }
}

/// An event as written, borrowing its strings from the line.
struct EventWire<'a> {
    event: Text<'a>,
    ty: Text<'a>,
    job: u64,
    extra: Option<TextOrNumber<'a>>,
}

/// Reads an event's keys in any order, `first` being already read.
fn event_fields<'de, M: MapAccess<'de>>(first: Key, mut map: M, ctx: &Ctx) -> Result<EventWire<'de>, M::Error> {
    let (mut event, mut ty, mut job, mut extra) = (None, None, None, None);
    let mut seen = 0u8;
    let mut key = first;
    loop {
        if seen & key.event_bit() != 0 {
            return Err(
                ctx.fail(WireFault::DuplicateKey, format_args!("bad `event`: duplicate field `{}`", key.name()))
            );
        }
        seen |= key.event_bit();
        match key {
            Key::Event => event = Some(map.next_value::<Text<'de>>()?),
            Key::Type => ty = Some(map.next_value::<Text<'de>>()?),
            Key::Job => job = Some(map.next_value::<u64>()?),
            _ => extra = map.next_value::<Option<TextOrNumber<'de>>>()?,
        }
        key = match map.next_key::<KeyWire>()? {
            None => break,
            Some(KeyWire::Known(k @ (Key::Event | Key::Type | Key::Job | Key::Extra))) => k,
            Some(other) => {
                return Err(ctx.fail(
                    WireFault::UnknownKey,
                    format_args!(
                        "bad `event`: unknown field `{}`, expected one of `event`, `type`, `job`, `extra`",
                        other.name()
                    ),
                ))
            }
        };
    }
    let missing = |name: &str| -> M::Error {
        ctx.fail(WireFault::MissingField, format_args!("bad `event`: missing field `{name}`"))
    };
    Ok(EventWire {
        event: event.ok_or_else(|| missing("event"))?,
        ty: ty.ok_or_else(|| missing("type"))?,
        job: job.ok_or_else(|| missing("job"))?,
        extra,
    })
}

impl EventWire<'_> {
    fn into_event(self) -> Result<Event, Error> {
        self.into_event_in(&mut Vec::new())
    }

    fn into_event_in(self, spare: &mut Vec<String>) -> Result<Event, Error> {
        let ty = EventType::parse(&self.ty.0).ok_or_else(|| {
            bad_field(format!("unknown event type `{}`; expected job, work, subjob or host", self.ty.0))
        })?;
        let extra = match (ty, self.extra) {
            (EventType::Job, None) => EventExtra::None,
            (EventType::Job, Some(_)) => return Err(bad_field("a job event takes no `extra`".to_string())),
            (_, None) => {
                return Err(wire(WireFault::MissingField, format!("a {} event needs `extra`", ty.as_str())));
            }
            (EventType::Subjob, Some(TextOrNumber::Number(n))) => EventExtra::Subjob(n),
            (EventType::Subjob, Some(TextOrNumber::Text(t))) => EventExtra::Subjob(
                crate::syntax::parse_number(&t)
                    .ok_or_else(|| bad_field(format!("subjob extra `{t}` is not a decimal u64")))?,
            ),
            (EventType::Work, Some(x)) => EventExtra::Work(x.into_text_in(spare)),
            (_, Some(x)) => EventExtra::Host(x.into_text_in(spare)),
        };
        Ok(Event::named(&self.event.0, self.job, extra))
    }
}

#[cfg(test)]
mod tests {
    use super::{decode_full, plain_event, Command};

    /// Lines near the plain event form, and mutations of them: whenever the plain
    /// reader takes a line, it gives what the full decoder gives.
    #[test]
    fn the_plain_event_reader_agrees_with_the_full_decoder() {
        let seeds = [
            r#"{"event":"complete","type":"work","job":12,"extra":"7"}"#,
            r#"{ "extra" : 3 , "job": 0, "type": "subjob", "event": "Failed" }"#,
            r#"{"event":"running","type":"host","job":18446744073709551615,"extra":"render-01"}"#,
            r#"{"type":"job","event":"complete","job":5}"#,
            r#"{"event":"approved","type":"job","job":5}"#,
        ];
        let alphabet = b" \t\"{}:,0123456789-.eE\\abcjobxtrypwk\x01\xc3\xa9";
        let mut state = 7u64;
        // SplitMix64: mutations reproducible from the seed.
        let mut below = |n: u64| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((u128::from(z ^ (z >> 31)) * u128::from(n)) >> 64) as u64
        };
        let mut taken = 0;
        for seed in seeds {
            for round in 0..4000 {
                let mut bytes = seed.as_bytes().to_vec();
                for _ in 0..(round % 4) {
                    let at = below(bytes.len() as u64 + 1) as usize;
                    let b = alphabet[below(alphabet.len() as u64) as usize];
                    match below(3) {
                        0 => bytes.insert(at, b),
                        1 if at < bytes.len() => drop(bytes.remove(at)),
                        _ if at < bytes.len() => bytes[at] = b,
                        _ => {}
                    }
                }
                let Ok(line) = std::str::from_utf8(&bytes) else { continue };
                if let Some(event) = plain_event(line) {
                    taken += 1;
                    let fast = event.into_event().map(Command::Event);
                    assert_eq!(fast, decode_full(line), "{line}");
                }
            }
        }
        assert!(taken > 5000, "the plain reader took only {taken} lines");
    }
}
