//! The JSON-lines wire format of `trigwire run` (a documented contract; see README).
//!
//! Each input line is one submission, global callback, event, clock move or removal;
//! each output line is a submission, a firing or an error, tagged with the input line.
//! A rejected line changes nothing and the following lines are still processed.
//!
//! [`decode`] reads a line straight into a [`Command`] (module `decode`: borrowed
//! structs, no intermediate JSON tree); the `write_*` functions append output lines to
//! a byte buffer (module `write`: no JSON tree either); [`Replay`] runs lines through
//! an engine and collects the output bytes in an [`Output`].

mod decode;
mod write;

pub use decode::{decode, IGNORED_JOB_KEYS};
pub use write::{write_error, write_event, write_fired, write_str, write_submitted, write_u64};

use crate::engine::Engine;
use crate::error::{Error, ErrorKind, LimitName};
use crate::front::model::{Event, EventExtra};
use crate::front::registry::Limits;
use crate::host::command::{Apply, Command, Outcome, Reply};

/// Most names [`Replay`] keeps for reuse: a batch's worth.
const SPARE_NAMES: usize = 4096;

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
    /// Scratch buffers, reused from one command or batch to the next.
    replies: Vec<Reply>,
    outcomes: Vec<Outcome>,
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
}

impl Output {
    /// Empties both parts, keeping their memory.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.errors.clear();
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
            replies: Vec::new(),
            outcomes: Vec::new(),
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
        self.line += 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.len() as u64 > self.line_bytes {
            self.flush(out);
            let e = line_too_long(self.line_bytes);
            self.reject(self.line, &e, out);
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
                if let Err(e) = decoded.and_then(|c| self.apply(line, &c, &mut out.bytes)) {
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
                Outcome::Fired(f) => write_fired(&mut out.bytes, line, f, event_of(&self.pending[reply.command])),
                _ => {}
            }
        }
        replies.clear();
        self.replies = replies;
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
    fn submit_streaming(&mut self, text: &str, out: &mut Output) {
        let line = self.line;
        let mut outcomes = std::mem::take(&mut self.outcomes);
        outcomes.clear();
        let result = self.engine.submit_each(&mut |take| decode::decode_submission(text, take), &mut outcomes);
        write_outcomes(&mut out.bytes, line, &outcomes, None);
        self.outcomes = outcomes;
        if let Err(e) = result {
            self.reject(line, &e, out);
        }
    }

    fn apply(&mut self, line: usize, command: &Command, out: &mut Vec<u8>) -> Result<(), Error> {
        let mut outcomes = std::mem::take(&mut self.outcomes);
        outcomes.clear();
        let result = self.engine.apply(command, &mut outcomes);
        write_outcomes(out, line, &outcomes, event_of(command));
        self.outcomes = outcomes;
        result
    }

    fn reject(&mut self, line: usize, e: &Error, out: &mut Output) {
        self.rejected += 1;
        write_error(&mut out.bytes, line, e);
        out.errors.push(format!("line {line}: {e}"));
    }
}

/// Writes the lines of one command's outcomes; `event` is the command's own event, which
/// its firings name as their cause. A rejection is written by `Replay::reject`.
fn write_outcomes(out: &mut Vec<u8>, line: usize, outcomes: &[Outcome], event: Option<&Event>) {
    for outcome in outcomes {
        match outcome {
            Outcome::Submitted(s) => write_submitted(out, line, s),
            Outcome::Fired(f) => write_fired(out, line, f, event),
            _ => {}
        }
    }
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
