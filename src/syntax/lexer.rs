//! The lexer: the only file that names `logos`.
//!
//! Raw logos tokens are merged into the parser's own token stream: operators,
//! parentheses and atoms. An atom is a maximal run of words that are not operators,
//! with its inner spacing kept (spec §8 "Lexing").

use logos::Logos;

use super::error::{ParseError, ParseErrorKind};
use super::Span;

/// What the parser sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// `(`
    Open,
    /// `)`
    Close,
    /// `&&` or the word `and` (any case).
    And,
    /// `||` or the word `or` (any case).
    Or,
    /// A run of words between operators, trimmed.
    Atom,
}

/// A token and the bytes it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    /// Which token.
    pub kind: TokenKind,
    /// The byte range in the source.
    pub span: Span,
}

#[derive(Logos, Clone, Copy, Debug, PartialEq, Eq)]
enum Raw {
    #[token("(")]
    Open,
    #[token(")")]
    Close,
    #[token("&&")]
    AndAnd,
    #[token("||")]
    OrOr,
    #[regex(r"[\s]+")]
    Space,
    // A lone `&`, `|` or `"` is an ordinary character of a word.
    #[regex(r#"[^()&|"\s\x00-\x08\x0e-\x1f\x7f]+|&|\||""#)]
    Piece,
    // A quoted name, part of a word: operators, parentheses and spaces inside it are
    // text (`complete-work-self-"black and white"`). Only `\"` and `\\` escape.
    #[regex(r#""([^"\\\x00-\x08\x0e-\x1f\x7f]|\\["\\])*""#)]
    Quoted,
}

/// Splits `source` into tokens, stopping at the first character no token allows.
///
/// # Errors
/// A control character (other than white space) gives [`ParseErrorKind::ControlCharacter`].
pub fn lex(source: &str, out: &mut Vec<Token>) -> Result<(), ParseError> {
    lex_each(source, |t| out.push(t))
}

/// [`lex`], handing each token to `out`.
pub(crate) fn lex_each(source: &str, mut out: impl FnMut(Token)) -> Result<(), ParseError> {
    let mut words = WordMerger::default();
    for (raw, range) in Raw::lexer(source).spanned() {
        let span = Span::from(range);
        match raw {
            Ok(Raw::Piece | Raw::Quoted) => words.piece(span),
            Ok(Raw::Space) => words.space(source, &mut out),
            Ok(op) => {
                words.finish(source, &mut out);
                out(Token { kind: operator_kind(op), span });
            }
            // A quote that is never closed is not a quoted name: logos gives up on the
            // whole attempt, and its text is an ordinary piece of a word (the atom's
            // parser then says what is wrong with it).
            Err(()) if unclosed_quote(&source[span.range()]) => words.piece(span),
            Err(()) => {
                return Err(ParseError::new(ParseErrorKind::ControlCharacter, span, source));
            }
        }
    }
    words.finish(source, &mut out);
    Ok(())
}

/// Whether `text` is an unclosed quote and what follows it, with no control character.
fn unclosed_quote(text: &str) -> bool {
    text.starts_with('"') && !text.chars().any(|c| c.is_control() && !c.is_whitespace())
}

fn operator_kind(raw: Raw) -> TokenKind {
    match raw {
        Raw::Open => TokenKind::Open,
        Raw::Close => TokenKind::Close,
        Raw::AndAnd => TokenKind::And,
        _ => TokenKind::Or,
    }
}

/// Glues pieces into words and words into atoms.
#[derive(Default)]
struct WordMerger {
    /// The word being built (pieces with no space between them).
    word: Option<Span>,
    /// The atom being built (words separated by spaces).
    atom: Option<Span>,
}

impl WordMerger {
    fn piece(&mut self, span: Span) {
        self.word = Some(match self.word {
            Some(w) => Span::new(w.start, span.end),
            None => span,
        });
    }

    fn space(&mut self, source: &str, out: &mut impl FnMut(Token)) {
        self.end_word(source, out);
    }

    fn end_word(&mut self, source: &str, out: &mut impl FnMut(Token)) {
        let Some(word) = self.word.take() else { return };
        let text = &source[word.range()];
        let op = if text.eq_ignore_ascii_case("and") {
            Some(TokenKind::And)
        } else if text.eq_ignore_ascii_case("or") {
            Some(TokenKind::Or)
        } else {
            None
        };
        match op {
            Some(kind) => {
                self.end_atom(out);
                out(Token { kind, span: word });
            }
            None => {
                self.atom = Some(match self.atom {
                    Some(a) => Span::new(a.start, word.end),
                    None => word,
                });
            }
        }
    }

    fn end_atom(&mut self, out: &mut impl FnMut(Token)) {
        if let Some(span) = self.atom.take() {
            out(Token { kind: TokenKind::Atom, span });
        }
    }

    fn finish(&mut self, source: &str, out: &mut impl FnMut(Token)) {
        self.end_word(source, out);
        self.end_atom(out);
    }
}
