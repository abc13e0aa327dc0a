//! The compiled matcher's lasting state: callback states, the catalog they share, the
//! term index and the timers; and what it does with them.

use super::batch::{self, RawBatchFiring};
use super::callbacks::{Callbacks, FireCtx};
use super::catalog::Catalog;
use super::clock::{first_tick_after, Timers};
use super::facts::Facts;
use super::index::Index;
use super::memory::MemoryUsage;
use super::postings::Posting;
use super::scratch::Scratch;
use super::snapshot::{Reader, Writer};
use crate::error::Error;
use crate::front::ids::CallbackId;
use crate::front::model::{Cause, RawFiring};
use crate::front::plan::CallbackRef;
use crate::front::registry::{JobRecord, Registry, ResolvedEvent};
use crate::front::resolve::Slot;
use crate::syntax::Schedule;

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
    /// Work done planning submissions: id and label lookups, generated-label probes,
    /// and the comparisons and lookups that find repeated atoms and children in a
    /// trigger. Linear in what is submitted (`tests/scale_hostility.rs` holds it to that).
    pub plan_steps: u64,
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
    stats: Stats,
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

// Snapshots (format: src/engine/snapshot.rs): one section per part, in the order that
// lets each be checked against the ones before it. The clock is the engine's (they are
// always equal); the stats are not saved.
impl Compiled {
    pub(super) fn save<W: std::io::Write>(&self, w: &mut Writer<W>) -> Result<(), Error> {
        w.section(*b"CATL", |e| self.catalog.encode(e))?;
        w.section(*b"CALL", |e| self.callbacks.encode(e))?;
        w.section(*b"INDX", |e| self.index.encode(e))?;
        w.section(*b"TIMR", |e| self.timers.encode(e))?;
        w.section(*b"MTCH", |e| e.len(self.dead_postings))
    }

    /// Restores a matcher for the registry `reg` (restored already), whose clock is at
    /// `now`.
    pub(super) fn restore<R: std::io::Read>(r: &mut Reader<R>, reg: &Registry, now: u64) -> Result<Compiled, Error> {
        let next = reg.next_callback();
        let depth = reg.limits.parse.nest.saturating_add(2);
        let catalog = r.section(*b"CATL", |d| Catalog::decode(d, reg.action_count(), next, depth))?;
        let callbacks = r.section(*b"CALL", |d| Callbacks::decode(d, &catalog, next))?;
        let accept = |p: Posting| callbacks.accepts(&catalog, next, p);
        let symbols = reg.symbols.len();
        let index = r.section(*b"INDX", |d| Index::decode(d, symbols, &accept))?;
        let timers = r.section(*b"TIMR", |d| Timers::decode(d, now, &accept))?;
        let dead_postings = r.section(*b"MTCH", |d| {
            let n = d.u64()?;
            d.check(n <= index.postings() as u64, || "more dead postings than postings".into())?;
            Ok(n as usize)
        })?;
        Ok(Compiled { catalog, callbacks, index, timers, now, dead_postings, stats: Stats::default() })
    }
}
