//! Binding a trigger's atoms to terms: `self` and `parent` become job ids, a label
//! becomes (process group, label symbol), names and extras become symbols. Duplicate
//! atoms share one slot, and the tree over slots is flattened into a [`Shape`].

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

/// Resolves one trigger expression. `source` is the trigger text for error spans.
pub(crate) fn resolve(
    expr: &Expr,
    owner: Option<Owner>,
    source: &str,
    symbols: &mut Interner,
) -> Result<(Vec<Slot>, Shape), Error> {
    let mut r = Resolver { owner, source, symbols, slots: Vec::new(), texts: None };
    let shape = r.expr(expr)?;
    Ok((r.slots, shape))
}

/// Like [`resolve`], and also returns the canonical text of each slot's first atom.
pub(crate) fn resolve_explained(
    expr: &Expr,
    owner: Option<Owner>,
    source: &str,
    symbols: &mut Interner,
) -> Result<(Vec<String>, Shape), Error> {
    let mut r = Resolver { owner, source, symbols, slots: Vec::new(), texts: Some(Vec::new()) };
    let shape = r.expr(expr)?;
    Ok((r.texts.unwrap_or_default(), shape))
}

struct Resolver<'a> {
    owner: Option<Owner>,
    source: &'a str,
    symbols: &'a mut Interner,
    slots: Vec<Slot>,
    /// The atom text of each slot, when explaining.
    texts: Option<Vec<String>>,
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
            Expr::And(xs) => Ok(flatten(true, self.all(xs)?)),
            Expr::Or(xs) => Ok(flatten(false, self.all(xs)?)),
        }
    }

    fn all(&mut self, xs: &[Expr]) -> Result<Vec<Shape>, Error> {
        xs.iter().map(|x| self.expr(x)).collect()
    }

    fn slot_of(&mut self, slot: Slot) -> u32 {
        let at = self.slots.iter().position(|s| *s == slot).unwrap_or_else(|| {
            self.slots.push(slot);
            self.slots.len() - 1
        });
        at as u32
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
fn flatten(and: bool, mut children: Vec<Shape>) -> Shape {
    let same_op = |x: &Shape| matches!((x, and), (Shape::And(_), true) | (Shape::Or(_), false));
    let repeated = children.iter().enumerate().any(|(i, x)| children[..i].contains(x));
    if children.iter().any(same_op) || repeated {
        let mut out: Vec<Shape> = Vec::with_capacity(children.len());
        for child in children {
            match child {
                Shape::And(xs) if and => push_unique(&mut out, xs),
                Shape::Or(xs) if !and => push_unique(&mut out, xs),
                other => push_unique(&mut out, vec![other]),
            }
        }
        children = out;
    }
    match (children.len(), and) {
        (1, _) => children.pop().unwrap_or(Shape::And(Vec::new())),
        (_, true) => Shape::And(children),
        (_, false) => Shape::Or(children),
    }
}

fn push_unique(out: &mut Vec<Shape>, xs: Vec<Shape>) {
    for x in xs {
        if !out.contains(&x) {
            out.push(x);
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
