//! The Qube `dependency` job attribute (spec §4): a comma-separated AND of links.

use std::fmt;

use crate::syntax::{is_label, Context, EventName, Span};

/// What a link waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkKind {
    /// The whole target job.
    Job,
    /// Frame by frame: each agenda item waits for the same-named item of the target.
    Work,
    /// Instance by instance.
    Subjob,
}

/// One link of a `dependency` attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// The state waited for: complete, failed, killed or done.
    pub state: EventName,
    /// Job, work or subjob level.
    pub kind: LinkKind,
    /// The target job: an id or a label of the owner's group.
    pub target: Context,
}

/// A malformed `dependency` item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DependencyError {
    /// The offending item, trimmed.
    pub item: String,
    /// Its bytes in the attribute.
    pub span: Span,
    /// What was expected.
    pub message: String,
}

impl fmt::Display for DependencyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad dependency item `{}`: {}", self.item, self.message)
    }
}

impl std::error::Error for DependencyError {}

/// Parses a `dependency` attribute into its links; `info-` items are dropped.
///
/// # Errors
/// The first malformed item, with its span.
///
/// # Example
/// ```
/// use trigwire::qube::{parse_dependency, LinkKind};
/// let links = parse_dependency("link-complete-work-ribgen, 42, info-{a,b}")?;
/// assert_eq!(links.len(), 2);
/// assert_eq!(links[0].kind, LinkKind::Work);
/// # Ok::<(), trigwire::qube::DependencyError>(())
/// ```
pub fn parse_dependency(text: &str) -> Result<Vec<Link>, DependencyError> {
    let mut links = Vec::new();
    for span in split_items(text)? {
        let raw = &text[span.range()];
        let lead = raw.len() - raw.trim_start().len();
        let item = raw.trim();
        let span = Span::new(span.start + lead, span.start + lead + item.len());
        let fail = |message: &str| DependencyError { item: item.to_string(), span, message: message.to_string() };
        if item.is_empty() {
            return Err(fail("empty item; expected a job id or link-STATE-TYPE-TARGET"));
        }
        if item.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("info-")) {
            continue;
        }
        links.push(parse_link(item).map_err(fail)?);
    }
    Ok(links)
}

fn parse_link(item: &str) -> Result<Link, &'static str> {
    if let Some(id) = crate::syntax::parse_number(item) {
        return Ok(Link { state: EventName::Complete, kind: LinkKind::Job, target: Context::Id(id) });
    }
    let body = match item.get(..5) {
        Some(p) if p.eq_ignore_ascii_case("link-") => &item[5..],
        _ => item,
    };
    let mut parts = body.splitn(3, '-');
    let (Some(state), Some(kind), Some(target)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("expected a job id or [link-]STATE-TYPE-TARGET");
    };
    let state = match EventName::parse(state) {
        Some(s @ (EventName::Complete | EventName::Failed | EventName::Killed | EventName::Done)) => s,
        _ => return Err("unknown state; expected complete, failed, killed or done"),
    };
    let kind = match kind.to_ascii_lowercase().as_str() {
        "job" => LinkKind::Job,
        "work" => LinkKind::Work,
        "subjob" => LinkKind::Subjob,
        _ => return Err("unknown type; expected job, work or subjob"),
    };
    let target = if let Some(id) = crate::syntax::parse_number(target) {
        Context::Id(id)
    } else if is_label(target) {
        Context::Label(target.into())
    } else {
        return Err("bad target; expected a job id or a label");
    };
    Ok(Link { state, kind, target })
}

/// Splits at commas outside `{}` and `[]`.
fn split_items(text: &str) -> Result<Vec<Span>, DependencyError> {
    let mut items = Vec::new();
    let mut depth: i64 = 0;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            ',' if depth == 0 => {
                items.push(Span::new(start, i));
                start = i + 1;
            }
            _ => {}
        }
        if depth < 0 {
            return Err(bracket_error(text, start, i + 1, "unmatched closing bracket"));
        }
    }
    if depth != 0 {
        return Err(bracket_error(text, start, text.len(), "unclosed `{` or `[`"));
    }
    items.push(Span::new(start, text.len()));
    Ok(items)
}

fn bracket_error(text: &str, start: usize, end: usize, message: &str) -> DependencyError {
    DependencyError { item: text[start..end].trim().to_string(), span: Span::new(start, end), message: message.into() }
}
