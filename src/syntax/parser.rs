//! A recursive-descent parser with a binding-power table for `&&` and `||`.

use super::ast::{Atom, AtomKind, Context, EventName, EventType, Expr, Extra, Name, Schedule};
use super::error::{ParseError, ParseErrorKind as Kind};
use super::lexer::{lex_each, Token, TokenKind};
use super::Span;

/// Bounds that keep hostile triggers cheap. Each one fails with an error naming it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseLimits {
    /// Deepest parenthesis nesting. Default 128: deeper than any hand-written trigger,
    /// shallow enough that the recursive parser cannot overflow a thread's stack.
    pub nest: u32,
    /// Most atoms in one trigger. Default 1024: frame triggers have a handful; the
    /// circuit of a trigger is linear in its atoms.
    pub atoms: u32,
    /// Longest trigger in bytes. Default 65,536.
    pub length: usize,
}

impl Default for ParseLimits {
    fn default() -> ParseLimits {
        ParseLimits { nest: 128, atoms: 1024, length: 65_536 }
    }
}

/// Event names the host registered on top of the built-in ones (stored lowercase).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CustomNames {
    sorted: Vec<Box<str>>,
}

impl CustomNames {
    /// Adds a name; returns false if it was there already or is built in.
    pub fn insert(&mut self, name: &str) -> bool {
        let lower = name.to_ascii_lowercase();
        if EventName::parse(&lower).is_some() {
            return false;
        }
        match self.sorted.binary_search_by(|n| (**n).cmp(lower.as_str())) {
            Ok(_) => false,
            Err(at) => {
                self.sorted.insert(at, lower.into_boxed_str());
                true
            }
        }
    }

    /// The registered spelling of `name`, ignoring ASCII case.
    pub fn get(&self, name: &str) -> Option<&str> {
        let lower = name.to_ascii_lowercase();
        self.sorted.binary_search_by(|n| (**n).cmp(lower.as_str())).ok().map(|i| &*self.sorted[i])
    }

    /// The names, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.sorted.iter().map(|s| &**s)
    }
}

/// Parses one trigger.
///
/// # Errors
/// Every fault of spec §2, with the byte span of the offending text.
///
/// # Example
/// ```
/// use trigwire::syntax::{parse, CustomNames, ParseLimits};
/// let expr = parse("complete-work-ribgen-5 && complete-work-render-5",
///                  &ParseLimits::default(), &CustomNames::default())?;
/// assert_eq!(expr.to_string(), "complete-work-ribgen-5 && complete-work-render-5");
/// # Ok::<(), trigwire::syntax::ParseError>(())
/// ```
pub fn parse(source: &str, limits: &ParseLimits, custom: &CustomNames) -> Result<Expr, ParseError> {
    if source.len() > limits.length {
        let kind = Kind::TooLong { limit: limits.length };
        return Err(ParseError::new(kind, Span::new(0, 0), ""));
    }
    // PERF: a typical trigger has a handful of tokens; keeping them on the stack saves
    // an allocation per registered callback.
    let mut tokens = smallvec::SmallVec::<[Token; 16]>::new();
    lex_each(source, |t| tokens.push(t))?;
    let mut p = Parser { source, tokens: &tokens, pos: 0, depth: 0, atoms: 0, limits, custom };
    p.trigger()
}

struct Parser<'a> {
    source: &'a str,
    tokens: &'a [Token],
    pos: usize,
    depth: u32,
    atoms: u32,
    limits: &'a ParseLimits,
    custom: &'a CustomNames,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    And,
    Or,
}

/// The binding-power table: higher binds tighter; both operators are left-associative.
fn binding_power(kind: TokenKind) -> Option<(u8, Op)> {
    match kind {
        TokenKind::Or => Some((1, Op::Or)),
        TokenKind::And => Some((2, Op::And)),
        _ => None,
    }
}

impl<'a> Parser<'a> {
    fn trigger(&mut self) -> Result<Expr, ParseError> {
        if self.tokens.is_empty() {
            return Err(self.error(Kind::Empty, Span::new(0, self.source.len())));
        }
        let expr = self.expr(0)?;
        match self.peek() {
            None => Ok(expr),
            Some(t) if t.kind == TokenKind::Close => Err(self.error(Kind::UnopenedParen, t.span)),
            Some(t) => Err(self.error(Kind::MissingOperator, t.span)),
        }
    }

