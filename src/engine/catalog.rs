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

/// Callback ids per storage chunk (see `callbacks.rs`); a chunk is freed when all its
/// callbacks are removed. Defined here because the owner runs are indexed by the same
/// chunks.
pub(crate) const CHUNK: usize = 4096;

/// An interned (template, action) pair; `KindId::MAX` marks a dead callback.
pub(crate) type KindId = u32;

/// The kind of a removed callback.
pub(crate) const DEAD_KIND: KindId = u32::MAX;

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
    owners: Vec<OwnerRun>,
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
    /// The kind of (template, action), interning it on first sight.
    pub fn kind(&mut self, template: TemplateId, action: ActionId) -> KindId {
        let kind = Kind { template, action };
        if let Some(&id) = self.kind_ids.get(&kind) {
            return id;
        }
        let id = u32::try_from(self.kinds.len()).ok().filter(|&id| id != DEAD_KIND).expect("fewer than 2^32 kinds");
        self.kinds.push(kind);
        self.kind_ids.insert(kind, id);
        id
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
            let continues = last.owner == owner && cb.wrapping_sub(last.first) == index.wrapping_sub(last.index);
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

    /// Forgets the run of a removed job's callbacks, which start at `first`.
    pub fn forget_owner(&mut self, first: CallbackId) {
        let at = self.owners.partition_point(|r| r.first < first.as_u32());
        if self.owners.get(at).is_some_and(|r| r.first == first.as_u32()) {
            self.owners.remove(at);
            let at = at as u32;
            for run in &mut self.chunk_runs {
                if *run >= at && *run > 0 {
                    *run -= 1;
                }
            }
        }
    }

    /// Bytes of templates, kinds and owner runs.
    pub fn heap_bytes(&self) -> usize {
        self.templates.heap_bytes()
            + self.kinds.capacity() * std::mem::size_of::<Kind>()
            + self.kind_ids.capacity() * (std::mem::size_of::<(Kind, KindId)>() + 1)
            + self.owners.capacity() * std::mem::size_of::<OwnerRun>()
            + self.chunk_runs.capacity() * 4
    }
}

// Snapshots (format: src/engine/snapshot.rs). The kind map is rebuilt from the kinds.
impl Catalog {
    /// How many kinds there are.
    pub fn kinds(&self) -> usize {
        self.kinds.len()
    }

    /// Whether a callback with id `cb` would find an owner run (the first starts at or
    /// before it).
    pub fn covers(&self, cb: CallbackId) -> bool {
        self.owners.first().is_some_and(|r| r.first <= cb.as_u32())
    }

    pub(crate) fn encode(&self, e: &mut Enc) {
        let Catalog { templates, kinds, kind_ids: _, owners, chunk_runs } = self;
        templates.encode(e);
        e.len(kinds.len());
        for k in kinds {
            e.u32(k.template.as_u32());
            e.u32(k.action.as_u32());
        }
        e.len(owners.len());
        for r in owners {
            e.u32(r.first);
            e.u32(r.index);
            e.u64(r.owner);
        }
        e.len(chunk_runs.len());
        chunk_runs.iter().for_each(|&r| e.u32(r));
    }

    /// Decodes a catalog whose kinds name `actions` actions, whose owner runs end at
    /// callback id `next` and whose shapes nest at most `depth` deep.
    pub(crate) fn decode(d: &mut Dec<'_>, actions: usize, next: u32, depth: u32) -> Result<Catalog, Error> {
        let mut catalog = Catalog { templates: Templates::decode(d, depth)?, ..Catalog::default() };
        for _ in 0..d.count_upto(8, u64::from(DEAD_KIND))? {
            let template = TemplateId::from_u32(d.id(catalog.templates.len(), "template")?);
            let action = ActionId::from_u32(d.id(actions, "action")?);
            let before = catalog.kinds.len();
            d.check(catalog.kind(template, action) as usize == before, || "a kind is listed twice".into())?;
        }
        let runs = d.count(16)?;
        catalog.owners.reserve_exact(runs);
        for _ in 0..runs {
            let run = OwnerRun { first: d.u32()?, index: d.u32()?, owner: d.u64()? };
            let sorted = catalog.owners.last().map_or(true, |last| last.first < run.first);
            d.check(sorted && run.first < next.max(1), || {
                format!("owner run at callback {} is out of order", run.first)
            })?;
            catalog.owners.push(run);
        }
        // A run's positions must not overflow before the next run starts.
        for (i, run) in catalog.owners.iter().enumerate() {
            let end = catalog.owners.get(i + 1).map_or(next, |r| r.first);
            let last = u64::from(run.index) + u64::from(end - run.first);
            d.check(last <= u64::from(u32::MAX), || format!("owner run at callback {} overflows", run.first))?;
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
        for gone in [6, 0, 3] {
            let (first, ..) = jobs.remove(gone);
            catalog.forget_owner(CallbackId::from_u32(first));
            check(&catalog, &jobs);
        }
    }
}
