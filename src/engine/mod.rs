//! The engine: the job registry in front, the compiled matcher ([`Compiled`]) behind.
//!
//! The reference semantics (`Reference`, in the tools crate) share none of this: they
//! implement the specification on their own, over the same syntax tree, so that the
//! differential tests can catch a mistake in either.
//!
//! # Design note: state and scratch
//!
//! An [`Engine`] holds two kinds of things, kept apart as regex-automata keeps a
//! `Regex` apart from its `Cache`:
//!
//! - **State**, what the answers depend on and what a snapshot must save: the registry
//!   (jobs, labels, actions, symbols, universal callbacks), the clock, the kept facts
//!   (`facts.rs`) and the compiled matcher ([`Compiled`], `compiled.rs`): the catalog
//!   of templates, kinds and owner runs (`catalog.rs`, `circuit.rs`), the callback
//!   states, wide latches and `on-rise` items (`callbacks.rs`), the term index
//!   (`index.rs`, `exact.rs`), the timers filed by owner job (`clock.rs`) and the count
//!   of postings awaiting a sweep; and the options that decide answers: `refire`,
//!   `catch_up` and the limits (`Limits::ticks_per_move`, `Limits::facts`). Part of
//!   that state is bookkeeping for memory that follows live jobs: reference counts of
//!   symbols, actions and kinds with their free lists, each job's symbol runs, the live
//!   global callbacks' symbols, the dead owner runs and the sweep's cursor.
//! - **Scratch** (`scratch.rs`), buffers and hints that are only reused for speed: one
//!   event's postings, the batch buffers, the owner-run hint, the firing buffers. The
//!   engine owns one [`scratch::Scratch`] beside its state and passes it by `&mut` to
//!   the matcher calls that use it. It can be dropped and rebuilt at any time without
//!   changing an answer, so a snapshot leaves it out and cloning an engine gives the
//!   clone a fresh one instead of copying buffers.
//!
//! [`Stats`] are neither: counters of work done, kept in [`Compiled`] where the work is
//! counted; a clone keeps them, a snapshot would not.
//!
//! Files: `compiled.rs` is the matcher's entry points; `callbacks.rs` holds the one
//! loop that sets latches, checks circuits and fires, used by every path;
//! `batch.rs` runs it over batches, in the calling thread or in parallel shards;
//! `postings.rs` is the posting type that the index, the timers and the loop share. The
//! rule of which terms an event matches is `ResolvedEvent`'s (src/front/registry.rs),
//! used by the index and by the kept facts alike.

mod batch;
pub use batch::on_pool_thread;
mod callbacks;
mod catalog;
mod circuit;
mod clock;
mod compiled;
mod exact;
mod explain;
mod facts;
mod index;
mod memory;
mod metrics;
mod operate;
mod postings;
mod prefetch;
mod scratch;
pub(crate) mod snapshot;

pub use compiled::{Compiled, Stats};
pub use explain::{check, explain, AtomState, CallbackExplanation, Checked, Explanation, Gate, GateKind};
pub use memory::MemoryUsage;
pub(crate) use metrics::Counters;
pub use metrics::{Metrics, COMMAND_KINDS};
pub use operate::{CallbackInfo, JobInfo};

use crate::error::{Error, ErrorKind};
use crate::front::ids::CallbackId;
use std::sync::Arc;

use batch::RawBatchFiring;
use facts::Facts;
use scratch::Scratch;

use crate::front::model::{CallbackSpec, Cause, Event, Firing, JobSpec, RawFiring, RawTarget, Target};
use crate::front::plan::Plan;
use crate::front::registry::{JobRecord, Limits, Registry, ResolvedEvent};
use crate::front::resolve::Resolved;
use crate::front::CodeLevel;
use crate::front::Warning;
use crate::syntax::{EventName, EventType};

/// Engine options. Each has a default that suits a Qube-compatible farm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Limits on triggers, subjobs and clock moves.
    pub limits: Limits,
    /// Keep the facts that have happened and initialise new latches from them, so a job
    /// submitted after its upstream finished is released at once (spec §3, extension).
    /// Default `false`: Qube's triggers are edge-triggered. Costs memory per fact.
    pub retroactive: bool,
    /// The Qube time the clock starts at (spec §9). Default 0. A farm that keeps the
    /// real time starts here, so that the first clock move to the current time does not
    /// count every repeat tick since 2000 (which [`Limits::ticks_per_move`] rejects).
    pub start_time: u64,
    /// Whether a callback whose trigger is already true fires again on later matching
    /// events (spec §9, "Re-firing"). Default [`Refire::EachMatch`], as Qube does.
    pub refire: Refire,
    /// How a clock move catches up on the repeat ticks it passes (spec §9, "Time").
    /// Default [`CatchUp::All`].
    pub catch_up: CatchUp,
}

