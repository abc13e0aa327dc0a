//! The compiled matcher's lasting state: callback states, the catalog they share, the
//! term index and the timers; and what it does with them.

use super::batch::{self, RawBatchFiring};
use super::callbacks::{Callbacks, FireCtx};
use super::catalog::Catalog;
use super::circuit::Template;
use super::clock::{first_tick_after, Timers};
use super::facts::Facts;
use super::index::Index;
use super::memory::MemoryUsage;
use super::postings::Posting;
use super::scratch::Scratch;
use crate::front::ids::{ActionId, CallbackId};
use crate::front::model::{Cause, RawFiring};
use crate::front::plan::CallbackRef;
use crate::front::registry::{JobRecord, Registry, ResolvedEvent};
use crate::front::resolve::Slot;
use crate::syntax::Schedule;
use hashbrown::HashMap;

/// Counters for tests and benchmarks: they measure work without timing it.
///
/// They live in [`Compiled`], where the work is counted, but they are not part of the
/// matcher's state: no firing depends on them, and a snapshot does not save them (a
/// restored engine counts from zero). Nor are they scratch: dropping them would lose
/// what they measure, so a cloned engine keeps them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Postings visited by events (live or not yet swept).
    pub postings_touched: u64,
    /// Callback circuits evaluated.
    pub circuits_checked: u64,
    /// Index sweeps that dropped removed callbacks' postings.
    pub sweeps: u64,
    /// Batches that took the parallel path (see `src/engine/batch.rs`).
    pub parallel_batches: u64,
}

/// The compiled matcher behind [`crate::Engine`]: everything but [`Compiled::stats`]
/// is lasting state (see the module docs of `src/engine/mod.rs`); its reusable buffers
/// are the engine's `Scratch`, passed in by the calls that need them.
#[derive(Clone, Debug, Default)]
pub struct Compiled {
    catalog: Catalog,
    callbacks: Callbacks,
    index: Index,
    timers: Timers,
    now: u64,
    /// Postings of removed callbacks still in the index (swept in bulk).
    dead_postings: usize,
    /// The clock atoms of the callbacks that have any, by slot: what explanations print
    /// for them (the timers drop a one-shot time once it is reached). Event atoms need
    /// no such table: their terms are the index's keys. A frame farm has no entry here.
    clocks: HashMap<CallbackId, Box<[(u32, Schedule)]>>,
    stats: Stats,
}

/// One live callback as explanations see it: its template, action, count and latches.
pub(super) struct View<'a> {
    pub template: &'a Template,
    pub action: ActionId,
    pub count: u32,
    pub latch: Vec<u64>,
}

