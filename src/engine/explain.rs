//! Explanations: [`Engine::explain`], a live job's callbacks with their atoms met or
//! not, and [`explain`], one trigger compiled on its own for `trigwire check`.
//!
//! A compiled callback keeps neither its trigger text nor its atoms (16 bytes of state,
//! see `callbacks.rs`), so an explanation rebuilds them: the shape from the template's
//! check, each event atom from the index key its posting sits under (the way back from
//! a latch bit to its atom), each clock atom from the matcher's side table of clock
//! atoms (kept only for callbacks that have one), and `self` from the owner's id.

use std::fmt;
use std::sync::Arc;

use super::circuit::Templates;
use super::Engine;
use crate::error::Error;
use crate::front::ids::CallbackId;
use crate::front::registry::{Action, Limits, Registry};
use crate::front::resolve::{resolve_explained, Ctx, ExtraKey, NameKey, Owner, Shape, Slot};
use crate::syntax::{AtomKind, Context, EventType, Extra, Name};

/// One trigger compiled on its own: what [`check`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    /// The canonical form.
    pub canonical: String,
    /// The text of each latch slot's atom, in slot order (duplicate atoms share a slot).
    pub atoms: Vec<String>,
    /// The compiled circuit, described.
    pub circuit: String,
}

/// Compiles one trigger on its own, for `trigwire check`: the canonical form, the
/// compiled circuit and its latch slots (duplicate atoms share a slot). `self` and
/// `parent` are resolved against a stand-in owner that has a parent.
///
/// # Errors
/// The parse error, with its span.
pub fn check(trigger: &str, limits: &Limits) -> Result<Checked, Error> {
    let mut reg = Registry::new(*limits);
    let expr = crate::syntax::parse(trigger, &limits.parse, &reg.custom).map_err(|e| Error::parse(e, "trigger"))?;
    let owner = Owner { id: 1, pgrp: 1, pid: Some(2) };
    let (atoms, shape) = resolve_explained(&expr, Some(owner), trigger, &mut reg.symbols)?;
    let mut templates = Templates::default();
    let template = templates.intern(&shape, atoms.len() as u32);
    Ok(Checked { canonical: expr.to_string(), atoms, circuit: templates.get(template).describe() })
}

/// [`check`] written for a person, as `trigwire check` prints it.
///
/// # Errors
/// The parse error, with its span.
pub fn explain(trigger: &str, limits: &Limits) -> Result<String, Error> {
    let checked = check(trigger, limits)?;
    let mut out = format!("canonical: {}\ncircuit: {}\n", checked.canonical, checked.circuit);
    for (i, t) in checked.atoms.iter().enumerate() {
        out.push_str(&format!("  bit{i}: {t}\n"));
    }
    Ok(out)
}

/// Why a job's callbacks are waiting (or what made them fire): what
/// [`Engine::explain`] returns, one entry per callback, in the job's order. `Display`
/// writes it for a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// The job.
    pub job: u64,
    /// Its live callbacks (those with an atom about the work item asked about, when one
    /// was), in the order of the job's list.
    pub callbacks: Vec<CallbackExplanation>,
}

/// One callback's state in an [`Explanation`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackExplanation {
    /// Its engine-wide id.
    pub id: CallbackId,
    /// Its position in its job's list (the `callback` of firing lines).
    pub index: u32,
    /// Its trigger in canonical form, rebuilt from the compiled callback: repeated
    /// atoms once, nested operators of one kind merged, the owner written `self`, any
    /// other job by id or label, clock atoms in their global form.
    pub trigger: String,
    /// Its action.
    pub action: Arc<Action>,
    /// How many times it has fired (Qube's `count`).
    pub fired: u32,
    /// How many times it may fire; `None` is unlimited.
    pub maximum: Option<u64>,
    /// Its distinct atoms, in the order they first appear, each with whether it is met.
    pub atoms: Vec<AtomState>,
    /// The circuit's gates with their values: the trigger's value now is `gate.value`.
    pub gate: Gate,
}

impl CallbackExplanation {
    /// Whether the trigger is true now and the count is under the maximum: the next
    /// event matching one of its atoms would fire it.
    pub fn armed(&self) -> bool {
        self.gate.value && self.maximum.map_or(true, |m| u64::from(self.fired) < m)
    }
}

/// One atom of a callback and whether its latch is set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AtomState {
    /// The atom in canonical form.
    pub atom: String,
    /// Whether it has been met.
    pub met: bool,
}

/// One gate of a callback's circuit: an atom, or an AND or OR of gates, with its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gate {
    /// What the gate is.
    pub kind: GateKind,
    /// Its value for the latches now.
    pub value: bool,
    /// Its inputs (none for an atom).
    pub children: Vec<Gate>,
}

/// The kind of a [`Gate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GateKind {
    /// The atom at this position of [`CallbackExplanation::atoms`].
    Atom(usize),
    /// True when every input is.
    And,
    /// True when any input is.
    Or,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "job {}: {} callback(s)", self.job, self.callbacks.len())?;
        for cb in &self.callbacks {
            let max = cb.maximum.map_or_else(|| "unlimited".to_string(), |m| m.to_string());
            let state = if cb.armed() {
                "true"
            } else if cb.gate.value {
                "true, at its maximum"
            } else {
                "waiting"
            };
            writeln!(f, "callback {} (id {}): {}", cb.index, cb.id.as_u32(), cb.trigger)?;
            writeln!(
                f,
                "  {} {:?}; fired {} of {max}; {state}",
                cb.action.language.as_str(),
                cb.action.code,
                cb.fired
            )?;
            write_gate(f, cb, &cb.gate, 2)?;
        }
        Ok(())
    }
}

