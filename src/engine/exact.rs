//! The exact-extra postings of one index table: frame-level terms, the bulk of a farm.
//!
//! # Design note
//!
//! The naive layout is a hash map from extra symbol to a small vector of postings:
//! with hashbrown and `SmallVec<[Posting; 1]>` that is a 33-byte bucket per term, a
//! load factor that rounds 1,000 frames up to 2,048 buckets, and a heap vector for every
//! term that more than one callback waits on. On a farm of 1M two-atom frame ANDs
//! (`trigwire bench --jobs 1000 --frames 1000`) the index took 69.5 bytes per callback,
//! more than the callbacks themselves.
//!
//! Two steps away from it:
//! - **A 16-byte [`Cell`] per term**: empty, up to two postings inline (the callbacks
//!   and slots themselves), or the start of a run in a shared overflow arena. Most
//!   terms have one or two postings, so most cost 16 bytes and one read; the rest
//!   cost 16 bytes plus a run (a header slot holding the length, then the postings).
//! - **Dense tables**: the extras of a table are usually the frame names of one agenda,
//!   interned together, so their symbols are a compact range. While the symbols a table
//!   holds span at most about twice their number, the cells live in a vector indexed by
//!   `symbol - base` (no keys, no hashing, one cache line per lookup); a table whose
//!   extras are scattered switches to a hash map of cells once, and stays one.
//!
//! Arena runs have a power-of-two capacity implied by their length; a run that fills
//! moves to a run twice its size (a freed run of the same size is reused first), so a
//! list keeps the increasing callback order in which postings arrive. Sweeps filter
//! runs in place, moving a list that shrinks to a smaller run (see `index.rs`).
//!
//! PERF: two inline postings instead of one: the typical frame term of a farm (a job's
//! frame that one or two downstream jobs wait on) reads its cell and no run. On
//! `trigwire bench --jobs 10000 --frames 1000` (10M two-atom ANDs; 68% of terms have at
//! most two postings) bytes per callback stay 46.2 (46.3 before: the cells double, the
//! arena loses every run of two), and one event at a time goes from 1.09-1.14M to
//! 1.19-1.22M events/s (`--events 3000000`, two interleaved runs each); batches, which
//! overlap the reads of many events, were unchanged (3.42M).
//!
//! PERF: keeping the length in the run's own header slot, instead of in a separate
//! table of runs indexed by list id, saves a dependent cache miss per event on a big
//! farm: `trigwire bench --jobs 3000 --frames 1000` (3M callbacks, random order), three
//! interleaved runs, 0.75-0.79M -> 0.85-0.90M events/s, for 49.6 -> 50.9 bytes per
//! callback (freed runs are a slot larger).
//!
//! PERF: `trigwire bench --jobs 1000 --frames 1000` (1M two-atom ANDs, 10 jobs a
//! group): index tables 69.5 -> 32.7 bytes per callback (engine total 90 -> 53), and in
//! three interleaved runs on a loaded 2-core machine registration 0.77 -> 0.69 s and
//! random-order events/s 0.89-1.12M -> 1.11-1.24M (one dense cell, no hash probe).

use hashbrown::HashMap;

use super::postings::Posting;

type SmallVecPostings = smallvec::SmallVec<[Posting; 2]>;
use super::prefetch::prefetch;
use super::snapshot::{snapshot_error, u32_at, Dec, Enc};
use crate::error::Error;
use crate::front::ids::{CallbackId, Symbol};

/// `slot` of a cell's first posting when the cell holds a list's start in `cb`.
const LIST: u32 = u32::MAX;

/// No posting: callback id `u32::MAX` is never assigned.
const NONE: Posting = Posting { cb: CallbackId::MAX, slot: 0 };

/// One term's postings in 16 bytes: up to two postings inline (unused ones are
/// [`NONE`]), or the start of a list of three or more in the arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cell([Posting; 2]);

impl Cell {
    pub(crate) const EMPTY: Cell = Cell([NONE, NONE]);

    fn is_empty(self) -> bool {
        self == Cell::EMPTY
    }

