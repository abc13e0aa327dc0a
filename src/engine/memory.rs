//! What [`crate::Engine::memory_usage`] reports.

/// Bytes held by the engine, by structure (spec: the design's memory model).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryUsage {
    /// Callback states and wide latches.
    pub callbacks: usize,
    /// Compiled templates.
    pub templates: usize,
    /// The index's head map.
    pub index_heads: usize,
    /// The index's tables and posting lists.
    pub index_tables: usize,
    /// Pending clock atoms.
    pub timers: usize,
    /// Job records and process groups.
    pub jobs: usize,
    /// Interned strings.
    pub symbols: usize,
    /// Facts kept for `retroactive`.
    pub facts: usize,
    /// The action table (codes and their map), and the records of live global
    /// callbacks, universal callbacks and custom event names.
    pub actions: usize,
}

impl MemoryUsage {
    /// The sum of all parts.
    pub fn total(&self) -> usize {
        self.callbacks
            + self.templates
            + self.index_heads
            + self.index_tables
            + self.timers
            + self.jobs
            + self.symbols
            + self.facts
            + self.actions
    }
}
