//! String interning: every label, work name, host name and custom event name is
//! stored once and referred to by a [`Symbol`].

use std::sync::Arc;

use hashbrown::HashMap;

use crate::engine::snapshot::{snapshot_error, Dec, Enc};
use crate::error::Error;
use crate::front::ids::Symbol;

/// A string table. Symbols are dense and never reused. Each string is one shared
/// allocation, held by the table and the map alike, and handed out as an `Arc<str>` so
/// that a firing can carry its work name without copying it.
#[derive(Clone, Debug, Default)]
pub struct Interner {
    map: HashMap<Arc<str>, Symbol>,
    strings: Vec<Arc<str>>,
}

impl Interner {
    /// The symbol of `text`, adding it if new.
    ///
    /// # Panics
    /// Only after 2^32 distinct strings, which no farm's vocabulary approaches.
    pub fn intern(&mut self, text: &str) -> Symbol {
        if let Some(&sym) = self.map.get(text) {
            return sym;
        }
        let sym = Symbol::new(self.strings.len()).expect("more than 2^32 distinct strings");
        let shared: Arc<str> = text.into();
        self.strings.push(Arc::clone(&shared));
        self.map.insert(shared, sym);
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
        &self.strings[sym.as_usize()]
    }

    /// The shared text of `sym`.
    pub fn shared(&self, sym: Symbol) -> &Arc<str> {
        &self.strings[sym.as_usize()]
    }

    /// Bytes held: each string once with its two reference counts, the table entries
    /// and the map's buckets.
    pub fn heap_bytes(&self) -> usize {
        let text: usize = self.strings.iter().map(|s| s.len() + 2 * std::mem::size_of::<usize>()).sum();
        text + self.strings.capacity() * std::mem::size_of::<Arc<str>>()
            + self.map.capacity() * (std::mem::size_of::<(Arc<str>, Symbol)>() + 1)
    }
}

// Snapshots (format: src/engine/snapshot.rs): the strings in symbol order; the map is
// rebuilt from them.
impl Interner {
    /// How many symbols there are.
    pub(crate) fn len(&self) -> usize {
        self.strings.len()
    }

    pub(crate) fn encode(&self, e: &mut Enc) {
        e.len(self.strings.len());
        self.strings.iter().for_each(|s| e.str(s));
    }

    pub(crate) fn decode(d: &mut Dec<'_>) -> Result<Interner, Error> {
        let n = d.count_upto(8, u32::MAX.into())?;
        let mut interner = Interner { map: HashMap::with_capacity(n), strings: Vec::with_capacity(n) };
        for _ in 0..n {
            let at = d.offset();
            let text = d.str()?;
            if interner.intern(text).as_usize() != interner.strings.len() - 1 {
                return Err(snapshot_error(at, format!("the symbol `{text}` is listed twice")));
            }
        }
        Ok(interner)
    }
}
