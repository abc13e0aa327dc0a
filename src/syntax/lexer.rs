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
    // A lone `&` or `|` is an ordinary character of a word.
    #[regex(r#"[^()&|"\s\x00-\x08\x0e-\x1f\x7f]+|&|\|"#)]
    Piece,
    // A quote: right after an atom's third `-`, with the rest of a quoted name when one
    // is closed (see `quoted_len`); else an ordinary character of a word.
    #[token("\"")]
    Quote,
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
    let mut lexer = Raw::lexer(source);
    while let Some(raw) = lexer.next() {
        let span = Span::from(lexer.span());
        match raw {
            Ok(Raw::Piece) => words.piece(span),
            Ok(Raw::Quote) => {
                // A closed quoted name right after an atom's third `-` (where its extra
                // starts) is one piece of a word: operators, parentheses and spaces
                // inside it are text (`complete-work-self-"black and white"`). Anywhere
                // else a quote is an ordinary character, so that one inside a word never
                // swallows the operators up to a later quote.
                let atom = &source[words.atom_start().unwrap_or(span.start)..span.start];
                let opens = atom.ends_with('-') && atom.matches('-').count() == 3;
                let rest = if opens { quoted_len(&source[span.end..]).unwrap_or(0) } else { 0 };
                lexer.bump(rest);
                words.piece(Span::new(span.start, span.end + rest));
            }
            Ok(Raw::Space) => words.space(source, &mut out),
            Ok(op) => {
                words.finish(source, &mut out);
                out(Token { kind: operator_kind(op), span });
            }
            Err(()) => {
                return Err(ParseError::new(ParseErrorKind::ControlCharacter, span, source));
            }
        }
    }
    words.finish(source, &mut out);
    Ok(())
}

/// After an opening quote: the length of the quoted name's rest, closing quote included,
/// where `\"` and `\\` are its only escapes and no character that no token allows
/// occurs; `None` if the quote is not closed so.
fn quoted_len(rest: &str) -> Option<usize> {
    let mut chars = rest.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Some(at + 1),
            '\\' => match chars.next() {
                Some((_, '"' | '\\')) => {}
                _ => return None,
            },
            // The characters no token allows (see `Raw::Piece`), and only those.
            '\x00'..='\x08' | '\x0e'..='\x1f' | '\x7f' => return None,
            _ => {}
        }
    }
    None
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
    /// Where the atom being built starts, if one is.
    fn atom_start(&self) -> Option<usize> {
        self.atom.or(self.word).map(|s| s.start)
    }

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
