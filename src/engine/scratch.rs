//! The engine's scratch: buffers and hints that are only reused for speed.
//!
//! Nothing here decides a firing. A [`Scratch`] can be dropped and replaced by
//! `Scratch::default()` between any two calls, and the engine gives the same answers;
//! it only allocates again until the buffers have grown back. So a snapshot does not
//! save it and a cloned engine starts with a fresh one (see the module docs of
//! `src/engine/mod.rs`).

use super::batch::{BatchScratch, RawBatchFiring};
use super::postings::Posting;
use crate::front::model::RawFiring;

/// Reusable buffers of the engine and its matcher, owned by [`crate::Engine`] beside
/// its state and passed by `&mut` to the matcher calls that use them.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// One event's postings; also the latches that registration presets and the atoms
    /// of one clock tick.
    pub(super) postings: Vec<Posting>,
    /// The owner run of the last firing (see `Catalog::owner`): where the next search
    /// starts; any value gives the same owner.
    pub(super) owner_hint: usize,
    /// The buffers of batches (see `batch.rs`).
    pub(super) batch: BatchScratch,
    /// A chunk of matcher firings, published as it fills (see `Engine::publishing`).
    pub(super) raw: Vec<RawFiring>,
    /// A batch's matcher firings, turned into [`crate::Firing`]s as they leave the
    /// engine.
    pub(super) raw_batch: Vec<RawBatchFiring>,
}

impl Scratch {
    /// Bytes of the posting buffers of events and batches (the firing buffers are not
    /// counted).
    pub(super) fn posting_bytes(&self) -> usize {
        self.postings.capacity() * std::mem::size_of::<Posting>() + self.batch.heap_bytes()
    }
}
