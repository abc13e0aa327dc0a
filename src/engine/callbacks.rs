//! Callback states, and the one loop that applies postings to them.
//!
//! A callback's own state is 16 bytes (see `catalog.rs` for what moved out): its kind,
//! its count and one latch word, stored in chunks of [`CHUNK`] ids, so that a chunk
//! whose callbacks are all removed is freed. Circuits wider than 64 atoms keep their
//! latch words in a side table ([`WideLatches`]) instead.
//!
//! Every change to latches goes through [`Shard::apply`]: one event, the events of a
//! batch in one thread or in a parallel shard, the latches that registration presets
//! (from kept facts and clock times already past) and clock ticks. For each callback
//! among sorted postings it sets the latch bits, checks the circuit and maybe fires. A
//! [`Shard`] is where the states it touches live: the whole table with its wide
//! latches, or one parallel task's slice of chunks, which has no wide latches
//! (engines holding wide circuits take the sequential path, see `batch.rs`). The loop
//! is generic over that difference, so each path compiles to its own copy of it.

use std::sync::Arc;

use hashbrown::{HashMap, HashSet};

use super::catalog::{Catalog, KindId, CHUNK, DEAD_KIND};
use super::postings::{Posting, WILD};
use super::prefetch::prefetch;
use super::snapshot::{snapshot_error, u32_at, u64_at, Dec, Enc};
use crate::error::Error;
use crate::front::ids::{CallbackId, Symbol};
use crate::front::model::{Cause, RawFiring};
use crate::front::registry::Registry;

/// The mutable state of one callback: 16 bytes.
#[derive(Clone, Copy, Debug)]
pub(super) struct CallbackState {
    /// Its (template, action) pair; [`DEAD_KIND`] once removed.
    pub(super) kind: KindId,
    count: u32,
    /// Latch bits of circuits up to 64 atoms; wider ones live in [`WideLatches`].
    latch: u64,
}

impl CallbackState {
    /// How many times it has fired.
    pub(super) fn count(&self) -> u32 {
        self.count
    }

    /// Its latch word (the first, for wide circuits kept in [`WideLatches`]).
    pub(super) fn latch(&self) -> u64 {
        self.latch
    }
}

// The `on-rise` items live beside the states, never in them.
const _: () = assert!(std::mem::size_of::<CallbackState>() == 16);

const DEAD: CallbackState = CallbackState { kind: DEAD_KIND, count: 0, latch: 0 };

impl CallbackState {
    /// Whether a callback with these latches fires now: its circuit is true and its
    /// count is under its maximum. If so, counts the firing and returns it. `hint` is
    /// the owner run of the previous firing (see [`Catalog::owner`]).
    ///
    /// PERF: forced inline: with the loop generic over two kinds of shard, the compiler
    /// called it out of line, and `cargo bench --bench engine -- fanout/trigwire/1M
    /// --quick` went from 55.6-60.8 ms (the two loops of before) to 58.3-74.2 ms; inlined,
    /// 50.5-56.7 ms (interleaved runs on a shared 2-core machine).
    ///
    /// `again` is asked last, with the count, under [`crate::Refire::OnRise`] only.
    #[inline(always)]
    fn fire(
        &mut self,
        cb: CallbackId,
        latch: &[u64],
        fire: &FireCtx<'_>,
        hint: &mut usize,
        again: impl FnOnce(u32) -> bool,
    ) -> Option<RawFiring> {
        if !fire.catalog.template(self.kind).is_true(latch) {
            return None;
        }
        let action = fire.catalog.action(self.kind);
        if fire.reg.action(action).maximum.is_some_and(|m| u64::from(self.count) >= m) {
            return None;
        }
        if fire.on_rise && !again(self.count) {
            return None;
        }
        self.count = self.count.saturating_add(1);
        let (owner, index) = fire.catalog.owner(cb, hint);
        let owner = (owner != 0).then_some(owner);
        Some(RawFiring { callback: cb, owner, index, action, target: None, cause: fire.cause, count: self.count })
    }
}

