//! The compiled matcher: templates, latch words, the term index and timers.

use hashbrown::HashMap;

use super::batch::BatchScratch;
use super::catalog::{Catalog, KindId, DEAD_KIND};
use super::clock::{first_tick_after, Timers};
use super::index::{Index, Posting};
use super::prefetch::prefetch;
use super::{Facts, Matcher, MemoryUsage, RawBatchFiring};
use crate::front::ids::CallbackId;
use crate::front::model::{Cause, RawFiring};
use crate::front::plan::CallbackRef;
use crate::front::registry::{JobRecord, Registry, ResolvedEvent};
use crate::front::resolve::Slot;
use crate::syntax::Schedule;

/// Callbacks per storage chunk; a chunk is freed when all its callbacks are removed.
pub(super) const CHUNK: usize = 4096;

/// The mutable state of one callback: 16 bytes (see `catalog.rs` for what moved out).
#[derive(Clone, Copy, Debug)]
pub(super) struct CallbackState {
    /// Its (template, action) pair; [`DEAD_KIND`] once removed.
    pub(super) kind: KindId,
    count: u32,
    /// Latch bits of circuits up to 64 atoms; wider ones live in `wide`.
    pub(super) latch: u64,
}

impl CallbackState {
    /// Whether a callback with these latches fires now: its circuit is true and its
    /// count is under its maximum. If so, counts the firing and returns it. `hint` is
    /// the owner run of the previous firing (see [`Catalog::owner`]).
    pub(super) fn fire(
        &mut self,
        cb: CallbackId,
        latch: &[u64],
        fire: &FireCtx<'_>,
        hint: &mut usize,
    ) -> Option<RawFiring> {
        if !fire.catalog.template(self.kind).is_true(latch) {
            return None;
        }
        let action = fire.catalog.action(self.kind);
        if fire.reg.action(action).maximum.is_some_and(|m| u64::from(self.count) >= m) {
            return None;
        }
        self.count = self.count.saturating_add(1);
        let (owner, index) = fire.catalog.owner(cb, hint);
        let owner = (owner != 0).then_some(owner);
        Some(RawFiring { callback: cb, owner, index, action, target: None, cause: fire.cause })
    }
}

/// What deciding a firing reads besides the callback's own state.
pub(super) struct FireCtx<'a> {
    pub(super) catalog: &'a Catalog,
    pub(super) reg: &'a Registry,
    pub(super) cause: Cause,
}

const DEAD: CallbackState = CallbackState { kind: DEAD_KIND, count: 0, latch: 0 };

/// Counters for tests and benchmarks: they measure work without timing it.
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

/// The compiled matcher behind [`crate::Engine`].
#[derive(Clone, Debug, Default)]
pub struct Compiled {
    pub(super) catalog: Catalog,
    pub(super) chunks: Vec<Option<Box<[CallbackState]>>>,
    live_in_chunk: Vec<u32>,
    pub(super) wide: HashMap<CallbackId, Box<[u64]>>,
    pub(super) index: Index,
    timers: Timers,
    now: u64,
    dead_postings: usize,
    scratch: Vec<Posting>,
    /// The owner run of the last firing (see [`Catalog::owner`]).
    owner_hint: usize,
    pub(super) batch: BatchScratch,
    pub(super) stats: Stats,
}

impl Compiled {
    /// Work counters since creation.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    fn state(&self, cb: CallbackId) -> Option<&CallbackState> {
        chunk_state(&self.chunks, cb)
    }

    /// Asks for the cache line of `cb`'s state, without reading it.
    pub(super) fn prefetch_state(&self, cb: CallbackId) {
        if let Some(Some(chunk)) = self.chunks.get(cb.as_usize() / CHUNK) {
            prefetch(&chunk[cb.as_usize() % CHUNK]);
        }
    }

    fn state_mut(&mut self, cb: CallbackId) -> &mut CallbackState {
        let chunk = self.chunks[cb.as_usize() / CHUNK].as_mut().expect("live chunk");
        &mut chunk[cb.as_usize() % CHUNK]
    }

    fn is_live(&self, cb: CallbackId) -> bool {
        self.state(cb).is_some()
    }

    fn store(&mut self, cb: CallbackId, state: CallbackState) {
        let c = cb.as_usize() / CHUNK;
        if self.chunks.len() <= c {
            self.chunks.resize_with(c + 1, || None);
            self.live_in_chunk.resize(c + 1, 0);
        }
        let chunk = self.chunks[c].get_or_insert_with(|| vec![DEAD; CHUNK].into_boxed_slice());
        chunk[cb.as_usize() % CHUNK] = state;
        self.live_in_chunk[c] += 1;
    }

    fn set_bit(&mut self, cb: CallbackId, slot: u32) {
        if let Some(words) = self.wide.get_mut(&cb) {
            words[(slot / 64) as usize] |= 1 << (slot % 64);
        } else {
            self.state_mut(cb).latch |= 1 << slot;
        }
    }

    /// Fires `cb` if its circuit is true and its count is under its maximum.
    fn try_fire(&mut self, reg: &Registry, cb: CallbackId, cause: Cause, out: &mut Vec<RawFiring>) {
        self.stats.circuits_checked += 1;
        let mut state = *self.state(cb).expect("caller checked liveness");
        let word = [state.latch];
        let latch: &[u64] = self.wide.get(&cb).map_or(&word, |w| w);
        let ctx = FireCtx { catalog: &self.catalog, reg, cause };
        if let Some(firing) = state.fire(cb, latch, &ctx, &mut self.owner_hint) {
            self.state_mut(cb).count = state.count;
            out.push(firing);
        }
    }

    /// Sets the latches of `postings` (sorted by callback) and fires each callback once.
    pub(super) fn apply(&mut self, reg: &Registry, postings: &[Posting], cause: Cause, out: &mut Vec<RawFiring>) {
        let mut i = 0;
        while i < postings.len() {
            let cb = postings[i].cb;
            let run = postings[i..].iter().take_while(|p| p.cb == cb).count();
            if self.is_live(cb) {
                for p in &postings[i..i + run] {
                    self.set_bit(cb, p.slot);
                }
                self.try_fire(reg, cb, cause, out);
            }
            i += run;
        }
    }

    fn register_one(&mut self, cb: &CallbackRef<'_>, facts: Option<&Facts>, reg: &Registry) -> bool {
        let postings = cb.slots.iter().filter(|s| matches!(s, Slot::Event(_))).count() as u32;
        let template = self.catalog.templates.intern(cb.shape, postings);
        let words = self.catalog.templates.get(template).words();
        let kind = self.catalog.kind(template, cb.action);
        self.catalog.note_owner(cb.id, cb.owner.unwrap_or(0), cb.index);
        self.store(cb.id, CallbackState { kind, count: 0, latch: 0 });
        if words > 1 {
            self.wide.insert(cb.id, vec![0; words].into_boxed_slice());
        }
        let mut preset = false;
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
                self.set_bit(cb.id, slot as u32);
                preset = true;
            }
        }
        preset
    }

    fn maybe_sweep(&mut self) {
        if self.dead_postings > 4096 && self.dead_postings * 2 > self.index.postings() {
            let chunks = &self.chunks;
            let live = |cb: CallbackId| chunk_live(chunks, cb);
            self.index.sweep(&live);
            self.dead_postings = 0;
            self.stats.sweeps += 1;
        }
    }
}

