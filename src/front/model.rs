//! What the host hands the engine: jobs, callbacks and events (spec §1), and what the
//! engine hands back: firings.

use std::fmt;
use std::sync::Arc;

use crate::front::ids::{ActionId, CallbackId, Symbol};
use crate::front::registry::Action;
use crate::syntax::{EventType, Name};

/// The language of a callback's code (spec §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Language {
    /// One of the action codes of spec §6, checked at submit.
    Qube,
    /// Opaque Python code, handed back untouched.
    Python,
    /// Opaque Perl code, handed back untouched.
    Perl,
    /// Opaque mail text, handed back untouched.
    Mail,
    /// Qube's auto-wrangling callbacks, found in job archives: opaque, handed back
    /// untouched.
    AutoWrangling,
    /// Qube's post-processing callbacks, found in job archives: opaque, handed back
    /// untouched.
    Post,
}

impl Language {
    /// Every language, in the order of their documentation.
    pub const ALL: [Language; 6] =
        [Language::Qube, Language::Python, Language::Perl, Language::Mail, Language::AutoWrangling, Language::Post];

    /// The lowercase spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Qube => "qube",
            Language::Python => "python",
            Language::Perl => "perl",
            Language::Mail => "mail",
            Language::AutoWrangling => "auto_wrangling",
            Language::Post => "post",
        }
    }

    /// Looks a language up, ignoring ASCII case.
    pub fn parse(text: &str) -> Option<Language> {
        Language::ALL.into_iter().find(|l| text.eq_ignore_ascii_case(l.as_str()))
    }
}

crate::syntax::word_enum!(Language, "language", "one of qube, python, perl, mail, auto_wrangling, post");
crate::syntax::word_enum!(JobStatus, "status", "pending or blocked");

/// A callback as submitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackSpec {
    /// The trigger expressions; more than one means their OR.
    pub triggers: Vec<String>,
    /// The language of `code`.
    pub language: Language,
    /// For qube, an action code of spec §6; otherwise opaque text.
    pub code: String,
    /// How many times it may fire; `None` is unlimited.
    pub maximum: Option<u64>,
}

impl CallbackSpec {
    /// A qube callback with no maximum.
    pub fn qube(trigger: &str, code: &str) -> CallbackSpec {
        CallbackSpec {
            triggers: vec![trigger.to_string()],
            language: Language::Qube,
            code: code.to_string(),
            maximum: None,
        }
    }
}

/// A job's status at submit (spec §1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum JobStatus {
    /// Ready to run.
    #[default]
    Pending,
    /// Waiting to be unblocked.
    Blocked,
}

impl JobStatus {
    /// The lowercase spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Blocked => "blocked",
        }
    }

    /// Looks a status up, ignoring ASCII case.
    pub fn parse(text: &str) -> Option<JobStatus> {
        [JobStatus::Pending, JobStatus::Blocked].into_iter().find(|s| text.eq_ignore_ascii_case(s.as_str()))
    }
}

/// A job as submitted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobSpec {
    /// The id; `None` takes one more than the largest id accepted so far. The first
    /// job's id also numbers the submission's new process group, so it may not be the
    /// id of a process group that still has live jobs unless `pgrp` names that group.
    pub id: Option<u64>,
    /// A name for people.
    pub name: String,
    /// The label, unique in the process group; `None` takes `qubeN`.
    pub label: Option<String>,
    /// An existing process group to join; `None` joins the submission's new group,
    /// numbered with the first job's id.
    pub pgrp: Option<u64>,
    /// The parent job id; `None` or 0 is no parent.
    pub pid: Option<u64>,
    /// The status at submit.
    pub status: JobStatus,
    /// The work items, by name.
    pub agenda: Vec<String>,
    /// How many instances (subjobs 0..n).
    pub subjobs: u64,
    /// The Qube `dependency` attribute (spec §4).
    pub dependency: Option<String>,
    /// The job's own callbacks.
    pub callbacks: Vec<CallbackSpec>,
}

/// The extra of an event.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum EventExtra {
    /// A job event.
    None,
    /// A work event: the work item's name.
    Work(String),
    /// A subjob event: the instance id.
    Subjob(u64),
    /// A host event: the host name.
    Host(String),
}

