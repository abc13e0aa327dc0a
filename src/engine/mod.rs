//! The engine: the job registry in front, the compiled matcher ([`Compiled`]) behind.
//!
//! The reference semantics (`Reference`, in the tools crate) share none of this: they
//! implement the specification on their own, over the same syntax tree, so that the
//! differential tests can catch a mistake in either.

mod batch;
pub use batch::on_pool_thread;
mod catalog;
mod circuit;
mod clock;
mod compiled;
mod exact;
mod index;
mod prefetch;

use hashbrown::HashSet;

pub use compiled::{Compiled, Stats};

use crate::error::{Error, ErrorKind};
use crate::front::ids::CallbackId;
use std::sync::Arc;

use crate::front::model::{CallbackSpec, Cause, Event, Firing, JobSpec, RawFiring, RawTarget, Target};
use crate::front::plan::CallbackRef;
use crate::front::registry::{JobRecord, Limits, Registry, ResolvedEvent};
use crate::front::resolve::{ExtraKey, NameKey, Term};
use crate::front::CodeLevel;
use crate::syntax::{EventName, EventType};

/// How the matcher finds and fires callbacks: the interface between the registry and
/// [`Compiled`].
trait Matcher: Send {
    /// Registers callbacks (ids increasing) and fires those already true.
    fn register<'a>(
        &mut self,
        reg: &Registry,
        callbacks: impl Iterator<Item = CallbackRef<'a>>,
        facts: Option<&Facts>,
        out: &mut Vec<RawFiring>,
    );
    /// Processes one event.
    fn event(&mut self, reg: &Registry, ev: &ResolvedEvent, cause: Cause, out: &mut Vec<RawFiring>);
    /// Processes events in order, tagging each firing with its event's position. Gives
    /// exactly the firings of calling [`Matcher::event`] on each in turn.
    fn event_batch(&mut self, reg: &Registry, evs: &[ResolvedEvent], out: &mut Vec<RawBatchFiring>) {
        let mut firings = Vec::new();
        for (i, ev) in evs.iter().enumerate() {
            firings.clear();
            self.event(reg, ev, Cause::Event, &mut firings);
            out.extend(firings.iter().map(|&firing| RawBatchFiring { event: i, firing }));
        }
    }
    /// Counts the clock-atom ticks due up to `to`, stopping past `limit`.
    fn due_ticks(&mut self, to: u64, limit: u64) -> u64;
    /// Moves the clock to `to`, firing each due tick in order.
    fn advance(&mut self, reg: &Registry, to: u64, out: &mut Vec<RawFiring>);
    /// Drops a removed job's callbacks.
    fn remove(&mut self, record: &JobRecord);
    /// Bytes held, by structure.
    fn memory(&self) -> MemoryUsage;
}

/// Engine options. Each has a default that suits a Qube-compatible farm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Limits on triggers, subjobs and clock moves.
    pub limits: Limits,
    /// Keep the facts that have happened and initialise new latches from them, so a job
    /// submitted after its upstream finished is released at once (spec §3, extension).
    /// Default `false`: Qube's triggers are edge-triggered. Costs memory per fact.
    pub retroactive: bool,
}

/// An accepted submission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submission {
    /// The job ids, in submission order.
    pub ids: Vec<u64>,
    /// The process group of the first job.
    pub pgrp: u64,
}

/// A firing from [`Engine::process_batch`], with the position of its event in the batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchFiring {
    /// Index of the causing event in the batch.
    pub event: usize,
    /// The firing.
    pub firing: Firing,
}

/// A matcher's firing with the position of its event in a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RawBatchFiring {
    pub event: usize,
    pub firing: RawFiring,
}

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
    }
}

/// The facts kept for the `retroactive` option: (job, name, type, extra) that happened,
/// with `*` recorded beside every exact extra.
#[derive(Clone, Debug, Default)]
struct Facts {
    set: HashSet<(u64, NameKey, EventType, ExtraKey)>,
}

