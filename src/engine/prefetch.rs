//! A hint to the CPU to start loading a cache line now: the engine's only `unsafe`.
//!
//! On a big farm an event reads a few places that no earlier event brought into cache
//! (its term's cell, the cell's posting run, the callbacks' states), each a DRAM miss.
//! One event's reads depend on each other, but the reads of different events of a batch
//! do not, so the batch paths ask for every event's next read before doing any of them,
//! and the misses overlap instead of queueing (see `src/engine/batch.rs`).

/// Asks for the cache line holding `at` to be loaded into every cache level. Changes
/// nothing that the program can observe, only when memory is read; a no-op on targets
/// other than x86-64.
#[inline(always)]
pub(super) fn prefetch<T>(at: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and never writes, whatever the address, and SSE,
    // the instruction's target feature, is part of the x86-64 baseline.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((at as *const T).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}
