//! The JSON-lines wire format of `trigwire run` (a documented contract; see README).
//!
//! Each input line is one submission, global callback, event, clock move, removal,
//! explanation, metrics request, or operator's satisfy or re-arm; each output line is
//! a submission, a warning, a firing, an explanation, the metrics, an operator's
//! answer or an error, tagged with the input line.
//! A rejected line changes nothing and the following lines are still processed.
//!
//! [`decode`] reads a line straight into a [`Command`] (module `decode`: borrowed
//! structs, no intermediate JSON tree); the `write_*` functions append output lines to
//! a byte buffer (module `write`: no JSON tree either); [`Replay`] runs lines through
//! an engine and collects the output bytes in an [`Output`], or writes them out as
//! they are produced ([`Replay::feed_writing`]).

mod decode;
mod write;

pub use decode::{decode, IGNORED_JOB_KEYS};
pub use write::{
    write_error, write_event, write_explained, write_fired, write_metrics, write_operated, write_str, write_submitted,
    write_u64, write_warning,
};

use crate::engine::{Engine, Metrics};
use crate::error::{Error, ErrorKind, LimitName};
use crate::front::model::{Event, EventExtra};
use crate::front::registry::Limits;
use crate::host::command::{Apply, Command, Outcome};
use std::io::{self, Write};

/// Most names [`Replay`] keeps for reuse: a batch's worth.
const SPARE_NAMES: usize = 4096;

/// How many output bytes [`Replay::feed_writing`] lets pile up before it writes them,
/// in the middle of a command if need be.
pub const WRITE_AT: usize = 64 * 1024;

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
    /// Work and host names of applied events, for the next events to reuse.
    spare: Vec<String>,
    /// The longest line accepted, in bytes ([`Limits::line_bytes`]).
    line_bytes: u64,
}

/// What replaying produces: output lines, and the same errors rendered for a person.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// The JSON output lines, in order, each ending in `\n`.
    pub bytes: Vec<u8>,
    /// Each rejected line's error, with the caret rendering.
    pub errors: Vec<String>,
    /// Each warning of an accepted submission, for a person: `line N: job J[, callback
    /// C]: MESSAGE` (the same warnings are output lines too).
    pub warnings: Vec<String>,
    /// The answer to the last `{"metrics": true}` line among these lines, for a host
    /// that also exports them (`trigwire run --metrics FILE`).
    pub metrics: Option<Metrics>,
}

