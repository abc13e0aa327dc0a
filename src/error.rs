//! The engine's error type: what was rejected, why, and where in which text.

use std::fmt;

use crate::syntax::{render_caret, ParseError, Span};

/// Why the engine rejected a submission, event, clock move or removal.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A trigger did not parse.
    Parse(crate::syntax::ParseErrorKind),
    /// A `dependency` item is malformed.
    Dependency,
    /// A submission with no jobs.
    EmptySubmission,
    /// A job id that is 0, live, repeated in the submission, or past `u64::MAX`.
    BadJobId,
    /// A `pgrp` that names no live process group.
    UnknownGroup,
    /// A label that is not a valid trigger context, or is taken in its group.
    BadLabel,
    /// `parent` on a job without `pid`, or `self`/`parent`/a label in a global callback.
    BadContext,
    /// A qube code that is not one of spec §6.
    UnknownCode,
    /// A maximum below -1, a subjob count over the limit, or a similar bad value.
    BadValue,
    /// An event with an unknown name or a name that cannot be reported (`done`).
    BadEvent,
    /// The clock asked to move back.
    ClockBackwards,
    /// A clock move that would fire more ticks than the configured limit.
    TooManyTicks {
        /// The configured limit.
        limit: u64,
    },
    /// Removing a job that is not live.
    UnknownJob,
    /// More than 2^32 callbacks registered over the engine's life.
    IdSpaceExhausted,
    /// A line of the wire format (`trigwire run`) that does not decode into a command.
    Wire(WireFault),
    /// A snapshot that cannot be restored: damaged, truncated, foreign, of a newer
    /// format version, or describing a state the engine cannot be in.
    Snapshot {
        /// The byte of the input where the fault was found.
        offset: u64,
    },
    /// Reading or writing a snapshot failed in the operating system.
    Io,
}

/// What is wrong with a line of the wire format, before it reaches the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WireFault {
    /// The line is not UTF-8.
    BadUtf8,
    /// The line is not JSON (the span points at the first byte that is not).
    BadJson,
    /// The line is JSON but not an object.
    NotAnObject,
    /// The object names none of the commands (`submit`, `callback`, `event`, `time`,
    /// `remove`).
    UnknownCommand,
    /// A key that the command or object does not take.
    UnknownKey,
    /// A key given twice in the same object.
    DuplicateKey,
    /// A required key is absent.
    MissingField,
    /// A value of the wrong type, or one outside what the field accepts.
    BadField,
}

/// An error with the place it points to: the bytes of the offending text, and which
/// job, callback, trigger and field of a submission it is about, through accessors
/// ([`Error::job`], [`Error::callback`], [`Error::trigger`], [`Error::field`]), so a
/// host need not take the message apart.
///
/// One pointer wide, so that a `Result<(), Error>` on the per-event path costs nothing
/// when there is no error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    inner: Box<Inner>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Inner {
    kind: ErrorKind,
    message: String,
    span: Option<Span>,
    source: Option<String>,
    place: Place,
}

/// Which part of a command an error is about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Place {
    job: Option<(usize, u64)>,
    callback: Option<usize>,
    trigger: Option<usize>,
    field: Option<&'static str>,
}

