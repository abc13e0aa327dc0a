//! The reference semantics: a deliberately naive matcher that re-checks every atom of
//! every callback on every event. It is the oracle of the differential tests and the
//! baseline the benchmarks report ratios against. It shares the registry (ids, labels,
//! actions, targets) with the compiled engine and nothing of its matching.

use crate::engine::{Config, Engine, Facts, Matcher, MemoryUsage};
use crate::front::model::{Cause, RawFiring};
use crate::front::registry::{term_matches, JobRecord, Registry, ResolvedEvent};
use crate::front::resolve::{Ctx, ExtraKey, Resolved, Slot, Term};
use crate::syntax::{EventType, Schedule};

/// The engine over the reference semantics.
pub type Reference = Engine<Naive>;

impl Engine<Naive> {
    /// A reference engine with `config`.
    pub fn reference(config: Config) -> Reference {
        Engine::with_matcher(config, Naive { retroactive: config.retroactive, ..Naive::default() })
    }
}

#[derive(Clone, Debug)]
struct NaiveCallback {
    resolved: Resolved,
    latch: Vec<bool>,
    /// The next pending tick of each clock slot.
    next: Vec<Option<u64>>,
    count: u64,
    alive: bool,
}

/// The naive matcher behind [`Reference`].
#[derive(Clone, Debug, Default)]
pub struct Naive {
    callbacks: Vec<NaiveCallback>,
    history: Vec<ResolvedEvent>,
    retroactive: bool,
    now: u64,
}

impl Naive {
    fn try_fire(&mut self, reg: &Registry, i: usize, cause: Cause, out: &mut Vec<RawFiring>) {
        let cb = &mut self.callbacks[i];
        let latch = &cb.latch;
        if !cb.resolved.shape.eval(&|s| latch[s as usize]) {
            return;
        }
        if reg.action(cb.resolved.action).maximum.is_some_and(|m| cb.count >= m) {
            return;
        }
        cb.count += 1;
        let r = &cb.resolved;
        out.push(RawFiring { callback: r.id, owner: r.owner, index: r.index, action: r.action, target: None, cause });
    }

    /// Whether a past event satisfies `term` now: a label means its current holder.
    fn happened(&self, term: &Term, reg: &Registry) -> bool {
        let job = match term.ctx {
            Ctx::Job(id) => Some(id),
            Ctx::Label(g, l) => reg.label_holder(g, l),
        };
        self.history.iter().any(|e| {
            Some(e.job) == job
                && e.names().any(|n| n == term.name)
                && e.ty == term.ty
                && match term.extra {
                    ExtraKey::Sym(s) => e.extra == Some(s),
                    ExtraKey::Any => e.ty != EventType::Job,
                    ExtraKey::None => true,
                }
        })
    }
}

impl Matcher for Naive {
    fn register<'a>(
        &mut self,
        reg: &Registry,
        callbacks: impl Iterator<Item = crate::front::plan::CallbackRef<'a>>,
        _facts: Option<&Facts>,
        out: &mut Vec<RawFiring>,
    ) {
        let mut preset = Vec::new();
        for r in callbacks {
            let r = &r.to_resolved();
            let mut cb = NaiveCallback {
                resolved: r.clone(),
                latch: vec![false; r.slots.len()],
                next: vec![None; r.slots.len()],
                count: 0,
                alive: true,
            };
            for (s, slot) in r.slots.iter().enumerate() {
                match slot {
                    Slot::Event(term) => cb.latch[s] = self.retroactive && self.happened(term, reg),
                    Slot::Clock(Schedule::At(t)) if *t <= self.now => cb.latch[s] = true,
                    Slot::Clock(Schedule::At(t)) => cb.next[s] = Some(*t),
                    Slot::Clock(Schedule::Every { start, every }) => {
                        cb.next[s] = crate::engine::first_tick_after(*start, *every, self.now);
                    }
                }
            }
            if cb.latch.iter().any(|&b| b) {
                preset.push(self.callbacks.len());
            }
            self.callbacks.push(cb);
        }
        for i in preset {
            self.try_fire(reg, i, Cause::Registration, out);
        }
    }

    fn event(&mut self, reg: &Registry, ev: &ResolvedEvent, cause: Cause, out: &mut Vec<RawFiring>) {
        for i in 0..self.callbacks.len() {
            let cb = &mut self.callbacks[i];
            if !cb.alive {
                continue;
            }
            let mut matched = false;
            for (s, slot) in cb.resolved.slots.iter().enumerate() {
                if matches!(slot, Slot::Event(t) if term_matches(t, ev)) {
                    cb.latch[s] = true;
                    matched = true;
                }
            }
            if matched {
                self.try_fire(reg, i, cause, out);
            }
        }
        if self.retroactive {
            self.history.push(*ev);
        }
    }

    fn due_ticks(&mut self, to: u64, _limit: u64) -> u64 {
        let mut n: u64 = 0;
        for cb in self.callbacks.iter().filter(|c| c.alive) {
            for (s, next) in cb.next.iter().enumerate() {
                let Some(t) = next.filter(|&t| t <= to) else { continue };
                n = n.saturating_add(match cb.resolved.slots[s] {
                    Slot::Clock(Schedule::Every { every, .. }) => ((to - t) / every).saturating_add(1),
                    _ => 1,
                });
            }
        }
        n
    }

    fn advance(&mut self, reg: &Registry, to: u64, out: &mut Vec<RawFiring>) {
        loop {
            let due = self
                .callbacks
                .iter()
                .filter(|c| c.alive)
                .flat_map(|c| c.next.iter().flatten().copied())
                .filter(|&t| t <= to)
                .min();
            let Some(t) = due else { break };
            for i in 0..self.callbacks.len() {
                let cb = &mut self.callbacks[i];
                if !cb.alive {
                    continue;
                }
                let mut hit = false;
                for s in 0..cb.next.len() {
                    if cb.next[s] != Some(t) {
                        continue;
                    }
                    cb.latch[s] = true;
                    hit = true;
                    cb.next[s] = match cb.resolved.slots[s] {
                        Slot::Clock(Schedule::Every { every, .. }) => t.checked_add(every),
                        _ => None,
                    };
                }
                if hit {
                    self.try_fire(reg, i, Cause::Tick(t), out);
                }
            }
        }
        self.now = to;
    }

    fn remove(&mut self, record: &JobRecord) {
        let first = record.first_callback;
        for cb in &mut self.callbacks {
            let id = cb.resolved.id.as_u32();
            if id >= first.as_u32() && id < first.as_u32() + record.callbacks {
                cb.alive = false;
            }
        }
    }

    fn memory(&self) -> MemoryUsage {
        MemoryUsage::default()
    }
}
