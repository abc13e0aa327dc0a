//! Binding a trigger's atoms to terms: `self` and `parent` become job ids, a label
//! becomes (process group, label symbol), names and extras become symbols. Duplicate
//! atoms share one slot, and the tree over slots is flattened into a [`Shape`].

use hashbrown::{HashMap, HashSet};

use crate::engine::snapshot::{Dec, Enc};
use crate::error::{Error, ErrorKind};
use crate::front::ids::{ActionId, CallbackId, Symbol};
use crate::front::intern::Interner;
use crate::syntax::{AtomKind, Context, EventName, EventType, Expr, Extra, Name, Schedule};

/// An event name as the index keys it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum NameKey {
    Builtin(EventName),
    Custom(Symbol),
}

/// Which job a term is about, as resolved at registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Ctx {
    /// A job id (from `self`, `parent` or a number).
    Job(u64),
    /// Whichever job holds this label in this process group when the event arrives.
    Label(u64, Symbol),
    /// No job: `parent` on a job without one (spec §9). No event names it, so an atom
    /// about it is never met.
    Nobody,
}

/// The extra of a term. Subjob ids are interned as their decimal text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum ExtraKey {
    None,
    Any,
    Sym(Symbol),
}

/// A resolved event atom.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Term {
    pub name: NameKey,
    pub ty: EventType,
    pub ctx: Ctx,
    pub extra: ExtraKey,
}

/// A resolved atom: an event term or a clock schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Slot {
    Event(Term),
    Clock(Schedule),
}

/// The boolean structure of a trigger over slot numbers, flattened and deduplicated.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Shape {
    Slot(u32),
    And(Vec<Shape>),
    Or(Vec<Shape>),
}

/// A callback ready for a matcher: resolved slots, shape and action.
#[derive(Clone, Debug)]
pub(crate) struct Resolved {
    pub id: CallbackId,
    pub owner: Option<u64>,
    pub index: u32,
    pub action: ActionId,
    pub slots: Vec<Slot>,
    pub shape: Shape,
}

/// The owner a trigger is resolved against.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Owner {
    pub id: u64,
    pub pgrp: u64,
    pub pid: Option<u64>,
}

/// Resolves one trigger expression. `source` is the trigger text for error spans;
/// `steps` counts the comparisons and lookups made finding repeated atoms and children
/// ([`crate::Stats::plan_steps`]).
pub(crate) fn resolve(
    expr: &Expr,
    owner: Option<Owner>,
    source: &str,
    symbols: &mut Interner,
    steps: &mut u64,
) -> Result<(Vec<Slot>, Shape), Error> {
    let mut r = Resolver { owner, source, symbols, slots: Vec::new(), seen: None, texts: None, steps: 0 };
    let shape = r.expr(expr);
    *steps += r.steps;
    Ok((r.slots, shape?))
}

/// Like [`resolve`], and also returns the canonical text of each slot's first atom.
pub(crate) fn resolve_explained(
    expr: &Expr,
    owner: Option<Owner>,
    source: &str,
    symbols: &mut Interner,
) -> Result<(Vec<String>, Shape), Error> {
    let mut r = Resolver { owner, source, symbols, slots: Vec::new(), seen: None, texts: Some(Vec::new()), steps: 0 };
    let shape = r.expr(expr)?;
    Ok((r.texts.unwrap_or_default(), shape))
}

struct Resolver<'a> {
    owner: Option<Owner>,
    source: &'a str,
    symbols: &'a mut Interner,
    slots: Vec<Slot>,
    /// The slot of each distinct atom, once there are more than [`SCAN`] of them.
    seen: Option<HashMap<Slot, u32>>,
    /// The atom text of each slot, when explaining.
    texts: Option<Vec<String>>,
    /// Comparisons and lookups made so far.
    steps: u64,
}