    /// `expr(min)`: operands joined by operators that bind at least as tightly as `min`.
    fn expr(&mut self, min_bp: u8) -> Result<Expr, ParseError> {
        let mut lhs = self.primary()?;
        let mut chain: Option<Op> = None;
        while let Some((bp, op)) = self.peek().and_then(|t| binding_power(t.kind)) {
            if bp < min_bp {
                break;
            }
            self.pos += 1;
            let rhs = self.expr(bp + 1)?;
            lhs = join(lhs, rhs, op, chain == Some(op));
            chain = Some(op);
        }
        Ok(lhs)
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let Some(token) = self.peek() else {
            let end = self.source.len();
            return Err(self.error(Kind::EmptyOperand, Span::new(end, end)));
        };
        match token.kind {
            TokenKind::Atom => {
                self.pos += 1;
                self.atom(token.span).map(Expr::Atom)
            }
            TokenKind::Open => self.group(token),
            _ => Err(self.error(Kind::EmptyOperand, token.span)),
        }
    }

    fn group(&mut self, open: Token) -> Result<Expr, ParseError> {
        if self.depth >= self.limits.nest {
            return Err(self.error(Kind::NestTooDeep { limit: self.limits.nest }, open.span));
        }
        self.pos += 1;
        self.depth += 1;
        let inner = self.expr(0)?;
        self.depth -= 1;
        match self.peek() {
            Some(t) if t.kind == TokenKind::Close => {
                self.pos += 1;
                Ok(inner)
            }
            Some(t) if t.kind != TokenKind::Close => Err(self.error(Kind::MissingOperator, t.span)),
            _ => Err(self.error(Kind::UnclosedParen, open.span)),
        }
    }

    fn atom(&mut self, span: Span) -> Result<Atom, ParseError> {
        self.atoms += 1;
        if self.atoms > self.limits.atoms {
            return Err(self.error(Kind::TooManyAtoms { limit: self.limits.atoms }, span));
        }
        let kind = AtomParser { source: self.source, span, custom: self.custom }.parse()?;
        Ok(Atom { kind, span })
    }

    fn peek(&self) -> Option<Token> {
        self.tokens.get(self.pos).copied()
    }

    fn error(&self, kind: Kind, span: Span) -> ParseError {
        ParseError::new(kind, span, self.source)
    }
}

/// Joins two operands; `extend` continues an unparenthesised chain of the same operator.
fn join(lhs: Expr, rhs: Expr, op: Op, extend: bool) -> Expr {
    match (op, lhs) {
        (Op::And, Expr::And(mut xs)) if extend => {
            xs.push(rhs);
            Expr::And(xs)
        }
        (Op::Or, Expr::Or(mut xs)) if extend => {
            xs.push(rhs);
            Expr::Or(xs)
        }
        (Op::And, lhs) => Expr::And(vec![lhs, rhs]),
        (Op::Or, lhs) => Expr::Or(vec![lhs, rhs]),
    }
}

/// Splits one atom at its first three `-` and checks each part.
struct AtomParser<'a> {
    source: &'a str,
    span: Span,
    custom: &'a CustomNames,
}

/// One `-`-separated part of an atom, with its absolute span.
#[derive(Clone, Copy)]
struct Part<'a> {
    text: &'a str,
    span: Span,
}

impl<'a> AtomParser<'a> {
    fn parse(&self) -> Result<AtomKind, ParseError> {
        let (head, rest) = self.split();
        if head.text.eq_ignore_ascii_case("globaltime") || head.text.eq_ignore_ascii_case("globalrepeat") {
            return self.global(head.text, rest[0]);
        }
        let (Some(ty), Some(ctx)) = (rest[0], rest[1]) else {
            return Err(self.error(Kind::MalformedAtom, self.span));
        };
        let name = self.name(head)?;
        let context = self.context(ctx)?;
        let extra = rest[2];
        if let Some(ty) = EventType::parse(ty.text) {
            let extra = self.extra(ty, extra)?;
            return Ok(AtomKind::Event { name, ty, context, extra });
        }
        if ty.text.eq_ignore_ascii_case("time") {
            let t = self.number(self.require(extra)?)?;
            Ok(AtomKind::Clock { owner: Some((name, context)), schedule: Schedule::At(t) })
        } else if ty.text.eq_ignore_ascii_case("repeat") {
            let schedule = self.repeat(self.require(extra)?)?;
            Ok(AtomKind::Clock { owner: Some((name, context)), schedule })
        } else {
            Err(self.error(Kind::UnknownType(ty.text.to_string()), ty.span))
        }
    }

