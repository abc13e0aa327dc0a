//! Parallel batches for the compiled matcher: the only engine code that names rayon.
//!
//! # Design note
//!
//! The naive loop processes the events of a batch one after another: look up the
//! event's postings in the index, then for each callback among them set its latch bits,
//! check its circuit and maybe fire. Two observations let a batch use many threads and
//! still give exactly that loop's firings in exactly its order:
//!
//! 1. **Lookups are read-only.** Nothing in a batch registers or removes callbacks, so
//!    the index does not change while the batch runs. Phase 1 looks up every event's
//!    postings (sorted by callback id, as the one-at-a-time path sorts them) in
//!    parallel over blocks of consecutive events, into reusable per-block buffers.
//! 2. **Callbacks do not interact.** A callback's latches, count and firing depend only
//!    on the events that touch it, in their order. Phase 2 splits the callback storage
//!    (chunks of 4,096 ids) into disjoint mutable shards; each shard walks all events in
//!    order and applies only the postings that fall in its id range (found by binary
//!    search, since each event's postings are sorted). Shards share nothing mutable, so
//!    the hot loop takes no locks, and each shard records `(event, firing)` in event
//!    order, callback order within an event.
//!
//! Phase 3 merges the shards' records by event index; within one event, shard `s`
//! holds smaller callback ids than shard `s + 1`, so concatenating the shards' runs in
//! shard order gives callback order. The result is the one-at-a-time order: event
//! index, then callback id, whatever the number of threads or shards.
//!
//! Small batches, a one-thread pool, and engines holding circuits wider than 64 atoms
//! (whose latches live in a shared side table) take the sequential path: phase 1 for the
//! whole batch in the calling thread, then each event's postings applied in order. It
//! gives the one-at-a-time firings for the same reason as the parallel path (the index
//! does not change during a batch), and it is faster than one-at-a-time processing on
//! a big farm because the lookups of consecutive events are independent, so their cache
//! misses overlap instead of waiting behind each event's latch updates.
//!
//! Both paths look a block's events up in passes (see [`Block::fill`]) and the
//! sequential path asks for the block's callback states before applying any event: on a
//! big farm an event's reads are DRAM misses that depend on each other (cell, then
//! posting run, then states), and passes over many events keep many misses in flight.
//!
//! PERF: `RAYON_NUM_THREADS=1 trigwire bench --jobs 3000 --frames 1000 --batch 4096`
//! (3M callbacks, random order), three interleaved runs: 0.98-0.99M events/s calling
//! `event` per event, 1.21-1.27M with the lookups first.
//!
//! PERF: `RAYON_NUM_THREADS=1 trigwire bench --jobs 10000 --frames 1000 --batch 4096`
//! (10M callbacks, all 10M events in random order), two interleaved runs each: lookups
//! first, one event at a time, 1.36-1.39M events/s; in passes with prefetches,
//! 2.94-2.99M. Under `perf record` most of the remaining time sits on the prefetch
//! instructions themselves, waiting for a free line-fill buffer: the core has as many
//! misses in flight as it can hold.
//!
//! PERF: the shards of the parallel path ask for their callbacks' states a group of
//! events ahead, as the sequential path does: `RAYON_NUM_THREADS=2 trigwire bench
//! --jobs 10000 --frames 1000 --batch 4096`, two runs each, 2.80-2.92M -> 3.88-4.18M
//! events/s (one thread, the same build: 3.22-3.64M). Resolving the events in parallel
//! too (`Registry::resolve_event` is read-only without kept facts) was tried and gave
//! nothing measurable on two cores: 3.54-3.75M against 3.82-4.12M without it.

use rayon::prelude::*;

use super::catalog::DEAD_KIND;
use super::compiled::{CallbackState, Compiled, FireCtx, CHUNK};
use super::index::{Index, Posting, Spot};
use super::prefetch::prefetch;
use super::BatchFiring;
use crate::ids::CallbackId;
use crate::model::{Cause, Firing};
use crate::registry::{Registry, ResolvedEvent};

/// Batches shorter than this take the sequential path: below it, waking the pool costs
/// more than the lookups it spreads.
pub(super) const PARALLEL_MIN_EVENTS: usize = 64;

/// Shards per pool thread, so that a shard holding the busy callbacks of an in-order
/// stream does not leave the other threads idle for the whole batch.
const SHARDS_PER_THREAD: usize = 4;

/// Reusable buffers for batches, so that a steady stream of batches allocates nothing
/// once the buffers have grown.
#[derive(Clone, Debug, Default)]
pub(crate) struct BatchScratch {
    blocks: Vec<Block>,
    shards: Vec<ShardOut>,
    cursors: Vec<usize>,
    one: Vec<Firing>,
}