impl Output {
    /// Empties both parts, keeping their memory.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.errors.clear();
        self.warnings.clear();
        self.metrics = None;
    }

    /// The output lines, without their `\n`.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        // The writer writes only `&str`s and ASCII, so every line is UTF-8.
        self.bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(|l| std::str::from_utf8(l).unwrap_or(""))
    }
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
        Replay {
            engine,
            line: 0,
            rejected: 0,
            pending: Vec::new(),
            pending_lines: Vec::new(),
            spare: Vec::new(),
            line_bytes: Limits::default().line_bytes,
        }
    }

    /// Sets the longest line accepted, in bytes, without its line end (default
    /// [`Limits::line_bytes`]); a longer line is rejected with
    /// [`ErrorKind::OverLimit`](crate::ErrorKind::OverLimit) and changes nothing. A host
    /// reading a stream need not read a long line whole: handing over its first
    /// `max + 1` bytes gets the same answer (`trigwire run` does so).
    pub fn limit_lines(&mut self, max: u64) {
        self.line_bytes = max;
    }

    /// The engine, for inspection.
    pub fn engine(&self) -> &A {
        &self.engine
    }

    /// How many lines were rejected so far.
    pub fn rejected(&self) -> usize {
        self.rejected
    }

    /// Replays a whole log and returns everything it wrote: the output lines and the
    /// human-readable errors. Lines are split at `\n`; a line that is not UTF-8 is
    /// rejected like bad JSON.
    pub fn run_bytes(&mut self, text: &[u8], mode: Mode) -> Output {
        let mut out = Output::default();
        let body = text.strip_suffix(b"\n").unwrap_or(text);
        for raw in body.split(|&b| b == b'\n') {
            self.feed(raw, mode, &mut out);
        }
        self.finish(&mut out);
        out
    }

    /// Replays one line (without its `\n`), appending to `out`. Output may be held back
    /// while a batch of events fills up; [`Replay::finish`] flushes it.
    pub fn feed(&mut self, raw: &[u8], mode: Mode, out: &mut Output) {
        self.feed_into(raw, mode, &mut Sink { output: out, to: None });
    }

    /// [`Replay::feed`], writing the output lines to `to` whenever more than
    /// [`WRITE_AT`] bytes of them are waiting, even in the middle of one command: one
    /// event's fan-out is held in memory only while it is written. What is left when
    /// the line is done stays in `out.bytes` for the caller to write, beside the errors
    /// and warnings.
    ///
    /// # Errors
    /// The first error writing to `to`; the line was still applied, and the bytes that
    /// could not be written are dropped.
    pub fn feed_writing(&mut self, raw: &[u8], mode: Mode, out: &mut Output, to: &mut dyn Write) -> io::Result<()> {
        let mut sink = Sink { output: out, to: Some((to, None)) };
        self.feed_into(raw, mode, &mut sink);
        sink.result()
    }

    /// Flushes the events held for a batch.
    pub fn finish(&mut self, out: &mut Output) {
        self.flush(&mut Sink { output: out, to: None });
    }

    /// [`Replay::finish`], writing as [`Replay::feed_writing`] does.
    ///
    /// # Errors
    /// The first error writing to `to`.
    pub fn finish_writing(&mut self, out: &mut Output, to: &mut dyn Write) -> io::Result<()> {
        let mut sink = Sink { output: out, to: Some((to, None)) };
        self.flush(&mut sink);
        sink.result()
    }

    fn feed_into(&mut self, raw: &[u8], mode: Mode, out: &mut Sink<'_, '_>) {
        self.line += 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.len() as u64 > self.line_bytes {
            self.flush(out);
            let e = line_too_long(self.line_bytes);
            reject(&mut self.rejected, self.line, &e, out.output);
            return;
        }
        if raw.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let text = std::str::from_utf8(raw).map_err(|e| decode::utf8_error(&e));
        if let Some(text) = text.as_ref().ok().copied().filter(|t| decode::starts_a_submission(t)) {
            self.flush(out);
            self.submit_streaming(text, out);
            return;
        }
        match text.and_then(|t| decode::decode_reusing(t, &mut self.spare)) {
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
                if let Err(e) = decoded.and_then(|c| self.apply(line, &c, out)) {
                    reject(&mut self.rejected, line, &e, out.output);
                }
            }
        }
    }

    fn flush(&mut self, out: &mut Sink<'_, '_>) {
        if self.pending.is_empty() {
            return;
        }
        let (pending, lines, rejected) = (&self.pending, &self.pending_lines, &mut self.rejected);
        self.engine.apply_all_to(pending, &mut |reply| {
            let line = lines[reply.command];
            match &reply.outcome {
                Outcome::Rejected(e) => reject(rejected, line, e, out.output),
                Outcome::Fired(f) => write_fired(&mut out.output.bytes, line, f, event_of(&pending[reply.command])),
                _ => {}
            }
            out.written();
        });
        self.recycle();
        self.pending_lines.clear();
    }

    /// Empties the batch, keeping its events' names for the next events to decode into.
    ///
    /// PERF: a string allocated and freed per event line was about a tenth of the wire's
    /// own cost per event (callgrind, `trigwire run --batch 4096` on 100k events).
    fn recycle(&mut self) {
        for command in self.pending.drain(..) {
            if let Command::Event(Event { extra: EventExtra::Work(name) | EventExtra::Host(name), .. }) = command {
                if self.spare.len() < SPARE_NAMES {
                    self.spare.push(name);
                }
            }
        }
    }

    /// A submission line, its jobs planned as they are decoded (see
    /// [`Apply::submit_each`]): the line is the only copy of its names the host holds.
    fn submit_streaming(&mut self, text: &str, out: &mut Sink<'_, '_>) {
        let line = self.line;
        let result = self.engine.submit_each(&mut |take| decode::decode_submission(text, take), &mut |outcome| {
            out.outcome(line, &outcome, None);
        });
        if let Err(e) = result {
            reject(&mut self.rejected, line, &e, out.output);
        }
    }

    fn apply(&mut self, line: usize, command: &Command, out: &mut Sink<'_, '_>) -> Result<(), Error> {
        let event = event_of(command);
        self.engine.apply_to(command, &mut |outcome| out.outcome(line, &outcome, event))
    }
}