/// # Building errors
///
/// The engine builds its errors with these methods, and so can an independent
/// implementation of the specification (the reference semantics of the tools crate, a
/// host in another language) that must reject what the engine rejects with the same
/// error: kind, message, span and place. Start from [`Error::new`] (or [`Error::parse`]
/// for a trigger that did not parse), then note where it points: [`Error::at`] for the
/// bytes of a text, [`Error::in_field`], [`Error::in_trigger`], [`Error::in_callback`]
/// and [`Error::in_job`] (or [`Error::in_job_at`]) for the place in a submission, from
/// the inside out. `in_callback` and `in_job` also prefix the message with the place,
/// as the engine's messages read.
///
/// ```
/// use trigwire::{Error, ErrorKind};
///
/// let code = "unblock-wrok-self";
/// let err = Error::new(ErrorKind::UnknownCode, format!("unknown qube code `{code}`"))
///     .at(trigwire::syntax::Span { start: 0, end: code.len() }, code)
///     .in_field("code")
///     .in_callback(2)
///     .in_job(0, 7);
/// assert_eq!(err.message(), "job 0 (id 7): callback 2: unknown qube code `unblock-wrok-self`");
/// assert_eq!((err.job(), err.callback(), err.field()), (Some((0, 7)), Some(2), Some("code")));
/// assert_eq!(err.source_text(), Some(code));
/// ```
impl Error {
    /// An error of `kind` with `message` (what was rejected and what was expected), not
    /// yet pointing anywhere.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error::from(Inner { kind, message: message.into(), span: None, source: None, place: Place::default() })
    }

    /// Wraps a parse error of a trigger: kind [`ErrorKind::Parse`], the parse error's
    /// span and text, field `triggers`, and the message prefixed with `place` (the engine
    /// says `trigger`, or `trigger N` for the element `N` of a list of triggers, which it
    /// also notes with [`Error::in_trigger`]).
    pub fn parse(err: ParseError, place: &str) -> Error {
        Error::from(Inner {
            kind: ErrorKind::Parse(err.kind().clone()),
            message: format!("{place}: {}", err.message()),
            span: Some(err.span()),
            source: Some(err.source_text().to_string()),
            place: Place { field: Some("triggers"), ..Place::default() },
        })
    }

    /// Points the error at the bytes `span` of `source` (a trigger, an attribute, a
    /// line), which `Display` draws with a caret under them.
    pub fn at(mut self, span: Span, source: &str) -> Error {
        self.inner.span = Some(span);
        self.inner.source = Some(source.to_string());
        self
    }

    /// Points at bytes of a text that cannot be shown (not UTF-8).
    pub(crate) fn spanned(mut self, span: Span) -> Error {
        self.inner.span = Some(span);
        self
    }

    /// Notes the field of a job or callback that the error is about, as the wire format
    /// names it (see [`Error::field`]). The message is unchanged.
    pub fn in_field(mut self, field: &'static str) -> Error {
        self.inner.place.field = Some(field);
        self
    }

    /// Notes the element of a callback's list of triggers that the error is about. The
    /// message is unchanged.
    pub fn in_trigger(mut self, position: usize) -> Error {
        self.inner.place.trigger = Some(position);
        self
    }

    /// Notes the callback (its position in the job's `callbacks`) and prefixes the
    /// message with `callback {position}: `.
    pub fn in_callback(mut self, position: usize) -> Error {
        self.inner.place.callback = Some(position);
        self.prefixed(&format!("callback {position}"))
    }

    /// Notes the job (its position in the submission, its id) and prefixes the message
    /// with `job {position} (id {id}): `.
    pub fn in_job(mut self, position: usize, id: u64) -> Error {
        self.inner.place.job = Some((position, id));
        self.prefixed(&format!("job {position} (id {id})"))
    }

    /// Notes the job's position alone, for an error that arises before the job has an
    /// id (such as a bad `id` or `pgrp`): [`Error::job`] reads `(position, 0)`. The
    /// message is unchanged, and a job already noted is kept.
    pub fn in_job_at(mut self, position: usize) -> Error {
        self.inner.place.job = self.inner.place.job.or(Some((position, 0)));
        self
    }

    pub(crate) fn prefixed(mut self, place: &str) -> Error {
        self.inner.message = format!("{place}: {}", self.inner.message);
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.inner.kind
    }

    /// The message, without the caret rendering.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The byte span in [`Error::source_text`], where the error points into a text.
    pub fn span(&self) -> Option<Span> {
        self.inner.span
    }

    /// The trigger or attribute the span points into.
    pub fn source_text(&self) -> Option<&str> {
        self.inner.source.as_deref()
    }

    /// The job the error is about: its position in the submission and its id (0 when
    /// the error arose before the job had an id, such as a bad job id).
    pub fn job(&self) -> Option<(usize, u64)> {
        self.inner.place.job
    }

    /// The callback the error is about: its position in the job's `callbacks`.
    pub fn callback(&self) -> Option<usize> {
        self.inner.place.callback
    }

    /// The element of the callback's list of triggers the error is about, when the
    /// callback has more than one.
    pub fn trigger(&self) -> Option<usize> {
        self.inner.place.trigger
    }

    /// The field the error is about, as the wire format names it: `id`, `pgrp`,
    /// `label`, `subjobs`, `dependency`, `triggers`, `code` or `maximum`.
    pub fn field(&self) -> Option<&'static str> {
        self.inner.place.field
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.inner.message)?;
        match (&self.inner.source, self.inner.span) {
            (Some(source), Some(span)) => render_caret(f, source, span),
            _ => Ok(()),
        }
    }
}

impl std::error::Error for Error {}

impl From<Inner> for Error {
    fn from(inner: Inner) -> Error {
        Error { inner: Box::new(inner) }
    }
}
