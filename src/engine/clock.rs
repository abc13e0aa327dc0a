//! Clock atoms of the compiled engine: a map of one-shot times and a heap of repeats.
//!
//! Moving the clock pops only what is due, so its cost is proportional to the ticks
//! due, not to the number of clock triggers registered.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use super::exact::{decode_posting, encode_posting};
use super::postings::Posting;
use super::snapshot::{Dec, Enc};
use crate::error::Error;
use crate::front::ids::CallbackId;

#[derive(Clone, Copy, Debug)]
struct Repeat {
    posting: Posting,
    every: u64,
}

/// Pending clock atoms.
#[derive(Clone, Debug, Default)]
pub(crate) struct Timers {
    at: BTreeMap<u64, Vec<Posting>>,
    heap: BinaryHeap<Reverse<(u64, u32)>>,
    repeats: Vec<Repeat>,
    free: Vec<u32>,
}

impl Timers {
    pub fn at(&mut self, time: u64, posting: Posting) {
        self.at.entry(time).or_default().push(posting);
    }

    /// Schedules a repeat whose first pending tick is `next`.
    pub fn every(&mut self, next: u64, every: u64, posting: Posting) {
        let r = Repeat { posting, every };
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
        self.heap.push(Reverse((next, id)));
    }

    /// Counts the atom ticks due up to `to` for live callbacks, dropping dead repeats.
    /// Stops counting once past `limit`.
    pub fn due(&mut self, to: u64, limit: u64, live: &dyn Fn(CallbackId) -> bool) -> u64 {
        let mut n: u64 = 0;
        for list in self.at.range(..=to).map(|(_, l)| l) {
            n += list.iter().filter(|p| live(p.cb)).count() as u64;
            if n > limit {
                return n;
            }
        }
        let mut kept = Vec::new();
        while let Some(&Reverse((next, id))) = self.heap.peek() {
            if next > to || n > limit {
                break;
            }
            self.heap.pop();
            let r = self.repeats[id as usize];
            if live(r.posting.cb) {
                n = n.saturating_add(((to - next) / r.every).saturating_add(1));
                kept.push(Reverse((next, id)));
            } else {
                self.free.push(id);
            }
        }
        self.heap.extend(kept);
        n
    }

    /// The earliest pending tick, if any is at or before `to`.
    pub fn next_due(&self, to: u64) -> Option<u64> {
        let a = self.at.keys().next().copied();
        let b = self.heap.peek().map(|r| r.0 .0);
        let t = match (a, b) {
            (Some(a), Some(b)) => a.min(b),
            (t, None) | (None, t) => t?,
        };
        (t <= to).then_some(t)
    }

    /// Moves every atom due at exactly `t` into `out`, rescheduling repeats.
    pub fn take(&mut self, t: u64, out: &mut Vec<Posting>, live: &dyn Fn(CallbackId) -> bool) {
        if let Some(list) = self.at.remove(&t) {
            out.extend(list);
        }
        while let Some(&Reverse((next, id))) = self.heap.peek() {
            if next != t {
                break;
            }
            self.heap.pop();
            let r = self.repeats[id as usize];
            if !live(r.posting.cb) {
                self.free.push(id);
                continue;
            }
            out.push(r.posting);
            match t.checked_add(r.every) {
                Some(n) => self.heap.push(Reverse((n, id))),
                None => self.free.push(id),
            }
        }
    }

    /// Bytes held by pending timers.
    pub fn heap_bytes(&self) -> usize {
        let at: usize = self.at.values().map(|l| l.capacity() * std::mem::size_of::<Posting>() + 48).sum();
        at + self.heap.capacity() * 16 + self.repeats.capacity() * std::mem::size_of::<Repeat>()
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

// Snapshots (format: src/engine/snapshot.rs): one-shot times in order with their
// postings, the pending repeat ticks, the repeats table and its free list, in order.
impl Timers {
    pub(crate) fn encode(&self, e: &mut Enc) {
        e.len(self.at.len());
        for (&t, list) in &self.at {
            e.u64(t);
            e.len(list.len());
            list.iter().for_each(|&p| encode_posting(p, e));
        }
        let mut heap: Vec<(u64, u32)> = self.heap.iter().map(|r| r.0).collect();
        heap.sort_unstable();
        e.len(heap.len());
        for (next, id) in heap {
            e.u64(next);
            e.u32(id);
        }
        e.len(self.repeats.len());
        for r in &self.repeats {
            encode_posting(r.posting, e);
            e.u64(r.every);
        }
        e.len(self.free.len());
        self.free.iter().for_each(|&id| e.u32(id));
    }

    /// Decodes timers pending after `now`, whose postings are ones that `accept`s.
    pub(crate) fn decode(d: &mut Dec<'_>, now: u64, accept: &dyn Fn(Posting) -> bool) -> Result<Timers, Error> {
        let mut timers = Timers::default();
        for _ in 0..d.count(16)? {
            let t = d.u64()?;
            let n = d.count(8)?;
            let list = (0..n).map(|_| decode_posting(d)).collect::<Result<Vec<_>, _>>()?;
            let later = timers.at.last_key_value().map_or(true, |(&last, _)| last < t);
            let fine = t > now && later && !list.is_empty() && list.iter().all(|&p| accept(p));
            d.check(fine, || format!("the timers at {t} are out of order, past or bad"))?;
            timers.at.insert(t, list);
        }
        let pending = d.count(12)?;
        let mut heap = Vec::with_capacity(pending);
        for _ in 0..pending {
            heap.push((d.u64()?, d.u32()?));
        }
        let n = d.count_upto(16, u32::MAX.into())?;
        for _ in 0..n {
            let r = Repeat { posting: decode_posting(d)?, every: d.u64()? };
            d.check(r.every > 0 && accept(r.posting), || "a repeat timer is bad".into())?;
            timers.repeats.push(r);
        }
        let mut seen = vec![false; n];
        for &(next, id) in &heap {
            let fine = (id as usize) < n && next > now && !std::mem::replace(&mut seen[id as usize], true);
            d.check(fine, || format!("pending repeat {id} at {next} is bad or listed twice"))?;
        }
        for _ in 0..d.count(4)? {
            let id = d.id(n, "repeat")?;
            d.check(!std::mem::replace(&mut seen[id as usize], true), || format!("repeat {id} is free and pending"))?;
            timers.free.push(id);
        }
        timers.heap = heap.into_iter().map(Reverse).collect();
        Ok(timers)
    }
}