    /// `globaltime-T` or `globalrepeat-T-I`: everything after the first `-` is the time.
    fn global(&self, head: &str, first: Option<Part<'a>>) -> Result<AtomKind, ParseError> {
        let Some(first) = first else {
            return Err(self.error(Kind::MissingExtra, Span::new(self.span.end, self.span.end)));
        };
        let rest = Part {
            text: &self.source[first.span.start..self.span.end],
            span: Span::new(first.span.start, self.span.end),
        };
        let schedule =
            if head.eq_ignore_ascii_case("globaltime") { Schedule::At(self.number(rest)?) } else { self.repeat(rest)? };
        Ok(AtomKind::Clock { owner: None, schedule })
    }

    /// The part before the first `-`, then up to three more: the last takes the rest.
    fn split(&self) -> (Part<'a>, [Option<Part<'a>>; 3]) {
        let text = &self.source[self.span.range()];
        let mut rest = [None; 3];
        let Some(first) = text.find('-') else {
            return (self.part(0, text.len()), rest);
        };
        let mut start = first + 1;
        for (i, slot) in rest.iter_mut().enumerate() {
            let end = if i == 2 { None } else { text[start..].find('-').map(|j| start + j) };
            *slot = Some(self.part(start, end.unwrap_or(text.len())));
            match end {
                Some(e) => start = e + 1,
                None => break,
            }
        }
        (self.part(0, first), rest)
    }

    fn part(&self, start: usize, end: usize) -> Part<'a> {
        let base = self.span.start;
        Part { text: &self.source[base + start..base + end], span: Span::new(base + start, base + end) }
    }

    fn name(&self, part: Part<'a>) -> Result<Name, ParseError> {
        if let Some(n) = EventName::parse(part.text) {
            return Ok(Name::Builtin(n));
        }
        match self.custom.get(part.text) {
            Some(n) => Ok(Name::Custom(n.into())),
            None => Err(self.error(Kind::UnknownName(part.text.to_string()), part.span)),
        }
    }

    fn context(&self, part: Part<'a>) -> Result<Context, ParseError> {
        match part.text {
            "self" => Ok(Context::SelfJob),
            "parent" => Ok(Context::Parent),
            t if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => Ok(Context::Id(self.number(part)?)),
            t if is_label(t) => Ok(Context::Label(t.into())),
            t => Err(self.error(Kind::BadContext(t.to_string()), part.span)),
        }
    }

    fn extra(&self, ty: EventType, part: Option<Part<'a>>) -> Result<Extra, ParseError> {
        match (ty, part) {
            (EventType::Job, None) => Ok(Extra::None),
            // Qube's own universal-callback example writes `failed-job-self-*`: for a
            // job atom, `*` is the same as no extra (spec §9).
            (EventType::Job, Some(p)) if p.text == "*" => Ok(Extra::None),
            (EventType::Job, Some(p)) => Err(self.error(Kind::ForbiddenExtra, p.span)),
            (_, part) => {
                let part = self.require(part)?;
                match (ty, part.text) {
                    (_, "*") => Ok(Extra::Any),
                    (EventType::Subjob, _) => Ok(Extra::Subjob(self.number(part)?)),
                    (_, text) if text.starts_with('"') => unquote(text)
                        .map(|n| Extra::Name(n.into()))
                        .ok_or_else(|| self.error(Kind::BadQuote, part.span)),
                    (_, text) => Ok(Extra::Name(text.into())),
                }
            }
        }
    }

    fn require(&self, part: Option<Part<'a>>) -> Result<Part<'a>, ParseError> {
        match part {
            Some(p) if !p.text.is_empty() => Ok(p),
            Some(p) => Err(self.error(Kind::MissingExtra, p.span)),
            None => Err(self.error(Kind::MissingExtra, Span::new(self.span.end, self.span.end))),
        }
    }

    fn repeat(&self, part: Part<'a>) -> Result<Schedule, ParseError> {
        let Some(dash) = part.text.find('-') else {
            return Err(self.error(Kind::MissingExtra, Span::new(part.span.end, part.span.end)));
        };
        let at = part.span.start + dash;
        let start = self.number(Part { text: &part.text[..dash], span: Span::new(part.span.start, at) })?;
        let every_part = Part { text: &part.text[dash + 1..], span: Span::new(at + 1, part.span.end) };
        let every = self.number(every_part)?;
        if every == 0 {
            return Err(self.error(Kind::ZeroInterval, every_part.span));
        }
        Ok(Schedule::Every { start, every })
    }

    fn number(&self, part: Part<'a>) -> Result<u64, ParseError> {
        parse_u64(part.text).ok_or_else(|| self.error(Kind::BadNumber(part.text.to_string()), part.span))
    }

    fn error(&self, kind: Kind, span: Span) -> ParseError {
        ParseError::new(kind, span, self.source)
    }
}

