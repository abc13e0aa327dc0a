//! What callbacks share, so that each callback's own state is 16 bytes.
//!
//! The naive callback record holds its template, action, owner job, position in the
//! owner's list, count and latch word: 32 bytes, a third of a ten-million-callback farm's
//! memory. But ten million frame callbacks have a handful of distinct (template,
//! action) pairs, and a job's callbacks have consecutive ids and consecutive positions.
//! So a callback keeps only a [`KindId`] (its interned (template, action) pair), its
//! count and its latch word; the owner and position come from a run table, one entry
//! per job, consulted only when a callback fires.
//!
//! PERF: `trigwire bench --jobs 1000 --frames 1000` (1M two-atom ANDs) went from 32 to
//! 16 bytes of callback state per callback. The owner lookup is a binary search over one
//! entry per job, skipped when the previous firing's run still matches (a fanout of 1M
//! callbacks of consecutive ids searches once); it is not free: `cargo bench --bench
//! engine -- fanout/trigwire/1M` went from 25.4 to 30.0 ms (about 5 ns per firing), well
//! inside the 50 ms target, for 16 bytes per callback.

use hashbrown::HashMap;

use super::circuit::{Template, Templates};
use super::snapshot::{Dec, Enc};
use crate::error::Error;
use crate::front::ids::{ActionId, CallbackId, TemplateId};
use crate::front::intern::shrink_vec;

/// Callback ids per storage chunk (see `callbacks.rs`); a chunk is freed when all its
/// callbacks are removed. Defined here because the owner runs are indexed by the same
/// chunks.
pub(crate) const CHUNK: usize = 4096;

/// An interned (template, action) pair; `KindId::MAX` marks a dead callback.
pub(crate) type KindId = u32;

/// The kind of a removed callback.
pub(crate) const DEAD_KIND: KindId = u32::MAX;

/// The `index` of an owner run whose job was removed.
const DEAD_RUN: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Kind {
    template: TemplateId,
    action: ActionId,
}

/// Callbacks `first..` (up to the next run) belong to `owner` (0: global) and sit at
/// positions `index..` in its list.
#[derive(Clone, Copy, Debug)]
struct OwnerRun {
    first: u32,
    index: u32,
    owner: u64,
}

/// Templates, kinds and owner runs: read-only while events are processed.
#[derive(Clone, Debug, Default)]
pub(crate) struct Catalog {
    pub templates: Templates,
    kinds: Vec<Kind>,
    kind_ids: HashMap<Kind, KindId>,
    /// Live callbacks of each kind; a kind with none is freed and its id reused.
    kind_refs: Vec<u32>,
    /// Freed kind ids below `kinds.len()` (entries at or past the end are stale).
    free_kinds: Vec<KindId>,
    /// Sorted by first id. A removed job's run is marked dead ([`DEAD_RUN`]) rather
    /// than taken out, and dead runs are dropped in bulk once they outnumber the live
    /// ones: removal is a binary search plus amortised O(1), where taking a run out
    /// moved every later run and renumbered the chunk table.
    owners: Vec<OwnerRun>,
    /// Runs in `owners` marked dead.
    dead_runs: usize,
    /// Runs visited or moved by removals (binary search steps, compaction moves): the
    /// work counter behind `Stats::removal_steps`.
    pub removal_steps: u64,
    /// For each chunk of [`CHUNK`] callback ids, the last owner run starting at or
    /// before the chunk's first id: a callback's run lies between its chunk's entry and
    /// the next chunk's, so [`Catalog::owner`] searches a handful of runs, not all.
    /// Chunks past the end start at or after the last run.
    ///
    /// PERF: the binary search over every run (one per job) was 70% of
    /// `CallbackState::fire` and 11% of the replay in `perf record trigwire bench --jobs
    /// 10000 --frames 1000 --batch 4096` (random order, one thread): 14 dependent reads
    /// of a 160 KB array per firing. With this table, two interleaved runs each:
    /// 3.21-3.25M -> 3.45-3.58M events/s, for 4 bytes per 4,096 callbacks.
    chunk_runs: Vec<u32>,
}

