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
//!    parallel over blocks of consecutive events, into reusable per-block buffers, and
//!    splits each event's postings by shard (below): since they are sorted, a shard's
//!    part of an event is one run.
//! 2. **Callbacks do not interact.** A callback's latches, count and firing depend only
//!    on the events that touch it, in their order. Phase 2 splits the callback storage
//!    (chunks of 4,096 ids) into disjoint mutable shards; each shard applies its runs
//!    of every block in event order, and touches nothing of the events outside its id
//!    range. Shards share nothing mutable, so the hot loop takes no locks, and each
//!    shard records `(event, firing)` in event order, callback order within an event.
//!
//! Phase 3 merges the shards' records by event index (a counting sort); within one
//! event, shard `s` holds smaller callback ids than shard `s + 1`, so placing the
//! shards' records in shard order gives callback order. The result is the one-at-a-time
//! order: event index, then callback id, whatever the number of threads or shards.
//!
//! Small batches, a one-thread pool, and engines holding circuits wider than 64 atoms
//! (whose latches live in a shared side table) take the sequential path: phase 1 for the
//! whole batch in the calling thread, then each event's postings applied in order. It
//! gives the one-at-a-time firings for the same reason as the parallel path (the index
//! does not change during a batch), and it is faster than one-at-a-time processing on
//! a big farm because the lookups of consecutive events are independent, so their cache
//! misses overlap instead of waiting behind each event's latch updates.
//!
//! Both paths apply postings through the one latch loop, `Shard::apply` in
//! `callbacks.rs`: the sequential path over the whole table (wide latches included), a
//! parallel task over its shard's slice of chunks.
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
//! 2.94-2.99M. Under `perf record` close to half of the samples sit on the prefetch
//! instructions themselves, waiting for a free line-fill buffer: the core has as many
//! misses in flight as it can hold (PERFORMANCE.md has the profile).
//!
//! PERF: the shards of the parallel path ask for their callbacks' states a group of
//! events ahead, as the sequential path does: `RAYON_NUM_THREADS=2 trigwire bench
//! --jobs 10000 --frames 1000 --batch 4096`, two runs each, 2.80-2.92M -> 3.88-4.18M
//! events/s (one thread, the same build: 3.22-3.64M). Resolving the events in parallel
//! too (`Registry::resolve_event` is read-only without kept facts) was tried and gave
//! nothing measurable on two cores: 3.54-3.75M against 3.82-4.12M without it.
//!
//! PERF: phase 1 splits postings by shard, instead of every shard scanning every event
//! of the batch for its range (8 shards on 2 threads: 8 scans), and phase 3 is a
//! counting sort, instead of a k-way merge by event: `trigwire bench --jobs 1000
//! --frames 1000 --batch 4096` (1M callbacks) on 2 threads, 199-230 -> 161-176 ns per
//! event (one thread: 169-184 -> 181-182 ns). Timing the phases showed the parallel
//! ones scale with the batch: on batches of 65,536 events, 1.5-1.9 times faster on two
//! threads than pinned to one core, against 1.2-1.3 times on batches of 4,096.

use rayon::prelude::*;

use super::callbacks::{FireCtx, Shard, Wide, WideLatches};
use super::catalog::CHUNK;
use super::compiled::item_of;
use super::index::{Index, Spot};
use super::postings::Posting;
use crate::front::model::RawFiring;
use crate::front::registry::ResolvedEvent;

/// A matcher's firing with the position of its event in a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RawBatchFiring {
    pub event: usize,
    pub firing: RawFiring,
}

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
    /// Firings per event, then where each event's firings start (phase 3).
    starts: Vec<usize>,
}

impl BatchScratch {
    /// Bytes held by the buffers, by capacity.
    pub(super) fn heap_bytes(&self) -> usize {
        let block = |b: &Block| {
            b.postings.capacity() * std::mem::size_of::<Posting>()
                + b.spots.capacity() * std::mem::size_of::<Spot>()
                + (b.ends.capacity() + b.spot_ends.capacity()) * std::mem::size_of::<usize>()
                + b.by_shard.capacity() * std::mem::size_of::<Vec<Mine>>()
                + b.by_shard.iter().map(|m| m.capacity() * std::mem::size_of::<Mine>()).sum::<usize>()
        };
        let shard = |s: &ShardOut| s.firings.capacity() * std::mem::size_of::<(u32, RawFiring)>();
        self.blocks.capacity() * std::mem::size_of::<Block>()
            + self.blocks.iter().map(block).sum::<usize>()
            + self.shards.capacity() * std::mem::size_of::<ShardOut>()
            + self.shards.iter().map(shard).sum::<usize>()
            + self.starts.capacity() * std::mem::size_of::<usize>()
    }
}