/// The re-firing policy (spec §9): what a callback does on an event that matches one of
/// its atoms while its trigger is already true.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Refire {
    /// Qube's rule (spec §3): fire again on every matching event, up to the maximum. A
    /// retried frame re-runs its unblock; an OR fires again when its other branch is met.
    #[default]
    EachMatch,
    /// Fire only when the trigger goes from false to true; since latches are never
    /// cleared, that is once. But an atom whose extra is `*` still fires once per
    /// distinct item it matches (work name, instance or host, of the event's job): a
    /// fired callback fires again for an event matching one of its `*` atoms with an
    /// item that has not yet caused a firing of it through that atom. A retried frame
    /// does not re-fire. The items that caused firings are kept per callback, until the
    /// callback is removed; event extras are interned (as with `retroactive`) so that
    /// every item has a name.
    OnRise,
}

/// Repeat catch-up (spec §9): what a clock move does with the repeat ticks it passes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CatchUp {
    /// Every tick passed fires, in time order (spec §5); a move may fire at most
    /// [`Limits::ticks_per_move`] ticks beyond the first of each repeat atom.
    #[default]
    All,
    /// Each repeat atom due fires once per move, at its last tick up to the new time;
    /// the ticks before it are skipped. A move then never exceeds the tick limit.
    Once,
}

/// An accepted submission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submission {
    /// The job ids, in submission order.
    pub ids: Vec<u64>,
    /// The process group of the first job.
    pub pgrp: u64,
    /// What the submission is warned about (see [`Warning`]); it was accepted all the
    /// same.
    pub warnings: Vec<Warning>,
}

/// A firing from [`Engine::process_batch`], with the position of its event in the batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchFiring {
    /// Index of the causing event in the batch.
    pub event: usize,
    /// The firing.
    pub firing: Firing,
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
#[derive(Debug)]
pub struct Engine {
    // State: what a snapshot saves (see the module docs).
    reg: Registry,
    matcher: Compiled,
    facts: Option<Facts>,
    now: u64,
    refire: Refire,
    catch_up: CatchUp,
    // Scratch: reused buffers only.
    scratch: Scratch,
    // Counters (`metrics.rs`): neither state nor scratch, like `Stats`.
    pub(crate) counters: Counters,
}

/// A clone has the same state and fresh scratch.
impl Clone for Engine {
    fn clone(&self) -> Engine {
        Engine {
            reg: self.reg.clone(),
            matcher: self.matcher.clone(),
            facts: self.facts.clone(),
            now: self.now,
            refire: self.refire,
            catch_up: self.catch_up,
            scratch: Scratch::default(),
            counters: self.counters.clone(),
        }
    }
}

impl Default for Engine {
    fn default() -> Engine {
        Engine::new(Config::default())
    }
}

impl Engine {
    /// A compiled engine with `config`.
    pub fn new(config: Config) -> Engine {
        let facts = config.retroactive.then(|| Facts::new(config.limits.facts));
        Engine {
            reg: Registry::new(config.limits),
            matcher: Compiled::starting_at(config.start_time, config.refire == Refire::OnRise),
            facts,
            now: config.start_time,
            refire: config.refire,
            catch_up: config.catch_up,
            scratch: Scratch::default(),
            counters: Counters::default(),
        }
    }

    /// Work counters: postings touched and circuits checked, for tests and benchmarks.
    pub fn stats(&self) -> Stats {
        Stats { plan_steps: self.reg.plan_steps, ..self.matcher.stats() }
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
        // Custom names are interned in their registered (lowercase) spelling, for good.
        let sym = self.reg.symbols.intern(&name.to_ascii_lowercase());
        self.reg.symbols.retain(sym);
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
        let (plan, submission) = self.accept_submission(feed)?;
        self.fire_submission(&plan, &mut |f| out.push(f))?;
        Ok(submission)
    }

