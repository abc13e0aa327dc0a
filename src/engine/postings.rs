//! The unit the index, the timers and the latch loop pass around: a [`Posting`], one
//! waiting atom. Its own file so that the files that store postings (`index.rs`,
//! `exact.rs`, `clock.rs`) and those that apply them (`callbacks.rs`, `batch.rs`)
//! import it without importing each other.

use smallvec::SmallVec;

use crate::front::ids::CallbackId;

/// One waiting atom: the callback and the latch bit to set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Posting {
    pub cb: CallbackId,
    pub slot: u32,
}

impl Posting {
    /// The latch bit it sets: `slot` without the [`WILD`] flag.
    #[inline(always)]
    pub fn bit(self) -> u32 {
        self.slot & !WILD
    }
}

/// The flag on `slot` of a posting whose atom's extra is `*` (spec §9, "Re-firing":
/// under `on-rise` such an atom fires once per distinct item). Slots are far below it
/// (the atom limit), and no slot equals the index's list marker (`u32::MAX`).
pub(crate) const WILD: u32 = 1 << 31;

/// Postings of one term, in callback-id order; one posting fits inline.
pub(crate) type PostingList = SmallVec<[Posting; 1]>;
