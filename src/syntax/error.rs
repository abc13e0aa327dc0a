//! Parse errors: a kind, a byte span and the source they point into.

use std::fmt;

use super::Span;

/// Why a trigger was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The trigger has no atoms at all.
    Empty,
    /// An operand is missing: `a && `, `|| a`, `()`.
    EmptyOperand,
    /// A `(` without its `)`.
    UnclosedParen,
    /// A `)` without its `(`.
    UnopenedParen,
    /// Two operands with no operator between them: `(a) b`.
    MissingOperator,
    /// An atom with fewer than three `-`: `complete-job`.
    MalformedAtom,
    /// An event name that is neither built in nor registered.
    UnknownName(String),
    /// A type other than job, work, subjob, host, time, repeat.
    UnknownType(String),
    /// The context is empty or not a valid label.
    BadContext(String),
    /// A work, subjob, host, time or repeat atom without its extra.
    MissingExtra,
    /// A job atom with an extra.
    ForbiddenExtra,
    /// An id, subjob, time or interval that is not decimal digits fitting in `u64`.
    BadNumber(String),
    /// A repeat interval of zero.
    ZeroInterval,
    /// Parentheses nested deeper than the configured limit.
    NestTooDeep {
        /// The configured limit.
        limit: u32,
    },
    /// More atoms than the configured limit.
    TooManyAtoms {
        /// The configured limit.
        limit: u32,
    },
    /// A trigger longer than the configured limit, in bytes.
    TooLong {
        /// The configured limit.
        limit: usize,
    },
    /// A control character (NUL and friends) outside white space.
    ControlCharacter,
    /// A quoted name that is not closed, is empty, or has an escape other than `\"`
    /// and `\\`.
    BadQuote,
}

/// A trigger that did not parse, with the offending bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    kind: ParseErrorKind,
    span: Span,
    source: String,
}

impl ParseError {
    pub(crate) fn new(kind: ParseErrorKind, span: Span, source: &str) -> ParseError {
        ParseError { kind, span, source: source.to_string() }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ParseErrorKind {
        &self.kind
    }

    /// The byte range of the offending text in the trigger.
    pub fn span(&self) -> Span {
        self.span
    }

    /// The trigger the span points into.
    pub fn source_text(&self) -> &str {
        &self.source
    }

    /// The message alone, without the caret rendering.
    pub fn message(&self) -> String {
        self.kind.to_string()
    }
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ParseErrorKind::*;
        match self {
            Empty => write!(f, "empty trigger; expected an atom such as `complete-job-self`"),
            EmptyOperand => write!(f, "missing operand; expected an atom or `(`"),
            UnclosedParen => write!(f, "unclosed `(`; expected `)`"),
            UnopenedParen => write!(f, "unexpected `)` with no matching `(`"),
            MissingOperator => write!(f, "missing operator; expected `&&`, `||`, `and` or `or`"),
            MalformedAtom => {
                write!(f, "malformed atom; expected NAME-TYPE-CONTEXT[-EXTRA], globaltime-T or globalrepeat-T-I")
            }
            UnknownName(n) => write!(
                f,
                "unknown event name `{n}`; expected one of submit, complete, failed, killed, done, \
                 blocked, running, waiting, assigned, removed, modified, timeout, dummy \
                 or a registered custom name"
            ),
            UnknownType(t) => write!(f, "unknown type `{t}`; expected one of job, work, subjob, host, time, repeat"),
            BadContext(c) => write!(f, "bad context `{c}`; expected self, parent, a job id or a label"),
            MissingExtra => write!(f, "missing extra; this type needs `-EXTRA` (a name, id, time or `*`)"),
            ForbiddenExtra => write!(f, "job atoms take no extra; expected NAME-job-CONTEXT or NAME-job-CONTEXT-*"),
            BadNumber(n) => write!(f, "bad number `{n}`; expected decimal digits that fit in u64"),
            ZeroInterval => write!(f, "repeat interval must be greater than zero"),
            NestTooDeep { limit } => write!(f, "parentheses nested deeper than the limit of {limit}"),
            TooManyAtoms { limit } => write!(f, "more atoms than the limit of {limit}"),
            TooLong { limit } => write!(f, "trigger longer than the limit of {limit} bytes"),
            ControlCharacter => write!(f, "control character in trigger; expected printable text"),
            BadQuote => write!(
                f,
                "bad quoted name; expected \"NAME\" with \\\" for a quote and \\\\ for a backslash, \
                 closed and not empty"
            ),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.kind)?;
        render_caret(f, &self.source, self.span)
    }
}

impl std::error::Error for ParseError {}

/// Longest piece of a source line shown on either side of the span.
const WINDOW: usize = 60;

/// Writes the line holding `span`, clipped around it, with `^^^` under the span.
pub(crate) fn render_caret(f: &mut dyn fmt::Write, source: &str, span: Span) -> fmt::Result {
    // A span that cuts a character is widened to whole characters.
    let start = floor_char(source, span.start.min(source.len()));
    let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = source[start..].find('\n').map_or(source.len(), |i| start + i);
    let end = ceil_char(source, span.end.clamp(start, line_end));
    let from = floor_char(source, start.saturating_sub(WINDOW).max(line_start));
    let to = ceil_char(source, (end + WINDOW).min(line_end));
    let prefix = if from > line_start { "..." } else { "" };
    let suffix = if to < line_end { "..." } else { "" };
    let line_no = source[..line_start].matches('\n').count() + 1;
    let pad = " ".repeat(line_no.to_string().len());
    let lead = prefix.len() + source[from..start].chars().count();
    let width = source[start..end].chars().count().max(1);
    writeln!(f, "{pad} |")?;
    writeln!(f, "{line_no} | {prefix}{}{suffix}", &source[from..to])?;
    writeln!(f, "{pad} | {}{}", " ".repeat(lead), "^".repeat(width.min(2 * WINDOW)))
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}