    /// Plans a submission and commits it: the part of [`Engine::submit_each`] that can
    /// reject it. A rejected one leaves nothing behind, and an accepted one is
    /// registered but has not fired yet ([`Engine::fire_submission`]).
    pub(crate) fn accept_submission(
        &mut self,
        feed: impl FnOnce(&mut dyn FnMut(&JobSpec)) -> Result<(), Error>,
    ) -> Result<(Plan, Submission), Error> {
        let mut planner = self.reg.planner();
        let reg = &mut self.reg;
        let planned = feed(&mut |job| reg.plan_job(&mut planner, job)).and_then(|()| self.reg.finish_plan(planner));
        let plan = match planned {
            Ok(plan) => plan,
            Err(e) => {
                // What a rejected submission interned is freed (see `src/front/intern.rs`).
                self.reg.settle();
                return Err(e);
            }
        };
        self.reg.commit(&plan);
        let warnings = crate::front::warnings::warnings(&self.reg, &plan);
        let ids: Vec<u64> = plan.jobs.iter().map(|(id, _)| *id).collect();
        let submission = Submission { ids, pgrp: plan.pgrp, warnings };
        Ok((plan, submission))
    }

    /// Compiles an accepted submission's callbacks, firing what registration makes
    /// true, then reports each job's `submit` event, handing each firing to `out` as
    /// it comes.
    pub(crate) fn fire_submission(
        &mut self,
        plan: &Plan,
        out: &mut (impl FnMut(Firing) + ?Sized),
    ) -> Result<(), Error> {
        let result = self.publishing(out, |engine, emit| {
            engine.matcher.register(&engine.reg, plan.callbacks(), engine.facts.as_ref(), &mut engine.scratch, emit);
            for &(id, _) in &plan.jobs {
                let event = Event::job(EventName::Submit, id);
                engine.dispatch(&event, Cause::Submitted(id), emit)?;
            }
            Ok(())
        });
        self.reg.settle();
        result
    }

    /// Registers a global callback: no owner, so no `self`, `parent` or labels. Returns
    /// its id and its index among global callbacks.
    ///
    /// # Errors
    /// A bad trigger, code or context; nothing is registered then.
    pub fn add_global(&mut self, spec: &CallbackSpec, out: &mut Vec<Firing>) -> Result<(CallbackId, u32), Error> {
        let resolved = self.accept_global(spec)?;
        self.fire_global(&resolved, &mut |f| out.push(f));
        Ok((resolved.id, resolved.index))
    }

    /// Resolves a global callback and takes its references: the part of
    /// [`Engine::add_global`] that can reject it.
    pub(crate) fn accept_global(&mut self, spec: &CallbackSpec) -> Result<Resolved, Error> {
        let resolved = match self.reg.global(spec) {
            Ok(resolved) => resolved,
            Err(e) => {
                self.reg.settle();
                return Err(e);
            }
        };
        // A global callback holds its action and symbols while it is live.
        self.reg.retain_action(resolved.action);
        let mut symbols = Vec::new();
        crate::front::registry::slot_symbols(&resolved.slots, &mut symbols);
        let symbols = crate::front::registry::SymbolRuns::new(symbols);
        self.reg.retain_symbols(&symbols);
        self.reg.globals_live.insert(resolved.id, symbols);
        self.reg.settle();
        Ok(resolved)
    }

    /// Compiles an accepted global callback, firing it if registration makes it true.
    pub(crate) fn fire_global(&mut self, resolved: &Resolved, out: &mut (impl FnMut(Firing) + ?Sized)) {
        self.publishing(out, |engine, emit| {
            let callback = std::iter::once(resolved.as_ref());
            engine.matcher.register(&engine.reg, callback, engine.facts.as_ref(), &mut engine.scratch, emit);
        });
    }

    /// Adds a universal callback, attached to every job submitted from now on, after
    /// the job's own and generated callbacks. A universal trigger that names `parent` is
    /// skipped for jobs without one.
    ///
    /// # Errors
    /// A bad trigger or code.
    pub fn add_universal(&mut self, spec: &CallbackSpec) -> Result<(), Error> {
        let result = self.reg.add_universal(spec);
        self.reg.settle();
        result
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
        self.process_to(event, &mut |f| out.push(f))
    }

