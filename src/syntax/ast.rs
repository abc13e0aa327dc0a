//! The syntax tree of a trigger.

use std::fmt;

use super::Span;

/// A word that names none of a small enum's values, from its `FromStr`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownWord {
    what: &'static str,
    expected: &'static str,
    word: String,
}

impl UnknownWord {
    /// Says that `word` is not one of `expected` (a list for people), naming `what`.
    pub fn new(what: &'static str, expected: &'static str, word: &str) -> UnknownWord {
        UnknownWord { what, expected, word: word.to_string() }
    }

    /// The word that was not recognised.
    pub fn word(&self) -> &str {
        &self.word
    }
}

impl fmt::Display for UnknownWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} `{}`; expected {}", self.what, self.word, self.expected)
    }
}

impl std::error::Error for UnknownWord {}

/// `Display` prints `as_str()`, and `FromStr` is `parse` ignoring ASCII case.
macro_rules! word_enum {
    ($ty:ty, $what:literal, $expected:literal) => {
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $crate::syntax::UnknownWord;

            fn from_str(text: &str) -> Result<$ty, $crate::syntax::UnknownWord> {
                <$ty>::parse(text).ok_or_else(|| $crate::syntax::UnknownWord::new($what, $expected, text))
            }
        }
    };
}
pub(crate) use word_enum;

word_enum!(EventName, "event name", "one of submit, complete, failed, killed, done, blocked, running, waiting, assigned, removed, modified, timeout, dummy");
word_enum!(EventType, "event type", "one of job, work, subjob, host");

/// A trigger expression. `And` and `Or` hold two or more operands; the parser keeps
/// the grouping that the source wrote, so printing and parsing again is the identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// One atom.
    Atom(Atom),
    /// True when every operand is.
    And(Vec<Expr>),
    /// True when any operand is.
    Or(Vec<Expr>),
}

/// The built-in event names of spec §2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum EventName {
    Submit,
    Complete,
    Failed,
    Killed,
    Done,
    Blocked,
    Running,
    Waiting,
    Assigned,
    Removed,
    Modified,
    Timeout,
    Dummy,
}

impl EventName {
    /// Every built-in name, in the order of the spec.
    pub const ALL: [EventName; 13] = [
        EventName::Submit,
        EventName::Complete,
        EventName::Failed,
        EventName::Killed,
        EventName::Done,
        EventName::Blocked,
        EventName::Running,
        EventName::Waiting,
        EventName::Assigned,
        EventName::Removed,
        EventName::Modified,
        EventName::Timeout,
        EventName::Dummy,
    ];

    /// The lowercase spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EventName::Submit => "submit",
            EventName::Complete => "complete",
            EventName::Failed => "failed",
            EventName::Killed => "killed",
            EventName::Done => "done",
            EventName::Blocked => "blocked",
            EventName::Running => "running",
            EventName::Waiting => "waiting",
            EventName::Assigned => "assigned",
            EventName::Removed => "removed",
            EventName::Modified => "modified",
            EventName::Timeout => "timeout",
            EventName::Dummy => "dummy",
        }
    }

    /// Looks a name up, ignoring ASCII case.
    pub fn parse(text: &str) -> Option<EventName> {
        // PERF: the lowercase spellings, the common case, are one `match` on the bytes;
        // the case-insensitive search runs only for other spellings.
        let exact = match text {
            "complete" => Some(EventName::Complete),
            "failed" => Some(EventName::Failed),
            "done" => Some(EventName::Done),
            "submit" => Some(EventName::Submit),
            "killed" => Some(EventName::Killed),
            _ => None,
        };
        exact.or_else(|| EventName::ALL.into_iter().find(|n| text.eq_ignore_ascii_case(n.as_str())))
    }

    /// Whether an event of this name also satisfies `done` atoms.
    pub fn is_terminal(self) -> bool {
        matches!(self, EventName::Complete | EventName::Failed | EventName::Killed)
    }
}

/// An event name in a trigger: built in, or registered by the host (stored lowercase).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Name {
    /// One of spec §2's names.
    Builtin(EventName),
    /// A custom name the host registered.
    Custom(Box<str>),
}

impl Name {
    /// The lowercase spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Name::Builtin(n) => n.as_str(),
            Name::Custom(s) => s,
        }
    }
}

/// What kind of thing an event atom is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// The job as a whole; no extra.
    Job,
    /// One agenda item; extra is its name or `*`.
    Work,
    /// One instance; extra is its id or `*`.
    Subjob,
    /// A host; extra is its name or `*`.
    Host,
}

impl EventType {
    /// Every event type.
    pub const ALL: [EventType; 4] = [EventType::Job, EventType::Work, EventType::Subjob, EventType::Host];

    /// The lowercase spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Job => "job",
            EventType::Work => "work",
            EventType::Subjob => "subjob",
            EventType::Host => "host",
        }
    }

    /// Looks a type up, ignoring ASCII case.
    pub fn parse(text: &str) -> Option<EventType> {
        let exact = match text {
            "work" => Some(EventType::Work),
            "job" => Some(EventType::Job),
            _ => None,
        };
        exact.or_else(|| EventType::ALL.into_iter().find(|t| text.eq_ignore_ascii_case(t.as_str())))
    }
}

/// Which job an atom is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Context {
    /// The owner job.
    SelfJob,
    /// The owner's parent (`pid`).
    Parent,
    /// Any job, by id.
    Id(u64),
    /// The job with this label in the owner's process group.
    Label(Box<str>),
}

/// The last part of an event atom.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Extra {
    /// Job atoms have none.
    None,
    /// `*`: any work item, subjob or host.
    Any,
    /// A work or host name, compared exactly.
    Name(Box<str>),
    /// A subjob id, compared as a number.
    Subjob(u64),
}

/// When a clock atom becomes true.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Schedule {
    /// Once the clock reaches `T`.
    At(u64),
    /// At `start`, `start + every`, ... (each tick the clock reaches).
    Every {
        /// The first tick.
        start: u64,
        /// Seconds between ticks, greater than zero.
        every: u64,
    },
}

/// One leaf of a trigger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Atom {
    /// What the atom waits for.
    pub kind: AtomKind,
    /// Where it is in the source.
    pub span: Span,
}

/// What an atom waits for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AtomKind {
    /// `NAME-TYPE-CONTEXT[-EXTRA]` for the job, work, subjob and host types.
    Event {
        /// The event name.
        name: Name,
        /// The event type.
        ty: EventType,
        /// Which job.
        context: Context,
        /// Which item, or none.
        extra: Extra,
    },
    /// `NAME-time-CONTEXT-T`, `NAME-repeat-CONTEXT-T-I`, `globaltime-T`, `globalrepeat-T-I`.
    /// `owner` is `None` for the global forms.
    Clock {
        /// The name and context, validated but not used for matching.
        owner: Option<(Name, Context)>,
        /// When it becomes true.
        schedule: Schedule,
    },
}
