//! Diagnostics at submit: what an accepted submission is warned about.
//!
//! A warning never rejects anything: the trigger may still come true (a label's job may
//! be submitted later) or the host may know better. Each is something a farm wrangler
//! would want to hear about at submit rather than find out when a frame never starts:
//!
//! - a label that the trigger grammar cannot spell (`job A`, `ribgen-sh010`): no trigger
//!   can name that job;
//! - a label named by a trigger that no job of the process group holds yet (a typo such
//!   as `complete-job-ribgenLable` otherwise waits forever, silently);
//! - `parent` on a job without a parent: the atom is never met (spec §9);
//! - a work-level code on a trigger without a work atom: it never has a frame to act on;
//! - a `dependency` work link on a job without agenda (it makes no callback), to a job
//!   without agenda, or a work or subjob link to a job that is not live.
//!
//! Only a job's own and `dependency` callbacks are looked at, not the universal ones of
//! `callbacks.conf`, which are the site's and would warn on every job. Order: by job in
//! submission order; for each, its label, its `dependency` links in order, then its
//! callbacks by position (for each: `parent`, labels in order of appearance, items and
//! instances that live jobs lack, the code).

use std::fmt;

use crate::front::codes::CodeLevel;
use crate::front::dependency::{Link, LinkKind};
use crate::front::plan::Plan;
use crate::front::registry::Registry;
use crate::front::resolve::{Ctx, ExtraKey, Slot};
use crate::syntax::{Context, EventType};

/// Something an accepted submission is warned about (see [`crate::Submission`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// The job it is about.
    pub job: u64,
    /// The callback (position in the job's list) it is about, if any.
    pub callback: Option<u32>,
    /// What kind of warning.
    pub kind: WarningKind,
    /// What it says, for a person.
    pub message: String,
}