    /// [`Engine::process`], handing each firing to `out` as the matcher finds it.
    pub(crate) fn process_to(&mut self, event: &Event, out: &mut (impl FnMut(Firing) + ?Sized)) -> Result<(), Error> {
        self.publishing(out, |engine, emit| engine.dispatch(event, Cause::Event, emit))?;
        self.counters.count_events(1);
        Ok(())
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
        let mut rejected = Vec::new();
        self.process_batch_to(events.iter(), &mut |event, outcome| match outcome {
            Ok(firing) => out.push(BatchFiring { event, firing }),
            Err(e) => rejected.push((event, e)),
        });
        rejected
    }

    /// [`Engine::process_batch`] over borrowed events, handing `out` each event's
    /// rejection or firings in event order, each with the event's position. The
    /// batch's matcher firings are gathered first (the batch is matched in parallel
    /// shards; see `batch.rs`), but each is published only as it is handed over.
    pub(crate) fn process_batch_to<'e>(
        &mut self,
        events: impl ExactSizeIterator<Item = &'e Event> + Send,
        out: &mut impl FnMut(usize, Result<Firing, Error>),
    ) {
        let mut raw = std::mem::take(&mut self.scratch.raw_batch);
        raw.clear();
        let len = events.len();
        let rejected = batch::in_pool(len, || self.process_batch_here(events, &mut raw));
        self.counters.count_events((len - rejected.len()) as u64);
        self.counters.count_firings(raw.len() as u64);
        // A rejected event has no firings: its rejection goes where they would be.
        let mut from = 0;
        for (event, e) in rejected {
            let to = from + raw[from..].partition_point(|r| r.event < event);
            raw[from..to].iter().for_each(|r| out(r.event, Ok(published(&self.reg, &r.firing))));
            out(event, Err(e));
            from = to;
        }
        raw[from..].iter().for_each(|r| out(r.event, Ok(published(&self.reg, &r.firing))));
        self.scratch.raw_batch = raw;
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
            match self.reg.resolve_event(e, self.interns_extras()) {
                Ok(ev) => {
                    resolved.push(ev);
                    positions.push(i);
                }
                Err(err) => rejected.push((i, err)),
            }
        }
        let from = out.len();
        self.matcher.event_batch(&self.reg, &resolved, &mut self.scratch, out);
        let reg = &self.reg;
        batch::fill_targets(&mut out[from..], |bf| bf.firing.target = target(reg, &bf.firing, &resolved[bf.event]));
        for bf in &mut out[from..] {
            bf.event = positions[bf.event];
        }
        if let Some(facts) = &mut self.facts {
            // Every event's extra is held until all are recorded: recording one may evict
            // the last fact about another's, which would free a symbol still to come.
            let extras = || resolved.iter().filter_map(|ev| ev.extra);
            extras().for_each(|sym| self.reg.symbols.retain(sym));
            for ev in &resolved {
                facts.record(ev, &mut hold_fact(&mut self.reg));
            }
            extras().for_each(|sym| self.reg.symbols.release(sym));
        }
        if self.interns_extras() {
            // Extras interned for the events and held by nothing go now.
            self.reg.settle();
        }
        rejected
    }

    /// Whether events intern their extras: kept facts and `on-rise` items name every
    /// item, including ones no trigger named yet.
    fn interns_extras(&self) -> bool {
        self.facts.is_some() || self.refire == Refire::OnRise
    }

    fn dispatch(&mut self, event: &Event, cause: Cause, out: &mut impl Emit) -> Result<(), Error> {
        let ev = self.reg.resolve_event(event, self.interns_extras())?;
        self.matcher.event(&self.reg, &ev, cause, &mut self.scratch, &mut |reg: &Registry, mut firing: RawFiring| {
            firing.target = target(reg, &firing, &ev);
            out.emit(reg, firing);
        });
        if let Some(facts) = &mut self.facts {
            facts.record(&ev, &mut hold_fact(&mut self.reg));
        }
        if self.interns_extras() {
            // Extras interned for the event and held by nothing go now.
            self.reg.settle();
        }
        Ok(())
    }

    /// Moves the clock to Qube time `to`, firing every due tick in time order.
    ///
    /// # Errors
    /// A move back in time, or (with [`CatchUp::All`]) one whose repeat atoms would fire
    /// more than [`Limits::ticks_per_move`] ticks beyond the first tick of each, counting
    /// only callbacks that can still fire (not removed, under their maximum); nothing
    /// changes then. One-shot atoms and each repeat's
    /// first tick are not counted, so a move of one second always passes and the clock
    /// can always advance (see `src/engine/clock.rs`).
    ///
    /// # Performance
    /// Proportional to the ticks due, not to the number of clock triggers.
    pub fn advance_clock(&mut self, to: u64, out: &mut Vec<Firing>) -> Result<(), Error> {
        self.advance_clock_to(to, &mut |f| out.push(f))
    }

    /// [`Engine::advance_clock`], handing each firing to `out` as the matcher finds it.
    pub(crate) fn advance_clock_to(&mut self, to: u64, out: &mut (impl FnMut(Firing) + ?Sized)) -> Result<(), Error> {
        self.publishing(out, |engine, emit| engine.advance_raw(to, emit))
    }

    fn advance_raw(&mut self, to: u64, out: &mut impl Emit) -> Result<(), Error> {
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
        let once = self.catch_up == CatchUp::Once;
        // Only catch-up counts (see `clock.rs`): a move of one second always passes.
        if !once && self.matcher.catch_up_ticks(&self.reg, to, limit) > limit {
            return Err(Error::new(
                ErrorKind::TooManyTicks { limit },
                format!(
                    "moving the clock from {} to {to} would fire more than the limit of {limit} repeat ticks \
                     beyond the first of each repeat; a shorter move passes (one second always does)",
                    self.now
                ),
            ));
        }
        self.matcher.advance(&self.reg, to, once, &mut self.scratch, out);
        self.now = to;
        Ok(())
    }

    /// Removes a live job (spec §9): first its `removed` job event is delivered (so
    /// `removed-job-self` and `removed-job-LABEL` fire, caused by [`Cause::Removed`]),
    /// unless the host already reported that event while the job was live; then its
    /// callbacks and their memory go and its label is freed.
    ///
    /// # Errors
    /// A job that is not live; nothing changes then.
    pub fn remove_job(&mut self, id: u64, out: &mut Vec<Firing>) -> Result<(), Error> {
        self.remove_job_to(id, &mut |f| out.push(f))
    }

    /// [`Engine::remove_job`], handing each firing to `out` as the matcher finds it.
    pub(crate) fn remove_job_to(&mut self, id: u64, out: &mut (impl FnMut(Firing) + ?Sized)) -> Result<(), Error> {
        if !self.reg.live_job(id)?.removed_reported {
            let removed = Event::job(EventName::Removed, id);
            self.publishing(out, |engine, emit| engine.dispatch(&removed, Cause::Removed(id), emit))?;
        }
        let record = self.reg.remove(id)?;
        let reg = &mut self.reg;
        self.matcher.remove(id, &record, |action| reg.release_action(action));
        // Retention of kept facts: a removed job's go with it (see `facts.rs`).
        if let Some(facts) = &mut self.facts {
            facts.forget_job(id, |sym| reg.symbols.release(sym));
        }
        self.reg.settle();
        Ok(())
    }

    /// Removes a live callback by id: a global callback, or one of a live job's (the
    /// job keeps the positions of its other callbacks). Nothing fires; the callback's
    /// latches, count and postings go, and a global callback's symbols and action are
    /// freed once nothing else uses them.
    ///
    /// # Errors
    /// An id that names no live callback (never registered, or already removed, or
    /// gone with its job); nothing changes then.
    pub fn remove_callback(&mut self, id: CallbackId) -> Result<(), Error> {
        if !self.matcher.is_live(id) {
            return Err(Error::new(ErrorKind::UnknownCallback, format!("callback {} is not live", id.as_u32())));
        }
        let reg = &mut self.reg;
        self.matcher.remove_callback(id, |action| reg.release_action(action));
        if let Some(symbols) = self.reg.globals_live.remove(&id) {
            self.reg.release_symbols(&symbols);
        }
        self.reg.settle();
        Ok(())
    }

    /// Runs `run` with an [`Emit`] that publishes the matcher's firings and hands them
    /// to `out`, a chunk of [`PUBLISH_CHUNK`] at a time: the one way a public method
    /// turns the matchers' firings into [`Firing`]s. One command's fan-out costs the
    /// engine one chunk, however many firings it has; what `out` keeps is its own.
    fn publishing<F: FnMut(Firing) + ?Sized, R>(
        &mut self,
        out: &mut F,
        run: impl FnOnce(&mut Engine, &mut Publish<'_, F>) -> R,
    ) -> R {
        let mut chunk = std::mem::take(&mut self.scratch.raw);
        chunk.clear();
        let mut publish = Publish { out, chunk, fired: 0 };
        let result = run(self, &mut publish);
        publish.flush(&self.reg);
        self.counters.count_firings(publish.fired);
        self.scratch.raw = publish.chunk;
        result
    }

    /// The limits the engine was configured with.
    pub fn limits(&self) -> &Limits {
        &self.reg.limits
    }

    /// The current Qube time.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The label of a live job, in ASCII lowercase: labels compare ignoring case, and
    /// that is the form they are kept in.
    pub fn label(&self, job: u64) -> Option<&str> {
        self.reg.jobs.get(&job).map(|r| self.reg.symbols.resolve(r.label))
    }

    /// Clock atoms pending (one-shot atoms not yet due and repeats): a removed job's go
    /// with it.
    pub fn pending_timers(&self) -> usize {
        self.matcher.pending_timers()
    }

    /// With `retroactive`: how many facts are kept, and how many the cap
    /// ([`Limits::facts`]) has evicted so far, oldest first. `None` without it.
    pub fn kept_facts(&self) -> Option<(usize, u64)> {
        self.facts.as_ref().map(|f| (f.len(), f.evicted()))
    }

    /// How many jobs are live.
    pub fn live_jobs(&self) -> usize {
        self.reg.jobs.len()
    }

    /// The counters a scheduler exports: commands by kind, events, firings,
    /// rejections, live jobs, live callbacks waiting and fired, and memory by structure.
    /// [`Metrics::prometheus`] writes them in the Prometheus text format.
    ///
    /// # Performance
    /// Reads every callback's state once (to count those that fired).
    pub fn metrics(&self) -> Metrics {
        let (waiting, fired) = self.matcher.callbacks_by_count();
        Metrics {
            jobs: self.reg.jobs.len() as u64,
            callbacks_waiting: waiting,
            callbacks_fired: fired,
            memory: self.memory_usage(),
            ..Metrics::from_counters(&self.counters)
        }
    }

    /// Bytes held, by structure.
    pub fn memory_usage(&self) -> MemoryUsage {
        let jobs = self.reg.jobs.capacity() * (std::mem::size_of::<(u64, JobRecord)>() + 1)
            + self.reg.jobs.values().map(|r| r.agenda.heap_bytes() + r.symbols.heap_bytes()).sum::<usize>()
            + self.reg.group_bytes();
        let (actions, globals) = self.reg.table_bytes();
        let facts = self.facts.as_ref().map_or(0, Facts::heap_bytes);
        let matcher = self.matcher.memory();
        // The posting buffers of events and batches are counted with the postings.
        let index_tables = matcher.index_tables + self.scratch.posting_bytes();
        let actions = actions + globals;
        MemoryUsage { jobs, symbols: self.reg.symbols.heap_bytes(), facts, index_tables, actions, ..matcher }
    }
}

