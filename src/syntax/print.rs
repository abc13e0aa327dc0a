//! The canonical printer: lowercase names, `&&`/`||`, parentheses only where the tree
//! needs them. Parsing the output gives back the same tree (spans aside).

use std::fmt;

use super::ast::{Atom, AtomKind, Context, Expr, Extra, Schedule};

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_expr(f, self, None)
    }
}

/// Which operator the parent is, to decide on parentheses.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Parent {
    And,
    Or,
}

fn write_expr(f: &mut fmt::Formatter<'_>, expr: &Expr, parent: Option<Parent>) -> fmt::Result {
    let (items, op, me) = match expr {
        Expr::Atom(a) => return write!(f, "{a}"),
        Expr::And(xs) => (xs, " && ", Parent::And),
        Expr::Or(xs) => (xs, " || ", Parent::Or),
    };
    // An `And` under an `Or` needs none: `&&` binds tighter. Everything else nested does,
    // so that the printed text parses back to this very grouping.
    let parens = !matches!((parent, me), (None, _) | (Some(Parent::Or), Parent::And));
    if parens {
        f.write_str("(")?;
    }
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(op)?;
        }
        write_expr(f, x, Some(me))?;
    }
    if parens {
        f.write_str(")")?;
    }
    Ok(())
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)
    }
}

impl fmt::Display for AtomKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AtomKind::Event { name, ty, context, extra } => {
                write!(f, "{}-{}-{context}", name.as_str(), ty.as_str())?;
                match extra {
                    Extra::None => Ok(()),
                    Extra::Any => f.write_str("-*"),
                    Extra::Name(n) if needs_quotes(n) => write_quoted(f, n),
                    Extra::Name(n) => write!(f, "-{n}"),
                    Extra::Subjob(i) => write!(f, "-{i}"),
                }
            }
            AtomKind::Clock { owner: None, schedule: Schedule::At(t) } => write!(f, "globaltime-{t}"),
            AtomKind::Clock { owner: None, schedule: Schedule::Every { start, every } } => {
                write!(f, "globalrepeat-{start}-{every}")
            }
            AtomKind::Clock { owner: Some((name, ctx)), schedule } => match schedule {
                Schedule::At(t) => write!(f, "{}-time-{ctx}-{t}", name.as_str()),
                Schedule::Every { start, every } => {
                    write!(f, "{}-repeat-{ctx}-{start}-{every}", name.as_str())
                }
            },
        }
    }
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Context::SelfJob => f.write_str("self"),
            Context::Parent => f.write_str("parent"),
            Context::Id(id) => write!(f, "{id}"),
            Context::Label(l) => f.write_str(l),
        }
    }
}

/// Whether a work or host name must be quoted to parse back as itself: it holds an
/// operator or a parenthesis, a quote, a word `and`/`or`, space at either end, or is
/// `*` (which unquoted means any).
fn needs_quotes(name: &str) -> bool {
    name == "*"
        || name.contains(['(', ')', '"'])
        || name.contains("&&")
        || name.contains("||")
        || name.trim() != name
        || name.split_whitespace().any(|w| w.eq_ignore_ascii_case("and") || w.eq_ignore_ascii_case("or"))
}

/// `-"NAME"`, with `"` and `\` escaped.
fn write_quoted(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    f.write_str("-\"")?;
    for c in name.chars() {
        if c == '"' || c == '\\' {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("\"")
}