impl Facts {
    fn record(&mut self, ev: &ResolvedEvent) {
        let extra = match (ev.ty, ev.extra) {
            (EventType::Job, _) => ExtraKey::None,
            (_, x) => {
                self.set.insert((ev.job, ev.name, ev.ty, ExtraKey::Any));
                x.map_or(ExtraKey::Any, ExtraKey::Sym)
            }
        };
        self.set.insert((ev.job, ev.name, ev.ty, extra));
    }

    /// Whether a fact already satisfies `term`; a label means its current holder.
    pub fn satisfies(&self, term: &Term, reg: &Registry) -> bool {
        let job = match term.ctx {
            crate::front::resolve::Ctx::Job(id) => id,
            crate::front::resolve::Ctx::Label(g, l) => match reg.label_holder(g, l) {
                Some(id) => id,
                None => return false,
            },
        };
        let names: &[NameKey] = match term.name {
            NameKey::Builtin(EventName::Done) => &[
                NameKey::Builtin(EventName::Complete),
                NameKey::Builtin(EventName::Failed),
                NameKey::Builtin(EventName::Killed),
            ],
            _ => std::slice::from_ref(&term.name),
        };
        names.iter().any(|&n| self.set.contains(&(job, n, term.ty, term.extra)))
    }
}

/// The trigger engine: the job registry and the compiled matcher. `Reference`, in the
/// tools crate (`trigwire-tools`), is the independent, naive implementation of the same
/// specification.
///
/// # Example
/// ```
/// use trigwire::{CallbackSpec, Engine, Event, EventName, JobSpec, JobStatus};
/// let mut engine = Engine::default();
/// let mut firings = Vec::new();
/// let a = JobSpec { label: Some("ribgen".into()), ..JobSpec::default() };
/// let b = JobSpec {
///     status: JobStatus::Blocked,
///     callbacks: vec![CallbackSpec::qube("complete-job-ribgen", "unblock-self")],
///     ..JobSpec::default()
/// };
/// let sub = engine.submit(&[a, b], &mut firings)?;
/// assert_eq!(sub.ids, vec![1, 2]);
/// engine.process(&Event::job(EventName::Complete, 1), &mut firings)?;
/// assert_eq!(firings.len(), 1);
/// assert_eq!(firings[0].owner, Some(2));
/// assert_eq!(&*firings[0].action.code, "unblock-self");
/// # Ok::<(), trigwire::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Engine {
    reg: Registry,
    matcher: Compiled,
    facts: Option<Facts>,
    now: u64,
    /// Reused buffers of matcher firings, turned into [`Firing`]s before they leave.
    raw: Vec<RawFiring>,
    raw_batch: Vec<RawBatchFiring>,
}

impl Default for Engine {
    fn default() -> Engine {
        Engine::new(Config::default())
    }
}

impl Engine {
    /// A compiled engine with `config`.
    pub fn new(config: Config) -> Engine {
        let facts = config.retroactive.then(Facts::default);
        Engine {
            reg: Registry::new(config.limits),
            matcher: Compiled::default(),
            facts,
            now: 0,
            raw: Vec::new(),
            raw_batch: Vec::new(),
        }
    }

    /// Work counters: postings touched and circuits checked, for tests and benchmarks.
    pub fn stats(&self) -> Stats {
        self.matcher.stats()
    }