/// What deciding a firing reads besides the callback's own state.
#[derive(Clone, Copy)]
pub(super) struct FireCtx<'a> {
    pub(super) catalog: &'a Catalog,
    pub(super) reg: &'a Registry,
    pub(super) cause: Cause,
    /// [`crate::Refire::OnRise`] is in force.
    pub(super) on_rise: bool,
    /// The event's job and item (its extra), for `on_rise`; `None` for ticks,
    /// registration and job events.
    pub(super) item: Option<(u64, Symbol)>,
}

/// Under [`crate::Refire::OnRise`], the (slot, job, item) through which each callback's
/// `*` atoms have caused a firing of it (spec §9): part of the state, kept beside the
/// 16-byte states and only for callbacks that have such firings.
///
/// An item is kept by its text, not its symbol: the symbol of an event's extra is held
/// by nothing once the event is processed, so its number may be freed and reused for
/// another string (see `src/front/intern.rs`).
pub(super) type SeenItems = HashMap<CallbackId, HashSet<(u32, u64, Arc<str>)>>;

/// The rule of `on-rise`: a callback that has not fired fires (its trigger has just
/// risen); one that has fires again only if one of its `*` atoms in `run` met an item
/// new to it. The items of a firing are recorded.
#[inline(never)]
fn again(
    seen: &mut SeenItems,
    reg: &Registry,
    cb: CallbackId,
    run: &[Posting],
    item: Option<(u64, Symbol)>,
    count: u32,
) -> bool {
    let Some((job, item)) = item else { return count == 0 };
    // The event's extra was interned when the event was resolved and is live until the
    // command ends.
    let item = reg.symbols.shared(item);
    let mut wild = run.iter().filter(|p| p.slot & WILD != 0).map(|p| (p.bit(), job, Arc::clone(item))).peekable();
    if wild.peek().is_none() {
        return count == 0;
    }
    if count > 0 && seen.get(&cb).is_some_and(|set| wild.clone().all(|k| set.contains(&k))) {
        return false;
    }
    seen.entry(cb).or_default().extend(wild);
    true
}

/// The latch words of circuits wider than 64 atoms, by callback.
pub(super) type WideLatches = HashMap<CallbackId, Box<[u64]>>;

/// Every callback's state, by id.
#[derive(Clone, Debug, Default)]
pub(super) struct Callbacks {
    pub(super) chunks: Vec<Option<Box<[CallbackState]>>>,
    live_in_chunk: Vec<u32>,
    pub(super) wide: WideLatches,
    /// Under `on-rise`: the items that caused firings, by callback.
    pub(super) seen: SeenItems,
}

impl Callbacks {
    /// The state of `cb` if it is live.
    pub fn state(&self, cb: CallbackId) -> Option<&CallbackState> {
        let chunk = self.chunks.get(cb.as_usize() / CHUNK)?.as_ref()?;
        let s = &chunk[cb.as_usize() % CHUNK];
        (s.kind != DEAD_KIND).then_some(s)
    }

    /// The first live callback with an id in `lo..hi`, visiting only stored chunks.
    pub fn first_live_in(&self, lo: u32, hi: u32) -> Option<u32> {
        let (lo, hi) = (lo as usize, (hi as usize).min(self.chunks.len() * CHUNK));
        let mut at = lo;
        while at < hi {
            let c = at / CHUNK;
            let end = ((c + 1) * CHUNK).min(hi);
            if let Some(chunk) = &self.chunks[c] {
                if let Some(i) = (at..end).find(|&i| chunk[i % CHUNK].kind != DEAD_KIND) {
                    return Some(i as u32);
                }
            }
            at = end;
        }
        None
    }

    pub fn is_live(&self, cb: CallbackId) -> bool {
        self.state(cb).is_some()
    }

    /// Stores a new callback of `kind` with clear latches, `words` of them.
    pub fn insert(&mut self, cb: CallbackId, kind: KindId, words: usize) {
        let c = cb.as_usize() / CHUNK;
        if self.chunks.len() <= c {
            self.chunks.resize_with(c + 1, || None);
            self.live_in_chunk.resize(c + 1, 0);
        }
        let chunk = self.chunks[c].get_or_insert_with(|| vec![DEAD; CHUNK].into_boxed_slice());
        chunk[cb.as_usize() % CHUNK] = CallbackState { kind, count: 0, latch: 0 };
        self.live_in_chunk[c] += 1;
        if words > 1 {
            self.wide.insert(cb, vec![0; words].into_boxed_slice());
        }
    }