impl Catalog {
    /// The kind of (template, action) for one more callback, interning it on first
    /// sight.
    pub fn kind(&mut self, template: TemplateId, action: ActionId) -> KindId {
        let kind = Kind { template, action };
        if let Some(&id) = self.kind_ids.get(&kind) {
            self.kind_refs[id as usize] += 1;
            return id;
        }
        let id = loop {
            match self.free_kinds.pop() {
                Some(k) if (k as usize) < self.kinds.len() => {
                    self.kinds[k as usize] = kind;
                    self.kind_refs[k as usize] = 1;
                    break k;
                }
                Some(_) => continue,
                None => {
                    let k = u32::try_from(self.kinds.len()).ok().filter(|&id| id != DEAD_KIND);
                    self.kinds.push(kind);
                    self.kind_refs.push(1);
                    break k.expect("fewer than 2^32 kinds");
                }
            }
        };
        self.kind_ids.insert(kind, id);
        id
    }

    /// One callback of `kind` fewer; the kind is freed with its last callback.
    pub fn release_kind(&mut self, kind: KindId) {
        let refs = &mut self.kind_refs[kind as usize];
        *refs -= 1;
        if *refs > 0 {
            return;
        }
        self.kind_ids.remove(&self.kinds[kind as usize]);
        self.free_kinds.push(kind);
        while self.kind_refs.last() == Some(&0) {
            self.kind_refs.pop();
            self.kinds.pop();
        }
        let end = self.kinds.len();
        if self.free_kinds.len() > 2 * (end - self.kind_ids.len()) + 64 {
            self.free_kinds.retain(|&k| (k as usize) < end);
        }
        shrink_vec(&mut self.kinds);
        shrink_vec(&mut self.kind_refs);
        shrink_vec(&mut self.free_kinds);
        if self.kind_ids.capacity() > 4 * self.kind_ids.len() + 64 {
            self.kind_ids.shrink_to(2 * self.kind_ids.len());
        }
    }

    pub fn template_id(&self, kind: KindId) -> TemplateId {
        self.kinds[kind as usize].template
    }

    pub fn template(&self, kind: KindId) -> &Template {
        self.templates.get(self.template_id(kind))
    }

    pub fn action(&self, kind: KindId) -> ActionId {
        self.kinds[kind as usize].action
    }

    /// Records that `cb` belongs to `owner` (0: global) at position `index`. Callers
    /// register callbacks in increasing id order.
    pub fn note_owner(&mut self, cb: CallbackId, owner: u64, index: u32) {
        let cb = cb.as_u32();
        if let Some(last) = self.owners.last() {
            let continues = last.owner == owner
                && last.index != DEAD_RUN
                && cb.wrapping_sub(last.first) == index.wrapping_sub(last.index);
            if continues && cb > last.first {
                return;
            }
        }
        // Chunks starting before `cb` and after the previous run's first id start in
        // the previous run.
        let before = (cb as usize).div_ceil(CHUNK);
        let previous = self.owners.len().saturating_sub(1) as u32;
        if self.chunk_runs.len() < before {
            self.chunk_runs.resize(before, previous);
        }
        self.owners.push(OwnerRun { first: cb, index, owner });
    }

    /// The owner (0: global) and position of a live callback. `hint` is the run found
    /// last; consecutive callbacks of one job find it again without a search.
    pub fn owner(&self, cb: CallbackId, hint: &mut usize) -> (u64, u32) {
        let cb = cb.as_u32();
        let fits = |i: usize| {
            self.owners.get(i).is_some_and(|r| r.first <= cb)
                && self.owners.get(i + 1).map_or(true, |next| next.first > cb)
        };
        if !fits(*hint) {
            let chunk = cb as usize / CHUNK;
            let last = self.owners.len().saturating_sub(1);
            let lo = self.chunk_runs.get(chunk).map_or(last, |&r| r as usize);
            let hi = self.chunk_runs.get(chunk + 1).map_or(last, |&r| r as usize);
            let runs = &self.owners[lo..=hi.max(lo)];
            *hint = lo + runs.partition_point(|r| r.first <= cb).saturating_sub(1);
        }
        let run = self.owners[*hint];
        (run.owner, run.index + (cb - run.first))
    }