    fn list(self) -> Option<u32> {
        (self.0[0].slot == LIST).then_some(self.0[0].cb.as_u32())
    }

    fn at(start: u32) -> Cell {
        Cell([Posting { cb: CallbackId::from_u32(start), slot: LIST }, NONE])
    }

    /// How many postings an inline cell holds.
    fn inline_len(&self) -> usize {
        self.0.iter().take_while(|p| **p != NONE).count()
    }
}

/// The capacity of a run holding `len` postings: a power of two, at least two. The run
/// takes one more arena slot, its header.
fn capacity(len: u32) -> u32 {
    len.next_power_of_two().max(2)
}

/// Posting lists of two or more, shared by every table of an index. A list is a run of
/// the arena: a header slot whose `cb` field holds the length, then the postings, so a
/// cell reaches its postings with one read (the header shares their cache line).
#[derive(Clone, Debug, Default)]
pub(crate) struct Arena {
    postings: Vec<Posting>,
    /// Free run starts by size class (`capacity == 2 << class`).
    free: Vec<Vec<u32>>,
}

impl Arena {
    /// The postings of `cell`, in callback order.
    pub fn slice<'a>(&'a self, cell: &'a Cell) -> &'a [Posting] {
        match cell.list() {
            None => &cell.0[..cell.inline_len()],
            Some(start) => {
                let start = start as usize;
                &self.postings[start + 1..][..self.postings[start].cb.as_usize()]
            }
        }
    }

    /// Asks for the cache lines of `cell`'s run (its header and first postings), if it
    /// has one, without reading them.
    pub fn prefetch(&self, cell: Cell) {
        if let Some(start) = cell.list() {
            let start = start as usize;
            if let Some(header) = self.postings.get(start) {
                prefetch(header);
            }
            // The shortest run, three postings and its header, may cross into a second line.
            if let Some(third) = self.postings.get(start + 3) {
                prefetch(third);
            }
        }
    }

    /// Appends `p` to `cell`'s postings.
    pub fn push(&mut self, cell: &mut Cell, p: Posting) {
        let start = match (cell.list(), cell.inline_len()) {
            (Some(start), _) => self.append(start, p),
            (None, n @ (0 | 1)) => {
                cell.0[n] = p;
                return;
            }
            (None, _) => {
                let start = self.alloc(capacity(3));
                let at = start as usize;
                self.postings[at] = header(3);
                self.postings[at + 1..at + 4].copy_from_slice(&[cell.0[0], cell.0[1], p]);
                start
            }
        };
        *cell = Cell::at(start);
    }

    /// Appends `p` to the run at `start`, moving it if full; returns where it is now.
    fn append(&mut self, start: u32, p: Posting) -> u32 {
        let len = self.postings[start as usize].cb.as_u32();
        let cap = capacity(len);
        let start = if len == cap {
            let to = self.alloc(cap * 2);
            self.postings.copy_within(start as usize..(start + 1 + len) as usize, to as usize);
            self.free_run(start, cap);
            to
        } else {
            start
        };
        self.postings[(start + 1 + len) as usize] = p;
        self.postings[start as usize] = header(len + 1);
        start
    }

    fn class(cap: u32) -> usize {
        cap.trailing_zeros() as usize - 1
    }

    /// A run for `cap` postings and its header.
    fn alloc(&mut self, cap: u32) -> u32 {
        if let Some(start) = self.free.get_mut(Arena::class(cap)).and_then(Vec::pop) {
            return start;
        }
        let start = u32::try_from(self.postings.len()).expect("fewer than 2^32 postings in lists");
        let slots = cap as usize + 1;
        reserve_gently(&mut self.postings, slots);
        self.postings.resize(self.postings.len() + slots, NONE);
        start
    }