    /// Removes `cb` if it is live, freeing its chunk if it was the last; returns its kind.
    pub fn remove(&mut self, cb: CallbackId) -> Option<KindId> {
        let c = cb.as_usize() / CHUNK;
        let state = self.chunks.get_mut(c)?.as_mut()?.get_mut(cb.as_usize() % CHUNK)?;
        let kind = state.kind;
        if kind == DEAD_KIND {
            return None;
        }
        *state = DEAD;
        self.wide.remove(&cb);
        self.seen.remove(&cb);
        self.live_in_chunk[c] -= 1;
        if self.live_in_chunk[c] == 0 {
            self.chunks[c] = None;
        }
        Some(kind)
    }

    /// Clears a live callback's latches and count; false if it is not live.
    pub fn rearm(&mut self, cb: CallbackId) -> bool {
        let Some(state) = state_mut(&mut self.chunks, 0, cb) else { return false };
        state.count = 0;
        state.latch = 0;
        if let Some(words) = self.wide.get_mut(&cb) {
            words.fill(0);
        }
        true
    }

    /// Live callbacks with a count of zero, and with more.
    pub fn by_count(&self) -> (u64, u64) {
        let live = self.chunks.iter().flatten().flat_map(|c| c.iter()).filter(|s| s.kind != DEAD_KIND);
        live.fold((0, 0), |(w, f), s| if s.count == 0 { (w + 1, f) } else { (w, f + 1) })
    }

    /// The whole table as one shard, starting from owner run `hint`.
    pub fn whole(&mut self, hint: usize) -> Shard<'_, &mut WideLatches> {
        Shard { chunks: &mut self.chunks, first: 0, wide: &mut self.wide, seen: Some(&mut self.seen), hint, checked: 0 }
    }

    /// Bytes of states, chunk tables and wide latches.
    pub fn heap_bytes(&self) -> usize {
        let chunk_bytes = CHUNK * std::mem::size_of::<CallbackState>();
        self.chunks.iter().flatten().count() * chunk_bytes
            + self.chunks.capacity() * std::mem::size_of::<Option<Box<[CallbackState]>>>()
            + self.live_in_chunk.capacity() * std::mem::size_of::<u32>()
            + self.wide.capacity() * (std::mem::size_of::<(CallbackId, Box<[u64]>)>() + 1)
            + self.wide.values().map(|w| w.len() * std::mem::size_of::<u64>()).sum::<usize>()
            + self.seen.capacity() * (std::mem::size_of::<(CallbackId, HashSet<(u32, u64, Arc<str>)>)>() + 1)
            + self
                .seen
                .values()
                .map(|s| s.capacity() * (std::mem::size_of::<(u32, u64, Arc<str>)>() + 1))
                .sum::<usize>()
    }
}

/// Where a shard finds the latch words of wide circuits.
pub(super) trait Wide {
    /// The latch words of `cb` if its circuit is wider than 64 atoms.
    fn words(&mut self, cb: CallbackId) -> Option<&mut [u64]>;
}

impl Wide for &mut WideLatches {
    #[inline]
    fn words(&mut self, cb: CallbackId) -> Option<&mut [u64]> {
        if self.is_empty() {
            return None;
        }
        self.get_mut(&cb).map(|w| &mut w[..])
    }
}

/// A shard without wide circuits: a task of the parallel path.
pub(super) struct Narrow;

impl Wide for Narrow {
    #[inline(always)]
    fn words(&mut self, _: CallbackId) -> Option<&mut [u64]> {
        None
    }
}

/// The callbacks with ids in `[first, first + chunks.len() * CHUNK)`, owned mutably,
/// with the registers of the loop that applies postings to them: the owner run of the
/// last firing and the number of circuits checked.
pub(super) struct Shard<'a, W> {
    pub(super) chunks: &'a mut [Option<Box<[CallbackState]>>],
    pub(super) first: usize,
    pub(super) wide: W,
    /// The `on-rise` items, on the sequential path; a parallel task has none (batches
    /// under `on-rise` take the sequential path).
    pub(super) seen: Option<&'a mut SeenItems>,
    /// The owner run of the last firing (see [`Catalog::owner`]); any value is correct.
    pub(super) hint: usize,
    /// Callback circuits evaluated.
    pub(super) checked: u64,
}