impl BatchScratch {
    /// Bytes held by the buffers, by capacity.
    pub(super) fn heap_bytes(&self) -> usize {
        let block = |b: &Block| {
            b.postings.capacity() * std::mem::size_of::<Posting>()
                + b.spots.capacity() * std::mem::size_of::<Spot>()
                + (b.ends.capacity() + b.spot_ends.capacity()) * 8
        };
        let shard = |s: &ShardOut| {
            s.firings.capacity() * std::mem::size_of::<(u32, Firing)>() + s.mine.capacity() * std::mem::size_of::<Mine>()
        };
        self.blocks.capacity() * std::mem::size_of::<Block>()
            + self.blocks.iter().map(block).sum::<usize>()
            + self.shards.capacity() * std::mem::size_of::<ShardOut>()
            + self.shards.iter().map(shard).sum::<usize>()
            + self.cursors.capacity() * 8
            + self.one.capacity() * std::mem::size_of::<Firing>()
    }
}

/// The postings of a run of consecutive events, flattened: event `i` of the block owns
/// `postings[ends[i - 1]..ends[i]]`.
#[derive(Clone, Debug, Default)]
struct Block {
    postings: Vec<Posting>,
    ends: Vec<usize>,
    /// Where the postings were found (see [`Index::locate`]): event `i` of the block
    /// owns `spots[spot_ends[i - 1]..spot_ends[i]]`.
    spots: Vec<Spot>,
    spot_ends: Vec<usize>,
}

/// What one shard of callbacks produced: its firings tagged by event index, in order,
/// and how many circuits it checked.
#[derive(Clone, Debug, Default)]
struct ShardOut {
    firings: Vec<(u32, Firing)>,
    checked: u64,
    /// The shard's postings of a group of events, waiting to be applied.
    mine: Vec<Mine>,
}

/// Postings `from..to` of block `block` are the shard's part of event `event`.
#[derive(Clone, Copy, Debug, Default)]
struct Mine {
    event: u32,
    block: usize,
    from: usize,
    to: usize,
}

impl Compiled {
    /// Processes `evs` in order and appends their firings tagged by event position:
    /// exactly the firings of calling [`super::Matcher::event`] on each in turn.
    ///
    /// # Performance
    /// Parallel in the current rayon pool when it has more than one thread and the
    /// batch has at least [`PARALLEL_MIN_EVENTS`] events; see the module docs. Allocates
    /// nothing once its buffers have grown to the batch's size, beyond growing `out`.
    pub(super) fn process_batch(&mut self, reg: &Registry, evs: &[ResolvedEvent], out: &mut Vec<BatchFiring>) {
        let threads = rayon::current_num_threads();
        if threads < 2 || evs.len() < PARALLEL_MIN_EVENTS || !self.wide.is_empty() || evs.len() > u32::MAX as usize {
            self.sequential(reg, evs, out);
            return;
        }
        let mut scratch = std::mem::take(&mut self.batch);
        let touched = lookup_all(&self.index, evs, threads, &mut scratch.blocks);
        let shards = (threads * SHARDS_PER_THREAD).min(self.chunks.len()).max(1);
        let per = self.chunks.len().div_ceil(shards).max(1);
        let used = self.chunks.len().div_ceil(per);
        scratch.shards.resize_with(used.max(scratch.shards.len()), ShardOut::default);
        let blocks = &scratch.blocks[..evs.len().div_ceil(block_len(evs.len(), threads))];
        let catalog = &self.catalog;
        self.chunks.par_chunks_mut(per).zip(scratch.shards[..used].par_iter_mut()).enumerate().for_each(
            |(s, (chunks, shard_out))| {
                let shard = Shard {
                    chunks,
                    first: (s * per * CHUNK) as u64,
                    fire: FireCtx { catalog, reg, cause: Cause::Event },
                };
                shard.run(blocks, shard_out);
            },
        );
        self.stats.parallel_batches += 1;
        self.stats.postings_touched += touched;
        self.stats.circuits_checked += scratch.shards[..used].iter().map(|s| s.checked).sum::<u64>();
        merge(&scratch.shards[..used], &mut scratch.cursors, out);
        self.batch = scratch;
    }