/// The name a quoted extra spells: `"..."` with `\"` and `\\` as the only escapes,
/// closed, not empty. `None` for anything else.
fn unquote(text: &str) -> Option<String> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    let mut name = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                e @ ('"' | '\\') => name.push(e),
                _ => return None,
            },
            '"' => return None,
            c => name.push(c),
        }
    }
    (!name.is_empty()).then_some(name)
}

/// ASCII decimal digits that fit in a `u64` (spec §8 "Numbers").
pub(crate) fn parse_u64(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Whether `text` can be a label: what a trigger context can spell. Labels are
/// non-empty, hold no `-`, white space, parentheses, `&&` or `||`, are not all digits,
/// and are not `self`, `parent`, `and` or `or`.
pub fn is_label(text: &str) -> bool {
    // PERF: one pass over the bytes for ASCII labels, the usual kind; the rest take the
    // character checks.
    let mut digits_only = true;
    let mut previous = 0u8;
    for &b in text.as_bytes() {
        let pair = (b == b'&' || b == b'|') && b == previous;
        if pair || matches!(b, b'-' | b'(' | b')') || b.is_ascii_whitespace() || b.is_ascii_control() {
            return false;
        }
        digits_only &= b.is_ascii_digit();
        previous = b;
    }
    let unicode_ok = text.is_ascii() || !text.chars().any(|c| c.is_whitespace() || c.is_control());
    !text.is_empty()
        && !digits_only
        && unicode_ok
        && !matches!(text, "self" | "parent")
        && !text.eq_ignore_ascii_case("and")
        && !text.eq_ignore_ascii_case("or")
}

#[cfg(test)]
mod tests {
    use super::is_label;

    /// The rule of `is_label` written plainly, to check the one-pass version against.
    fn plain(text: &str) -> bool {
        !text.is_empty()
            && !text.bytes().all(|b| b.is_ascii_digit())
            && !text.chars().any(|c| c == '-' || c == '(' || c == ')' || c.is_whitespace() || c.is_control())
            && !text.contains("&&")
            && !text.contains("||")
            && !matches!(text, "self" | "parent")
            && !text.eq_ignore_ascii_case("and")
            && !text.eq_ignore_ascii_case("or")
    }

    #[test]
    fn one_pass_label_check_matches_the_plain_rule() {
        let pieces = [
            "a", "Z", "0", "9", "-", "(", ")", "&", "|", " ", "\t", "\u{b}", "\u{85}", "\u{a0}", "é", "_", "self",
            "and", "OR", "\u{7f}", "\u{0}",
        ];
        let mut texts = vec![String::new()];
        for a in pieces {
            texts.push(a.to_string());
            for b in pieces {
                texts.push(format!("{a}{b}"));
                for c in ["x", "&", "|", "1"] {
                    texts.push(format!("{a}{b}{c}"));
                }
            }
        }
        for t in &texts {
            assert_eq!(is_label(t), plain(t), "{t:?}");
        }
    }
}