impl Resolver<'_> {
    fn expr(&mut self, expr: &Expr) -> Result<Shape, Error> {
        match expr {
            Expr::Atom(atom) => {
                let slot = self.atom(&atom.kind).map_err(|e| e.at(atom.span, self.source))?;
                let n = self.slot_of(slot);
                if let Some(texts) = self.texts.as_mut().filter(|t| t.len() == n as usize) {
                    texts.push(atom.kind.to_string());
                }
                Ok(Shape::Slot(n))
            }
            Expr::And(xs) => {
                let children = self.all(xs)?;
                Ok(flatten(true, children, &mut self.steps))
            }
            Expr::Or(xs) => {
                let children = self.all(xs)?;
                Ok(flatten(false, children, &mut self.steps))
            }
        }
    }

    fn all(&mut self, xs: &[Expr]) -> Result<Vec<Shape>, Error> {
        xs.iter().map(|x| self.expr(x)).collect()
    }

    // PERF: a scan finds a repeated atom in the usual trigger of a few atoms without
    // hashing; past SCAN slots a map keeps a trigger of n atoms linear, where the scan
    // was quadratic (160k atoms in a list: 31 s; `tests/scale_hostility.rs` counts it).
    fn slot_of(&mut self, slot: Slot) -> u32 {
        if let Some(seen) = &mut self.seen {
            self.steps += 1;
            let next = self.slots.len() as u32;
            let at = *seen.entry(slot).or_insert(next);
            if at == next {
                self.slots.push(slot);
            }
            return at;
        }
        let at = self.slots.iter().position(|s| *s == slot);
        self.steps += at.map_or(self.slots.len(), |at| at + 1) as u64;
        if let Some(at) = at {
            return at as u32;
        }
        self.slots.push(slot);
        if self.slots.len() > SCAN {
            self.seen = Some(self.slots.iter().enumerate().map(|(i, s)| (*s, i as u32)).collect());
        }
        (self.slots.len() - 1) as u32
    }

    fn atom(&mut self, atom: &AtomKind) -> Result<Slot, Error> {
        match atom {
            AtomKind::Event { name, ty, context, extra } => Ok(Slot::Event(Term {
                name: name_key(name, self.symbols),
                ty: *ty,
                ctx: self.context(context)?,
                extra: self.extra(extra),
            })),
            AtomKind::Clock { owner, schedule } => {
                if let Some((_, context)) = owner {
                    self.context(context)?;
                }
                Ok(Slot::Clock(*schedule))
            }
        }
    }

    fn context(&mut self, context: &Context) -> Result<Ctx, Error> {
        let bad = |what: &str| Error::new(ErrorKind::BadContext, what.to_string()).in_field("triggers");
        match (context, self.owner) {
            (Context::Id(id), _) => Ok(Ctx::Job(*id)),
            (Context::SelfJob, Some(o)) => Ok(Ctx::Job(o.id)),
            (Context::Parent, Some(Owner { pid: Some(pid), .. })) => Ok(Ctx::Job(pid)),
            (Context::Parent, Some(_)) => Ok(Ctx::Nobody),
            // Labels compare ignoring ASCII case: the key is lowercase, as at submit.
            (Context::Label(label), Some(o)) => Ok(Ctx::Label(o.pgrp, self.symbols.intern_lowercase(label))),
            (_, None) => Err(bad("a global callback has no owner, so it cannot use self, parent or labels")),
        }
    }

    fn extra(&mut self, extra: &Extra) -> ExtraKey {
        match extra {
            Extra::None => ExtraKey::None,
            Extra::Any => ExtraKey::Any,
            Extra::Name(n) => ExtraKey::Sym(self.symbols.intern(n)),
            Extra::Subjob(i) => ExtraKey::Sym(self.symbols.intern(&i.to_string())),
        }
    }
}

/// How many slots or children are compared by a scan before a hash set takes over.
const SCAN: usize = 32;

/// The key of an event name; custom names are interned.
pub(crate) fn name_key(name: &Name, symbols: &mut Interner) -> NameKey {
    match name {
        Name::Builtin(n) => NameKey::Builtin(*n),
        Name::Custom(s) => NameKey::Custom(symbols.intern(s)),
    }
}

/// Merges children of the same operator, drops repeated children, and collapses a
/// single child into itself.
///
/// PERF: the usual trigger (`a && b` over distinct atoms) needs neither merging nor
/// dropping, and keeps its vector: no allocation per registered callback.
fn flatten(and: bool, mut children: Vec<Shape>, steps: &mut u64) -> Shape {
    let same_op = |x: &Shape| matches!((x, and), (Shape::And(_), true) | (Shape::Or(_), false));
    if children.iter().any(same_op) || repeated(&children, steps) {
        let mut out = Unique { steps, list: Vec::new(), seen: None };
        for child in children {
            match child {
                Shape::And(xs) if and => xs.into_iter().for_each(|x| out.push(x)),
                Shape::Or(xs) if !and => xs.into_iter().for_each(|x| out.push(x)),
                other => out.push(other),
            }
        }
        children = out.list;
    }
    match (children.len(), and) {
        (1, _) => children.pop().unwrap_or(Shape::And(Vec::new())),
        (_, true) => Shape::And(children),
        (_, false) => Shape::Or(children),
    }
}

