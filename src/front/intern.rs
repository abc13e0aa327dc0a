//! String interning: every label, work name, host name and custom event name is
//! stored once and referred to by a [`Symbol`].
//!
//! # Design note: memory follows what is live
//!
//! A supervisor that runs for months sees millions of distinct labels, work names and
//! codes, but only the live jobs' matter. So each symbol has a reference count: a live
//! job holds one reference on every symbol it uses (its label, its agenda, the terms
//! of its callbacks; see `JobRecord::symbols`), a global callback on those of its
//! trigger, a kept fact (`retroactive`) and a registered custom event name on theirs,
//! for good. A symbol whose count drops to zero is freed, and its number is reused.
//!
//! A symbol interned while checking something that is then rejected, or while
//! resolving an event, holds no reference: every symbol made since the last
//! [`Interner::settle`] is noted, and `settle` frees those still unreferenced. The
//! engine settles after every command, so a rejected submission leaves the table as
//! it found it.
//!
//! Freed numbers are reused last-freed first, so the frame names of a removed job
//! ("1" to "1000", freed together) come back as a range for the next job's agenda.
//! Slots at the end of the table are dropped as soon as they are free, and the table
//! and map give memory back when they are mostly empty.
//!
//! PERF: reference counts, not periodic compaction: compaction would have to renumber
//! every symbol held by the index, the agendas and the groups (a pause proportional to
//! the engine), while a count costs 4 bytes per symbol and one step per symbol a job
//! holds, at submission and at removal. Measured with `trigwire bench --churn`, see
//! PERFORMANCE.md.

use std::sync::Arc;

use hashbrown::HashMap;

use crate::engine::snapshot::{snapshot_error, Dec, Enc};
use crate::error::Error;
use crate::front::ids::Symbol;

/// A string table with reference counts (see the module docs). Each string is one
/// shared allocation, held by the table and the map alike, and handed out as an
/// `Arc<str>` so that a firing can carry its work name without copying it.
#[derive(Clone, Debug, Default)]
pub struct Interner {
    map: HashMap<Arc<str>, Symbol>,
    /// By symbol: the text and its reference count; `None` once freed.
    strings: Vec<Option<(Arc<str>, u32)>>,
    /// Freed symbols below `strings.len()`, last freed last (entries at or past the
    /// end are stale and skipped).
    free: Vec<Symbol>,
    /// Symbols made since the last [`Interner::settle`].
    fresh: Vec<Symbol>,
    live: usize,
    /// What a freed symbol reads as: the empty string.
    missing: Arc<str>,
}

impl Interner {
    /// The symbol of `text`, adding it if new (without a reference: see
    /// [`Interner::retain`] and [`Interner::settle`]).
    ///
    /// # Panics
    /// Only with 2^32 distinct strings live at once, which no farm's vocabulary
    /// approaches.
    pub fn intern(&mut self, text: &str) -> Symbol {
        if let Some(&sym) = self.map.get(text) {
            return sym;
        }
        let shared: Arc<str> = text.into();
        let sym = loop {
            match self.free.pop() {
                Some(s) if s.as_usize() < self.strings.len() => {
                    self.strings[s.as_usize()] = Some((Arc::clone(&shared), 0));
                    break s;
                }
                Some(_) => continue,
                None => {
                    let s = Symbol::new(self.strings.len()).expect("more than 2^32 distinct strings");
                    self.strings.push(Some((Arc::clone(&shared), 0)));
                    break s;
                }
            }
        };
        self.live += 1;
        self.map.insert(shared, sym);
        self.fresh.push(sym);
        sym
    }

    /// The symbol of `text` in ASCII lowercase, adding it if new; allocates only when
    /// `text` has an uppercase letter. Labels are keyed so (they compare ignoring case).
    pub fn intern_lowercase(&mut self, text: &str) -> Symbol {
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            self.intern(&text.to_ascii_lowercase())
        } else {
            self.intern(text)
        }
    }

    /// The symbol of `text` if it was interned; never allocates.
    pub fn get(&self, text: &str) -> Option<Symbol> {
        self.map.get(text).copied()
    }

    /// The text of `sym`.
    pub fn resolve(&self, sym: Symbol) -> &str {
        self.shared(sym)
    }

    /// The shared text of `sym`. The engine only resolves symbols that something live
    /// holds; a freed one (which only a crafted snapshot can leave in use, since restore
    /// cannot afford to check every posting against its job's symbols) reads as the
    /// empty string rather than panicking.
    pub fn shared(&self, sym: Symbol) -> &Arc<str> {
        self.strings.get(sym.as_usize()).and_then(Option::as_ref).map_or(&self.missing, |(text, _)| text)
    }

    /// Takes a reference on `sym`.
    pub fn retain(&mut self, sym: Symbol) {
        if let Some((_, refs)) = self.strings.get_mut(sym.as_usize()).and_then(Option::as_mut) {
            *refs += 1;
        }
    }

    /// Drops a reference on `sym`, freeing it when none is left.
    pub fn release(&mut self, sym: Symbol) {
        let Some((_, refs)) = self.strings.get_mut(sym.as_usize()).and_then(Option::as_mut) else { return };
        *refs = refs.saturating_sub(1);
        if *refs == 0 {
            self.free_symbol(sym);
        }
    }

    /// Frees every symbol made since the last call that holds no reference.
    pub fn settle(&mut self) {
        let fresh = std::mem::take(&mut self.fresh);
        for &sym in fresh.iter().rev() {
            if matches!(self.strings.get(sym.as_usize()), Some(Some((_, 0)))) {
                self.free_symbol(sym);
            }
        }
        self.fresh = fresh;
        self.fresh.clear();
        if self.fresh.capacity() > 1024 {
            self.fresh.shrink_to(64);
        }
        self.shrink();
    }

    fn free_symbol(&mut self, sym: Symbol) {
        let Some((text, _)) = self.strings[sym.as_usize()].take() else { return };
        self.map.remove(&text);
        self.live -= 1;
        self.free.push(sym);
        while matches!(self.strings.last(), Some(None)) {
            self.strings.pop();
        }
    }

    /// Gives memory back once the table is mostly empty: stale free entries go once
    /// they outnumber the holes, and each table shrinks to twice what it holds once it
    /// is four times that. The cost is paid by the frees that made it so. Called by
    /// [`Interner::settle`], so after every command.
    fn shrink(&mut self) {
        let holes = self.strings.len() - self.live;
        if self.free.len() > 2 * holes + 64 {
            let end = self.strings.len();
            self.free.retain(|s| s.as_usize() < end);
        }
        shrink_vec(&mut self.strings);
        shrink_vec(&mut self.free);
        if self.map.capacity() > 4 * self.map.len() + 64 {
            self.map.shrink_to(2 * self.map.len());
        }
    }

    /// Bytes held: each string once with its two reference counts, the table entries
    /// and the map's buckets.
    pub fn heap_bytes(&self) -> usize {
        let text: usize = self.strings.iter().flatten().map(|(s, _)| s.len() + 2 * std::mem::size_of::<usize>()).sum();
        text + self.strings.capacity() * std::mem::size_of::<Option<(Arc<str>, u32)>>()
            + (self.free.capacity() + self.fresh.capacity()) * std::mem::size_of::<Symbol>()
            + self.map.capacity() * (std::mem::size_of::<(Arc<str>, Symbol)>() + 1)
    }
}

