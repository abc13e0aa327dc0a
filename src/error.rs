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

/// An error with the place it points to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    span: Option<Span>,
    source: Option<String>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error { kind, message: message.into(), span: None, source: None }
    }

    pub(crate) fn at(mut self, span: Span, source: &str) -> Error {
        self.span = Some(span);
        self.source = Some(source.to_string());
        self
    }

    /// Points at bytes of a text that cannot be shown (not UTF-8).
    pub(crate) fn spanned(mut self, span: Span) -> Error {
        self.span = Some(span);
        self
    }

    /// Wraps a parse error, prefixing where the trigger came from.
    pub(crate) fn parse(err: ParseError, place: &str) -> Error {
        Error {
            kind: ErrorKind::Parse(err.kind().clone()),
            message: format!("{place}: {}", err.message()),
            span: Some(err.span()),
            source: Some(err.source_text().to_string()),
        }
    }

    pub(crate) fn prefixed(mut self, place: &str) -> Error {
        self.message = format!("{place}: {}", self.message);
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The message, without the caret rendering.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The byte span in [`Error::source_text`], where the error points into a text.
    pub fn span(&self) -> Option<Span> {
        self.span
    }

    /// The trigger or attribute the span points into.
    pub fn source_text(&self) -> Option<&str> {
        self.source.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        match (&self.source, self.span) {
            (Some(source), Some(span)) => render_caret(f, source, span),
            _ => Ok(()),
        }
    }
}

impl std::error::Error for Error {}
