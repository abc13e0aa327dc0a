//! Clock atoms of the compiled engine: one-shot times by (time, owner) and a queue of
//! repeats.
//!
//! Moving the clock visits only what is due, so its cost is proportional to the ticks
//! due, not to the number of clock triggers registered. Each timer is filed under its
//! owner job, so removing a job frees its timers at once instead of leaving them until
//! they come due (issue 12, item 6): a job's one-shot atoms sharing a time are one list,
//! found by `(time, owner)`, and its repeats are found by their ids.
//!
//! # The tick limit (spec §5, issue 12 item 1)
//!
//! [`Timers::catch_up`] counts what [`crate::Limits::ticks_per_move`] bounds: the ticks
//! a move fires beyond the first of each repeat atom (its catch-up), for callbacks that
//! can still fire (live, under their maximum; a repeat of one that cannot is dropped
//! when it comes due). A callback's firings left do not cap the count: while its trigger
//! is false, every tick is visited without firing, so each is work. A one-shot atom comes due once in
//! its life and a repeat atom's first tick in a move is one visit per registered timer,
//! like an event's postings: both are work that registration already paid for, so they
//! are not counted (the one-shot atoms of 1,000 jobs x 1,000 frames due at one instant
//! cost nothing against the limit). Catch-up is what a long clock jump amplifies, so it is
//! what the limit bounds. A move of one second has no catch-up (no interval is shorter),
//! so it always passes: no sequence of inputs can leave the clock unable to advance.

use std::collections::{BTreeMap, BTreeSet};

use hashbrown::HashMap;

use super::exact::{decode_posting, encode_posting};
use super::postings::Posting;
use super::snapshot::{Dec, Enc};
use crate::error::Error;
use crate::front::ids::CallbackId;

/// A pending repeat atom: its posting, interval, next tick and owner job (0: global).
#[derive(Clone, Copy, Debug)]
struct Repeat {
    posting: Posting,
    /// 0 marks a free entry.
    every: u64,
    next: u64,
    owner: u64,
}

/// What a job owns among the timers: the times of its one-shot lists and its repeats.
/// Entries may be stale (a list that came due, a repeat freed); removal checks.
#[derive(Clone, Debug, Default)]
struct Owned {
    times: Vec<u64>,
    repeats: Vec<u32>,
}

/// Pending clock atoms.
#[derive(Clone, Debug, Default)]
pub(crate) struct Timers {
    /// One-shot atoms by (time, owner job).
    at: BTreeMap<(u64, u64), Vec<Posting>>,
    /// Repeats by (next tick, id).
    queue: BTreeSet<(u64, u32)>,
    repeats: Vec<Repeat>,
    free: Vec<u32>,
    /// By owner job (globals, owner 0, are never removed and not filed).
    owned: HashMap<u64, Owned>,
}

impl Timers {
    /// Schedules a one-shot atom of `owner`'s callback at `time`.
    pub fn at(&mut self, time: u64, owner: u64, posting: Posting) {
        let list = self.at.entry((time, owner)).or_default();
        if list.is_empty() && owner != 0 {
            self.owned.entry(owner).or_default().times.push(time);
        }
        list.push(posting);
    }

    /// Schedules a repeat of `owner`'s callback whose first pending tick is `next`.
    pub fn every(&mut self, next: u64, every: u64, owner: u64, posting: Posting) {
        let r = Repeat { posting, every, next, owner };
        let id = match self.free.pop() {
            Some(id) => {
                self.repeats[id as usize] = r;
                id
            }
            None => {
                self.repeats.push(r);
                (self.repeats.len() - 1) as u32
            }
        };
        self.queue.insert((next, id));
        if owner != 0 {
            self.owned.entry(owner).or_default().repeats.push(id);
        }
    }

    /// The catch-up ticks of a move to `to` (see the module docs): for each repeat due
    /// by `to` whose callback can still fire, its ticks beyond the first. Stops once past
    /// `limit`.
    pub fn catch_up(&self, to: u64, limit: u64, can_fire: &dyn Fn(CallbackId) -> bool) -> u64 {
        let mut n: u64 = 0;
        for &(next, id) in self.queue.range(..=(to, u32::MAX)) {
            let r = &self.repeats[id as usize];
            if can_fire(r.posting.cb) {
                n = n.saturating_add((to - next) / r.every);
                if n > limit {
                    break;
                }
            }
        }
        n
    }