impl Compiled {
    /// An empty matcher whose clock is at `now`.
    pub(super) fn starting_at(now: u64) -> Compiled {
        Compiled { now, ..Compiled::default() }
    }
    /// Work counters since creation.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Registers callbacks (ids increasing) and fires those already true.
    pub(super) fn register<'a>(
        &mut self,
        reg: &Registry,
        callbacks: impl Iterator<Item = CallbackRef<'a>>,
        facts: Option<&Facts>,
        scratch: &mut Scratch,
        out: &mut Vec<RawFiring>,
    ) {
        let preset = &mut scratch.postings;
        preset.clear();
        for cb in callbacks {
            self.register_one(&cb, reg, facts, preset);
        }
        self.apply(reg, &scratch.postings, Cause::Registration, &mut scratch.owner_hint, out);
    }

    /// Stores `cb`, indexes its event atoms and schedules its clock atoms; appends the
    /// latches already set (by kept facts, by clock times already past) to `preset`.
    fn register_one(&mut self, cb: &CallbackRef<'_>, reg: &Registry, facts: Option<&Facts>, preset: &mut Vec<Posting>) {
        let postings = cb.slots.iter().filter(|s| matches!(s, Slot::Event(_))).count() as u32;
        let template = self.catalog.templates.intern(cb.shape, postings);
        let words = self.catalog.templates.get(template).words();
        let kind = self.catalog.kind(template, cb.action);
        self.catalog.note_owner(cb.id, cb.owner.unwrap_or(0), cb.index);
        self.callbacks.insert(cb.id, kind, words);
        if cb.slots.iter().any(|s| matches!(s, Slot::Clock(_))) {
            let clocks = cb.slots.iter().enumerate().filter_map(|(i, s)| match s {
                Slot::Clock(schedule) => Some((i as u32, *schedule)),
                Slot::Event(_) => None,
            });
            self.clocks.insert(cb.id, clocks.collect());
        }
        for (slot, atom) in cb.slots.iter().enumerate() {
            let posting = Posting { cb: cb.id, slot: slot as u32 };
            let set = match atom {
                Slot::Event(term) => {
                    self.index.insert(term, posting);
                    facts.is_some_and(|f| f.satisfies(term, reg))
                }
                Slot::Clock(Schedule::At(t)) if *t <= self.now => true,
                Slot::Clock(Schedule::At(t)) => {
                    self.timers.at(*t, posting);
                    false
                }
                Slot::Clock(Schedule::Every { start, every }) => {
                    if let Some(next) = first_tick_after(*start, *every, self.now) {
                        self.timers.every(next, *every, posting);
                    }
                    false
                }
            };
            if set {
                preset.push(posting);
            }
        }
    }

    /// Sets the latches of `postings` (sorted by callback) and fires each callback once,
    /// through the one latch loop over the whole table.
    fn apply(
        &mut self,
        reg: &Registry,
        postings: &[Posting],
        cause: Cause,
        hint: &mut usize,
        out: &mut Vec<RawFiring>,
    ) {
        let fire = FireCtx { catalog: &self.catalog, reg, cause };
        let mut all = self.callbacks.whole(*hint);
        all.apply(postings, &fire, |firing| out.push(firing));
        *hint = all.hint;
        self.stats.circuits_checked += all.checked;
    }

    /// Processes one event.
    pub(super) fn event(
        &mut self,
        reg: &Registry,
        ev: &ResolvedEvent,
        cause: Cause,
        scratch: &mut Scratch,
        out: &mut Vec<RawFiring>,
    ) {
        scratch.postings.clear();
        self.index.event_postings(ev, &mut scratch.postings);
        self.stats.postings_touched += scratch.postings.len() as u64;
        self.apply(reg, &scratch.postings, cause, &mut scratch.owner_hint, out);
    }

    /// Processes events in order, tagging each firing with its event's position: exactly
    /// the firings of calling [`Compiled::event`] on each in turn (see `batch.rs`).
    pub(super) fn event_batch(
        &mut self,
        reg: &Registry,
        evs: &[ResolvedEvent],
        scratch: &mut Scratch,
        out: &mut Vec<RawBatchFiring>,
    ) {
        let fire = FireCtx { catalog: &self.catalog, reg, cause: Cause::Event };
        let mut all = self.callbacks.whole(scratch.owner_hint);
        let work = batch::process(&self.index, &mut all, &fire, evs, &mut scratch.batch, out);
        scratch.owner_hint = all.hint;
        self.stats.circuits_checked += all.checked;
        self.stats.postings_touched += work.touched;
        self.stats.parallel_batches += u64::from(work.parallel);
    }

    /// Counts the clock-atom ticks due up to `to`, stopping past `limit`.
    pub(super) fn due_ticks(&mut self, to: u64, limit: u64) -> u64 {
        let callbacks = &self.callbacks;
        self.timers.due(to, limit, &|cb| callbacks.is_live(cb))
    }

    /// Moves the clock to `to`, firing each due tick in order.
    pub(super) fn advance(&mut self, reg: &Registry, to: u64, scratch: &mut Scratch, out: &mut Vec<RawFiring>) {
        while let Some(t) = self.timers.next_due(to) {
            let due = &mut scratch.postings;
            due.clear();
            let callbacks = &self.callbacks;
            self.timers.take(t, due, &|cb| callbacks.is_live(cb));
            due.sort_unstable();
            self.apply(reg, &scratch.postings, Cause::Tick(t), &mut scratch.owner_hint, out);
        }
        self.now = to;
    }

    /// Drops a removed job's callbacks.
    pub(super) fn remove(&mut self, record: &JobRecord) {
        let first = record.first_callback.as_usize();
        for id in first..first + record.callbacks as usize {
            let cb = CallbackId::new(id).expect("ids fit u32");
            if !self.clocks.is_empty() {
                self.clocks.remove(&cb);
            }
            if let Some(kind) = self.callbacks.remove(cb) {
                self.dead_postings += self.catalog.template(kind).postings as usize;
            }
        }
        if record.callbacks > 0 {
            self.catalog.forget_owner(record.first_callback);
        }
        self.maybe_sweep();
    }

    fn maybe_sweep(&mut self) {
        if self.dead_postings > 4096 && self.dead_postings * 2 > self.index.postings() {
            let callbacks = &self.callbacks;
            self.index.sweep(&|cb| callbacks.is_live(cb));
            self.dead_postings = 0;
            self.stats.sweeps += 1;
        }
    }

    /// Bytes held, by structure.
    pub(super) fn memory(&self) -> MemoryUsage {
        let (heads, tables) = self.index.heap_bytes();
        MemoryUsage {
            callbacks: self.callbacks.heap_bytes(),
            templates: self.catalog.heap_bytes(),
            index_heads: heads,
            index_tables: tables,
            timers: self.timers.heap_bytes()
                + self.clocks.capacity() * (std::mem::size_of::<(CallbackId, Box<[(u32, Schedule)]>)>() + 1)
                + self.clocks.values().map(|c| std::mem::size_of_val(&**c)).sum::<usize>(),
            ..MemoryUsage::default()
        }
    }
}