    /// Phase 1, then phase 2 in order, all in the calling thread, a block of
    /// [`SEQUENTIAL_BLOCK`] events at a time: look up the block's postings, ask for the
    /// states of their callbacks, then apply the events one by one.
    fn sequential(&mut self, reg: &Registry, evs: &[ResolvedEvent], out: &mut Vec<BatchFiring>) {
        let mut one = std::mem::take(&mut self.batch.one);
        let mut blocks = std::mem::take(&mut self.batch.blocks);
        if blocks.is_empty() {
            blocks.push(Block::default());
        }
        let block = &mut blocks[0];
        for (b, evs) in evs.chunks(SEQUENTIAL_BLOCK).enumerate() {
            block.fill(&self.index, evs);
            self.stats.postings_touched += block.postings.len() as u64;
            block.postings.iter().for_each(|p| self.prefetch_state(p.cb));
            for (i, postings) in block.events().enumerate() {
                one.clear();
                self.apply(reg, postings, Cause::Event, &mut one);
                let event = b * SEQUENTIAL_BLOCK + i;
                out.extend(one.iter().map(|&firing| BatchFiring { event, firing }));
            }
        }
        self.batch.one = one;
        self.batch.blocks = blocks;
    }
}

/// Events per block of the sequential path (and per group of a shard): enough to keep
/// the core's line-fill buffers busy, few enough that the lines a block asks for (its
/// cells, runs and callback states, a few per event) are still in cache when it reads
/// them.
///
/// PERF: `RAYON_NUM_THREADS=1 trigwire bench --jobs 10000 --frames 1000 --batch 4096`,
/// two runs each: blocks of 64 events 3.63-3.68M events/s, 128 3.54-3.57M, 256
/// 3.47-3.81M, 1,024 3.31-3.32M, 4,096 2.94-3.04M.
const SEQUENTIAL_BLOCK: usize = 256;

/// Firings below this get their targets in the calling thread.
const PARALLEL_MIN_FIRINGS: usize = 4096;

/// Fills in what each firing's qube code acts on (see `target` in `mod.rs`): a read of
/// the owner's job record and agenda per firing, which is a cache miss or two on a big
/// farm, so a large batch does it in parallel over firings.
///
/// PERF: under `perf record trigwire bench --jobs 2000 --frames 1000` (one event at a
/// time), `target` took 10.8% of all samples (registration included), nearly all of
/// it in the binary search of the owner's agenda. Done sequentially after the
/// parallel phases it would cap the batch speedup (Amdahl); on this shared 2-core
/// machine the parallel version showed no measurable change either way.
pub(super) fn fill_targets(reg: &Registry, evs: &[ResolvedEvent], out: &mut [BatchFiring]) {
    let fill = |bf: &mut BatchFiring| bf.firing.target = super::target(reg, &bf.firing, &evs[bf.event]);
    if out.len() < PARALLEL_MIN_FIRINGS || rayon::current_num_threads() < 2 {
        out.iter_mut().for_each(fill);
    } else {
        out.par_iter_mut().with_min_len(1024).for_each(fill);
    }
}

/// Events per phase-1 block: a few blocks per thread, so that a slow block (a fanout
/// event with a million postings) does not hold the others back for long.
fn block_len(events: usize, threads: usize) -> usize {
    events.div_ceil(threads * SHARDS_PER_THREAD).max(16)
}

/// Phase 1: every event's sorted postings, in parallel over blocks of events. Returns
/// the number of postings found.
fn lookup_all(index: &Index, evs: &[ResolvedEvent], threads: usize, blocks: &mut Vec<Block>) -> u64 {
    let len = block_len(evs.len(), threads);
    let n = evs.len().div_ceil(len);
    if blocks.len() < n {
        blocks.resize_with(n, Block::default);
    }
    blocks[..n].par_iter_mut().zip(evs.par_chunks(len)).for_each(|(block, evs)| block.fill(index, evs));
    blocks[..n].iter().map(|b| b.postings.len() as u64).sum()
}

impl Block {
    /// Looks up the postings of `evs` in three passes over the block, each starting the
    /// next dependent read of every event before the following pass needs it: locate
    /// (hash the heads, ask for the exact cells), settle (read the cells, ask for their
    /// posting runs), collect (copy the runs). One event's reads wait on each other; in
    /// passes, a pass waits on at most its first miss while the rest are in flight.
    fn fill(&mut self, index: &Index, evs: &[ResolvedEvent]) {
        self.spots.clear();
        self.spot_ends.clear();
        for ev in evs {
            index.locate(ev, |s| self.spots.push(s));
            self.spot_ends.push(self.spots.len());
        }
        self.spots.iter_mut().for_each(|s| index.settle(s));
        self.postings.clear();
        self.ends.clear();
        let mut from = 0;
        for &end in &self.spot_ends {
            index.collect(&self.spots[from..end], &mut self.postings);
            self.ends.push(self.postings.len());
            from = end;
        }
    }

    /// Where the postings of each event of the block are in `postings`, in order.
    fn spans(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(self.ends.iter().copied())
    }