/// Where a [`Replay`] puts its output: the [`Output`], and the writer its bytes go to
/// once [`WRITE_AT`] of them are waiting, with the first error writing them.
struct Sink<'o, 'w> {
    output: &'o mut Output,
    to: Option<(&'w mut dyn Write, Option<io::Error>)>,
}

impl Sink<'_, '_> {
    /// Writes one outcome's lines (a rejection is written by `reject`) and keeps what a
    /// host shows beside them: warnings rendered for a person, and the last metrics.
    /// `event` is the command's own event, which its firings name as their cause.
    fn outcome(&mut self, line: usize, outcome: &Outcome, event: Option<&Event>) {
        let out = &mut *self.output;
        match outcome {
            Outcome::Submitted(s) => {
                write_submitted(&mut out.bytes, line, s);
                s.warnings.iter().for_each(|w| write_warning(&mut out.bytes, line, w));
                out.warnings.extend(s.warnings.iter().map(|w| format!("line {line}: {w}")));
            }
            Outcome::Fired(f) => write_fired(&mut out.bytes, line, f, event),
            Outcome::Explained(e) => write_explained(&mut out.bytes, line, e),
            Outcome::Metrics(m) => {
                write_metrics(&mut out.bytes, line, m);
                out.metrics = Some(m.clone());
            }
            Outcome::Satisfied { job, callback } => write_operated(&mut out.bytes, line, "satisfied", *job, *callback),
            Outcome::Rearmed { job, callback } => write_operated(&mut out.bytes, line, "rearmed", *job, *callback),
            _ => {}
        }
        self.written();
    }

    /// Writes the bytes out once enough are waiting.
    fn written(&mut self) {
        let Some((to, error)) = &mut self.to else { return };
        let bytes = &mut self.output.bytes;
        if bytes.len() >= WRITE_AT {
            if error.is_none() {
                *error = to.write_all(bytes).err();
            }
            bytes.clear();
        }
    }

    fn result(self) -> io::Result<()> {
        match self.to {
            Some((_, Some(e))) => Err(e),
            _ => Ok(()),
        }
    }
}

/// Counts and writes a rejected line's error.
fn reject(rejected: &mut usize, line: usize, e: &Error, out: &mut Output) {
    *rejected += 1;
    write_error(&mut out.bytes, line, e);
    out.errors.push(format!("line {line}: {e}"));
}

/// The error for a line longer than `max` bytes: it points at the first byte past the
/// limit.
fn line_too_long(max: u64) -> Error {
    let message = format!(
        "the line is longer than the limit of {max} bytes (Limits::line_bytes, --max-line-bytes); byte {max} is past it"
    );
    let at = usize::try_from(max).unwrap_or(usize::MAX);
    Error::new(ErrorKind::OverLimit { limit: LimitName::LineBytes, max }, message)
        .spanned(crate::syntax::Span::new(at, at.saturating_add(1)))
}

fn event_of(command: &Command) -> Option<&Event> {
    match command {
        Command::Event(e) => Some(e),
        _ => None,
    }
}