/// # Snapshots
///
/// The whole state of an engine, written to any [`std::io::Write`] and read back from
/// any [`std::io::Read`]: a restored engine answers every later input exactly as the
/// saved one would (same firings in the same order, same ids, same errors). Work
/// counters ([`Engine::stats`]) are not state and start from zero. The format and its
/// checks are described in `src/engine/snapshot.rs` and the README.
impl Engine {
    /// Writes the engine's whole state to `w`.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] if writing fails; what was written is then not a snapshot.
    ///
    /// # Performance
    /// Linear in the state; buffers one section (at most the callback states or the
    /// postings) before writing it.
    pub fn save(&self, w: impl std::io::Write) -> Result<(), Error> {
        self.write_snapshot(w).map(drop)
    }

    fn write_snapshot<W: std::io::Write>(&self, w: W) -> Result<W, Error> {
        let mut w = snapshot::Writer::new(w)?;
        w.section(*b"CONF", |e| {
            e.u64(self.now);
            e.bool(self.facts.is_some());
            e.bool(self.refire == Refire::OnRise);
            e.bool(self.catch_up == CatchUp::Once);
            self.reg.limits.encode(e);
        })?;
        w.section(*b"SYMS", |e| self.reg.symbols.encode(e))?;
        w.section(*b"REGI", |e| self.reg.encode(e))?;
        self.matcher.save(&mut w)?;
        w.section(*b"FACT", |e| {
            if let Some(facts) = &self.facts {
                facts.encode(e);
            }
        })?;
        w.section(*b"MTRC", |e| self.counters.encode(e))?;
        w.finish()
    }