    /// Forgets the run of a removed job's callbacks, which start at `first`: marks it
    /// dead (a binary search), and drops the dead runs once they outnumber the live
    /// ones (amortised O(1) per removal). Only live callbacks are looked up, so a dead
    /// run, or the run before it stretching over its ids once it is dropped, is never
    /// consulted.
    pub fn forget_owner(&mut self, first: CallbackId) {
        let first = first.as_u32();
        let at = self.owners.partition_point(|r| r.first < first);
        self.removal_steps += u64::from(usize::BITS - self.owners.len().leading_zeros());
        match self.owners.get_mut(at) {
            Some(run) if run.first == first && run.index != DEAD_RUN => {
                run.index = DEAD_RUN;
                self.dead_runs += 1;
            }
            _ => return,
        }
        if self.dead_runs * 2 > self.owners.len() {
            self.compact_owners();
        }
    }

    /// Drops the dead owner runs and rebuilds the chunk table.
    fn compact_owners(&mut self) {
        self.removal_steps += (self.owners.len() + self.chunk_runs.len()) as u64;
        self.owners.retain(|r| r.index != DEAD_RUN);
        self.dead_runs = 0;
        // Each chunk's entry: the last run starting at or before its first id.
        let mut run = 0usize;
        for (c, entry) in self.chunk_runs.iter_mut().enumerate() {
            let start = (c * CHUNK) as u64;
            while self.owners.get(run + 1).is_some_and(|r| u64::from(r.first) <= start) {
                run += 1;
            }
            *entry = run as u32;
        }
        shrink_vec(&mut self.owners);
    }

    /// Bytes of templates, kinds and owner runs.
    pub fn heap_bytes(&self) -> usize {
        self.templates.heap_bytes()
            + self.kinds.capacity() * std::mem::size_of::<Kind>()
            + self.kind_ids.capacity() * (std::mem::size_of::<(Kind, KindId)>() + 1)
            + (self.kind_refs.capacity() + self.free_kinds.capacity()) * 4
            + self.owners.capacity() * std::mem::size_of::<OwnerRun>()
            + self.chunk_runs.capacity() * 4
    }
}

// Snapshots (format: src/engine/snapshot.rs). By kind id, its template, action and count
// of live callbacks (0: a freed id), then the free list in order; the kind map and the
// count of dead owner runs are rebuilt. `Callbacks::decode` checks the counts against
// the callbacks.
impl Catalog {
    /// How many kind ids there are, freed ones included.
    pub fn kinds(&self) -> usize {
        self.kinds.len()
    }

    /// Whether `kind` is a live kind.
    pub fn kind_live(&self, kind: KindId) -> bool {
        self.kind_refs.get(kind as usize).is_some_and(|&n| n > 0)
    }

    /// The live callbacks of each kind, as counted.
    pub fn kind_refs(&self) -> &[u32] {
        &self.kind_refs
    }

    /// Checks the owner runs against the live jobs, each `(id, first callback, count)`,
    /// the number of global callbacks ever registered, and the live callbacks
    /// (`first_live_in(lo, hi)`, ids below `next`): a job with callbacks has one live
    /// run of its own starting at its first callback at position 0 and reaching past
    /// its last, every live run of a job owner is that job's (removal finds a job's
    /// run by its first callback), and a run of global callbacks numbers them below
    /// `globals`. Past the positions its owner has, a live run covers no live
    /// callback, so a position computed for a live callback never overflows, however
    /// far a run stretches once the dead runs after it are dropped.
    pub fn check_jobs(
        &self,
        jobs: &[(u64, u32, u32)],
        globals: u32,
        next: u32,
        first_live_in: &dyn Fn(u32, u32) -> Option<u32>,
    ) -> Result<(), String> {
        let mut firsts: HashMap<u32, (u64, u32)> = HashMap::with_capacity(jobs.len());
        for &(id, first, n) in jobs.iter().filter(|j| j.2 > 0) {
            firsts.insert(first, (id, n));
        }
        let mut seen = 0usize;
        for (i, run) in self.owners.iter().enumerate().filter(|(_, r)| r.index != DEAD_RUN) {
            let end = self.owners.get(i + 1).map_or(u64::MAX, |r| u64::from(r.first));
            // The first id past the positions the run's owner has.
            let last = match run.owner {
                0 if run.index < globals => u64::from(run.first) + u64::from(globals - run.index),
                0 => {
                    return Err(format!("owner run at callback {} numbers a global callback past the last", run.first))
                }
                _ => {
                    let Some(&(id, n)) = firsts.get(&run.first) else {
                        return Err(format!("owner run at callback {} belongs to no live job", run.first));
                    };
                    if id != run.owner || run.index != 0 || end < u64::from(run.first) + u64::from(n) {
                        return Err(format!("owner run at callback {} does not match job {id}", run.first));
                    }
                    seen += 1;
                    u64::from(run.first) + u64::from(n)
                }
            };
            // Past those positions the run covers no live callback: removing a job
            // kills its run, and a global's position stays below `globals`.
            let beyond = match last < u64::from(next) && last < end {
                true => first_live_in(last as u32, end.min(u64::from(next)) as u32),
                false => None,
            };
            if let Some(cb) = beyond {
                return Err(format!(
                    "live callback {cb} lies in the owner run at callback {}, past its owner's callbacks",
                    run.first
                ));
            }
        }
        if seen != firsts.len() {
            return Err("a live job has no owner run of its own".into());
        }
        Ok(())
    }