/// The postings of a run of consecutive events, flattened: event `i` of the block owns
/// `postings[ends[i - 1]..ends[i]]`. Aligned to two cache lines, so that threads
/// filling neighbouring blocks do not write to one line.
#[derive(Clone, Debug, Default)]
#[repr(align(128))]
struct Block {
    postings: Vec<Posting>,
    ends: Vec<usize>,
    /// Where the postings were found (see [`Index::locate`]): event `i` of the block
    /// owns `spots[spot_ends[i - 1]..spot_ends[i]]`.
    spots: Vec<Spot>,
    spot_ends: Vec<usize>,
    /// The block's postings split by shard (parallel path only): `by_shard[s]` lists
    /// the runs of shard `s`'s callbacks, in event order.
    by_shard: Vec<Vec<Mine>>,
}

/// What one shard of callbacks produced: its firings tagged by event index, in order,
/// and how many circuits it checked. Aligned as [`Block`] is.
#[derive(Clone, Debug, Default)]
#[repr(align(128))]
struct ShardOut {
    firings: Vec<(u32, RawFiring)>,
    checked: u64,
}

/// Postings `from..to` of a block are one shard's part of event `event` of the batch.
#[derive(Clone, Copy, Debug, Default)]
struct Mine {
    event: u32,
    from: usize,
    to: usize,
}

/// The work a batch did, for [`super::Stats`].
#[derive(Clone, Copy, Debug)]
pub(super) struct Work {
    /// Postings found.
    pub touched: u64,
    /// Whether it took the parallel path.
    pub parallel: bool,
}

/// Processes `evs` in order against `all`, the whole table of callbacks, and appends
/// their firings tagged by event position: exactly the firings of calling
/// `Compiled::event` on each in turn. Circuits checked are counted in `all.checked`.
///
/// # Performance
/// Parallel in the current rayon pool when it has more than one thread, the batch has
/// at least [`PARALLEL_MIN_EVENTS`] events and no circuit is wider than 64 atoms; see
/// the module docs. Allocates nothing once its buffers have grown to the batch's size,
/// beyond growing `out`.
pub(super) fn process(
    index: &Index,
    all: &mut Shard<'_, &mut WideLatches>,
    fire: &FireCtx<'_>,
    evs: &[ResolvedEvent],
    scratch: &mut BatchScratch,
    out: &mut Vec<RawBatchFiring>,
) -> Work {
    let threads = rayon::current_num_threads();
    if threads < 2
        || evs.len() < PARALLEL_MIN_EVENTS
        || !all.wide.is_empty()
        || fire.on_rise
        || evs.len() > u32::MAX as usize
    {
        let touched = sequential(index, all, fire, evs, scratch, out);
        return Work { touched, parallel: false };
    }
    let chunks = &mut *all.chunks;
    let shards = (threads * SHARDS_PER_THREAD).min(chunks.len()).max(1);
    let per = chunks.len().div_ceil(shards).max(1);
    let used = chunks.len().div_ceil(per);
    let split = Split { ids: (per * CHUNK) as u64, shards: used };
    let touched = lookup_all(index, evs, threads, split, &mut scratch.blocks);
    scratch.shards.resize_with(used.max(scratch.shards.len()), ShardOut::default);
    let blocks = &scratch.blocks[..evs.len().div_ceil(block_len(evs.len(), threads))];
    chunks
        .par_chunks_mut(per)
        .zip(scratch.shards[..used].par_iter_mut())
        .enumerate()
        .for_each(|(s, (chunks, shard_out))| run(Shard::narrow(chunks, s * per * CHUNK), fire, blocks, s, shard_out));
    all.checked += scratch.shards[..used].iter().map(|s| s.checked).sum::<u64>();
    merge(&scratch.shards[..used], evs.len(), &mut scratch.starts, out);
    Work { touched, parallel: true }
}

/// Phase 1, then phase 2 in order, all in the calling thread, a block of [`GROUP`]
/// events at a time: look up the block's postings, ask for the states of their
/// callbacks, then apply the events one by one. Returns the number of postings found.
fn sequential(
    index: &Index,
    all: &mut Shard<'_, &mut WideLatches>,
    fire: &FireCtx<'_>,
    evs: &[ResolvedEvent],
    scratch: &mut BatchScratch,
    out: &mut Vec<RawBatchFiring>,
) -> u64 {
    if scratch.blocks.is_empty() {
        scratch.blocks.push(Block::default());
    }
    let block = &mut scratch.blocks[0];
    let mut touched = 0;
    for (b, evs) in evs.chunks(GROUP).enumerate() {
        block.fill(index, evs);
        touched += block.postings.len() as u64;
        block.postings.iter().for_each(|p| all.prefetch_state(p.cb));
        for (i, postings) in block.events().enumerate() {
            let event = b * GROUP + i;
            // Under `on-rise` each event brings its own item (see `callbacks.rs`).
            let own;
            let fire = if fire.on_rise {
                own = FireCtx { item: item_of(&evs[i]), ..*fire };
                &own
            } else {
                fire
            };
            all.apply(postings, fire, |firing| out.push(RawBatchFiring { event, firing }));
        }
    }
    touched
}