    /// Drops the postings of `cell` whose callback is not live, in place: a list left
    /// with two or fewer goes back inline and one that fits a smaller run moves there,
    /// freeing its run for reuse. Returns (postings dropped, postings examined).
    pub fn retain_cell(&mut self, cell: &mut Cell, live: &dyn Fn(CallbackId) -> bool) -> (usize, usize) {
        let Some(start) = cell.list() else {
            let n = cell.inline_len();
            let kept: SmallVecPostings = cell.0[..n].iter().copied().filter(|p| live(p.cb)).collect();
            let mut fresh = Cell::EMPTY;
            fresh.0[..kept.len()].copy_from_slice(&kept);
            *cell = fresh;
            return (n - kept.len(), n);
        };
        let at = start as usize;
        let len = self.postings[at].cb.as_u32();
        let mut kept = 0u32;
        for i in 0..len {
            let p = self.postings[at + 1 + i as usize];
            if live(p.cb) {
                self.postings[at + 1 + kept as usize] = p;
                kept += 1;
            }
        }
        let dropped = (len - kept) as usize;
        if kept <= 2 {
            let mut fresh = Cell::EMPTY;
            fresh.0[..kept as usize].copy_from_slice(&self.postings[at + 1..at + 1 + kept as usize]);
            *cell = fresh;
            self.free_run(start, capacity(len));
        } else if capacity(kept) < capacity(len) {
            let to = self.alloc(capacity(kept));
            self.postings.copy_within(at + 1..at + 1 + kept as usize, to as usize + 1);
            self.postings[to as usize] = header(kept);
            self.free_run(start, capacity(len));
            *cell = Cell::at(to);
        } else {
            self.postings[at] = header(kept);
        }
        (dropped, len as usize)
    }

    fn free_run(&mut self, start: u32, cap: u32) {
        let class = Arena::class(cap);
        if self.free.len() <= class {
            self.free.resize_with(class + 1, Vec::new);
        }
        self.free[class].push(start);
    }

    /// Bytes held, by capacity.
    pub fn heap_bytes(&self) -> usize {
        self.postings.capacity() * std::mem::size_of::<Posting>()
            + self.free.iter().map(|f| f.capacity() * 4 + 24).sum::<usize>()
    }
}

/// The header slot of a run holding `len` postings.
fn header(len: u32) -> Posting {
    Posting { cb: CallbackId::from_u32(len), slot: LIST }
}

/// Grows `v` by an eighth instead of doubling: the arena is one of the largest
/// structures of a big farm, and doubling leaves up to half of it unused.
///
/// PERF: `trigwire bench --jobs 10000 --frames 1000` (10M two-atom ANDs): index tables
/// 41.0 -> 28.8 bytes per callback (engine total 61.3 -> 49.0). Large reallocations
/// are `mremap`s on Linux, so growing more often costs no copying there.
fn reserve_gently<T>(v: &mut Vec<T>, additional: usize) {
    if v.len() + additional > v.capacity() {
        v.reserve_exact(additional.max(v.capacity() / 8).max(64));
    }
}

/// The exact-extra cells of one table: dense by symbol while the symbols are compact,
/// a hash map otherwise.
#[derive(Clone, Debug)]
pub(crate) enum Exact {
    /// `cells[s - base]` is the cell of symbol `s`; `used` cells are not empty.
    Dense { base: u32, cells: Vec<Cell>, used: u32 },
    /// Non-empty cells by symbol.
    Sparse(HashMap<Symbol, Cell>),
}

impl Default for Exact {
    fn default() -> Exact {
        Exact::Dense { base: 0, cells: Vec::new(), used: 0 }
    }
}

/// A dense table may span this many more symbols than twice the ones it holds.
const DENSE_SLACK: u32 = 64;

impl Exact {
    pub fn is_empty(&self) -> bool {
        match self {
            Exact::Dense { used, .. } => *used == 0,
            Exact::Sparse(map) => map.is_empty(),
        }
    }

    /// The cell of `sym`, if it holds postings.
    pub fn get(&self, sym: Symbol) -> Option<&Cell> {
        match self {
            Exact::Dense { base, cells, .. } => cells.get(sym.as_u32().wrapping_sub(*base) as usize),
            Exact::Sparse(map) => map.get(&sym),
        }
    }