impl<'a> Shard<'a, Narrow> {
    /// A parallel task's shard: `chunks` hold ids from `first` on.
    pub fn narrow(chunks: &'a mut [Option<Box<[CallbackState]>>], first: usize) -> Self {
        Shard { chunks, first, wide: Narrow, seen: None, hint: 0, checked: 0 }
    }
}

impl<W: Wide> Shard<'_, W> {
    /// Asks for the cache line of `cb`'s state, without reading it.
    #[inline]
    pub fn prefetch_state(&self, cb: CallbackId) {
        let local = cb.as_usize() - self.first;
        if let Some(Some(chunk)) = self.chunks.get(local / CHUNK) {
            prefetch(&chunk[local % CHUNK]);
        }
    }

    /// The hot loop: sets the latches of `postings` (sorted by callback, all in this
    /// shard), checks each live callback's circuit once and hands its firing to `emit`,
    /// in callback order.
    #[inline]
    pub fn apply(&mut self, postings: &[Posting], fire: &FireCtx<'_>, mut emit: impl FnMut(RawFiring)) {
        let mut i = 0;
        while i < postings.len() {
            let cb = postings[i].cb;
            let len = postings[i..].iter().take_while(|p| p.cb == cb).count();
            let run = &postings[i..i + len];
            i += len;
            let Some(state) = state_mut(self.chunks, self.first, cb) else { continue };
            self.checked += 1;
            let seen = &mut self.seen;
            let again =
                |count| seen.as_deref_mut().is_some_and(|seen| again(seen, fire.reg, cb, run, fire.item, count));
            let fired = match self.wide.words(cb) {
                Some(words) => {
                    for p in run {
                        words[(p.bit() / 64) as usize] |= 1 << (p.bit() % 64);
                    }
                    state.fire(cb, words, fire, &mut self.hint, again)
                }
                None => {
                    for p in run {
                        state.latch |= 1 << (p.slot % 64);
                    }
                    let latch = [state.latch];
                    state.fire(cb, &latch, fire, &mut self.hint, again)
                }
            };
            if let Some(firing) = fired {
                emit(firing);
            }
        }
    }
}

/// The live state of `cb` in chunks whose first id is `first`.
#[inline]
fn state_mut(chunks: &mut [Option<Box<[CallbackState]>>], first: usize, cb: CallbackId) -> Option<&mut CallbackState> {
    let local = cb.as_usize() - first;
    let state = &mut chunks.get_mut(local / CHUNK)?.as_mut()?[local % CHUNK];
    (state.kind != DEAD_KIND).then_some(state)
}

// Snapshots (format: src/engine/snapshot.rs): the chunks as they are (a presence byte,
// the count up to the last live state, then 16 bytes per state), then the wide latches by callback id. The live counts per
// chunk are recounted.
impl Callbacks {
    pub(crate) fn encode(&self, e: &mut Enc) {
        e.len(self.chunks.len());
        for chunk in &self.chunks {
            e.bool(chunk.is_some());
            if let Some(states) = chunk {
                // Up to the last live state: the rest are dead (small engines stay small).
                let used = states.iter().rposition(|s| s.kind != DEAD_KIND).map_or(0, |i| i + 1);
                e.len(used);
                e.reserve(used * 16);
                for s in &states[..used] {
                    e.u32(s.kind);
                    e.u32(s.count);
                    e.u64(s.latch);
                }
            }
        }
        e.by_callback(self.wide.iter(), |e, words| {
            e.len(words.len());
            words.iter().for_each(|&w| e.u64(w));
        });
        // The `on-rise` items, by callback, each set sorted.
        e.by_callback(self.seen.iter(), |e, items| {
            let mut items: Vec<_> = items.iter().collect();
            items.sort_unstable();
            e.len(items.len());
            for (slot, job, item) in items {
                e.u32(*slot);
                e.u64(*job);
                e.str(item);
            }
        });
    }

