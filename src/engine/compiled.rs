//! The compiled matcher's lasting state: callback states, the catalog they share, the
//! term index and the timers; and what it does with them.

use super::batch::{self, RawBatchFiring};
use super::callbacks::{Callbacks, FireCtx};
use super::catalog::Catalog;
use super::clock::{first_tick_after, Timers};
use super::facts::Facts;
use super::index::Index;
use super::memory::MemoryUsage;
use super::postings::{Posting, WILD};
use super::scratch::Scratch;
use crate::front::ids::{CallbackId, Symbol};
use crate::front::model::{Cause, RawFiring};
use crate::front::plan::CallbackRef;
use crate::front::registry::{JobRecord, Registry, ResolvedEvent};
use crate::front::resolve::{ExtraKey, Slot};
use crate::syntax::{EventType, Schedule};

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
    /// `Refire::OnRise` is in force (see `callbacks.rs`).
    on_rise: bool,
    stats: Stats,
}

impl Compiled {
    /// An empty matcher whose clock is at `now`, with `on_rise` re-firing or not.
    pub(super) fn starting_at(now: u64, on_rise: bool) -> Compiled {
        Compiled { now, on_rise, ..Compiled::default() }
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
        for (slot, atom) in cb.slots.iter().enumerate() {
            let mut posting = Posting { cb: cb.id, slot: slot as u32 };
            let set = match atom {
                Slot::Event(term) => {
                    if term.extra == ExtraKey::Any && term.ty != EventType::Job {
                        posting.slot |= WILD;
                    }
                    self.index.insert(term, posting);
                    facts.is_some_and(|f| f.satisfies(term, reg))
                }
                Slot::Clock(Schedule::At(t)) if *t <= self.now => true,
                Slot::Clock(Schedule::At(t)) => {
                    self.timers.at(*t, cb.owner.unwrap_or(0), posting);
                    false
                }
                Slot::Clock(Schedule::Every { start, every }) => {
                    if let Some(next) = first_tick_after(*start, *every, self.now) {
                        self.timers.every(next, *every, cb.owner.unwrap_or(0), posting);
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
        self.apply_item(reg, postings, cause, None, hint, out);
    }

    /// [`Compiled::apply`] for an event bringing `item` (its job and extra).
    fn apply_item(
        &mut self,
        reg: &Registry,
        postings: &[Posting],
        cause: Cause,
        item: Option<(u64, Symbol)>,
        hint: &mut usize,
        out: &mut Vec<RawFiring>,
    ) {
        let fire = FireCtx { catalog: &self.catalog, reg, cause, on_rise: self.on_rise, item };
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
        self.apply_item(reg, &scratch.postings, cause, item_of(ev), &mut scratch.owner_hint, out);
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
        let fire = FireCtx { catalog: &self.catalog, reg, cause: Cause::Event, on_rise: self.on_rise, item: None };
        let mut all = self.callbacks.whole(scratch.owner_hint);
        let work = batch::process(&self.index, &mut all, &fire, evs, &mut scratch.batch, out);
        scratch.owner_hint = all.hint;
        self.stats.circuits_checked += all.checked;
        self.stats.postings_touched += work.touched;
        self.stats.parallel_batches += u64::from(work.parallel);
    }

    /// How many more times `cb` may fire: `None` once it cannot (removed, or at its
    /// maximum), `Some(u64::MAX)` without a maximum.
    fn firings_left(&self, reg: &Registry, cb: CallbackId) -> Option<u64> {
        let state = self.callbacks.state(cb)?;
        match reg.action(self.catalog.action(state.kind)).maximum {
            None => Some(u64::MAX),
            Some(m) => m.checked_sub(u64::from(state.count())).filter(|&left| left > 0),
        }
    }

    /// The catch-up ticks a move to `to` would fire (see `clock.rs`), stopping past
    /// `limit`.
    pub(super) fn catch_up_ticks(&self, reg: &Registry, to: u64, limit: u64) -> u64 {
        self.timers.catch_up(to, limit, &|cb| self.firings_left(reg, cb).is_some())
    }

    /// Moves the clock to `to`, firing each due tick in order; with `once`, each repeat
    /// atom due fires once, at its last tick up to `to`.
    pub(super) fn advance(
        &mut self,
        reg: &Registry,
        to: u64,
        once: bool,
        scratch: &mut Scratch,
        out: &mut Vec<RawFiring>,
    ) {
        if once {
            self.timers.skip_to_last(to);
        }
        while let Some(t) = self.timers.next_due(to) {
            let due = &mut scratch.postings;
            due.clear();
            let mut timers = std::mem::take(&mut self.timers);
            timers.take(t, due, &|cb| self.firings_left(reg, cb).is_some());
            self.timers = timers;
            due.sort_unstable();
            self.apply(reg, &scratch.postings, Cause::Tick(t), &mut scratch.owner_hint, out);
        }
        self.now = to;
    }

    /// Clock atoms pending.
    pub(super) fn pending_timers(&self) -> usize {
        self.timers.pending()
    }

    /// Drops removed job `id`'s callbacks and timers.
    pub(super) fn remove(&mut self, id: u64, record: &JobRecord) {
        self.timers.remove_owner(id);
        let first = record.first_callback.as_usize();
        for id in first..first + record.callbacks as usize {
            let cb = CallbackId::new(id).expect("ids fit u32");
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
            timers: self.timers.heap_bytes(),
            ..MemoryUsage::default()
        }
    }
}

/// The job and item an event brings to `*` atoms (see `callbacks.rs`).
pub(super) fn item_of(ev: &ResolvedEvent) -> Option<(u64, Symbol)> {
    ev.extra.map(|x| (ev.job, x))
}
