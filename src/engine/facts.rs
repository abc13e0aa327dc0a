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

use super::snapshot::{Dec, Enc};
use crate::error::Error;
use crate::front::ids::Symbol;
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

    /// Keeps the facts of `ev`, evicting the oldest past the cap. A fact about a
    /// symbol holds a reference on it: `hold(sym, true)` takes one for each fact kept,
    /// `hold(sym, false)` drops the reference of each fact evicted.
    pub fn record(&mut self, ev: &ResolvedEvent, hold: &mut impl FnMut(Symbol, bool)) {
        if self.cap == 0 {
            return;
        }
        // Hold the event's own symbol while its facts come in: one of them may evict
        // the other fact about it, dropping the last reference before the new one is
        // taken.
        let own = ev.extra;
        if let Some(sym) = own {
            hold(sym, true);
        }
        for extra in ev.extras() {
            let key = (ev.name, ev.ty, extra);
            let facts = self.jobs.entry(ev.job).or_default();
            if facts.contains_key(&key) {
                continue;
            }
            facts.insert(key, self.next);
            if let ExtraKey::Sym(sym) = extra {
                hold(sym, true);
            }
            self.order.push_back((self.next, ev.job, key));
            self.next += 1;
            self.len += 1;
        }
        // The event's facts all come in before the oldest go, so a fact the event
        // records again is not evicted on the way and then recorded as new.
        while self.len as u64 > self.cap {
            self.evict_oldest(hold);
        }
        if let Some(sym) = own {
            hold(sym, false);
        }
    }

    fn evict_oldest(&mut self, hold: &mut impl FnMut(Symbol, bool)) {
        while let Some((seq, job, key)) = self.order.pop_front() {
            let Some(facts) = self.jobs.get_mut(&job) else { continue };
            if facts.get(&key) != Some(&seq) {
                continue;
            }
            facts.remove(&key);
            if let (_, _, ExtraKey::Sym(sym)) = key {
                hold(sym, false);
            }
            if facts.is_empty() {
                self.jobs.remove(&job);
            }
            self.len -= 1;
            self.evicted += 1;
            return;
        }
    }

    /// Drops the facts about job `id` (removed), calling `release` with the symbol of
    /// each fact about one.
    pub fn forget_job(&mut self, id: u64, mut release: impl FnMut(Symbol)) {
        if let Some(facts) = self.jobs.remove(&id) {
            self.len -= facts.len();
            for (_, _, extra) in facts.keys() {
                if let ExtraKey::Sym(sym) = extra {
                    release(*sym);
                }
            }
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

    /// Calls `f` with the symbol of each fact about one (each holds a reference).
    pub fn symbols(&self, mut f: impl FnMut(Symbol)) {
        for (_, _, extra) in self.jobs.values().flat_map(|facts| facts.keys()) {
            if let ExtraKey::Sym(s) = extra {
                f(*s);
            }
        }
    }

    /// Bytes held, by capacity.
    pub fn heap_bytes(&self) -> usize {
        self.jobs.capacity() * (std::mem::size_of::<(u64, HashMap<Key, u64>)>() + 1)
            + self.jobs.values().map(|f| f.capacity() * (std::mem::size_of::<(Key, u64)>() + 1)).sum::<usize>()
            + self.order.capacity() * std::mem::size_of::<(u64, u64, Key)>()
    }
}

// Snapshots (format: src/engine/snapshot.rs): the facts kept, oldest first with their
// sequence numbers (eviction follows them), the next number and the count evicted. The
// cap is the limits'. The order's entries of dropped facts are not written.
impl Facts {
    pub(crate) fn encode(&self, e: &mut Enc) {
        let mut facts: Vec<(u64, u64, &Key)> =
            self.jobs.iter().flat_map(|(job, facts)| facts.iter().map(move |(key, seq)| (*seq, *job, key))).collect();
        facts.sort_unstable_by_key(|(seq, _, _)| *seq);
        e.len(facts.len());
        for (seq, job, (name, ty, extra)) in facts {
            e.u64(seq);
            e.u64(job);
            name.encode(e);
            e.u8(*ty as u8);
            extra.encode(e);
        }
        e.u64(self.next);
        e.u64(self.evicted);
    }

    pub(crate) fn decode(d: &mut Dec<'_>, symbols: usize, cap: u64) -> Result<Facts, Error> {
        let n = d.count(23)?;
        let mut facts = Facts::new(cap);
        let mut last = None;
        for _ in 0..n {
            let seq = d.u64()?;
            d.check(last.map_or(true, |l| seq > l), || "facts out of order".into())?;
            last = Some(seq);
            let job = d.u64()?;
            let name = NameKey::decode(d, symbols)?;
            let ty = EventType::ALL[d.tag(4, "event type")? as usize];
            let extra = ExtraKey::decode(d, symbols)?;
            let key = (name, ty, extra);
            let fresh = facts.jobs.entry(job).or_default().insert(key, seq).is_none();
            d.check(fresh, || "a fact is listed twice".into())?;
            facts.order.push_back((seq, job, key));
            facts.len += 1;
        }
        facts.next = d.u64()?;
        facts.evicted = d.u64()?;
        d.check(last.map_or(true, |l| l < facts.next), || "a fact is numbered past the next number".into())?;
        d.check(facts.len as u64 <= cap, || format!("{} facts kept, over the limit of {cap}", facts.len))?;
        Ok(facts)
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