    /// Reads an engine written by [`Engine::save`].
    ///
    /// # Errors
    /// [`ErrorKind::Snapshot`], with the byte offset of the fault, for input that is
    /// truncated, damaged (a section's checksum does not match), not a snapshot, of a
    /// newer format version, or that describes a state no engine can be in (an id past
    /// its table, overlapping posting runs, and the like: a crafted file can have valid
    /// checksums); [`ErrorKind::Io`] if reading fails. Nothing is built then.
    ///
    /// # Performance
    /// Linear in the input; allocates no more than the input's size justifies.
    pub fn restore(r: impl std::io::Read) -> Result<Engine, Error> {
        let mut r = snapshot::Reader::new(r)?;
        let (now, retroactive, refire, catch_up, limits) = r.section(*b"CONF", |d| {
            let (now, retroactive) = (d.u64()?, d.bool()?);
            let refire = if d.bool()? { Refire::OnRise } else { Refire::EachMatch };
            let catch_up = if d.bool()? { CatchUp::Once } else { CatchUp::All };
            Ok((now, retroactive, refire, catch_up, Limits::decode(d)?))
        })?;
        let counts_at = r.offset();
        let symbols = r.section(*b"SYMS", crate::front::intern::Interner::decode)?;
        let reg = r.section(*b"REGI", |d| Registry::decode(d, limits, symbols))?;
        let matcher = Compiled::restore(&mut r, &reg, now, refire == Refire::OnRise)?;
        let symbols = reg.symbols.len();
        let facts = r.section(*b"FACT", |d| match retroactive {
            true => Facts::decode(d, symbols, reg.limits.facts).map(Some),
            false => Ok(None),
        })?;
        let counters = r.section(*b"MTRC", metrics::Counters::decode)?;
        r.finish()?;
        check_references(&reg, &matcher, facts.as_ref()).map_err(|what| snapshot::snapshot_error(counts_at, what))?;
        Ok(Engine { reg, matcher, facts, now, scratch: Scratch::default(), counters, refire, catch_up })
    }