/// Events per block of the sequential path (and per group of a shard): enough to keep
/// the core's line-fill buffers busy, few enough that the lines a block asks for (its
/// cells, runs and callback states, a few per event) are still in cache when it reads
/// them.
///
/// PERF: `RAYON_NUM_THREADS=1 trigwire bench --jobs 10000 --frames 1000 --batch 4096`,
/// two runs each: blocks of 64 events 3.63-3.68M events/s, 128 3.54-3.57M, 256
/// 3.47-3.81M, 1,024 3.31-3.32M, 4,096 2.94-3.04M.
const GROUP: usize = 256;

/// Runs `work`, the processing of a batch of `events` events, on a thread of the
/// current rayon pool when the batch can take the parallel path (at least
/// [`PARALLEL_MIN_EVENTS`] events, a pool of more than one thread) and the caller is not
/// already a pool thread; otherwise in the calling thread, since handing a small batch
/// over costs more than processing it.
///
/// A caller outside the pool hands every parallel region to the pool's threads and
/// sleeps until the region ends; run inside the pool, a batch's regions start and end
/// on a pool thread, and the caller waits once per batch.
///
/// PERF: `RAYON_NUM_THREADS=2 trigwire bench --jobs 1000 --frames 1000 --batch 4096`,
/// three interleaved runs each: 168-179 -> 152-158 ns per event; with `--jobs 10000`,
/// two runs each: 4.12-4.42M -> 4.56-4.79M events/s. One thread takes the same path as
/// before. Batches of one event from outside the pool, handed over too at first: 7.3 µs
/// per event against 218 ns in the calling thread (`--jobs 10 --batch 1`).
pub(super) fn in_pool<R: Send>(events: usize, work: impl FnOnce() -> R + Send) -> R {
    let parallel = events >= PARALLEL_MIN_EVENTS && rayon::current_num_threads() >= 2;
    if !parallel || rayon::current_thread_index().is_some() {
        work()
    } else {
        rayon::scope(|_| work())
    }
}

/// Runs `work` on a thread of the current rayon pool, the one [`crate::Engine::process_batch`]
/// spreads its work over, or in the calling thread if it is one already. A host loop that
/// feeds batch after batch (and reads their firings) from inside the pool keeps each
/// batch's data on the core that made it; called from outside, every batch is handed
/// to a pool thread and its firings read back on another core.
///
/// PERF: `trigwire run --batch 4096` on a farm of 1M callbacks and 1M events (one
/// submission of 10,000 jobs × 100 frames, `RAYON_NUM_THREADS=2`): 2.14-2.32 s of CPU
/// with the replay loop outside the pool, 1.89-1.98 s inside; one thread, 1.82-2.17 s.
pub fn on_pool_thread<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        work()
    } else {
        rayon::scope(|_| work())
    }
}

/// Firings below this get their targets in the calling thread.
const PARALLEL_MIN_FIRINGS: usize = 4096;

