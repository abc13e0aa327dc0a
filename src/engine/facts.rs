//! The facts kept for the `retroactive` option, so that a callback registered after its
//! upstream finished starts with that atom's latch set.

use hashbrown::HashSet;

use super::snapshot::{Dec, Enc};
use crate::error::Error;
use crate::front::ids::Symbol;
use crate::front::registry::{Registry, ResolvedEvent};
use crate::front::resolve::{Ctx, ExtraKey, NameKey, Term};
use crate::syntax::EventType;

/// The (job, name, type, extra) of every event that has happened, under each term
/// extra it matches ([`ResolvedEvent::extras`]: `*` beside every exact extra).
#[derive(Clone, Debug, Default)]
pub(super) struct Facts {
    set: HashSet<(u64, NameKey, EventType, ExtraKey)>,
}

impl Facts {
    /// Keeps the facts of `ev`; returns its extra's symbol if a fact about it is new,
    /// for the caller to hold a reference on (facts are kept for good).
    pub fn record(&mut self, ev: &ResolvedEvent) -> Option<Symbol> {
        let mut new = None;
        for extra in ev.extras() {
            if self.set.insert((ev.job, ev.name, ev.ty, extra)) {
                if let ExtraKey::Sym(sym) = extra {
                    new = Some(sym);
                }
            }
        }
        new
    }

    /// Whether a fact already satisfies `term`, by the rule of [`ResolvedEvent`]'s
    /// `names` (through its inverse, [`ResolvedEvent::names_answering`]) and `extras`;
    /// a label means its current holder.
    pub fn satisfies(&self, term: &Term, reg: &Registry) -> bool {
        let job = match term.ctx {
            Ctx::Job(id) => id,
            Ctx::Label(g, l) => match reg.label_holder(g, l) {
                Some(id) => id,
                None => return false,
            },
            Ctx::Nobody => return false,
        };
        ResolvedEvent::names_answering(term.name).any(|n| self.set.contains(&(job, n, term.ty, term.extra)))
    }

    /// Calls `f` with the symbol of each fact about one (each holds a reference).
    pub fn symbols(&self, mut f: impl FnMut(Symbol)) {
        for (_, _, _, extra) in &self.set {
            if let ExtraKey::Sym(s) = extra {
                f(*s);
            }
        }
    }

    /// Bytes held, by capacity.
    pub fn heap_bytes(&self) -> usize {
        self.set.capacity() * 41
    }
}

// Snapshots (format: src/engine/snapshot.rs): the facts, sorted so that one state
// always writes the same bytes.
impl Facts {
    pub(crate) fn encode(&self, e: &mut Enc) {
        let mut facts: Vec<_> = self.set.iter().collect();
        facts.sort_unstable();
        e.len(facts.len());
        for (job, name, ty, extra) in facts {
            e.u64(*job);
            name.encode(e);
            e.u8(*ty as u8);
            extra.encode(e);
        }
    }

    pub(crate) fn decode(d: &mut Dec<'_>, symbols: usize) -> Result<Facts, Error> {
        let n = d.count(15)?;
        let mut set = HashSet::with_capacity(n);
        for _ in 0..n {
            let job = d.u64()?;
            let name = NameKey::decode(d, symbols)?;
            let ty = EventType::ALL[d.tag(4, "event type")? as usize];
            let extra = ExtraKey::decode(d, symbols)?;
            d.check(set.insert((job, name, ty, extra)), || "a fact is listed twice".into())?;
        }
        Ok(Facts { set })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::EventName;

    /// `names_answering` is the inverse of `names`: a term's name is among an event's
    /// names exactly when the event's name answers the term's.
    #[test]
    fn names_answering_inverts_names() {
        for own in EventName::ALL.into_iter().filter(|&n| n != EventName::Done) {
            let ev = ResolvedEvent {
                name: NameKey::Builtin(own),
                ty: EventType::Job,
                job: 1,
                extra: None,
                label: None,
                subjob: None,
            };
            for term in EventName::ALL.map(NameKey::Builtin) {
                let matched = ev.names().any(|n| n == term);
                let answers = ResolvedEvent::names_answering(term).any(|n| n == ev.name);
                assert_eq!(matched, answers, "event {own:?}, term {term:?}");
            }
        }
    }
}