/// Gives a vector's memory back when it is mostly empty.
pub(crate) fn shrink_vec<T>(v: &mut Vec<T>) {
    if v.capacity() > 4 * v.len() + 64 {
        v.shrink_to(2 * v.len());
    }
}

// Snapshots (format: src/engine/snapshot.rs): by symbol, a freed slot or the text with
// its reference count, then the free list in order (so that numbers are reused in the
// same order after a restore). The map and the live count are rebuilt; the counts are
// checked against their holders by `Engine::restore` (`Interner::refs`).
impl Interner {
    /// How many symbol numbers there are, freed ones included.
    pub(crate) fn len(&self) -> usize {
        self.strings.len()
    }

    /// Whether `sym` is a live symbol.
    pub(crate) fn is_live(&self, sym: u32) -> bool {
        matches!(self.strings.get(sym as usize), Some(Some(_)))
    }

    /// The reference count of each symbol number (0 for freed ones).
    pub(crate) fn refs(&self) -> Vec<u32> {
        self.strings.iter().map(|s| s.as_ref().map_or(0, |(_, refs)| *refs)).collect()
    }

    pub(crate) fn encode(&self, e: &mut Enc) {
        e.len(self.strings.len());
        for slot in &self.strings {
            match slot {
                None => e.bool(false),
                Some((text, refs)) => {
                    e.bool(true);
                    e.u32(*refs);
                    e.str(text);
                }
            }
        }
        e.len(self.free.len());
        self.free.iter().for_each(|s| e.u32(s.as_u32()));
    }

    pub(crate) fn decode(d: &mut Dec<'_>) -> Result<Interner, Error> {
        let n = d.count_upto(1, u32::MAX.into())?;
        let mut interner = Interner { strings: Vec::with_capacity(n), ..Interner::default() };
        for i in 0..n {
            let at = d.offset();
            if !d.bool()? {
                interner.strings.push(None);
                continue;
            }
            let refs = d.u32()?;
            d.check(refs > 0, || format!("symbol {i} is kept with no reference"))?;
            let text = d.str()?;
            let shared: Arc<str> = text.into();
            if interner.map.insert(Arc::clone(&shared), Symbol::from_u32(i as u32)).is_some() {
                return Err(snapshot_error(at, format!("the symbol `{text}` is listed twice")));
            }
            interner.strings.push(Some((shared, refs)));
            interner.live += 1;
        }
        d.check(!matches!(interner.strings.last(), Some(None)), || "the symbol table ends in a freed slot".into())?;
        let free = d.count(4)?;
        let mut seen = vec![false; n];
        for _ in 0..free {
            let sym = d.u32()?;
            if let Some(slot) = interner.strings.get(sym as usize) {
                // A number below the end must be a freed slot, listed once: `intern`
                // reuses it without looking.
                d.check(slot.is_none() && !seen[sym as usize], || {
                    format!("free symbol {sym} is live or listed twice")
                })?;
                seen[sym as usize] = true;
            }
            interner.free.push(Symbol::from_u32(sym));
        }
        Ok(interner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreferenced_symbols_are_freed_and_numbers_reused() {
        let mut i = Interner::default();
        let a = i.intern("a");
        i.retain(a);
        let b = i.intern("b");
        i.settle();
        assert_eq!(i.get("b"), None, "b had no reference");
        assert_eq!(i.get("a"), Some(a));
        let c = i.intern("c");
        assert_eq!(c, b, "the freed number is reused");
        i.retain(c);
        i.release(a);
        assert_eq!(i.get("a"), None);
        assert_eq!(i.resolve(c), "c");
        i.release(c);
        assert_eq!(i.live, 0);
        i.settle();
        assert!(i.strings.is_empty(), "free slots at the end are dropped");
        assert!(i.heap_bytes() < 1024, "{} bytes left", i.heap_bytes());
    }
}
