//! The term index: from what an event is about to the callbacks that wait on it.
//!
//! The naive way scans every callback on every event. Here each event atom of a
//! registered callback leaves one [`Posting`] (callback, slot) under its term, and an
//! event expands to at most eight lookups: its name (and `done` if terminal) × its job
//! id (and its label if live) × its extra (and `*`), the keys that `ResolvedEvent`'s
//! `names`, `contexts` and `extras` (src/front/registry.rs) give. The work per event is those
//! lookups plus one step per posting found, never a step per registered callback.
//!
//! Layout, two levels: a head (event name, type, context) maps to a table; a table
//! holds the postings of job atoms, of `*` atoms, and the cells of exact atoms by extra
//! symbol (see `exact.rs`: 16 bytes per term, dense while the extras are one agenda's
//! frame names). Frame-level terms of one upstream job share one table. Posting lists
//! grow by appending increasing callback ids, so every list is sorted by callback id.

use hashbrown::HashMap;
use smallvec::SmallVec;

use super::exact::{check_list, decode_posting, encode_posting, Arena, Cell, Exact};
use super::postings::{Posting, PostingList};
use super::prefetch::prefetch;
use super::snapshot::{Dec, Enc};
use crate::error::Error;
use crate::front::ids::{CallbackId, Symbol, TableId};
use crate::front::intern::shrink_vec;
use crate::front::registry::shrink_map;
use crate::front::registry::ResolvedEvent;
use crate::front::resolve::{Ctx, ExtraKey, NameKey, Term};
use crate::syntax::EventName;
use crate::syntax::EventType;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Head {
    name: NameKey,
    ty: EventType,
    ctx: Ctx,
}

#[derive(Clone, Debug, Default)]
struct Table {
    /// Its head; `None` while the table is free.
    head: Option<Head>,
    /// Job atoms (no extra).
    whole: PostingList,
    /// `*` atoms.
    any: PostingList,
    /// Exact atoms by extra.
    exact: Exact,
}

impl Table {
    fn is_empty(&self) -> bool {
        self.whole.is_empty() && self.any.is_empty() && self.exact.is_empty()
    }

    /// Drops the postings of callbacks that are not live; returns (postings dropped,
    /// postings and cells examined).
    fn retain(&mut self, live: &dyn Fn(CallbackId) -> bool, arena: &mut Arena) -> (usize, usize) {
        let before = self.whole.len() + self.any.len();
        self.whole.retain(|p| live(p.cb));
        self.any.retain(|p| live(p.cb));
        let dropped = before - self.whole.len() - self.any.len();
        if self.whole.spilled() && self.whole.capacity() > 4 * self.whole.len() + 8 {
            self.whole.shrink_to_fit();
        }
        if self.any.spilled() && self.any.capacity() > 4 * self.any.len() + 8 {
            self.any.shrink_to_fit();
        }
        let (d, e) = self.exact.retain_in_place(live, arena);
        (dropped + d, before + e + 1)
    }
}

/// The index from term to postings.
#[derive(Clone, Debug, Default)]
pub(crate) struct Index {
    heads: HashMap<Head, TableId>,
    tables: Vec<Table>,
    free: Vec<TableId>,
    arena: Arena,
    postings: usize,
    /// Heads per (built-in name, type) and context kind (job id, label): an event skips
    /// the lookups that no head can answer. Indexed by [`kind_of`].
    ///
    /// PERF: an event expands to up to four heads (its name and `done`, its job id and
    /// label) and a farm's triggers usually name one of them; skipping the other three
    /// hash lookups took `trigwire bench --jobs 1000 --frames 1000` from 7.9-8.1M to
    /// 8.2-8.4M events/s in order and 1.15-1.16M to 1.18-1.20M at random (three
    /// interleaved runs each).
    kinds: Vec<[u32; 2]>,
    /// The next table the incremental sweep looks at (see [`Index::sweep_some`]).
    cursor: usize,
}

/// Work done by one call of [`Index::sweep_some`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SweepWork {
    /// Postings of removed callbacks dropped.
    pub dropped: usize,
    /// Postings and cells examined.
    pub examined: usize,
    /// Whether the sweep went past the last table (a round ended).
    pub round: bool,
}

/// The slot of `(name, ty, ctx)` in [`Index::kinds`]; `None` for custom names.
fn kind_of(name: NameKey, ty: EventType, ctx: Ctx) -> Option<(usize, usize)> {
    let NameKey::Builtin(name) = name else { return None };
    let by_ctx = match ctx {
        Ctx::Job(_) => 0,
        Ctx::Label(..) => 1,
        Ctx::Nobody => return None,
    };
    Some((name as usize * 4 + ty as usize, by_ctx))
}

