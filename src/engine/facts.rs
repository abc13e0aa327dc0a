//! The facts kept for the `retroactive` option, so that a callback registered after its
//! upstream finished starts with that atom's latch set.
//!
//! # Retention (issue 12, item 6)
//!
//! Facts are filed by job id. Removing a job drops the facts about it (the job and its
//! history are gone; a later job that names its id waits like one that names an id never
//! seen). Facts about ids that are not live (never submitted here, or not yet) are kept.
//! At most [`crate::Limits::facts`] entries are kept (an event makes one, or two for a
//! work, subjob or host event: under `*` and under its own item); recording one more
//! evicts the oldest, first recorded first, so memory stays bounded and a late
//! submission still finds the recent history, which is what it almost always waits for.
//! A fact recorded again keeps its age.

use std::collections::VecDeque;

use hashbrown::HashMap;

use crate::front::registry::{Registry, ResolvedEvent};
use crate::front::resolve::{Ctx, ExtraKey, NameKey, Term};
use crate::syntax::EventType;

/// A fact about one job: the (name, type, extra) of an event under one term extra it
/// matches ([`ResolvedEvent::extras`]: `*` beside every exact extra).
type Key = (NameKey, EventType, ExtraKey);

/// The facts kept, by job id, with their order of recording for eviction.
#[derive(Clone, Debug, Default)]
pub(super) struct Facts {
    /// Job id -> fact -> its sequence number.
    jobs: HashMap<u64, HashMap<Key, u64>>,
    /// Facts in order of recording; entries of dropped facts are skipped when met and
    /// compacted away when they outnumber the live ones.
    order: VecDeque<(u64, u64, Key)>,
    /// Facts kept.
    len: usize,
    /// The next sequence number.
    next: u64,
    /// Most facts kept.
    cap: u64,
    /// Facts evicted for the cap so far.
    evicted: u64,
}

impl Facts {
    /// No facts, keeping at most `cap`.
    pub fn new(cap: u64) -> Facts {
        Facts { cap, ..Facts::default() }
    }

    pub fn record(&mut self, ev: &ResolvedEvent) {
        if self.cap == 0 {
            return;
        }
        for extra in ev.extras() {
            let key = (ev.name, ev.ty, extra);
            let facts = self.jobs.entry(ev.job).or_default();
            if facts.contains_key(&key) {
                continue;
            }
            facts.insert(key, self.next);
            self.order.push_back((self.next, ev.job, key));
            self.next += 1;
            self.len += 1;
            while self.len as u64 > self.cap {
                self.evict_oldest();
            }
        }
    }

    fn evict_oldest(&mut self) {
        while let Some((seq, job, key)) = self.order.pop_front() {
            let Some(facts) = self.jobs.get_mut(&job) else { continue };
            if facts.get(&key) != Some(&seq) {
                continue;
            }
            facts.remove(&key);
            if facts.is_empty() {
                self.jobs.remove(&job);
            }
            self.len -= 1;
            self.evicted += 1;
            return;
        }
    }

    /// Drops the facts about job `id` (removed).
    pub fn forget_job(&mut self, id: u64) {
        if let Some(facts) = self.jobs.remove(&id) {
            self.len -= facts.len();
        }
        if self.order.len() > 2 * self.len + 1024 {
            let jobs = &self.jobs;
            self.order.retain(|(seq, job, key)| jobs.get(job).and_then(|f| f.get(key)) == Some(seq));
            self.order.shrink_to(2 * self.len + 1024);
        }
    }

    /// Facts kept.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Facts evicted for the cap so far.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Whether a fact already satisfies `term`, by the rule of [`ResolvedEvent`]'s
    /// `names` (through its inverse, [`ResolvedEvent::names_answering`]) and `extras`;
    /// a label means its current holder.
    pub fn satisfies(&self, term: &Term, reg: &Registry) -> bool {
        let job = match term.ctx {
            Ctx::Job(id) => id,
            Ctx::Label(g, l) => match reg.label_holder(g, l) {
                Some(id) => id,
                None => return false,
            },
            Ctx::Nobody => return false,
        };
        let Some(facts) = self.jobs.get(&job) else { return false };
        ResolvedEvent::names_answering(term.name).any(|n| facts.contains_key(&(n, term.ty, term.extra)))
    }

    /// Bytes held, by capacity.
    pub fn heap_bytes(&self) -> usize {
        self.jobs.capacity() * (std::mem::size_of::<(u64, HashMap<Key, u64>)>() + 1)
            + self.jobs.values().map(|f| f.capacity() * (std::mem::size_of::<(Key, u64)>() + 1)).sum::<usize>()
            + self.order.capacity() * std::mem::size_of::<(u64, u64, Key)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::EventName;

    /// `names_answering` is the inverse of `names`: a term's name is among an event's
    /// names exactly when the event's name answers the term's.
    #[test]
    fn names_answering_inverts_names() {
        for own in EventName::ALL.into_iter().filter(|&n| n != EventName::Done) {
            let ev = ResolvedEvent {
                name: NameKey::Builtin(own),
                ty: EventType::Job,
                job: 1,
                extra: None,
                label: None,
                subjob: None,
            };
            for term in EventName::ALL.map(NameKey::Builtin) {
                let matched = ev.names().any(|n| n == term);
                let answers = ResolvedEvent::names_answering(term).any(|n| n == ev.name);
                assert_eq!(matched, answers, "event {own:?}, term {term:?}");
            }
        }
    }
}
