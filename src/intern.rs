//! String interning: every label, work name, host name and custom event name is
//! stored once and referred to by a [`Symbol`].

use hashbrown::HashMap;

use crate::ids::Symbol;

/// A string table. Symbols are dense and never reused.
#[derive(Clone, Debug, Default)]
pub struct Interner {
    map: HashMap<Box<str>, Symbol>,
    strings: Vec<Box<str>>,
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
        self.strings.push(text.into());
        self.map.insert(text.into(), sym);
        sym
    }

    /// The symbol of `text` if it was interned; never allocates.
    pub fn get(&self, text: &str) -> Option<Symbol> {
        self.map.get(text).copied()
    }

    /// The text of `sym`.
    pub fn resolve(&self, sym: Symbol) -> &str {
        &self.strings[sym.as_usize()]
    }

    /// Bytes held: the strings twice (table and map key) plus the table entries.
    pub fn heap_bytes(&self) -> usize {
        let text: usize = self.strings.iter().map(|s| s.len()).sum();
        2 * text
            + self.strings.capacity() * std::mem::size_of::<Box<str>>()
            + self.map.capacity() * (std::mem::size_of::<(Box<str>, Symbol)>() + 1)
    }
}