    /// Registers an event name beyond the built-in ones, for triggers and events alike.
    /// Names are compared ignoring ASCII case.
    ///
    /// # Errors
    /// A name that is built in, already registered, or holds anything but ASCII
    /// letters, digits and `_`.
    pub fn register_event_name(&mut self, name: &str) -> Result<(), Error> {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(Error::new(
                ErrorKind::BadEvent,
                format!("bad event name `{name}`; expected ASCII letters, digits and `_`"),
            ));
        }
        if !self.reg.custom.insert(name) {
            return Err(Error::new(ErrorKind::BadEvent, format!("event name `{name}` is already known")));
        }
        Ok(())
    }

    /// Submits jobs together (spec §1, §8): registers them and their callbacks, fires
    /// what registration makes true, then reports a `submit` job event for each job.
    ///
    /// # Errors
    /// Any bad job, label, trigger, code or dependency rejects the whole submission,
    /// and nothing of it is registered.
    ///
    /// # Performance
    /// Linear in the jobs' callbacks and atoms; allocates the job records and postings.
    pub fn submit(&mut self, jobs: &[JobSpec], out: &mut Vec<Firing>) -> Result<Submission, Error> {
        self.submit_each(
            |take| {
                jobs.iter().for_each(take);
                Ok(())
            },
            out,
        )
    }

    /// Submits jobs that `feed` hands over one at a time (calling `take` with each, in
    /// order), as [`Engine::submit`] does with a slice: a host decoding a large
    /// submission can plan each job and drop it, instead of holding every spec at once.
    /// Nothing is registered until `feed` has returned and the whole submission checks.
    ///
    /// # Errors
    /// The error `feed` returns (which wins over anything wrong with the jobs it handed
    /// over), or what [`Engine::submit`] rejects; nothing of the submission is
    /// registered then.
    ///
    /// # Performance
    /// Besides the engine's own structures, holds about 12 bytes per callback plus its
    /// resolved atoms (see `src/front/plan.rs`) until the submission is committed.
    pub fn submit_each(
        &mut self,
        feed: impl FnOnce(&mut dyn FnMut(&JobSpec)) -> Result<(), Error>,
        out: &mut Vec<Firing>,
    ) -> Result<Submission, Error> {
        let mut raw = std::mem::take(&mut self.raw);
        raw.clear();
        let result = self.submit_raw(feed, &mut raw);
        self.publish(&raw, out);
        self.raw = raw;
        result
    }

    fn submit_raw(
        &mut self,
        feed: impl FnOnce(&mut dyn FnMut(&JobSpec)) -> Result<(), Error>,
        out: &mut Vec<RawFiring>,
    ) -> Result<Submission, Error> {
        let mut planner = self.reg.planner();
        let reg = &mut self.reg;
        feed(&mut |job| reg.plan_job(&mut planner, job))?;
        let plan = self.reg.finish_plan(planner)?;
        self.reg.commit(&plan);
        self.matcher.register(&self.reg, plan.callbacks(), self.facts.as_ref(), out);
        let ids: Vec<u64> = plan.jobs.iter().map(|(id, _)| *id).collect();
        for &id in &ids {
            let event = Event::job(EventName::Submit, id);
            self.dispatch(&event, Cause::Submitted(id), out)?;
        }
        Ok(Submission { ids, pgrp: plan.pgrp })
    }

    /// Registers a global callback: no owner, so no `self`, `parent` or labels. Returns
    /// its id and its index among global callbacks.
    ///
    /// # Errors
    /// A bad trigger, code or context; nothing is registered then.
    pub fn add_global(&mut self, spec: &CallbackSpec, out: &mut Vec<Firing>) -> Result<(CallbackId, u32), Error> {
        let resolved = self.reg.global(spec)?;
        let mut raw = std::mem::take(&mut self.raw);
        raw.clear();
        self.matcher.register(&self.reg, std::iter::once(resolved.as_ref()), self.facts.as_ref(), &mut raw);
        self.publish(&raw, out);
        self.raw = raw;
        Ok((resolved.id, resolved.index))
    }

    /// Adds a universal callback, attached to every job submitted from now on, after
    /// the job's own and generated callbacks. A universal trigger that names `parent` is
    /// skipped for jobs without one.
    ///
    /// # Errors
    /// A bad trigger or code.
    pub fn add_universal(&mut self, spec: &CallbackSpec) -> Result<(), Error> {
        self.reg.add_universal(spec)
    }

    /// Processes one event: every callback with an atom it matches sets those latches,
    /// then fires once if its trigger is true and its count is under its maximum.
    ///
    /// # Errors
    /// An unknown or derived (`done`) event name; nothing changes then.
    ///
    /// # Performance
    /// At most eight index lookups, then one step per posting found. No allocation
    /// beyond growing `out`.
    pub fn process(&mut self, event: &Event, out: &mut Vec<Firing>) -> Result<(), Error> {
        let mut raw = std::mem::take(&mut self.raw);
        raw.clear();
        let result = self.dispatch(event, Cause::Event, &mut raw);
        self.publish(&raw, out);
        self.raw = raw;
        result
    }

    /// Processes a batch of events. The firings are exactly those of calling
    /// [`Engine::process`] on each event in turn, in the same order, whatever the batch
    /// size or thread count. Rejected events change nothing and are returned with their
    /// positions; the others are processed.
    ///
    /// # Performance
    /// The compiled engine looks keys up in parallel over events and updates latches in
    /// parallel over disjoint shards of callbacks (see `src/engine/batch.rs`). With a
    /// pool of more than one thread, a caller outside the pool hands a large batch to a
    /// pool thread and waits for it.
    pub fn process_batch(&mut self, events: &[Event], out: &mut Vec<BatchFiring>) -> Vec<(usize, Error)> {
        self.process_batch_of(events.iter(), out)
    }

    /// [`Engine::process_batch`] over borrowed events.
    pub(crate) fn process_batch_of<'e>(
        &mut self,
        events: impl ExactSizeIterator<Item = &'e Event> + Send,
        out: &mut Vec<BatchFiring>,
    ) -> Vec<(usize, Error)> {
        let mut raw = std::mem::take(&mut self.raw_batch);
        raw.clear();
        let rejected = batch::in_pool(events.len(), || self.process_batch_here(events, &mut raw));
        out.reserve(raw.len());
        out.extend(raw.iter().map(|r| BatchFiring { event: r.event, firing: self.published(&r.firing) }));
        self.raw_batch = raw;
        rejected
    }

    fn process_batch_here<'e>(
        &mut self,
        events: impl ExactSizeIterator<Item = &'e Event>,
        out: &mut Vec<RawBatchFiring>,
    ) -> Vec<(usize, Error)> {
        let mut rejected = Vec::new();
        let mut resolved = Vec::with_capacity(events.len());
        let mut positions = Vec::with_capacity(events.len());
        for (i, e) in events.enumerate() {
            match self.reg.resolve_event(e, self.facts.is_some()) {
                Ok(ev) => {
                    resolved.push(ev);
                    positions.push(i);
                }
                Err(err) => rejected.push((i, err)),
            }
        }
        let from = out.len();
        self.matcher.event_batch(&self.reg, &resolved, out);
        batch::fill_targets(&self.reg, &resolved, &mut out[from..]);
        for bf in &mut out[from..] {
            bf.event = positions[bf.event];
        }
        if let Some(facts) = &mut self.facts {
            resolved.iter().for_each(|ev| facts.record(ev));
        }
        rejected
    }

    fn dispatch(&mut self, event: &Event, cause: Cause, out: &mut Vec<RawFiring>) -> Result<(), Error> {
        let ev = self.reg.resolve_event(event, self.facts.is_some())?;
        let from = out.len();
        self.matcher.event(&self.reg, &ev, cause, out);
        for firing in &mut out[from..] {
            firing.target = target(&self.reg, firing, &ev);
        }
        if let Some(facts) = &mut self.facts {
            facts.record(&ev);
        }
        Ok(())
    }

    /// Moves the clock to Qube time `to`, firing every due tick in time order.
    ///
    /// # Errors
    /// A move back in time, or more ticks than [`Limits::ticks_per_move`]; nothing
    /// changes then.
    ///
    /// # Performance
    /// Proportional to the ticks due, not to the number of clock triggers.
    pub fn advance_clock(&mut self, to: u64, out: &mut Vec<Firing>) -> Result<(), Error> {
        let mut raw = std::mem::take(&mut self.raw);
        raw.clear();
        let result = self.advance_raw(to, &mut raw);
        self.publish(&raw, out);
        self.raw = raw;
        result
    }

    fn advance_raw(&mut self, to: u64, out: &mut Vec<RawFiring>) -> Result<(), Error> {
        if to < self.now {
            return Err(Error::new(
                ErrorKind::ClockBackwards,
                format!("the clock is at {} and cannot move back to {to}", self.now),
            ));
        }
        if to == self.now {
            return Ok(());
        }
        let limit = self.reg.limits.ticks_per_move;
        let due = self.matcher.due_ticks(to, limit);
        if due > limit {
            return Err(Error::new(
                ErrorKind::TooManyTicks { limit },
                format!("moving the clock to {to} would fire more than the limit of {limit} ticks"),
            ));
        }
        self.matcher.advance(&self.reg, to, out);
        self.now = to;
        Ok(())
    }

    /// Removes a live job: its callbacks and their memory go, its label is freed.
    ///
    /// # Errors
    /// A job that is not live.
    pub fn remove_job(&mut self, id: u64) -> Result<(), Error> {
        let record = self.reg.remove(id)?;
        self.matcher.remove(&record);
        Ok(())
    }

    /// Appends the published form of `raw` to `out`.
    fn publish(&self, raw: &[RawFiring], out: &mut Vec<Firing>) {
        out.reserve(raw.len());
        out.extend(raw.iter().map(|r| self.published(r)));
    }

    /// A matcher's firing with its action and target resolved to shared text.
    fn published(&self, raw: &RawFiring) -> Firing {
        let target = raw.target.map(|t| match t {
            RawTarget::Work(w) => Target::Work(Arc::clone(self.reg.symbols.shared(w))),
            RawTarget::Subjob(i) => Target::Subjob(i),
        });
        Firing {
            callback: raw.callback,
            owner: raw.owner,
            index: raw.index,
            action: Arc::clone(self.reg.action(raw.action)),
            target,
            cause: raw.cause,
        }
    }

    /// The current Qube time.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The label of a live job.
    pub fn label(&self, job: u64) -> Option<&str> {
        self.reg.jobs.get(&job).map(|r| self.reg.symbols.resolve(r.label))
    }

    /// How many jobs are live.
    pub fn live_jobs(&self) -> usize {
        self.reg.jobs.len()
    }

    /// Bytes held, by structure.
    pub fn memory_usage(&self) -> MemoryUsage {
        let jobs = self.reg.jobs.capacity() * (std::mem::size_of::<(u64, JobRecord)>() + 1)
            + self.reg.jobs.values().map(|r| r.agenda.heap_bytes()).sum::<usize>()
            + self.reg.groups.values().map(|g| g.capacity() * 13 + 48).sum::<usize>();
        let facts = self.facts.as_ref().map_or(0, |f| f.set.capacity() * 41);
        MemoryUsage { jobs, symbols: self.reg.symbols.heap_bytes(), facts, ..self.matcher.memory() }
    }
}