    /// Appends `p` to the postings of `sym`.
    pub fn push(&mut self, sym: Symbol, p: Posting, arena: &mut Arena) {
        if let Exact::Dense { base, cells, used } = self {
            if let Some(cell) = dense_cell(base, cells, used, sym.as_u32()) {
                arena.push(cell, p);
                return;
            }
            *self = Exact::Sparse(to_sparse(*base, cells));
        }
        if let Exact::Sparse(map) = self {
            arena.push(map.entry(sym).or_insert(Cell::EMPTY), p);
        }
    }

    /// Every non-empty cell.
    pub fn cells(&self) -> Box<dyn Iterator<Item = &Cell> + '_> {
        match self {
            Exact::Dense { cells, .. } => Box::new(cells.iter().filter(|c| !c.is_empty())),
            Exact::Sparse(map) => Box::new(map.values()),
        }
    }

    /// Every non-empty cell with its symbol, for explanations (not on a hot path).
    pub fn cells_by_symbol(&self) -> Box<dyn Iterator<Item = (Symbol, &Cell)> + '_> {
        match self {
            Exact::Dense { base, cells, .. } => Box::new(
                cells
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| !c.is_empty())
                    .map(move |(i, c)| (Symbol::from_u32(base + i as u32), c)),
            ),
            Exact::Sparse(map) => Box::new(map.iter().map(|(s, c)| (*s, c))),
        }
    }

    /// Drops the postings of callbacks that are not live, in place in `arena`; returns
    /// (postings dropped, postings and cells examined).
    pub fn retain_in_place(&mut self, live: &dyn Fn(CallbackId) -> bool, arena: &mut Arena) -> (usize, usize) {
        let (mut dropped, mut examined) = (0, 0);
        match self {
            Exact::Dense { cells, used, .. } => {
                examined += cells.len();
                for c in cells.iter_mut().filter(|c| !c.is_empty()) {
                    let (d, e) = arena.retain_cell(c, live);
                    dropped += d;
                    examined += e;
                }
                *used = cells.iter().filter(|c| !c.is_empty()).count() as u32;
                if *used == 0 {
                    *self = Exact::default();
                }
            }
            Exact::Sparse(map) => {
                examined += map.len();
                for c in map.values_mut() {
                    let (d, e) = arena.retain_cell(c, live);
                    dropped += d;
                    examined += e;
                }
                map.retain(|_, c| !c.is_empty());
                crate::front::registry::shrink_map(map);
            }
        }
        (dropped, examined)
    }

    /// Bytes held, by capacity.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Exact::Dense { cells, .. } => cells.capacity() * std::mem::size_of::<Cell>(),
            Exact::Sparse(map) => map.capacity() * (std::mem::size_of::<(Symbol, Cell)>() + 1),
        }
    }
}

/// The dense cell of `sym`, growing the range to reach it, or `None` if that would make
/// the table too sparse.
fn dense_cell<'a>(base: &mut u32, cells: &'a mut Vec<Cell>, used: &mut u32, sym: u32) -> Option<&'a mut Cell> {
    if cells.is_empty() {
        *base = sym;
    }
    let lo = u64::from((*base).min(sym));
    let hi = (u64::from(*base) + cells.len() as u64).max(u64::from(sym) + 1);
    if hi - lo > 2 * u64::from(*used + 1) + u64::from(DENSE_SLACK) {
        return None;
    }
    if sym < *base {
        // Grow the front by at least half the length, as `Vec` grows the back, so that
        // symbols arriving in descending order cost amortised O(1), not O(len) each.
        let grow = ((*base - sym) as usize).max(cells.len() / 2);
        let new_base = (*base as usize).saturating_sub(grow) as u32;
        cells.splice(0..0, std::iter::repeat(Cell::EMPTY).take((*base - new_base) as usize));
        *base = new_base;
    }
    let at = (sym - *base) as usize;
    if at >= cells.len() {
        cells.resize(at + 1, Cell::EMPTY);
    }
    let cell = &mut cells[at];
    if cell.is_empty() {
        *used += 1;
    }
    Some(cell)
}