/// Where some of an event's postings are: a table's list, or an exact cell, read
/// ([`Spot::Cell`]) or not yet ([`Spot::Exact`]). Valid while the index is unchanged.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Spot {
    /// A table's job-atom postings.
    Whole(TableId),
    /// A table's `*` postings.
    Any(TableId),
    /// The cell of an exact extra, not read yet.
    Exact(TableId, Symbol),
    /// An exact cell, read.
    Cell(Cell),
}

impl Index {
    /// Adds a posting under `term`. Callers add postings in increasing callback order.
    pub fn insert(&mut self, term: &Term, posting: Posting) {
        let head = Head { name: term.name, ty: term.ty, ctx: term.ctx };
        let table = match self.heads.get(&head) {
            Some(&t) => t,
            None => self.new_table(head),
        };
        let table = &mut self.tables[table.as_usize()];
        match term.extra {
            ExtraKey::None => table.whole.push(posting),
            ExtraKey::Any => table.any.push(posting),
            ExtraKey::Sym(s) => table.exact.push(s, posting, &mut self.arena),
        }
        self.postings += 1;
    }

    fn new_table(&mut self, head: Head) -> TableId {
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.tables.push(Table::default());
                TableId::new(self.tables.len() - 1).expect("fewer than 2^32 tables")
            }
        };
        self.tables[id.as_usize()].head = Some(head);
        self.heads.insert(head, id);
        self.count_kind(head, 1);
        id
    }

    fn count_kind(&mut self, head: Head, delta: i32) {
        if let Some((k, c)) = kind_of(head.name, head.ty, head.ctx) {
            if self.kinds.len() <= k {
                self.kinds.resize(k + 1, [0; 2]);
            }
            self.kinds[k][c] = self.kinds[k][c].wrapping_add_signed(delta);
        }
    }

    /// Whether some head could answer (name, ty, ctx).
    fn may_have(&self, name: NameKey, ty: EventType, ctx: Ctx) -> bool {
        kind_of(name, ty, ctx).map_or(true, |(k, c)| self.kinds.get(k).is_some_and(|n| n[c] > 0))
    }

    /// Calls `found` with where the postings of the terms with `name` and `ctx` that
    /// `ev` matches are, asking for the cache line of an exact cell without reading it.
    fn locate_one(&self, name: NameKey, ctx: Ctx, ev: &ResolvedEvent, found: &mut impl FnMut(Spot)) {
        if !self.may_have(name, ev.ty, ctx) {
            return;
        }
        let Some(&t) = self.heads.get(&Head { name, ty: ev.ty, ctx }) else { return };
        let table = &self.tables[t.as_usize()];
        for extra in ev.extras() {
            match extra {
                ExtraKey::None if !table.whole.is_empty() => found(Spot::Whole(t)),
                ExtraKey::Any if !table.any.is_empty() => found(Spot::Any(t)),
                ExtraKey::Sym(x) => {
                    if let Some(cell) = table.exact.get(x) {
                        prefetch(cell);
                        found(Spot::Exact(t, x));
                    }
                }
                _ => {}
            }
        }
    }

    /// Calls `found` with each place holding postings that `ev` matches (at most eight:
    /// the keys of [`ResolvedEvent::names`] × [`ResolvedEvent::contexts`] ×
    /// [`ResolvedEvent::extras`] that have postings), asking for the cache lines of exact
    /// cells: the first of an event's dependent reads, started without waiting for it.
    pub fn locate(&self, ev: &ResolvedEvent, mut found: impl FnMut(Spot)) {
        for name in ev.names() {
            for ctx in ev.contexts() {
                self.locate_one(name, ctx, ev, &mut found);
            }
        }
    }

    /// Reads the cell of an exact spot and asks for its posting run: the second
    /// dependent read, started without waiting for it.
    pub fn settle(&self, spot: &mut Spot) {
        if let Spot::Exact(t, x) = *spot {
            let cell = self.tables[t.as_usize()].exact.get(x).copied().unwrap_or(Cell::EMPTY);
            self.arena.prefetch(cell);
            *spot = Spot::Cell(cell);
        }
    }

    /// The postings at `spot`, in callback order.
    pub fn postings_at<'a>(&'a self, spot: &'a Spot) -> &'a [Posting] {
        match spot {
            Spot::Whole(t) => &self.tables[t.as_usize()].whole,
            Spot::Any(t) => &self.tables[t.as_usize()].any,
            Spot::Exact(t, x) => self.tables[t.as_usize()].exact.get(*x).map_or(&[], |c| self.arena.slice(c)),
            Spot::Cell(c) => self.arena.slice(c),
        }
    }

    /// Appends the postings at `spots` (one event's) to `out`, the appended run sorted
    /// by callback id; returns how many were appended.
    pub fn collect(&self, spots: &[Spot], out: &mut Vec<Posting>) -> usize {
        let from = out.len();
        let mut lists = 0;
        for spot in spots {
            let list = self.postings_at(spot);
            if !list.is_empty() {
                out.extend_from_slice(list);
                lists += 1;
            }
        }
        if lists > 1 {
            out[from..].sort_unstable();
        }
        out.len() - from
    }

    /// Appends every posting that `ev` matches to `out`, the appended run sorted by
    /// callback id; returns how many were appended. Read-only, so batches call it from
    /// many threads at once.
    pub fn event_postings(&self, ev: &ResolvedEvent, out: &mut Vec<Posting>) -> usize {
        let mut spots = SmallVec::<[Spot; 8]>::new();
        self.locate(ev, |s| spots.push(s));
        self.collect(&spots, out)
    }

    /// Sweeps tables from where the last call stopped, dropping the postings of
    /// callbacks that are not live and freeing tables left empty, until `budget`
    /// postings and cells have been examined (at least one table is, so a call's work is
    /// bounded by the budget plus the largest table, never by the whole index).
    ///
    /// PERF: the index used to be swept all at once when half its postings were dead:
    /// amortised O(1) per removed posting, but one removal paid for the whole index
    /// (about 150 ms on the 10M-callback farm of `trigwire bench --jobs 10000 --frames
    /// 1000`). Sweeping a budget per removal spreads the same work over the removals
    /// that made it necessary; see `tests/scale_memory.rs` for the counts.
    pub fn sweep_some(&mut self, budget: usize, live: &dyn Fn(CallbackId) -> bool) -> SweepWork {
        let mut work = SweepWork::default();
        let mut visited = 0;
        while work.examined < budget || visited == 0 {
            if self.cursor >= self.tables.len() {
                self.cursor = 0;
                work.round = true;
                self.shrink();
                if visited > 0 {
                    break;
                }
            }
            if self.tables.is_empty() {
                break;
            }
            let t = self.cursor;
            self.cursor += 1;
            visited += 1;
            let table = &mut self.tables[t];
            let Some(head) = table.head else {
                work.examined += 1;
                continue;
            };
            let (dropped, examined) = table.retain(live, &mut self.arena);
            work.dropped += dropped;
            work.examined += examined;
            if table.is_empty() {
                *table = Table::default();
                self.heads.remove(&head);
                self.free.push(TableId::new(t).expect("a table id"));
                self.count_kind(head, -1);
            }
        }
        self.postings -= work.dropped;
        work
    }

    /// Gives back the memory of free tables at the end and of mostly empty maps.
    fn shrink(&mut self) {
        while self.tables.last().is_some_and(|t| t.head.is_none()) {
            self.tables.pop();
        }
        let end = self.tables.len();
        self.free.retain(|t| t.as_usize() < end);
        shrink_vec(&mut self.tables);
        shrink_vec(&mut self.free);
        shrink_map(&mut self.heads);
    }

    /// Calls `found` with every posting of a callback in `cbs` and the term it waits
    /// under: the way back from latch bits to atoms for explanations, so that no
    /// callback keeps its trigger text. Each list is sorted by callback, so a range is
    /// found by binary search; the cost is one step per term of the index.
    pub fn postings_of(&self, cbs: std::ops::Range<CallbackId>, mut found: impl FnMut(Posting, Term)) {
        let mut each = |list: &[Posting], term: Term| {
            let from = list.partition_point(|p| p.cb < cbs.start);
            list[from..].iter().take_while(|p| p.cb < cbs.end).for_each(|&p| found(p, term));
        };
        for (head, table) in &self.heads {
            let table = &self.tables[table.as_usize()];
            let term = |extra| Term { name: head.name, ty: head.ty, ctx: head.ctx, extra };
            each(&table.whole, term(ExtraKey::None));
            each(&table.any, term(ExtraKey::Any));
            for (sym, cell) in table.exact.cells_by_symbol() {
                each(self.arena.slice(cell), term(ExtraKey::Sym(sym)));
            }
        }
    }

    /// Postings stored, live or not yet swept.
    pub fn postings(&self) -> usize {
        self.postings
    }

    /// Bytes of heads and tables (maps and spilled lists included).
    pub fn heap_bytes(&self) -> (usize, usize) {
        let heads = self.heads.capacity() * (std::mem::size_of::<(Head, TableId)>() + 1) + self.kinds.capacity() * 8;
        let spill = |l: &PostingList| if l.spilled() { l.capacity() * std::mem::size_of::<Posting>() } else { 0 };
        let tables: usize = self.tables.capacity() * std::mem::size_of::<Table>()
            + self.free.capacity() * std::mem::size_of::<TableId>()
            + self.arena.heap_bytes()
            + self.tables.iter().map(|t| t.exact.heap_bytes() + spill(&t.whole) + spill(&t.any)).sum::<usize>();
        (heads, tables)
    }
}

