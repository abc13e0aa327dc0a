//! Trigger syntax: lexing, parsing and printing (spec §2).
//!
//! This stage knows nothing of jobs or the engine. [`parse`] turns text into an
//! [`Expr`] whose atoms carry byte spans, or a [`ParseError`] that renders with a caret
//! under the offending bytes. Cost: one pass of the logos DFA over the bytes, then one
//! recursive-descent pass over the tokens; memory is linear in the input and the
//! recursion depth is bounded by [`ParseLimits::nest`].

mod ast;
mod error;
mod lexer;
mod parser;
mod print;

pub(crate) use ast::word_enum;
pub use ast::{Atom, AtomKind, Context, EventName, EventType, Expr, Extra, Name, Schedule, UnknownWord};
pub use error::{ParseError, ParseErrorKind};
pub use lexer::{lex, Token, TokenKind};
pub(crate) use parser::parse_u64 as parse_number;
pub use parser::{is_label, parse, CustomNames, ParseLimits};

pub(crate) use error::render_caret;

/// A byte range `start..end` in a source text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// The range `start..end`.
    pub const fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    /// As a `Range` for slicing.
    pub fn range(self) -> std::ops::Range<usize> {
        self.start..self.end
    }
}

impl From<std::ops::Range<usize>> for Span {
    fn from(r: std::ops::Range<usize>) -> Span {
        Span::new(r.start, r.end)
    }
}
