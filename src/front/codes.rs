//! The qube action codes and what level of thing each acts on.

/// What a qube action code acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CodeLevel {
    /// The owner job as a whole.
    Job,
    /// One agenda item of the owner: the firing event's work item.
    Work,
    /// One instance of the owner: the firing event's subjob.
    Subjob,
    /// A mail.
    Mail,
}

const JOB: &[&str] = &[
    "unblock-self",
    "block-self",
    "fail-self",
    "kill-self",
    "migrate-self",
    "preempt-self",
    "interrupt-self",
    "suspend-self",
    "resume-self",
];

const WORK: &[&str] = &[
    "block-work-self",
    "kill-work-self",
    "unblock-work-self",
    "retry-work-self",
    "requeue-work-self",
    "complete-work-self",
    "fail-work-self",
];

const SUBJOB: &[&str] = &[
    "unblock-subjob-self-single",
    "unblock-subjob-self",
    "block-subjob-self",
    "fail-subjob-self",
    "kill-subjob-self",
    "migrate-subjob-self",
    "preempt-subjob-self",
    "interrupt-subjob-self",
    "suspend-subjob-self",
    "resume-subjob-self",
    "mail-subjob-status",
];

const MAIL: &[&str] = &["mail-status", "mail-license-status", "mail-report-status"];

impl CodeLevel {
    /// The level of a qube code, or `None` if it is not one of spec §6 (compared exactly).
    pub fn of(code: &str) -> Option<CodeLevel> {
        [(JOB, CodeLevel::Job), (WORK, CodeLevel::Work), (SUBJOB, CodeLevel::Subjob), (MAIL, CodeLevel::Mail)]
            .into_iter()
            .find(|(codes, _)| codes.contains(&code))
            .map(|(_, level)| level)
    }
}