/// The live state of `cb`; a free function so that closures can borrow only the chunks.
fn chunk_state(chunks: &[Option<Box<[CallbackState]>>], cb: CallbackId) -> Option<&CallbackState> {
    let chunk = chunks.get(cb.as_usize() / CHUNK)?.as_ref()?;
    let s = &chunk[cb.as_usize() % CHUNK];
    (s.kind != DEAD_KIND).then_some(s)
}

fn chunk_live(chunks: &[Option<Box<[CallbackState]>>], cb: CallbackId) -> bool {
    chunk_state(chunks, cb).is_some()
}

impl Matcher for Compiled {
    fn register<'a>(
        &mut self,
        reg: &Registry,
        callbacks: impl Iterator<Item = CallbackRef<'a>>,
        facts: Option<&Facts>,
        out: &mut Vec<RawFiring>,
    ) {
        let mut preset = Vec::new();
        for cb in callbacks {
            if self.register_one(&cb, facts, reg) {
                preset.push(cb.id);
            }
        }
        for cb in preset {
            self.try_fire(reg, cb, Cause::Registration, out);
        }
    }

    fn event(&mut self, reg: &Registry, ev: &ResolvedEvent, cause: Cause, out: &mut Vec<RawFiring>) {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        self.index.event_postings(ev, &mut scratch);
        self.stats.postings_touched += scratch.len() as u64;
        self.apply(reg, &scratch, cause, out);
        self.scratch = scratch;
    }

    fn event_batch(&mut self, reg: &Registry, evs: &[ResolvedEvent], out: &mut Vec<RawBatchFiring>) {
        self.process_batch(reg, evs, out);
    }

    fn due_ticks(&mut self, to: u64, limit: u64) -> u64 {
        let chunks = &self.chunks;
        let live = |cb: CallbackId| chunk_live(chunks, cb);
        self.timers.due(to, limit, &live)
    }

    fn advance(&mut self, reg: &Registry, to: u64, out: &mut Vec<RawFiring>) {
        let mut due = Vec::new();
        while let Some(t) = self.timers.next_due(to) {
            due.clear();
            let chunks = &self.chunks;
            let live = |cb: CallbackId| chunk_live(chunks, cb);
            self.timers.take(t, &mut due, &live);
            due.sort_unstable();
            self.apply(reg, &due, Cause::Tick(t), out);
        }
        self.now = to;
    }

    fn remove(&mut self, record: &JobRecord) {
        let first = record.first_callback.as_usize();
        for id in first..first + record.callbacks as usize {
            let cb = CallbackId::new(id).expect("ids fit u32");
            let Some(state) = self.state(cb).copied() else { continue };
            self.dead_postings += self.catalog.template(state.kind).postings as usize;
            *self.state_mut(cb) = DEAD;
            self.wide.remove(&cb);
            let c = id / CHUNK;
            self.live_in_chunk[c] -= 1;
            if self.live_in_chunk[c] == 0 {
                self.chunks[c] = None;
            }
        }
        if record.callbacks > 0 {
            self.catalog.forget_owner(record.first_callback);
        }
        self.maybe_sweep();
    }

    fn memory(&self) -> MemoryUsage {
        let chunk_bytes = CHUNK * std::mem::size_of::<CallbackState>();
        let (heads, tables) = self.index.heap_bytes();
        MemoryUsage {
            callbacks: self.chunks.iter().flatten().count() * chunk_bytes
                + self.chunks.capacity() * 8
                + self.live_in_chunk.capacity() * 4
                + self.wide.capacity() * (std::mem::size_of::<(CallbackId, Box<[u64]>)>() + 1)
                + self.wide.values().map(|w| w.len() * 8).sum::<usize>(),
            templates: self.catalog.heap_bytes(),
            index_heads: heads,
            // The posting buffers of events and batches are counted with the postings.
            index_tables: tables + self.scratch.capacity() * std::mem::size_of::<Posting>() + self.batch.heap_bytes(),
            timers: self.timers.heap_bytes(),
            ..MemoryUsage::default()
        }
    }
}