    /// Decodes callback states whose kinds are `catalog`'s and whose ids are below
    /// `next`; a live callback must have an owner run and, if its circuit is wider than
    /// 64 atoms, wide latches of its template's width (what the latch loop indexes).
    pub(crate) fn decode(d: &mut Dec<'_>, catalog: &Catalog, next: u32) -> Result<Callbacks, Error> {
        let kinds = catalog.kinds();
        let chunks = d.count_upto(1, (next as usize).div_ceil(CHUNK) as u64)?;
        let mut callbacks = Callbacks::default();
        callbacks.chunks.reserve_exact(chunks);
        callbacks.live_in_chunk.reserve_exact(chunks);
        let mut wide_needed = 0usize;
        let mut per_kind = vec![0u32; kinds];
        for c in 0..chunks {
            if !d.bool()? {
                callbacks.chunks.push(None);
                callbacks.live_in_chunk.push(0);
                continue;
            }
            let used = d.count_upto(16, CHUNK as u64)?;
            let at = d.offset();
            let mut states = Vec::with_capacity(CHUNK);
            let mut live = 0u32;
            for (i, b) in d.array(used, 16)?.chunks_exact(16).enumerate() {
                let state = CallbackState { kind: u32_at(b, 0), count: u32_at(b, 4), latch: u64_at(b, 8) };
                if state.kind != DEAD_KIND {
                    let cb = CallbackId::from_u32((c * CHUNK + i) as u32);
                    let fine = catalog.kind_live(state.kind) && cb.as_u32() < next && catalog.covers(cb);
                    if !fine {
                        let why = match (catalog.kind_live(state.kind), cb.as_u32() < next) {
                            (false, _) => "its kind is not live",
                            (_, false) => "its id was never handed out",
                            _ => "no live owner run covers it",
                        };
                        let what = format!("callback {}: {why}", cb.as_u32());
                        return Err(snapshot_error(at + 16 * i as u64, what));
                    }
                    live += 1;
                    per_kind[state.kind as usize] += 1;
                    wide_needed += usize::from(catalog.template(state.kind).words() > 1);
                }
                states.push(state);
            }
            states.resize(CHUNK, DEAD);
            d.check(live > 0, || format!("chunk {c} is stored without a live callback"))?;
            callbacks.chunks.push(Some(states.into_boxed_slice()));
            callbacks.live_in_chunk.push(live);
        }
        let wide = d.count(12)?;
        callbacks.wide.reserve(wide);
        for _ in 0..wide {
            let at = d.offset();
            let cb = CallbackId::from_u32(d.u32()?);
            let words = d.count(8)?;
            let fits = callbacks.state(cb).is_some_and(|s| catalog.template(s.kind).words() == words && words > 1);
            if !fits {
                return Err(snapshot_error(at, format!("wide latches of callback {} do not fit it", cb.as_u32())));
            }
            let latch = (0..words).map(|_| d.u64()).collect::<Result<Box<[u64]>, _>>()?;
            d.check(callbacks.wide.insert(cb, latch).is_none(), || "wide latches listed twice".into())?;
        }
        d.check(callbacks.wide.len() == wide_needed, || "a wide circuit has no latches".into())?;
        d.check(per_kind == catalog.kind_refs(), || "the kinds' counts do not match their callbacks".into())?;
        for _ in 0..d.count(12)? {
            let at = d.offset();
            let cb = CallbackId::from_u32(d.u32()?);
            let width = callbacks.state(cb).map(|s| catalog.template(s.kind).width());
            let Some(width) = width else {
                return Err(snapshot_error(at, format!("on-rise items of callback {} which is not live", cb.as_u32())));
            };
            let n = d.count(20)?;
            let mut items = HashSet::with_capacity(n);
            for _ in 0..n {
                let (slot, job, item) = (d.u32()?, d.u64()?, d.str()?);
                d.check(slot < width, || format!("an on-rise item of callback {} is past its circuit", cb.as_u32()))?;
                d.check(items.insert((slot, job, Arc::from(item))), || "an on-rise item is listed twice".into())?;
            }
            d.check(callbacks.seen.insert(cb, items).is_none(), || "on-rise items listed twice".into())?;
        }
        Ok(callbacks)
    }

    /// Whether a posting may stand in the index or the timers of a restored engine: its
    /// callback id was handed out (below `next`), and if the callback is live, its slot
    /// is within its circuit.
    pub(crate) fn accepts(&self, catalog: &Catalog, next: u32, p: Posting) -> bool {
        p.cb.as_u32() < next && self.state(p.cb).map_or(true, |s| p.bit() < catalog.template(s.kind).width())
    }
}
