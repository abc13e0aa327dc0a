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
use crate::ids::{ActionId, CallbackId, TemplateId};

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
            *hint = self.owners.partition_point(|r| r.first <= cb).saturating_sub(1);
        }
        let run = self.owners[*hint];
        (run.owner, run.index + (cb - run.first))
    }

    /// Forgets the run of a removed job's callbacks, which start at `first`.
    pub fn forget_owner(&mut self, first: CallbackId) {
        let at = self.owners.partition_point(|r| r.first < first.as_u32());
        if self.owners.get(at).is_some_and(|r| r.first == first.as_u32()) {
            self.owners.remove(at);
        }
    }

    /// Bytes of templates, kinds and owner runs.
    pub fn heap_bytes(&self) -> usize {
        self.templates.heap_bytes()
            + self.kinds.capacity() * std::mem::size_of::<Kind>()
            + self.kind_ids.capacity() * (std::mem::size_of::<(Kind, KindId)>() + 1)
            + self.owners.capacity() * std::mem::size_of::<OwnerRun>()
    }
}