/// The kinds of [`Warning`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WarningKind {
    /// A label the trigger grammar cannot spell.
    UnspellableLabel,
    /// A label no job of the process group holds yet.
    UnknownLabel,
    /// An atom that can never be met given what is known (`parent` without a parent,
    /// an item or instance a live job does not have).
    NeverMet,
    /// A work-level code on a trigger without a work atom.
    WorkCodeWithoutWorkAtom,
    /// A `dependency` link that waits on a job without agenda, or that is not live, or
    /// a work link on a job without agenda.
    Link,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job {}", self.job)?;
        if let Some(c) = self.callback {
            write!(f, ", callback {c}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// What the planner notes about a job for the warnings.
#[derive(Clone, Debug)]
pub(crate) struct JobNote {
    pub id: u64,
    pub pgrp: u64,
    /// Its explicit label, if the grammar cannot spell it.
    pub unspellable: Option<String>,
    /// Its `dependency` links.
    pub links: Vec<Link>,
    pub agenda_empty: bool,
    /// Its own and `dependency` callbacks: the first this many of its list.
    pub checked: u32,
    /// Its own callbacks: the first this many of its list.
    pub own: u32,
}

/// The warnings of a plan just committed to `reg`.
pub(crate) fn warnings(reg: &Registry, plan: &Plan) -> Vec<Warning> {
    let mut out = Vec::new();
    let mut callbacks = plan.callbacks().peekable();
    for note in plan.notes() {
        let mut warn = |callback: Option<u32>, kind: WarningKind, message: String| {
            if !out.iter().any(|w: &Warning| w.job == note.id && w.callback == callback && w.message == message) {
                out.push(Warning { job: note.id, callback, kind, message });
            }
        };
        if let Some(label) = &note.unspellable {
            let message = format!(
                "label `{label}` cannot be named by a trigger (it holds `-`, white space, parentheses, `&&` or `||`, is all digits, or is self, parent, and or or)"
            );
            warn(None, WarningKind::UnspellableLabel, message);
        }
        for link in &note.links {
            let kind = match link.kind {
                LinkKind::Job => "job",
                LinkKind::Work => "work",
                LinkKind::Subjob => "subjob",
            };
            if link.kind == LinkKind::Work && note.agenda_empty {
                warn(
                    None,
                    WarningKind::Link,
                    "dependency: a work link on a job without agenda makes no callback".into(),
                );
                continue;
            }
            let target = match &link.target {
                Context::Id(id) => Some(*id),
                Context::Label(l) => {
                    let sym = reg.symbols.get(&l.to_ascii_lowercase());
                    sym.and_then(|s| reg.label_holder(note.pgrp, s))
                }
                _ => None,
            };
            let named = &link.target;
            match target.map(|t| (t, reg.jobs.get(&t))) {
                Some((t, None)) if link.kind != LinkKind::Job => {
                    warn(None, WarningKind::Link, format!("dependency: {kind} link to job {t}, which is not live"));
                }
                Some((_, Some(job))) if link.kind == LinkKind::Work && job.agenda.is_empty() => {
                    warn(None, WarningKind::Link, format!("dependency: work link to job {named}, which has no agenda"));
                }
                _ => {}
            }
        }
        while let Some(cb) = callbacks.next_if(|cb| cb.owner == Some(note.id)) {
            if cb.index >= note.checked {
                continue;
            }
            let at = Some(cb.index);
            for slot in cb.slots {
                if let Slot::Event(t) = slot {
                    if t.ctx == Ctx::Nobody {
                        let message = "`parent` names no job: this job has no parent, so the atom is never met";
                        warn(at, WarningKind::NeverMet, message.into());
                    }
                }
            }
            for slot in cb.slots {
                if let Slot::Event(t) = slot {
                    if let Ctx::Label(pgrp, sym) = t.ctx {
                        if reg.label_holder(pgrp, sym).is_none() {
                            let label = reg.symbols.resolve(sym);
                            let message = format!("label `{label}` names no job of process group {pgrp} yet");
                            warn(at, WarningKind::UnknownLabel, message);
                        }
                    }
                }
            }
            // What is known of live jobs: an item not in the agenda, an instance past the
            // count. A dependency's callbacks are left to its link warnings.
            for slot in cb.slots.iter().filter(|_| cb.index < note.own) {
                let Slot::Event(t) = slot else { continue };
                let holder = match t.ctx {
                    Ctx::Job(j) => Some(j),
                    Ctx::Label(pgrp, sym) => reg.label_holder(pgrp, sym),
                    Ctx::Nobody => None,
                };
                let Some((j, job)) = holder.and_then(|j| reg.jobs.get(&j).map(|r| (j, r))) else { continue };
                let message = match (t.ty, t.extra) {
                    (EventType::Work, ExtraKey::Sym(w)) if !job.has_work(w) => format!(
                        "job {j} has no work item `{}` in its agenda, so a work atom naming it is never met",
                        reg.symbols.resolve(w)
                    ),
                    (EventType::Work, ExtraKey::Any) if job.agenda.is_empty() => {
                        format!("job {j} has no agenda, so a work atom about any of its items is never met")
                    }
                    (EventType::Subjob, ExtraKey::Sym(i)) => match reg.symbols.resolve(i).parse::<u64>() {
                        Ok(i) if i >= job.subjobs => format!(
                            "job {j} has {} instance(s), so a subjob atom naming instance {i} is never met",
                            job.subjobs
                        ),
                        _ => continue,
                    },
                    _ => continue,
                };
                warn(at, WarningKind::NeverMet, message);
            }
            let action = reg.action(cb.action);
            let work_atom = cb.slots.iter().any(|s| matches!(s, Slot::Event(t) if t.ty == EventType::Work));
            if action.level == Some(CodeLevel::Work) && !work_atom {
                let message = format!(
                    "`{}` is a work-level code, but the trigger has no work atom to give it a frame",
                    action.code
                );
                warn(at, WarningKind::WorkCodeWithoutWorkAtom, message);
            }
        }
    }
    out
}