/// Compiles one trigger on its own, for `trigwire check`: the canonical form, the
/// compiled circuit and its latch slots (duplicate atoms share a slot). `self` and
/// `parent` are resolved against a stand-in owner that has a parent.
///
/// # Errors
/// The parse error, with its span.
pub fn explain(trigger: &str, limits: &Limits) -> Result<String, Error> {
    let mut reg = Registry::new(*limits);
    let expr = crate::syntax::parse(trigger, &limits.parse, &reg.custom).map_err(|e| Error::parse(e, "trigger"))?;
    let owner = crate::front::resolve::Owner { id: 1, pgrp: 1, pid: Some(2) };
    let (texts, shape) = crate::front::resolve::resolve_explained(&expr, Some(owner), trigger, &mut reg.symbols)?;
    let mut templates = circuit::Templates::default();
    let template = templates.intern(&shape, texts.len() as u32);
    let mut out = format!("canonical: {expr}\ncircuit: {}\n", templates.get(template).describe());
    for (i, t) in texts.iter().enumerate() {
        out.push_str(&format!("  bit{i}: {t}\n"));
    }
    Ok(out)
}

/// What a firing's qube code acts on (spec §8 "Targets").
fn target(reg: &Registry, firing: &RawFiring, ev: &ResolvedEvent) -> Option<RawTarget> {
    let owner = reg.jobs.get(&firing.owner?)?;
    match reg.action(firing.action).level? {
        CodeLevel::Work => ev.extra.filter(|&w| ev.ty == EventType::Work && owner.has_work(w)).map(RawTarget::Work),
        CodeLevel::Subjob => ev.subjob.filter(|&i| i < owner.subjobs).map(RawTarget::Subjob),
        _ => None,
    }
}