fn write_gate(f: &mut fmt::Formatter<'_>, cb: &CallbackExplanation, gate: &Gate, depth: usize) -> fmt::Result {
    let mark = if gate.value { "[x]" } else { "[ ]" };
    let pad = " ".repeat(depth);
    match gate.kind {
        GateKind::Atom(i) => writeln!(f, "{pad}{mark} {}", cb.atoms[i].atom),
        GateKind::And | GateKind::Or => {
            let op = if gate.kind == GateKind::And { "all of" } else { "any of" };
            writeln!(f, "{pad}{mark} {op}")?;
            gate.children.iter().try_for_each(|g| write_gate(f, cb, g, depth + 2))
        }
    }
}

impl Engine {
    /// Explains a live job's callbacks: for each (or, given a work name, each with an
    /// event atom about that work item, named exactly), its canonical trigger, how many
    /// times it fired and may fire, each atom met or not, and the circuit's gates.
    ///
    /// # Errors
    /// A job that is not live.
    ///
    /// # Performance
    /// Nothing is kept for it: the atoms are rebuilt from the index's keys and the
    /// templates, one step per term of the index, so it suits a person's or a tool's
    /// question, not a hot loop.
    ///
    /// PERF: a farm of `jobs × 1000` two-atom frame callbacks (ten jobs per group, each
    /// frame waiting on two others), release build, shared 2-core machine: 12-14 ms per
    /// call at 1M callbacks, 85-89 ms at 10M, with or without a work name (the scan of
    /// the index is the cost; `cargo run --release -p trigwire-tools --example
    /// explain_cost -- 10000`). Keeping each callback's trigger text instead would cost
    /// about 50 bytes per callback of such a farm, beyond the 64-byte budget.
    pub fn explain(&self, job: u64, work: Option<&str>) -> Result<Explanation, Error> {
        let record = self.reg.live_job(job)?;
        let slots = self.matcher.slots_of(record.first_callback, record.callbacks);
        let work = work.map(|w| self.reg.symbols.get(w));
        let mut callbacks = Vec::new();
        for (k, slots) in slots.iter().enumerate() {
            let id = CallbackId::from_u32(record.first_callback.as_u32() + k as u32);
            let Some(view) = self.matcher.view(id) else { continue };
            if let Some(work) = work {
                let about = |s: &Option<Slot>| matches!(s, Some(Slot::Event(t)) if t.ty == EventType::Work && work.is_some_and(|w| t.extra == ExtraKey::Sym(w)));
                if !slots.iter().any(about) {
                    continue;
                }
            }
            let texts: Vec<String> = slots.iter().map(|s| self.atom_text(s.as_ref(), job)).collect();
            let met = |slot: u32| view.latch.get((slot / 64) as usize).is_some_and(|w| w >> (slot % 64) & 1 == 1);
            let shape = view.template.shape();
            let action = Arc::clone(self.reg.action(view.action));
            callbacks.push(CallbackExplanation {
                id,
                index: k as u32,
                trigger: shape_text(&shape, &texts, true),
                maximum: action.maximum,
                action,
                fired: view.count,
                atoms: (0..texts.len() as u32)
                    .map(|s| AtomState { atom: texts[s as usize].clone(), met: met(s) })
                    .collect(),
                gate: gate(&shape, &met),
            });
        }
        Ok(Explanation { job, callbacks })
    }

    /// The canonical text of a resolved atom, seen from its owner `job`.
    fn atom_text(&self, slot: Option<&Slot>, job: u64) -> String {
        let sym = |s| Box::<str>::from(self.reg.symbols.resolve(s));
        let atom = match slot {
            None => return "?".to_string(),
            Some(Slot::Clock(schedule)) => AtomKind::Clock { owner: None, schedule: *schedule },
            Some(Slot::Event(term)) => AtomKind::Event {
                name: match term.name {
                    NameKey::Builtin(n) => Name::Builtin(n),
                    NameKey::Custom(s) => Name::Custom(sym(s)),
                },
                ty: term.ty,
                context: match term.ctx {
                    Ctx::Job(id) if id == job => Context::SelfJob,
                    Ctx::Job(id) => Context::Id(id),
                    Ctx::Label(_, label) => Context::Label(sym(label)),
                    Ctx::Nobody => Context::Parent,
                },
                extra: match term.extra {
                    ExtraKey::None => Extra::None,
                    ExtraKey::Any => Extra::Any,
                    ExtraKey::Sym(s) => Extra::Name(sym(s)),
                },
            },
        };
        atom.to_string()
    }
}

/// The trigger text of `shape` over the atoms' `texts`; an OR inside an AND is
/// parenthesised, as the canonical printer does.
fn shape_text(shape: &Shape, texts: &[String], top: bool) -> String {
    match shape {
        Shape::Slot(s) => texts[*s as usize].clone(),
        Shape::And(xs) => xs.iter().map(|x| shape_text(x, texts, false)).collect::<Vec<_>>().join(" && "),
        Shape::Or(xs) => {
            let inner = xs.iter().map(|x| shape_text(x, texts, true)).collect::<Vec<_>>().join(" || ");
            if top {
                inner
            } else {
                format!("({inner})")
            }
        }
    }
}

fn gate(shape: &Shape, met: &dyn Fn(u32) -> bool) -> Gate {
    match shape {
        Shape::Slot(s) => Gate { kind: GateKind::Atom(*s as usize), value: met(*s), children: Vec::new() },
        Shape::And(xs) | Shape::Or(xs) => {
            let children: Vec<Gate> = xs.iter().map(|x| gate(x, met)).collect();
            let and = matches!(shape, Shape::And(_));
            let value = if and { children.iter().all(|g| g.value) } else { children.iter().any(|g| g.value) };
            Gate { kind: if and { GateKind::And } else { GateKind::Or }, value, children }
        }
    }
}