    /// Whether callback `cb` lies in a live owner run.
    pub fn covers(&self, cb: CallbackId) -> bool {
        let at = self.owners.partition_point(|r| r.first <= cb.as_u32());
        at > 0 && self.owners[at - 1].index != DEAD_RUN
    }

    pub(crate) fn encode(&self, e: &mut Enc) {
        let Catalog {
            templates,
            kinds,
            kind_ids: _,
            kind_refs,
            free_kinds,
            owners,
            dead_runs: _,
            removal_steps: _,
            chunk_runs,
        } = self;
        templates.encode(e);
        e.len(kinds.len());
        for (k, refs) in kinds.iter().zip(kind_refs) {
            e.u32(k.template.as_u32());
            e.u32(k.action.as_u32());
            e.u32(*refs);
        }
        e.len(free_kinds.len());
        free_kinds.iter().for_each(|&k| e.u32(k));
        e.len(owners.len());
        for r in owners {
            e.u32(r.first);
            e.u32(r.index);
            e.u64(r.owner);
        }
        e.len(chunk_runs.len());
        chunk_runs.iter().for_each(|&r| e.u32(r));
    }

    /// Decodes a catalog whose kinds name the live actions of `action_live`, whose
    /// owner runs end at callback id `next` and whose shapes nest at most `depth` deep.
    pub(crate) fn decode(
        d: &mut Dec<'_>,
        action_live: &dyn Fn(u32) -> bool,
        next: u32,
        depth: u32,
    ) -> Result<Catalog, Error> {
        let mut catalog = Catalog { templates: Templates::decode(d, depth)?, ..Catalog::default() };
        let n = d.count_upto(12, u64::from(DEAD_KIND))?;
        catalog.kinds.reserve_exact(n);
        catalog.kind_refs.reserve_exact(n);
        for id in 0..n {
            let template = TemplateId::from_u32(d.u32()?);
            let action = ActionId::from_u32(d.u32()?);
            let refs = d.u32()?;
            let kind = Kind { template, action };
            if refs > 0 {
                let fine = template.as_usize() < catalog.templates.len() && action_live(action.as_u32());
                d.check(fine, || format!("kind {id} names a bad template or action"))?;
                d.check(catalog.kind_ids.insert(kind, id as KindId).is_none(), || "a kind is listed twice".into())?;
            }
            catalog.kinds.push(kind);
            catalog.kind_refs.push(refs);
        }
        d.check(catalog.kind_refs.last() != Some(&0), || "the kind table ends in a freed kind".into())?;
        let free = d.count(4)?;
        let mut seen = vec![false; n];
        for _ in 0..free {
            let k = d.u32()?;
            if let Some(&refs) = catalog.kind_refs.get(k as usize) {
                // `kind` reuses a listed id below the end without looking.
                d.check(refs == 0 && !seen[k as usize], || format!("free kind {k} is live or listed twice"))?;
                seen[k as usize] = true;
            }
            catalog.free_kinds.push(k);
        }
        let runs = d.count(16)?;
        catalog.owners.reserve_exact(runs);
        for _ in 0..runs {
            let run = OwnerRun { first: d.u32()?, index: d.u32()?, owner: d.u64()? };
            let sorted = catalog.owners.last().map_or(true, |last| last.first < run.first);
            d.check(sorted && run.first < next.max(1), || {
                format!("owner run at callback {} is out of order", run.first)
            })?;
            catalog.dead_runs += usize::from(run.index == DEAD_RUN);
            catalog.owners.push(run);
        }
        let chunks = d.count_upto(4, (next as usize).div_ceil(CHUNK) as u64 + 1)?;
        // A callback in a chunk past the table searches from the last run, which must
        // start at or before it.
        let reach = catalog.owners.last().map_or(0, |r| (r.first as usize).div_ceil(CHUNK));
        d.check(chunks >= reach, || format!("{chunks} chunk entries do not reach the last owner run"))?;
        catalog.chunk_runs.reserve_exact(chunks);
        for c in 0..chunks {
            let r = d.u32()?;
            let run = catalog.owners.get(r as usize);
            let fine = r == 0 || run.is_some_and(|run| run.first as usize <= c * CHUNK);
            d.check(fine, || format!("chunk {c} points at owner run {r}, which starts after it"))?;
            catalog.chunk_runs.push(r);
        }
        Ok(catalog)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run of global callbacks numbers its live callbacks below the count of
    /// globals ever registered, wherever the run stretches: restore refuses a run
    /// whose positions would pass it, however few ids it seems to cover.
    #[test]
    fn global_runs_number_their_callbacks_below_the_global_count() {
        let mut catalog = Catalog::default();
        catalog.note_owner(CallbackId::from_u32(0), 0, 1); // globals 1 and 2 at ids 0 and 1
        catalog.note_owner(CallbackId::from_u32(4), 9, 0); // job 9: ids 4..6
        let jobs = [(9u64, 4u32, 2u32)];
        let live = |ids: &'static [u32]| move |lo: u32, hi: u32| ids.iter().copied().find(|&i| lo <= i && i < hi);
        assert_eq!(catalog.check_jobs(&jobs, 3, 6, &live(&[0, 1, 4, 5])), Ok(()));
        let past = catalog.check_jobs(&jobs, 3, 6, &live(&[0, 1, 2, 4])).unwrap_err();
        assert!(past.contains("live callback 2"), "{past}");
        let numbered = catalog.check_jobs(&jobs, 1, 6, &live(&[4])).unwrap_err();
        assert!(numbered.contains("past the last"), "{numbered}");
        let stray = catalog.check_jobs(&jobs, 3, 7, &live(&[0, 4, 5, 6])).unwrap_err();
        assert!(stray.contains("live callback 6"), "{stray}");
    }

    /// The owner of every live callback, found by the chunked search with a cold hint,
    /// matches a scan of the runs, as jobs of varied sizes come and go.
    #[test]
    fn owner_search_matches_a_scan_across_chunks_and_removals() {
        let mut catalog = Catalog::default();
        let mut jobs: Vec<(u32, u32, u64)> = Vec::new(); // (first id, callbacks, owner)
        let mut next = 0u32;
        for (j, size) in [1u32, 4095, 3, 9000, 4096, 1, 70_000, 2, 5000, 12_288].into_iter().enumerate() {
            let owner = j as u64 + 1;
            for k in 0..size {
                catalog.note_owner(CallbackId::from_u32(next + k), owner, k);
            }
            jobs.push((next, size, owner));
            next += size + (j as u32 % 3) * 100; // gaps: ids of callbacks never registered here
        }
        let check = |catalog: &Catalog, jobs: &[(u32, u32, u64)]| {
            for &(first, size, owner) in jobs {
                for k in (0..size).step_by(97).chain([size - 1]) {
                    let mut hint = usize::MAX;
                    assert_eq!(catalog.owner(CallbackId::from_u32(first + k), &mut hint), (owner, k));
                }
            }
        };
        check(&catalog, &jobs);
        // Removals mark runs dead and, past half of them, drop the dead ones.
        for gone in [6, 0, 3, 4, 1, 2] {
            let (first, ..) = jobs.remove(gone);
            catalog.forget_owner(CallbackId::from_u32(first));
            check(&catalog, &jobs);
        }
        assert!(catalog.owners.len() < 10, "dead runs were dropped: {} left", catalog.owners.len());
        // New jobs after the compaction, one with a reused owner id.
        for (k, owner) in [(3u32, 7u64), (5000, 99)] {
            for i in 0..k {
                catalog.note_owner(CallbackId::from_u32(next + i), owner, i);
            }
            jobs.push((next, k, owner));
            next += k;
        }
        check(&catalog, &jobs);
    }
}