/// Whether a child appears twice: a scan for few children, a hash set for many.
fn repeated(children: &[Shape], steps: &mut u64) -> bool {
    if children.len() <= SCAN {
        *steps += (children.len() * children.len() / 2) as u64;
        return children.iter().enumerate().any(|(i, x)| children[..i].contains(x));
    }
    *steps += children.len() as u64;
    let mut seen = HashSet::with_capacity(children.len());
    !children.iter().all(|x| seen.insert(x))
}

/// Children in first-seen order without repeats; linear for many children (see SCAN).
struct Unique<'s> {
    steps: &'s mut u64,
    list: Vec<Shape>,
    seen: Option<HashSet<Shape>>,
}

impl Unique<'_> {
    fn push(&mut self, x: Shape) {
        match &mut self.seen {
            Some(seen) => {
                *self.steps += 1;
                if seen.insert(x.clone()) {
                    self.list.push(x);
                }
            }
            None => {
                *self.steps += self.list.len() as u64;
                if !self.list.contains(&x) {
                    self.list.push(x);
                    if self.list.len() > SCAN {
                        self.seen = Some(self.list.iter().cloned().collect());
                    }
                }
            }
        }
    }
}

/// Whether a trigger names `parent` anywhere: a universal callback that does is not
/// attached to a job without a parent.
pub(crate) fn names_parent(expr: &Expr) -> bool {
    match expr {
        Expr::Atom(atom) => matches!(
            &atom.kind,
            AtomKind::Event { context: Context::Parent, .. }
                | AtomKind::Clock { owner: Some((_, Context::Parent)), .. }
        ),
        Expr::And(xs) | Expr::Or(xs) => xs.iter().any(names_parent),
    }
}

// Snapshots (format: src/engine/snapshot.rs): the keys of the index and the kept facts.
impl NameKey {
    pub(crate) fn encode(&self, e: &mut Enc) {
        match self {
            NameKey::Builtin(n) => {
                e.u8(0);
                e.u32(*n as u32);
            }
            NameKey::Custom(s) => {
                e.u8(1);
                e.u32(s.as_u32());
            }
        }
    }

    pub(crate) fn decode(d: &mut Dec<'_>, symbols: usize) -> Result<NameKey, Error> {
        Ok(match d.tag(2, "event name kind")? {
            0 => NameKey::Builtin(EventName::ALL[d.id(EventName::ALL.len(), "event name")? as usize]),
            _ => NameKey::Custom(Symbol::from_u32(d.id(symbols, "symbol")?)),
        })
    }
}

impl Ctx {
    pub(crate) fn encode(&self, e: &mut Enc) {
        match self {
            Ctx::Job(id) => {
                e.u8(0);
                e.u64(*id);
            }
            Ctx::Label(g, l) => {
                e.u8(1);
                e.u64(*g);
                e.u32(l.as_u32());
            }
            Ctx::Nobody => e.u8(2),
        }
    }

    pub(crate) fn decode(d: &mut Dec<'_>, symbols: usize) -> Result<Ctx, Error> {
        Ok(match d.tag(3, "context")? {
            0 => Ctx::Job(d.u64()?),
            1 => Ctx::Label(d.u64()?, Symbol::from_u32(d.id(symbols, "symbol")?)),
            _ => Ctx::Nobody,
        })
    }
}

impl ExtraKey {
    pub(crate) fn encode(&self, e: &mut Enc) {
        match self {
            ExtraKey::None => e.u8(0),
            ExtraKey::Any => e.u8(1),
            ExtraKey::Sym(s) => {
                e.u8(2);
                e.u32(s.as_u32());
            }
        }
    }

    pub(crate) fn decode(d: &mut Dec<'_>, symbols: usize) -> Result<ExtraKey, Error> {
        Ok(match d.tag(3, "extra")? {
            0 => ExtraKey::None,
            1 => ExtraKey::Any,
            _ => ExtraKey::Sym(Symbol::from_u32(d.id(symbols, "symbol")?)),
        })
    }
}