/// Something that happened on the farm. Build it with [`Event::job`], [`Event::work`],
/// [`Event::subjob`], [`Event::host`], [`Event::named`] (custom names), or decode a
/// wire line with [`crate::host::wire::decode`]; the engine validates the name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Event {
    /// What happened.
    pub name: Name,
    /// The job it happened to.
    pub job: u64,
    /// The item it happened to; its variant is the event's type.
    pub extra: EventExtra,
}

impl Event {
    /// A job event.
    pub fn job(name: crate::syntax::EventName, job: u64) -> Event {
        Event { name: Name::Builtin(name), job, extra: EventExtra::None }
    }

    /// A work event for the item named `work`.
    pub fn work(name: crate::syntax::EventName, job: u64, work: &str) -> Event {
        Event { name: Name::Builtin(name), job, extra: EventExtra::Work(work.to_string()) }
    }

    /// A subjob event for instance `id`.
    pub fn subjob(name: crate::syntax::EventName, job: u64, id: u64) -> Event {
        Event { name: Name::Builtin(name), job, extra: EventExtra::Subjob(id) }
    }

    /// A host event for the host named `host`.
    pub fn host(name: crate::syntax::EventName, job: u64, host: &str) -> Event {
        Event { name: Name::Builtin(name), job, extra: EventExtra::Host(host.to_string()) }
    }

    /// An event by name: a built-in name in any case, or else a custom name, which the
    /// engine accepts once registered with [`crate::Engine::register_event_name`].
    pub fn named(name: &str, job: u64, extra: EventExtra) -> Event {
        let name = match crate::syntax::EventName::parse(name) {
            Some(n) => Name::Builtin(n),
            None => Name::Custom(name.to_ascii_lowercase().into()),
        };
        Event { name, job, extra }
    }

    /// The event's type.
    pub fn event_type(&self) -> EventType {
        match self.extra {
            EventExtra::None => EventType::Job,
            EventExtra::Work(_) => EventType::Work,
            EventExtra::Subjob(_) => EventType::Subjob,
            EventExtra::Host(_) => EventType::Host,
        }
    }
}

/// What a firing's qube code acts on (spec §6).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// The owner's agenda item of this name.
    Work(Arc<str>),
    /// The owner's instance of this id.
    Subjob(u64),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Work(name) => f.write_str(name),
            Target::Subjob(id) => write!(f, "{id}"),
        }
    }
}

/// What made a callback fire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cause {
    /// The event being processed.
    Event,
    /// The `submit` job event of this job, reported by its submission.
    Submitted(u64),
    /// The `removed` job event of this job, delivered by its removal (spec §9).
    Removed(u64),
    /// The clock reaching this time.
    Tick(u64),
    /// Its registration: a time already reached, or (with `retroactive`) a fact already
    /// known, made the trigger true.
    Registration,
}

/// One firing of one callback, with everything a host prints: the owner and position,
/// the action, the item it acts on and the cause. Text is shared with the engine
/// (`Arc`), so a firing costs no copy of its code or work name and outlives the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Firing {
    /// The callback that fired.
    pub callback: CallbackId,
    /// Its owner job, or `None` for a global callback.
    pub owner: Option<u64>,
    /// Its position in the owner's list (or among global callbacks).
    pub index: u32,
    /// Its language, code and maximum.
    pub action: Arc<Action>,
    /// What a work- or subjob-level qube code acts on.
    pub target: Option<Target>,
    /// What made it fire.
    pub cause: Cause,
    /// How many times the callback has fired, this firing included (Qube's `count`;
    /// with a `maximum`, it never passes it).
    pub count: u32,
}

/// What a firing acts on, by symbol: the engine's compact form of [`Target`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum RawTarget {
    Work(Symbol),
    Subjob(u64),
}

/// A firing as the matchers produce it: 32 bytes of ids, turned into a [`Firing`] at the
/// engine's boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct RawFiring {
    pub callback: CallbackId,
    pub owner: Option<u64>,
    pub index: u32,
    pub action: ActionId,
    pub target: Option<RawTarget>,
    pub cause: Cause,
    /// The callback's count after this firing.
    pub count: u32,
}