fn to_sparse(base: u32, cells: &[Cell]) -> HashMap<Symbol, Cell> {
    let live = cells.iter().enumerate().filter(|(_, c)| !c.is_empty());
    live.map(|(i, &c)| (Symbol::from_u32(base + i as u32), c)).collect()
}

// Snapshots (format: src/engine/snapshot.rs): the arena's slots and free runs as they
// are, and each table's cells. Decoding checks that every cell is one the code makes,
// every run lies in the arena with a header that fits it, and no two runs (live or
// free) overlap, so no later append or slice can run past a run.

/// A posting as 8 bytes.
pub(crate) fn encode_posting(p: Posting, e: &mut Enc) {
    e.u32(p.cb.as_u32());
    e.u32(p.slot);
}

pub(crate) fn decode_posting(d: &mut Dec<'_>) -> Result<Posting, Error> {
    Ok(Posting { cb: CallbackId::from_u32(d.u32()?), slot: d.u32()? })
}

/// The posting encoded in the 8 bytes at `at` of `bytes`.
#[inline]
fn posting_at(bytes: &[u8], at: usize) -> Posting {
    Posting { cb: CallbackId::from_u32(u32_at(bytes, at)), slot: u32_at(bytes, at + 4) }
}

/// Checks the posting rules of every list: each posting is one `accept`s, and the list is
/// in callback order.
pub(crate) fn check_list(d: &Dec<'_>, list: &[Posting], accept: &dyn Fn(Posting) -> bool) -> Result<(), Error> {
    let sorted = list.windows(2).all(|w| w[0].cb <= w[1].cb);
    d.check(sorted && list.iter().all(|&p| p != NONE && p.slot != LIST && accept(p)), || {
        "a posting list holds a bad posting or is out of order".into()
    })
}

impl Arena {
    pub(crate) fn encode(&self, e: &mut Enc) {
        e.len(self.postings.len());
        e.reserve(self.postings.len() * 8);
        self.postings.iter().for_each(|&p| encode_posting(p, e));
        e.len(self.free.len());
        for class in &self.free {
            e.len(class.len());
            class.iter().for_each(|&s| e.u32(s));
        }
    }

    /// Decodes the arena; its runs are checked by [`Arena::check_runs`] once the cells
    /// that point into it are known.
    pub(crate) fn decode(d: &mut Dec<'_>) -> Result<Arena, Error> {
        let n = d.count_upto(8, u32::MAX.into())?;
        let postings = d.array(n, 8)?.chunks_exact(8).map(|c| posting_at(c, 0)).collect();
        let classes = d.count_upto(8, 31)?;
        let mut free = Vec::with_capacity(classes);
        for _ in 0..classes {
            let k = d.count(4)?;
            free.push((0..k).map(|_| d.u32()).collect::<Result<Vec<u32>, _>>()?);
        }
        Ok(Arena { postings, free })
    }

    /// Checks the runs that `cells` point at and the free runs: each lies in the arena
    /// with room for its capacity, live runs hold three or more accepted postings in
    /// order behind a header, and no two runs overlap.
    pub(crate) fn check_runs<'c>(
        &self,
        d: &Dec<'_>,
        cells: impl Iterator<Item = &'c Cell>,
        accept: &dyn Fn(Posting) -> bool,
    ) -> Result<(), Error> {
        let len = self.postings.len() as u64;
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for (class, starts) in self.free.iter().enumerate() {
            let cap = 2u64 << class;
            for &s in starts {
                let end = u64::from(s) + 1 + cap;
                d.check(end <= len, || format!("a free run at {s} runs past the arena"))?;
                runs.push((u64::from(s), end));
            }
        }
        for cell in cells {
            let Some(start) = cell.list() else { continue };
            let header = self.postings.get(start as usize).copied().unwrap_or(NONE);
            let count = header.cb.as_u32();
            // The count's range first: `capacity` of a count past 2^31 overflows.
            let counted = (3..u32::MAX / 2).contains(&count);
            let end = u64::from(start) + 1 + u64::from(capacity(count.min(u32::MAX / 2)));
            let fits = header.slot == LIST && counted && end <= len;
            d.check(fits, || format!("the run at {start} does not fit the arena"))?;
            check_list(d, self.slice(cell), accept)?;
            runs.push((u64::from(start), end));
        }
        runs.sort_unstable();
        d.check(runs.windows(2).all(|w| w[0].1 <= w[1].0), || "two runs of the arena overlap".into())
    }
}