    /// Saves to `path` atomically: writes a temporary file in the same directory,
    /// flushes it to disk, renames it over `path` and flushes the directory, so that
    /// after a crash at any moment `path` holds either the old state or the new one.
    ///
    /// # Errors
    /// [`ErrorKind::Io`], naming the path; `path` is unchanged then.
    pub fn save_to_path(&self, path: impl AsRef<std::path::Path>) -> Result<(), Error> {
        let path = path.as_ref();
        let io = |doing: &str, e: std::io::Error| Error::new(ErrorKind::Io, format!("{doing} {}: {e}", path.display()));
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        let name = path.file_name().ok_or_else(|| io("saving to", std::io::ErrorKind::InvalidInput.into()))?;
        let tmp = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
        let written = (|| {
            let file = std::fs::File::create(&tmp).map_err(|e| io("creating a temporary file for", e))?;
            let file = self.write_snapshot(std::io::BufWriter::with_capacity(1 << 20, file))?;
            let file = file.into_inner().map_err(|e| io("writing", e.into_error()))?;
            file.sync_all().map_err(|e| io("flushing", e))?;
            std::fs::rename(&tmp, path).map_err(|e| io("renaming a temporary file to", e))
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
            return written;
        }
        // The rename is durable once the directory is; a directory that cannot be
        // opened for flushing (some platforms) leaves it to the file system.
        if let Ok(d) = std::fs::File::open(&dir) {
            d.sync_all().map_err(|e| io("flushing the directory of", e))?;
        }
        Ok(())
    }

    /// Reads an engine from the file at `path`, written by [`Engine::save_to_path`] or
    /// [`Engine::save`].
    ///
    /// # Errors
    /// As [`Engine::restore`]; [`ErrorKind::Io`] naming the path if it cannot be opened.
    pub fn restore_from_path(path: impl AsRef<std::path::Path>) -> Result<Engine, Error> {
        let path = path.as_ref();
        let file = std::fs::File::open(path)
            .map_err(|e| Error::new(ErrorKind::Io, format!("opening {}: {e}", path.display())))?;
        Engine::restore(std::io::BufReader::with_capacity(1 << 20, file))
    }
}

/// A matcher's firing with its action and target resolved to shared text.
fn published(reg: &Registry, raw: &RawFiring) -> Firing {
    let target = raw.target.map(|t| match t {
        RawTarget::Work(w) => Target::Work(Arc::clone(reg.symbols.shared(w))),
        RawTarget::Subjob(i) => Target::Subjob(i),
    });
    Firing {
        callback: raw.callback,
        owner: raw.owner,
        index: raw.index,
        action: Arc::clone(reg.action(raw.action)),
        target,
        cause: raw.cause,
        count: raw.count,
    }
}

/// Where a matcher hands its firings, in order, each with the registry that names its
/// action and target: a closure, or [`Publish`] (see [`Engine::publishing`]). Generic,
/// not `dyn`: the latch loop calls it once per firing.
pub(crate) trait Emit {
    fn emit(&mut self, reg: &Registry, firing: RawFiring);
}

impl<E: FnMut(&Registry, RawFiring)> Emit for E {
    fn emit(&mut self, reg: &Registry, firing: RawFiring) {
        self(reg, firing);
    }
}

/// How many matcher firings [`Publish`] gathers before it hands them over: few enough
/// to stay in cache, enough that the latch loop runs on its own most of the time.
const PUBLISH_CHUNK: usize = 1024;

/// Gathers matcher firings a chunk at a time, then publishes them and hands them to
/// `out`, counting them.
pub(crate) struct Publish<'o, F: ?Sized> {
    out: &'o mut F,
    chunk: Vec<RawFiring>,
    fired: u64,
}