    /// Catch-up `once`: moves every repeat due by `to` to its last tick at or before
    /// `to`, so that it fires once in the move, at that tick.
    pub fn skip_to_last(&mut self, to: u64) {
        let due: Vec<(u64, u32)> = self.queue.range(..=(to, u32::MAX)).copied().collect();
        for (next, id) in due {
            let r = &mut self.repeats[id as usize];
            let last = next + (to - next) / r.every * r.every;
            if last != next {
                self.queue.remove(&(next, id));
                r.next = last;
                self.queue.insert((last, id));
            }
        }
    }

    /// The earliest pending tick, if any is at or before `to`.
    pub fn next_due(&self, to: u64) -> Option<u64> {
        let a = self.at.keys().next().map(|k| k.0);
        let b = self.queue.first().map(|k| k.0);
        let t = match (a, b) {
            (Some(a), Some(b)) => a.min(b),
            (t, None) | (None, t) => t?,
        };
        (t <= to).then_some(t)
    }

    /// Moves every atom due at exactly `t` into `out`, rescheduling repeats whose
    /// callback can still fire and freeing the others.
    pub fn take(&mut self, t: u64, out: &mut Vec<Posting>, can_fire: &dyn Fn(CallbackId) -> bool) {
        while let Some(entry) = self.at.first_entry() {
            if entry.key().0 != t {
                break;
            }
            out.extend(entry.remove());
        }
        while let Some(&(next, id)) = self.queue.first() {
            if next != t {
                break;
            }
            self.queue.pop_first();
            let r = self.repeats[id as usize];
            if !can_fire(r.posting.cb) {
                self.release(id);
                continue;
            }
            out.push(r.posting);
            match t.checked_add(r.every) {
                Some(n) => {
                    self.repeats[id as usize].next = n;
                    self.queue.insert((n, id));
                }
                None => self.release(id),
            }
        }
        self.shrink_if_idle();
    }

    /// Frees every timer of `owner`'s callbacks (a removed job).
    pub fn remove_owner(&mut self, owner: u64) {
        let Some(mut owned) = self.owned.remove(&owner) else { return };
        for t in owned.times {
            self.at.remove(&(t, owner));
        }
        owned.repeats.sort_unstable();
        owned.repeats.dedup();
        for id in owned.repeats {
            // A stale id may be free, reused by another owner, or past a shrunk table.
            let Some(&r) = self.repeats.get(id as usize) else { continue };
            if r.every != 0 && r.owner == owner {
                self.queue.remove(&(r.next, id));
                self.release(id);
            }
        }
        self.shrink_if_idle();
    }

    fn release(&mut self, id: u32) {
        self.repeats[id as usize].every = 0;
        self.free.push(id);
    }

    /// Gives back the repeat table and owner map once nothing is pending in them.
    fn shrink_if_idle(&mut self) {
        if !self.repeats.is_empty() && self.free.len() == self.repeats.len() {
            self.repeats = Vec::new();
            self.free = Vec::new();
        }
        if self.owned.capacity() > 64 && self.owned.len() < self.owned.capacity() / 4 {
            self.owned.shrink_to(self.owned.len() * 2);
        }
    }

    /// Clock atoms pending: one-shot postings and repeats.
    pub fn pending(&self) -> usize {
        self.at.values().map(Vec::len).sum::<usize>() + self.queue.len()
    }

    /// Bytes held by pending timers (B-tree entries counted at twice their size, for the
    /// nodes' slack and links).
    pub fn heap_bytes(&self) -> usize {
        let at: usize = self.at.values().map(|l| l.capacity() * std::mem::size_of::<Posting>() + 2 * 40).sum();
        let owned: usize =
            self.owned.values().map(|o| o.times.capacity() * 8 + o.repeats.capacity() * 4).sum::<usize>()
                + self.owned.capacity() * (std::mem::size_of::<(u64, Owned)>() + 1);
        at + self.queue.len() * 2 * 12
            + self.repeats.capacity() * std::mem::size_of::<Repeat>()
            + self.free.capacity() * 4
            + owned
    }
}