// Snapshots (format: src/engine/snapshot.rs): the arena, then every table with its head
// (none for a free table), the free list in order and the kind counts. The posting
// count is recounted; the kind counts are checked against the heads.
impl Head {
    fn encode(&self, e: &mut Enc) {
        self.name.encode(e);
        e.u8(self.ty as u8);
        self.ctx.encode(e);
    }

    fn decode(d: &mut Dec<'_>, symbols: usize) -> Result<Head, Error> {
        let name = NameKey::decode(d, symbols)?;
        let ty = EventType::ALL[d.tag(4, "event type")? as usize];
        Ok(Head { name, ty, ctx: Ctx::decode(d, symbols)? })
    }
}

fn encode_list(list: &[Posting], e: &mut Enc) {
    e.len(list.len());
    list.iter().for_each(|&p| encode_posting(p, e));
}

fn decode_list(d: &mut Dec<'_>, accept: &dyn Fn(Posting) -> bool) -> Result<PostingList, Error> {
    let n = d.count(8)?;
    let mut list = PostingList::with_capacity(n);
    for _ in 0..n {
        list.push(decode_posting(d)?);
    }
    check_list(d, &list, accept)?;
    Ok(list)
}

impl Index {
    pub(crate) fn encode(&self, e: &mut Enc) {
        self.arena.encode(e);
        let mut heads: Vec<Option<&Head>> = vec![None; self.tables.len()];
        for (head, t) in &self.heads {
            heads[t.as_usize()] = Some(head);
        }
        e.len(self.tables.len());
        for (table, head) in self.tables.iter().zip(heads) {
            e.bool(head.is_some());
            if let Some(head) = head {
                head.encode(e);
                encode_list(&table.whole, e);
                encode_list(&table.any, e);
                table.exact.encode(e);
            }
        }
        e.len(self.free.len());
        self.free.iter().for_each(|t| e.u32(t.as_u32()));
        e.len(self.kinds.len());
        for [a, b] in &self.kinds {
            e.u32(*a);
            e.u32(*b);
        }
        e.len(self.cursor);
    }