/// Explanations: reading a callback's state and the way back to its atoms.
impl Compiled {
    /// A live callback's template, action, count and latch words.
    pub(super) fn view(&self, cb: CallbackId) -> Option<View<'_>> {
        let state = self.callbacks.state(cb)?;
        let template = self.catalog.template(state.kind);
        let latch = match self.callbacks.wide.get(&cb) {
            Some(words) => words.to_vec(),
            None => vec![state.latch()],
        };
        Some(View { template, action: self.catalog.action(state.kind), count: state.count(), latch })
    }

    /// The atoms of the callbacks `first..first + n`: for each, its slots in order,
    /// `None` where none was found (a slot of a callback no longer live). Event atoms
    /// come from the index's keys, clock atoms from their side table.
    pub(super) fn slots_of(&self, first: CallbackId, n: u32) -> Vec<Vec<Option<Slot>>> {
        let mut out: Vec<Vec<Option<Slot>>> = (0..n)
            .map(|k| {
                let cb = CallbackId::from_u32(first.as_u32() + k);
                let width = self.view(cb).map_or(0, |v| v.template.width());
                vec![None; width as usize]
            })
            .collect();
        let end = CallbackId::from_u32(first.as_u32() + n);
        self.index.postings_of(first..end, |p, term| {
            if let Some(slot) = out[(p.cb.as_u32() - first.as_u32()) as usize].get_mut(p.slot as usize) {
                *slot = Some(Slot::Event(term));
            }
        });
        for (k, slots) in out.iter_mut().enumerate() {
            let cb = CallbackId::from_u32(first.as_u32() + k as u32);
            for &(slot, schedule) in self.clocks.get(&cb).map_or(&[][..], |c| &c[..]) {
                if let Some(s) = slots.get_mut(slot as usize) {
                    *s = Some(Slot::Clock(schedule));
                }
            }
        }
        out
    }

    /// Live callbacks that have not fired, and those that have.
    pub(super) fn callbacks_by_count(&self) -> (u64, u64) {
        self.callbacks.by_count()
    }

    /// Sets the latches of `postings` (sorted) through the one latch loop, firing with
    /// cause [`Cause::Forced`]: an operator's `satisfy`.
    pub(super) fn force(
        &mut self,
        reg: &Registry,
        postings: &[Posting],
        scratch: &mut Scratch,
        out: &mut Vec<RawFiring>,
    ) {
        self.apply(reg, postings, Cause::Forced, &mut scratch.owner_hint, out);
    }

    /// Clears a live callback's latches and count; false if it is not live.
    pub(super) fn rearm(&mut self, cb: CallbackId) -> bool {
        self.callbacks.rearm(cb)
    }
}