/// The first tick of `start + k * every` strictly after `now`; `None` past `u64::MAX`.
/// Ticks at or before `now` have been reached already and are not replayed.
pub(crate) fn first_tick_after(start: u64, every: u64, now: u64) -> Option<u64> {
    if start > now {
        return Some(start);
    }
    let k = ((now - start) / every).checked_add(1)?;
    k.checked_mul(every).and_then(|d| start.checked_add(d))
}

// Snapshots (format: src/engine/snapshot.rs): the one-shot lists by (time, owner) in
// order, the repeats table (a free entry has `every` 0) and its free list in order, and
// each owner's filing, by owner. The queue of pending repeats is rebuilt: it holds each
// live repeat's next tick.
impl Timers {
    pub(crate) fn encode(&self, e: &mut Enc) {
        e.len(self.at.len());
        for (&(t, owner), list) in &self.at {
            e.u64(t);
            e.u64(owner);
            e.len(list.len());
            list.iter().for_each(|&p| encode_posting(p, e));
        }
        e.len(self.repeats.len());
        for r in &self.repeats {
            encode_posting(r.posting, e);
            e.u64(r.every);
            e.u64(r.next);
            e.u64(r.owner);
        }
        e.len(self.free.len());
        self.free.iter().for_each(|&id| e.u32(id));
        let mut owned: Vec<_> = self.owned.iter().collect();
        owned.sort_unstable_by_key(|(owner, _)| **owner);
        e.len(owned.len());
        for (owner, o) in owned {
            e.u64(*owner);
            e.len(o.times.len());
            o.times.iter().for_each(|&t| e.u64(t));
            e.len(o.repeats.len());
            o.repeats.iter().for_each(|&id| e.u32(id));
        }
    }

    /// Decodes timers pending after `now`, whose postings are ones that `accept`s.
    pub(crate) fn decode(d: &mut Dec<'_>, now: u64, accept: &dyn Fn(Posting) -> bool) -> Result<Timers, Error> {
        let mut timers = Timers::default();
        for _ in 0..d.count(24)? {
            let key = (d.u64()?, d.u64()?);
            let n = d.count(8)?;
            let list = (0..n).map(|_| decode_posting(d)).collect::<Result<Vec<_>, _>>()?;
            let later = timers.at.last_key_value().map_or(true, |(&last, _)| last < key);
            let fine = key.0 > now && later && !list.is_empty() && list.iter().all(|&p| accept(p));
            d.check(fine, || format!("the timers at {} are out of order, past or bad", key.0))?;
            timers.at.insert(key, list);
        }
        let n = d.count_upto(32, u32::MAX.into())?;
        timers.repeats.reserve_exact(n);
        for id in 0..n {
            let r = Repeat { posting: decode_posting(d)?, every: d.u64()?, next: d.u64()?, owner: d.u64()? };
            if r.every > 0 {
                d.check(r.next > now && accept(r.posting), || format!("repeat timer {id} is bad or past"))?;
                timers.queue.insert((r.next, id as u32));
            }
            timers.repeats.push(r);
        }
        let mut seen = vec![false; n];
        for _ in 0..d.count(4)? {
            let id = d.id(n, "repeat")?;
            let fine = timers.repeats[id as usize].every == 0 && !std::mem::replace(&mut seen[id as usize], true);
            d.check(fine, || format!("repeat {id} is free and pending, or free twice"))?;
            timers.free.push(id);
        }
        for _ in 0..d.count(24)? {
            let owner = d.u64()?;
            let times = (0..d.count(8)?).map(|_| d.u64()).collect::<Result<Vec<_>, _>>()?;
            // Stale ids are allowed (see `remove_owner`); each is looked up with `get`.
            let repeats = (0..d.count(4)?).map(|_| d.u32()).collect::<Result<Vec<_>, _>>()?;
            let fresh = timers.owned.insert(owner, Owned { times, repeats }).is_none();
            d.check(fresh, || format!("the timers of job {owner} are filed twice"))?;
        }
        Ok(timers)
    }
}