    /// Decodes an index whose symbols are below `symbols` and whose postings are ones
    /// that `accept`s.
    pub(crate) fn decode(d: &mut Dec<'_>, symbols: usize, accept: &dyn Fn(Posting) -> bool) -> Result<Index, Error> {
        let mut index = Index { arena: Arena::decode(d)?, ..Index::default() };
        let n = d.count_upto(1, u32::MAX.into())?;
        index.tables.reserve_exact(n);
        for t in 0..n {
            if !d.bool()? {
                index.tables.push(Table::default());
                continue;
            }
            let head = Head::decode(d, symbols)?;
            let table = Table {
                head: Some(head),
                whole: decode_list(d, accept)?,
                any: decode_list(d, accept)?,
                exact: Exact::decode(d, symbols, accept)?,
            };
            index.tables.push(table);
            let fresh = index.heads.insert(head, TableId::from_u32(t as u32)).is_none();
            d.check(fresh, || "a head of the index is listed twice".into())?;
        }
        let cells = index.tables.iter().flat_map(|t| t.exact.cells());
        index.arena.check_runs(d, cells, accept)?;
        // Counted once the arena runs are known to fit.
        let postings: usize = index
            .tables
            .iter()
            .map(|t| t.whole.len() + t.any.len() + t.exact.cells().map(|c| index.arena.slice(c).len()).sum::<usize>())
            .sum();
        let mut headless = vec![true; n];
        index.heads.values().for_each(|t| headless[t.as_usize()] = false);
        for _ in 0..d.count(4)? {
            let t = d.id(n, "table")? as usize;
            d.check(std::mem::take(&mut headless[t]), || format!("table {t} is free twice or has a head"))?;
            index.free.push(TableId::from_u32(t as u32));
        }
        d.check(!headless.contains(&true), || "a table has neither a head nor a place in the free list".into())?;
        let kinds = d.count_upto(8, (EventName::ALL.len() * EventType::ALL.len()) as u64)?;
        for _ in 0..kinds {
            index.kinds.push([d.u32()?, d.u32()?]);
        }
        let mut recount = Index { kinds: vec![[0; 2]; kinds], ..Index::default() };
        index.heads.keys().for_each(|&head| recount.count_kind(head, 1));
        d.check(recount.kinds == index.kinds, || "the index's head counts do not match its heads".into())?;
        index.postings = postings;
        let cursor = d.u64()?;
        d.check(cursor <= n as u64, || format!("the sweep cursor {cursor} is past the {n} tables"))?;
        index.cursor = cursor as usize;
        Ok(index)
    }
}