impl Cell {
    fn encode(&self, e: &mut Enc) {
        self.0.iter().for_each(|&p| encode_posting(p, e));
    }

    /// Decodes a cell of one of the forms the code makes: empty, one or two postings
    /// inline, or a run's start (checked against the arena later).
    fn decode(d: &mut Dec<'_>, accept: &dyn Fn(Posting) -> bool) -> Result<Cell, Error> {
        let cell = Cell([decode_posting(d)?, decode_posting(d)?]);
        d.check(cell.fits(accept), || "a cell of the index holds a bad posting".into())?;
        Ok(cell)
    }

    /// The cell encoded in the 16 bytes at `at` of `bytes`.
    #[inline]
    fn at_bytes(bytes: &[u8], at: usize) -> Cell {
        Cell([posting_at(bytes, at), posting_at(bytes, at + 8)])
    }

    /// Whether the cell has one of the forms the code makes, with postings that
    /// `accept` takes.
    fn fits(&self, accept: &dyn Fn(Posting) -> bool) -> bool {
        let [a, b] = self.0;
        match (a == NONE, b == NONE) {
            (true, true) => true,
            (true, false) => false,
            (false, true) => a.slot == LIST || accept(a),
            (false, false) => a.slot != LIST && b.slot != LIST && a.cb <= b.cb && accept(a) && accept(b),
        }
    }
}

impl Exact {
    pub(crate) fn encode(&self, e: &mut Enc) {
        match self {
            Exact::Dense { base, cells, used: _ } => {
                e.u8(0);
                e.u32(*base);
                e.len(cells.len());
                e.reserve(cells.len() * 16);
                cells.iter().for_each(|c| c.encode(e));
            }
            Exact::Sparse(map) => {
                e.u8(1);
                let mut cells: Vec<_> = map.iter().collect();
                cells.sort_unstable_by_key(|(s, _)| **s);
                e.len(cells.len());
                for (s, c) in cells {
                    e.u32(s.as_u32());
                    c.encode(e);
                }
            }
        }
    }

    /// Decodes the cells of a table whose extras are symbols below `symbols`.
    pub(crate) fn decode(d: &mut Dec<'_>, symbols: usize, accept: &dyn Fn(Posting) -> bool) -> Result<Exact, Error> {
        Ok(match d.tag(2, "exact table kind")? {
            0 => {
                let base = d.u32()?;
                let n = d.count(16)?;
                d.check(u64::from(base) + n as u64 <= u64::from(u32::MAX), || "a dense table past 2^32".into())?;
                let start = d.offset();
                let cells: Vec<Cell> = d.array(n, 16)?.chunks_exact(16).map(|c| Cell::at_bytes(c, 0)).collect();
                let mut used = 0;
                for (i, cell) in cells.iter().enumerate().filter(|(_, c)| !c.is_empty()) {
                    used += 1;
                    if base as usize + i >= symbols || !cell.fits(accept) {
                        let what = "a cell of the index holds a bad posting or a symbol not interned";
                        return Err(snapshot_error(start + 16 * i as u64, what));
                    }
                }
                Exact::Dense { base, cells, used }
            }
            _ => {
                let n = d.count(20)?;
                let mut map = HashMap::with_capacity(n);
                for _ in 0..n {
                    let sym = Symbol::from_u32(d.id(symbols, "symbol")?);
                    let cell = Cell::decode(d, accept)?;
                    d.check(!cell.is_empty() && map.insert(sym, cell).is_none(), || {
                        "a sparse cell twice or empty".into()
                    })?;
                }
                Exact::Sparse(map)
            }
        })
    }
}