impl<F: FnMut(Firing) + ?Sized> Publish<'_, F> {
    #[cold]
    #[inline(never)]
    fn flush(&mut self, reg: &Registry) {
        self.fired += self.chunk.len() as u64;
        for raw in self.chunk.drain(..) {
            (self.out)(published(reg, &raw));
        }
    }
}

impl<F: FnMut(Firing) + ?Sized> Emit for Publish<'_, F> {
    #[inline]
    fn emit(&mut self, reg: &Registry, firing: RawFiring) {
        self.chunk.push(firing);
        if self.chunk.len() >= PUBLISH_CHUNK {
            self.flush(reg);
        }
    }
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

/// Checks a restored state's reference counts against their holders (see
/// `src/front/intern.rs`): a symbol is held once by each live job that uses it (its
/// label once more), each live global callback, each kept fact and each custom event
/// name; an action by each live callback and each universal callback. A count that
/// does not match would free something still in use, or keep something for good.
fn check_references(reg: &Registry, matcher: &Compiled, facts: Option<&Facts>) -> Result<(), String> {
    let jobs: Vec<(u64, u32, u32)> =
        reg.jobs.iter().map(|(&id, job)| (id, job.first_callback.as_u32(), job.callbacks)).collect();
    matcher.check_jobs(&jobs, reg.globals(), reg.next_callback())?;
    let mut symbols = vec![0u32; reg.symbols.len()];
    let mut hold = |s: crate::front::ids::Symbol| {
        if let Some(n) = symbols.get_mut(s.as_usize()) {
            *n = n.saturating_add(1);
        }
    };
    for job in reg.jobs.values() {
        hold(job.label);
        job.symbols.each(&mut hold);
    }
    reg.globals_live.values().for_each(|runs| runs.each(&mut hold));
    if let Some(facts) = facts {
        facts.symbols(&mut hold);
    }
    for name in reg.custom.iter() {
        match reg.symbols.get(name) {
            Some(s) => hold(s),
            None => return Err(format!("custom event name `{name}` is not among the symbols")),
        }
    }
    if symbols != reg.symbols.refs() {
        return Err("the symbols' reference counts do not match their holders".into());
    }
    let mut actions = vec![0u32; reg.action_refs().len()];
    for (action, n) in matcher.kind_actions() {
        if let Some(a) = actions.get_mut(action.as_usize()) {
            *a = a.saturating_add(n);
        }
    }
    for action in reg.universal_actions() {
        if let Some(a) = actions.get_mut(action.as_usize()) {
            *a = a.saturating_add(1);
        }
    }
    if actions != reg.action_refs() {
        return Err("the actions' reference counts do not match their callbacks".into());
    }
    Ok(())
}

/// The reference a kept fact holds on its symbol: taken when it is recorded, dropped
/// when it is evicted (see `facts.rs`).
fn hold_fact(reg: &mut Registry) -> impl FnMut(crate::front::ids::Symbol, bool) + '_ {
    move |sym, take| match take {
        true => reg.symbols.retain(sym),
        false => reg.symbols.release(sym),
    }
}