    /// The postings of each event of the block, in order.
    fn events(&self) -> impl Iterator<Item = &[Posting]> {
        self.spans().map(|(a, b)| &self.postings[a..b])
    }
}

/// Phase 2: the callbacks with ids in `[first, first + chunks.len() * CHUNK)`, owned
/// mutably by one task.
struct Shard<'a> {
    chunks: &'a mut [Option<Box<[CallbackState]>>],
    first: u64,
    fire: FireCtx<'a>,
}

impl Shard<'_> {
    fn run(mut self, blocks: &[Block], out: &mut ShardOut) {
        out.firings.clear();
        out.checked = 0;
        let end = self.first + (self.chunks.len() * CHUNK) as u64;
        let id = |p: &Posting| u64::from(p.cb.as_u32());
        let mut mine = std::mem::take(&mut out.mine);
        let mut events = blocks.iter().enumerate().flat_map(|(b, block)| block.spans().map(move |at| (b, at)));
        let total: usize = blocks.iter().map(|b| b.ends.len()).sum();
        let mut e = 0u32;
        while (e as usize) < total {
            // A group of events at a time: find this shard's postings of each and ask
            // for their callbacks' states, then apply them in order.
            mine.clear();
            for (b, (from, to)) in events.by_ref().take(SEQUENTIAL_BLOCK) {
                let list = &blocks[b].postings[from..to];
                e += 1;
                // Most events' postings fall in one shard: two compares skip the others.
                match (list.first(), list.last()) {
                    (Some(a), Some(z)) if id(a) < end && id(z) >= self.first => {}
                    _ => continue,
                }
                let lo = from + list.partition_point(|p| id(p) < self.first);
                let hi = lo + blocks[b].postings[lo..to].partition_point(|p| id(p) < end);
                if lo < hi {
                    blocks[b].postings[lo..hi].iter().for_each(|p| self.prefetch_state(p.cb));
                    mine.push(Mine { event: e - 1, block: b, from: lo, to: hi });
                }
            }
            for m in &mine {
                let postings = &blocks[m.block].postings[m.from..m.to];
                self.apply(m.event, postings, out);
            }
        }
        out.mine = mine;
    }

    /// Asks for the cache line of `cb`'s state, without reading it.
    fn prefetch_state(&self, cb: CallbackId) {
        let local = cb.as_usize() - self.first as usize;
        if let Some(chunk) = &self.chunks[local / CHUNK] {
            prefetch(&chunk[local % CHUNK]);
        }
    }

    /// The sequential `apply` over this shard's slice of one event's postings.
    fn apply(&mut self, event: u32, postings: &[Posting], out: &mut ShardOut) {
        let (mut i, mut hint) = (0, 0);
        while i < postings.len() {
            let cb = postings[i].cb;
            let run = postings[i..].iter().take_while(|p| p.cb == cb).count();
            let (first, chunks, fire) = (self.first, &mut *self.chunks, &self.fire);
            if let Some(state) = state_mut(chunks, first, cb) {
                for p in &postings[i..i + run] {
                    state.latch |= 1 << p.slot;
                }
                out.checked += 1;
                let latch = [state.latch];
                if let Some(firing) = state.fire(cb, &latch, fire, &mut hint) {
                    out.firings.push((event, firing));
                }
            }
            i += run;
        }
    }
}

/// The live state of `cb` in a shard whose first id is `first`.
fn state_mut(chunks: &mut [Option<Box<[CallbackState]>>], first: u64, cb: CallbackId) -> Option<&mut CallbackState> {
    let local = cb.as_usize() - first as usize;
    let state = &mut chunks[local / CHUNK].as_mut()?[local % CHUNK];
    (state.kind != DEAD_KIND).then_some(state)
}

/// Phase 3: the shards' firings in (event, callback) order. Within one event, shards
/// hold increasing callback ranges, so their runs are concatenated in shard order.
fn merge(shards: &[ShardOut], cursors: &mut Vec<usize>, out: &mut Vec<BatchFiring>) {
    cursors.clear();
    cursors.resize(shards.len(), 0);
    out.reserve(shards.iter().map(|s| s.firings.len()).sum());
    loop {
        let heads = shards.iter().zip(cursors.iter()).filter_map(|(s, &at)| s.firings.get(at));
        let Some(event) = heads.map(|&(e, _)| e).min() else { return };
        for (shard, at) in shards.iter().zip(cursors.iter_mut()) {
            while let Some(&(e, firing)) = shard.firings.get(*at).filter(|(e, _)| *e == event) {
                out.push(BatchFiring { event: e as usize, firing });
                *at += 1;
            }
        }
    }
}
