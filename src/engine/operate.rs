//! Iteration and operations: listing live jobs and a job's callbacks with their state,
//! and what an operator does to a callback by hand (OpenCue's `satisfy` and
//! `markAsWaiting`): force an atom or the whole trigger satisfied, or re-arm it.
//!
//! Forcing goes through the one latch loop (`callbacks.rs`) like any event, so a
//! callback it makes true fires there and then, with cause [`crate::Cause::Forced`], no
//! target, and its count and maximum as always.

use std::sync::Arc;

use super::postings::Posting;
use super::Engine;
use crate::error::{Error, ErrorKind};
use crate::front::ids::CallbackId;
use crate::front::model::Firing;
use crate::front::registry::Action;

/// A live job, as [`Engine::jobs`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobInfo {
    /// Its id.
    pub id: u64,
    /// Its process group.
    pub pgrp: u64,
    /// Its label, in lowercase.
    pub label: String,
    /// How many callbacks it has (own, `dependency` and universal).
    pub callbacks: u32,
    /// How many instances it has (at least one).
    pub subjobs: u64,
}

/// One callback of a live job, as [`Engine::callbacks`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackInfo {
    /// Its engine-wide id.
    pub id: CallbackId,
    /// Its position in the job's list.
    pub index: u32,
    /// Its action.
    pub action: Arc<Action>,
    /// How many times it has fired.
    pub fired: u32,
    /// How many times it may fire; `None` is unlimited.
    pub maximum: Option<u64>,
    /// Whether its trigger is true now.
    pub met: bool,
}

impl Engine {
    /// The live jobs, by id.
    pub fn jobs(&self) -> Vec<JobInfo> {
        let mut jobs: Vec<JobInfo> = self
            .reg
            .jobs
            .iter()
            .map(|(&id, r)| JobInfo {
                id,
                pgrp: r.pgrp,
                label: self.reg.symbols.resolve(r.label).to_string(),
                callbacks: r.callbacks,
                subjobs: r.subjobs,
            })
            .collect();
        jobs.sort_unstable_by_key(|j| j.id);
        jobs
    }

    /// A live job's callbacks with their state, in the job's order. [`Engine::explain`]
    /// adds their atoms.
    ///
    /// # Errors
    /// A job that is not live.
    pub fn callbacks(&self, job: u64) -> Result<Vec<CallbackInfo>, Error> {
        let record = self.reg.live_job(job)?;
        let first = record.first_callback.as_u32();
        Ok((0..record.callbacks)
            .filter_map(|index| {
                let id = CallbackId::from_u32(first + index);
                let view = self.matcher.view(id)?;
                let action = Arc::clone(self.reg.action(view.action));
                Some(CallbackInfo {
                    id,
                    index,
                    maximum: action.maximum,
                    action,
                    fired: view.count,
                    met: view.template.is_true(&view.latch),
                })
            })
            .collect())
    }

    /// Forces atoms of callback `index` of live job `job` satisfied, as if their events
    /// had happened: the one whose canonical text (as [`Engine::explain`] writes it) is
    /// `atom`, or every atom when `atom` is `None`. If that makes the trigger true and
    /// the count is under the maximum, the callback fires (cause [`crate::Cause::Forced`]).
    ///
    /// # Errors
    /// A job that is not live, a callback it does not have, or an atom the callback
    /// does not have; nothing changes then.
    pub fn satisfy(&mut self, job: u64, index: u32, atom: Option<&str>, out: &mut Vec<Firing>) -> Result<(), Error> {
        let id = self.callback_of(job, index)?;
        let width = self.matcher.view(id).map_or(0, |v| v.template.width());
        let slots: Vec<u32> = match atom {
            None => (0..width).collect(),
            Some(text) => {
                let explained = self.explain_one(job, id)?;
                let at = explained.atoms.iter().position(|a| a.atom == text).ok_or_else(|| {
                    let known: Vec<&str> = explained.atoms.iter().map(|a| a.atom.as_str()).collect();
                    Error::new(
                        ErrorKind::BadValue,
                        format!(
                            "callback {index} of job {job} has no atom `{text}`; its atoms are {}",
                            known.join(", ")
                        ),
                    )
                    .in_field("atom")
                })?;
                vec![at as u32]
            }
        };
        let postings: Vec<Posting> = slots.into_iter().map(|slot| Posting { cb: id, slot }).collect();
        self.publishing(&mut |f| out.push(f), |engine, emit| {
            engine.matcher.force(&engine.reg, &postings, &mut engine.scratch, emit);
        });
        Ok(())
    }

    /// Re-arms callback `index` of live job `job`: clears its latches and its count, so
    /// it waits for its whole trigger again and may fire up to its maximum again. A
    /// one-shot time already reached stays unmet; repeat times tick on.
    ///
    /// # Errors
    /// A job that is not live or a callback it does not have; nothing changes then.
    pub fn rearm(&mut self, job: u64, index: u32) -> Result<(), Error> {
        let id = self.callback_of(job, index)?;
        self.matcher.rearm(id);
        Ok(())
    }

    /// The id of live callback `index` of live job `job`.
    fn callback_of(&self, job: u64, index: u32) -> Result<CallbackId, Error> {
        let record = self.reg.live_job(job)?;
        if index >= record.callbacks {
            return Err(Error::new(
                ErrorKind::BadValue,
                format!("job {job} has {} callback(s); there is no callback {index}", record.callbacks),
            )
            .in_field("callback"));
        }
        let id = CallbackId::from_u32(record.first_callback.as_u32() + index);
        if self.matcher.view(id).is_none() {
            return Err(removed_callback(job, index, id));
        }
        Ok(id)
    }

    /// The explanation of one live callback of `job`.
    fn explain_one(&self, job: u64, id: CallbackId) -> Result<super::CallbackExplanation, Error> {
        let explained = self.explain(job, None)?;
        let found = explained.callbacks.into_iter().find(|c| c.id == id);
        found.ok_or_else(|| Error::new(ErrorKind::BadValue, format!("callback {} is not live", id.as_u32())))
    }
}

/// The error for an operation on a callback that was removed on its own
/// ([`Engine::remove_callback`]) while its job stays live.
fn removed_callback(job: u64, index: u32, id: CallbackId) -> Error {
    Error::new(
        ErrorKind::UnknownCallback,
        format!("callback {index} of job {job} (callback {}) was removed", id.as_u32()),
    )
    .in_field("callback")
}
