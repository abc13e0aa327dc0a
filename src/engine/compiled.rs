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
use super::postings::{Posting, WILD};
use super::scratch::Scratch;
use super::snapshot::{snapshot_error, Reader, Writer};
use super::Emit;
use crate::error::Error;
use crate::front::ids::{ActionId, CallbackId, Symbol};
use crate::front::model::Cause;
use crate::front::plan::CallbackRef;
use crate::front::registry::{decode_schedule, encode_schedule, JobRecord, Registry, ResolvedEvent};
use crate::front::resolve::{ExtraKey, Slot};
use crate::syntax::{EventType, Schedule};
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
    /// Rounds of the incremental index sweep completed (each went over every table
    /// once), and drops of an index whose postings were all dead.
    pub sweeps: u64,
    /// Postings and cells the index sweeps examined, in all.
    pub sweep_work: u64,
    /// The most postings and cells one call's index sweep examined: bounded by the
    /// postings the call removed and the largest table, not by the engine's size.
    pub sweep_work_max: u64,
    /// Batches that took the parallel path (see `src/engine/batch.rs`).
    pub parallel_batches: u64,
    /// Owner runs visited or moved by job removals (binary-search steps and the moves
    /// of the periodic compaction; see `src/engine/catalog.rs`): a removal costs
    /// O(log n) plus amortised O(1), in any order.
    pub removal_steps: u64,
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
    /// The clock atoms of the callbacks that have any, by slot: what explanations print
    /// for them (the timers drop a one-shot time once it is reached). Event atoms need
    /// no such table: their terms are the index's keys. A frame farm has no entry here.
    clocks: HashMap<CallbackId, Box<[(u32, Schedule)]>>,
    /// `Refire::OnRise` is in force (see `callbacks.rs`).
    on_rise: bool,
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
        out: &mut impl Emit,
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
    fn apply(&mut self, reg: &Registry, postings: &[Posting], cause: Cause, hint: &mut usize, out: &mut impl Emit) {
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
        out: &mut impl Emit,
    ) {
        let fire = FireCtx { catalog: &self.catalog, reg, cause, on_rise: self.on_rise, item };
        let mut all = self.callbacks.whole(*hint);
        all.apply(postings, &fire, |firing| out.emit(reg, firing));
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
        out: &mut impl Emit,
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
    pub(super) fn advance(&mut self, reg: &Registry, to: u64, once: bool, scratch: &mut Scratch, out: &mut impl Emit) {
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

    /// Drops removed job `id`'s callbacks and timers, calling `release` with the action
    /// of each callback (the registry counts its references).
    pub(super) fn remove(&mut self, id: u64, record: &JobRecord, mut release: impl FnMut(ActionId)) {
        self.timers.remove_owner(id);
        let first = record.first_callback.as_usize();
        let dead = self.dead_postings;
        for id in first..first + record.callbacks as usize {
            let cb = CallbackId::new(id).expect("ids fit u32");
            self.drop_callback(cb, &mut release);
        }
        if record.callbacks > 0 {
            self.catalog.forget_owner(record.first_callback);
        }
        self.stats.removal_steps = self.catalog.removal_steps;
        self.maybe_sweep(self.dead_postings - dead);
    }

    /// Drops one callback if it is live, calling `release` with its action; returns
    /// whether it was live.
    pub(super) fn remove_callback(&mut self, cb: CallbackId, mut release: impl FnMut(ActionId)) -> bool {
        let dead = self.dead_postings;
        let live = self.drop_callback(cb, &mut release);
        self.maybe_sweep(self.dead_postings - dead);
        live
    }

    /// Whether `cb` is live.
    pub(super) fn is_live(&self, cb: CallbackId) -> bool {
        self.callbacks.is_live(cb)
    }

    fn drop_callback(&mut self, cb: CallbackId, release: &mut impl FnMut(ActionId)) -> bool {
        let Some(kind) = self.callbacks.remove(cb) else { return false };
        if !self.clocks.is_empty() && self.clocks.remove(&cb).is_some() {
            crate::front::registry::shrink_map(&mut self.clocks);
        }
        self.dead_postings += self.catalog.template(kind).postings as usize;
        release(self.catalog.action(kind));
        self.catalog.release_kind(kind);
        true
    }

    /// Sweeps part of the index after a removal that left `died` postings dead: four
    /// postings or cells examined per posting that died (and a few more), from where the
    /// last sweep stopped, so each round of the whole index is paid for by the removals
    /// that made it dirty and no call pays for the whole index; dead postings stay
    /// within about half of the index. An index whose postings are all dead is dropped
    /// at once (its removals paid for that too), so an engine whose callbacks are all
    /// removed holds no postings.
    fn maybe_sweep(&mut self, died: usize) {
        if self.dead_postings == 0 {
            return;
        }
        if self.dead_postings >= self.index.postings() {
            self.stats.sweep_work += self.dead_postings as u64;
            self.index = Index::default();
            self.dead_postings = 0;
            self.stats.sweeps += 1;
            return;
        }
        let callbacks = &self.callbacks;
        let work = self.index.sweep_some(4 * died + 64, &|cb| callbacks.is_live(cb));
        // Saturating: a restored state is checked to note exactly the dead postings it
        // holds, but a crafted one may hold more postings for a callback than its
        // template counts, and those die with it uncounted.
        self.dead_postings = self.dead_postings.saturating_sub(work.dropped);
        self.stats.sweeps += u64::from(work.round);
        self.stats.sweep_work += work.examined as u64;
        self.stats.sweep_work_max = self.stats.sweep_work_max.max(work.examined as u64);
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
            if let Some(slot) = out[(p.cb.as_u32() - first.as_u32()) as usize].get_mut(p.bit() as usize) {
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
    pub(super) fn force(&mut self, reg: &Registry, postings: &[Posting], scratch: &mut Scratch, out: &mut impl Emit) {
        self.apply(reg, postings, Cause::Forced, &mut scratch.owner_hint, out);
    }

    /// Clears a live callback's latches and count; false if it is not live.
    pub(super) fn rearm(&mut self, cb: CallbackId) -> bool {
        self.callbacks.rearm(cb)
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
        w.section(*b"MTCH", |e| {
            e.len(self.dead_postings);
            // The clock atoms of each callback that has any, for explanations.
            e.by_callback(self.clocks.iter(), |e, atoms| {
                e.len(atoms.len());
                for &(slot, schedule) in atoms.iter() {
                    e.u32(slot);
                    encode_schedule(schedule, e);
                }
            });
        })
    }

    /// Checks the owner runs against the live jobs (see [`Catalog::check_jobs`]).
    pub(super) fn check_jobs(&self, jobs: &[(u64, u32, u32)], globals: u32, next: u32) -> Result<(), String> {
        let callbacks = &self.callbacks;
        self.catalog.check_jobs(jobs, globals, next, &|lo, hi| callbacks.first_live_in(lo, hi))
    }

    /// Each live kind's action with its count of live callbacks.
    pub(super) fn kind_actions(&self) -> impl Iterator<Item = (ActionId, u32)> + '_ {
        let refs = self.catalog.kind_refs();
        (0..refs.len()).filter(|&k| refs[k] > 0).map(move |k| (self.catalog.action(k as u32), refs[k]))
    }

    /// Restores a matcher for the registry `reg` (restored already), whose clock is at
    /// `now`.
    pub(super) fn restore<R: std::io::Read>(
        r: &mut Reader<R>,
        reg: &Registry,
        now: u64,
        on_rise: bool,
    ) -> Result<Compiled, Error> {
        let next = reg.next_callback();
        let depth = reg.limits.parse.nest.saturating_add(2);
        let action_live = |a: u32| reg.action_live(a);
        let catalog = r.section(*b"CATL", |d| Catalog::decode(d, &action_live, next, depth))?;
        let callbacks = r.section(*b"CALL", |d| Callbacks::decode(d, &catalog, next))?;
        let accept = |p: Posting| callbacks.accepts(&catalog, next, p);
        let index = r.section(*b"INDX", |d| {
            // Postings of removed callbacks may stand under symbols freed since (even
            // past the end of the table) until a sweep drops them, so any symbol number
            // is accepted (a freed symbol reads as the empty string, see `Interner`).
            Index::decode(d, u32::MAX as usize, &accept)
        })?;
        let timers = r.section(*b"TIMR", |d| Timers::decode(d, now, &accept))?;
        let (dead_postings, clocks) = r.section(*b"MTCH", |d| {
            let n = d.u64()?;
            // A count off from the index's dead postings (a crafted state) only moves
            // when sweeps run: they subtract what they drop, saturating.
            d.check(n <= index.postings() as u64, || "more dead postings than postings".into())?;
            let mut clocks = HashMap::new();
            for _ in 0..d.count(12)? {
                let at = d.offset();
                let cb = CallbackId::from_u32(d.u32()?);
                let width = callbacks.state(cb).map(|s| catalog.template(s.kind).width());
                let Some(width) = width else {
                    return Err(snapshot_error(
                        at,
                        format!("clock atoms of callback {} which is not live", cb.as_u32()),
                    ));
                };
                let mut atoms = Vec::new();
                for _ in 0..d.count(13)? {
                    let slot = d.u32()?;
                    d.check(slot < width, || format!("a clock atom of callback {} is past its circuit", cb.as_u32()))?;
                    let schedule = decode_schedule(d)?;
                    atoms.push((slot, schedule));
                }
                d.check(clocks.insert(cb, atoms.into_boxed_slice()).is_none(), || "clock atoms listed twice".into())?;
            }
            Ok((n as usize, clocks))
        })?;
        Ok(Compiled { catalog, callbacks, index, timers, now, dead_postings, clocks, on_rise, stats: Stats::default() })
    }
}

/// The job and item an event brings to `*` atoms (see `callbacks.rs`).
pub(super) fn item_of(ev: &ResolvedEvent) -> Option<(u64, Symbol)> {
    ev.extra.map(|x| (ev.job, x))
}