/// Applies `fill` to each firing: the engine fills in what its qube code acts on (see
/// `target` in `mod.rs`), a read of
/// the owner's job record and agenda per firing, which is a cache miss or two on a big
/// farm, so a large batch does it in parallel over firings.
///
/// PERF: under `perf record trigwire bench --jobs 2000 --frames 1000` (one event at a
/// time), `target` took 10.8% of all samples (registration included), nearly all of
/// it in the binary search of the owner's agenda. Done sequentially after the
/// parallel phases it would cap the batch speedup (Amdahl); on this shared 2-core
/// machine the parallel version showed no measurable change either way.
pub(super) fn fill_targets(out: &mut [RawBatchFiring], fill: impl Fn(&mut RawBatchFiring) + Send + Sync) {
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

/// How the parallel path splits callbacks: shard `s` owns ids `s * ids..(s + 1) * ids`.
#[derive(Clone, Copy, Debug)]
struct Split {
    ids: u64,
    shards: usize,
}

/// Phase 1: every event's sorted postings, split by shard, in parallel over blocks of
/// events. Returns the number of postings found.
fn lookup_all(index: &Index, evs: &[ResolvedEvent], threads: usize, split: Split, blocks: &mut Vec<Block>) -> u64 {
    let len = block_len(evs.len(), threads);
    let n = evs.len().div_ceil(len);
    if blocks.len() < n {
        blocks.resize_with(n, Block::default);
    }
    blocks[..n].par_iter_mut().zip(evs.par_chunks(len)).enumerate().for_each(|(b, (block, evs))| {
        block.fill(index, evs);
        block.split((b * len) as u32, split);
    });
    blocks[..n].iter().map(|b| b.postings.len() as u64).sum()
}

impl Block {
    /// Looks up the postings of `evs`, a group of [`GROUP`] events at a time, in three
    /// passes over the group, each starting the next dependent read of every event
    /// before the following pass needs it: locate (hash the heads, ask for the exact
    /// cells), settle (read the cells, ask for their posting runs), collect (copy the
    /// runs). One event's reads wait on each other; in passes, a pass waits on at most
    /// its first miss while the rest are in flight.
    fn fill(&mut self, index: &Index, evs: &[ResolvedEvent]) {
        self.postings.clear();
        self.ends.clear();
        for evs in evs.chunks(GROUP) {
            self.spots.clear();
            self.spot_ends.clear();
            for ev in evs {
                index.locate(ev, |s| self.spots.push(s));
                self.spot_ends.push(self.spots.len());
            }
            self.spots.iter_mut().for_each(|s| index.settle(s));
            let mut from = 0;
            for &end in &self.spot_ends {
                index.collect(&self.spots[from..end], &mut self.postings);
                self.ends.push(self.postings.len());
                from = end;
            }
        }
    }

    /// Splits the block's postings by shard: each event's postings are sorted by
    /// callback id, so a shard's part of an event is one run. `first` is the batch
    /// index of the block's first event.
    fn split(&mut self, first: u32, split: Split) {
        self.by_shard.resize_with(split.shards.max(self.by_shard.len()), Vec::new);
        self.by_shard.iter_mut().for_each(Vec::clear);
        let spans = std::iter::once(0).chain(self.ends.iter().copied()).zip(self.ends.iter().copied());
        for (i, (mut from, to)) in spans.enumerate() {
            while from < to {
                let shard = u64::from(self.postings[from].cb.as_u32()) / split.ids;
                let end = (shard + 1) * split.ids;
                let run = self.postings[from..to].partition_point(|p| u64::from(p.cb.as_u32()) < end);
                let mine = Mine { event: first + i as u32, from, to: from + run };
                self.by_shard[shard as usize].push(mine);
                from += run;
            }
        }
    }

    /// The postings of each event of the block, in order.
    fn events(&self) -> impl Iterator<Item = &[Posting]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(self.ends.iter().copied()).map(|(a, b)| &self.postings[a..b])
    }
}

/// Phase 2 for one task: applies shard `s`'s postings of every block to `shard`, in
/// event order, a group of runs at a time: first ask for the group's callback states,
/// then apply the group.
fn run<W: Wide>(mut shard: Shard<'_, W>, fire: &FireCtx<'_>, blocks: &[Block], s: usize, out: &mut ShardOut) {
    out.firings.clear();
    for block in blocks {
        for group in block.by_shard[s].chunks(GROUP) {
            for m in group {
                block.postings[m.from..m.to].iter().for_each(|p| shard.prefetch_state(p.cb));
            }
            for m in group {
                shard.apply(&block.postings[m.from..m.to], fire, |firing| out.firings.push((m.event, firing)));
            }
        }
    }
    out.checked = shard.checked;
}

/// Phase 3: the shards' firings in (event, callback) order, by counting sort on the
/// event. Within one event, shards hold increasing callback ranges, so placing the
/// shards' firings in shard order keeps callback order. `events` is the batch length.
fn merge(shards: &[ShardOut], events: usize, starts: &mut Vec<usize>, out: &mut Vec<RawBatchFiring>) {
    let Some(&(_, any)) = shards.iter().find_map(|s| s.firings.first()) else { return };
    starts.clear();
    starts.resize(events + 1, 0);
    for &(e, _) in shards.iter().flat_map(|s| &s.firings) {
        starts[e as usize + 1] += 1;
    }
    let base = out.len();
    for i in 0..events {
        starts[i + 1] += starts[i];
    }
    out.resize(base + starts[events], RawBatchFiring { event: 0, firing: any });
    for &(e, firing) in shards.iter().flat_map(|s| &s.firings) {
        let at = &mut starts[e as usize];
        out[base + *at] = RawBatchFiring { event: e as usize, firing };
        *at += 1;
    }
}
