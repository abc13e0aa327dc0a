//! The reference semantics: a deliberately naive implementation of the trigger-language
//! specification, written straight from its text. It is the oracle of the differential
//! tests and the baseline the benchmarks report ratios against.
//!
//! It shares nothing with the engine beyond the syntax tree ([`trigwire::syntax`]), the
//! public model types and the Qube `dependency` parser: it assigns its own ids, groups
//! and labels, keeps each callback's parsed [`Expr`] and one latch per atom occurrence,
//! and on every event walks every live callback and every atom. Labels are looked up
//! when the event arrives, retroactive facts are found by re-scanning the history of
//! events, and the clock steps through every due tick. Simple rather than fast: the cost
//! of an event is proportional to the number of atoms registered.

use std::collections::HashMap;
use std::sync::Arc;

use trigwire::ids::CallbackId;
use trigwire::qube::{parse_dependency, CodeLevel, LinkKind};
use trigwire::syntax::{
    parse, Atom, AtomKind, Context, CustomNames, EventName, EventType, Expr, Extra, Name, ParseErrorKind, Schedule,
    Span,
};
use trigwire::{
    Action, Apply, AtomState, CallbackExplanation, CallbackSpec, CatchUp, Cause, Command, Config, Event, EventExtra,
    Explanation, Firing, Gate, GateKind, JobSpec, Language, Metrics, Outcome, Refire, Submission, Target, Warning,
    WarningKind, COMMAND_KINDS,
};
use trigwire::{Error, ErrorKind, LimitName};

/// What a submission has asked for so far, for the per-submission limits.
#[derive(Default)]
struct Totals {
    instances: u128,
    callbacks: u128,
    atoms: u128,
}

/// The error for a submission past a per-submission limit.
fn over(limit: LimitName, max: u64, what: &str) -> Error {
    let name = match limit {
        LimitName::SubmissionInstances => "submission_instances",
        LimitName::SubmissionCallbacks => "submission_callbacks",
        LimitName::SubmissionAtoms => "submission_atoms",
        _ => "line_bytes",
    };
    Error::new(ErrorKind::OverLimit { limit, max }, format!("more than the limit of {max} {what} (Limits::{name})"))
}

/// The reference semantics of spec §1-§8, independent of the engine.
///
/// # Example
/// ```
/// use trigwire::{CallbackSpec, Config, Event, EventName, JobSpec};
/// use trigwire_tools::Reference;
/// let mut reference = Reference::new(Config::default());
/// let mut firings = Vec::new();
/// let job = JobSpec { callbacks: vec![CallbackSpec::qube("complete-job-7", "unblock-self")], ..JobSpec::default() };
/// reference.submit(&[job], &mut firings)?;
/// reference.process(&Event::job(EventName::Complete, 7), &mut firings)?;
/// assert_eq!(firings.len(), 1);
/// # Ok::<(), trigwire::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Reference {
    config: Config,
    custom: CustomNames,
    /// Live jobs by id.
    jobs: HashMap<u64, Job>,
    /// Every callback ever registered; the position is the callback id.
    callbacks: Vec<Callback>,
    universal: Vec<Universal>,
    /// The largest job id ever accepted.
    max_id: u64,
    globals: u32,
    now: u64,
    /// The facts kept when `retroactive` is on, oldest first: an event keeps one, or
    /// two for an event with an item (under `*` and under the item), and no duplicate;
    /// at most `Limits::facts`, the oldest evicted first; a removed job's are dropped.
    history: Vec<Fact>,
    /// What [`Command::Metrics`] reports, counted here on its own.
    metrics: Metrics,
}

/// A live job.
#[derive(Clone, Debug)]
struct Job {
    pgrp: u64,
    label: String,
    agenda: Vec<String>,
    subjobs: u64,
    /// Its callbacks' ids.
    callbacks: Vec<u32>,
    /// The host reported its `removed` event while it was live.
    removed_reported: bool,
}

/// Who owns a callback, for `self`, `parent` and labels.
#[derive(Clone, Copy, Debug)]
struct Owner {
    id: u64,
    pgrp: u64,
    pid: Option<u64>,
}

#[derive(Clone, Debug)]
struct Callback {
    owner: Option<Owner>,
    index: u32,
    action: Arc<Action>,
    expr: Expr,
    /// The atoms of `expr`, depth first, left to right.
    atoms: Vec<AtomKind>,
    /// One latch per atom occurrence.
    latch: Vec<bool>,
    /// For clock atoms, the next tick still to come.
    next: Vec<Option<u64>>,
    count: u64,
    alive: bool,
    /// With `on-rise`: the (atom, job, item) that caused its firings through `*` atoms.
    seen: Vec<Seen>,
}

/// A fact kept for `retroactive`.
#[derive(Clone, Debug, PartialEq)]
struct Fact {
    job: u64,
    name: Name,
    ty: EventType,
    extra: FactExtra,
}

/// What a fact is kept under: no extra (job events), `*`, or the event's item.
#[derive(Clone, Debug, PartialEq)]
enum FactExtra {
    None,
    Any,
    Item(String),
}

/// An atom's position, an event's job and its item (work or host name, or instance).
type Seen = (usize, u64, String);

/// The item an event's extra names, if any.
fn item(extra: &EventExtra) -> Option<String> {
    match extra {
        EventExtra::None => None,
        EventExtra::Work(s) | EventExtra::Host(s) => Some(s.clone()),
        EventExtra::Subjob(i) => Some(i.to_string()),
    }
}

#[derive(Clone, Debug)]
struct Universal {
    expr: Expr,
    action: Arc<Action>,
}

/// A callback checked but not yet registered.
struct Pending {
    owner: Option<Owner>,
    index: u32,
    action: Arc<Action>,
    expr: Expr,
}

impl Default for Reference {
    fn default() -> Reference {
        Reference::new(Config::default())
    }
}

impl Reference {
    /// A reference with `config`.
    pub fn new(config: Config) -> Reference {
        Reference {
            config,
            custom: CustomNames::default(),
            jobs: HashMap::new(),
            callbacks: Vec::new(),
            universal: Vec::new(),
            max_id: 0,
            globals: 0,
            now: config.start_time,
            history: Vec::new(),
            metrics: Metrics { commands: COMMAND_KINDS.iter().map(|k| (*k, 0)).collect(), ..Metrics::default() },
        }
    }

    /// The current Qube time.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Registers a custom event name (compared ignoring ASCII case).
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
        if !self.custom.insert(name) {
            return Err(Error::new(ErrorKind::BadEvent, format!("event name `{name}` is already known")));
        }
        Ok(())
    }

    /// Adds a universal callback, attached to every job submitted from now on after its
    /// own and generated callbacks (skipped for a job where it names `parent` and the
    /// job has none).
    ///
    /// # Errors
    /// A bad code or trigger.
    pub fn add_universal(&mut self, spec: &CallbackSpec) -> Result<(), Error> {
        let action = check_action(spec)?;
        let (expr, _) = self.parse_triggers(&spec.triggers)?;
        self.universal.push(Universal { expr, action });
        Ok(())
    }

    /// Registers a global callback; returns its id and its index among globals.
    ///
    /// # Errors
    /// A bad code or trigger, or one that names `self`, `parent` or a label.
    pub fn add_global(&mut self, spec: &CallbackSpec, out: &mut Vec<Firing>) -> Result<(CallbackId, u32), Error> {
        let id = self.callbacks.len();
        if id >= u32::MAX as usize {
            return Err(id_space());
        }
        let action = check_action(spec)?;
        let (expr, source) = self.parse_triggers(&spec.triggers)?;
        check_contexts(&expr, None, &source)?;
        let index = self.globals;
        self.globals += 1;
        self.register(vec![Pending { owner: None, index, action, expr }]);
        self.fire_preset(id, out);
        Ok((CallbackId::from_u32(id as u32), index))
    }

    /// Submits jobs together (spec §1, §8).
    ///
    /// # Errors
    /// Any bad job rejects the whole submission, which then changes nothing.
    pub fn submit(&mut self, specs: &[JobSpec], out: &mut Vec<Firing>) -> Result<Submission, Error> {
        if specs.is_empty() {
            return Err(Error::new(ErrorKind::EmptySubmission, "empty submission; expected at least one job"));
        }
        let ids = self.job_ids(specs)?;
        let pgrps = self.job_groups(specs, &ids)?;
        let labels = self.job_labels(specs, &ids, &pgrps)?;
        let mut pending = Vec::new();
        let mut jobs = Vec::new();
        let mut totals = Totals::default();
        for (i, spec) in specs.iter().enumerate() {
            let owner = Owner { id: ids[i], pgrp: pgrps[i], pid: spec.pid.filter(|&p| p != 0) };
            let first = pending.len();
            self.job_callbacks(spec, owner, &mut pending, &mut totals).map_err(|e| e.in_job(i, ids[i]))?;
            let callbacks = (first..pending.len()).map(|k| (self.callbacks.len() + k) as u32).collect();
            let job = Job {
                pgrp: pgrps[i],
                label: labels[i].clone(),
                agenda: spec.agenda.clone(),
                // At least one instance, subjob 0 (spec §9).
                subjobs: spec.subjobs.max(1),
                callbacks,
                removed_reported: false,
            };
            jobs.push((ids[i], job));
        }
        // Everything is checked: register.
        for (id, job) in jobs {
            self.max_id = self.max_id.max(id);
            self.jobs.insert(id, job);
        }
        let first = self.callbacks.len();
        self.register(pending);
        self.fire_preset(first, out);
        let warnings = self.warnings(specs, &ids);
        for &id in &ids {
            self.dispatch(&Event::job(EventName::Submit, id), Cause::Submitted(id), out)?;
        }
        Ok(Submission { ids, pgrp: pgrps[0], warnings })
    }

    /// Processes one event (spec §3).
    ///
    /// # Errors
    /// A `done` event or an unregistered custom name; nothing changes then.
    pub fn process(&mut self, event: &Event, out: &mut Vec<Firing>) -> Result<(), Error> {
        self.dispatch(event, Cause::Event, out)
    }

    /// Moves the clock to `to`, firing every due tick in time order (spec §5, §8).
    ///
    /// # Errors
    /// A move back in time, or more atom ticks than `Limits::ticks_per_move`.
    pub fn advance_clock(&mut self, to: u64, out: &mut Vec<Firing>) -> Result<(), Error> {
        if to < self.now {
            return Err(Error::new(
                ErrorKind::ClockBackwards,
                format!("the clock is at {} and cannot move back to {to}", self.now),
            ));
        }
        if to == self.now {
            return Ok(());
        }
        let limit = self.config.limits.ticks_per_move;
        let once = self.config.catch_up == CatchUp::Once;
        if !once && self.catch_up_due(to) > limit {
            return Err(Error::new(
                ErrorKind::TooManyTicks { limit },
                format!(
                    "moving the clock from {} to {to} would fire more than the limit of {limit} repeat ticks \
                     beyond the first of each repeat; a shorter move passes (one second always does)",
                    self.now
                ),
            ));
        }
        if once {
            // Each repeat atom due fires once, at its last tick up to `to`.
            for cb in self.callbacks.iter_mut().filter(|c| c.alive) {
                for k in 0..cb.atoms.len() {
                    if let (AtomKind::Clock { schedule: Schedule::Every { every, .. }, .. }, Some(t)) =
                        (&cb.atoms[k], cb.next[k])
                    {
                        if t <= to {
                            cb.next[k] = Some(t + (to - t) / every * every);
                        }
                    }
                }
            }
        }
        loop {
            let t = self
                .callbacks
                .iter()
                .filter(|c| c.alive)
                .flat_map(|c| c.next.iter().flatten().copied())
                .filter(|&t| t <= to)
                .min();
            let Some(t) = t else { break };
            for id in 0..self.callbacks.len() {
                let cb = &mut self.callbacks[id];
                if !cb.alive {
                    continue;
                }
                // A callback that cannot fire any more (at its maximum) still reaches its
                // one-shot times (the atom is met), but its repeats stop for good.
                let able = can_fire(cb);
                let mut hit = false;
                for k in 0..cb.atoms.len() {
                    if cb.next[k] != Some(t) {
                        continue;
                    }
                    let repeat = match &cb.atoms[k] {
                        AtomKind::Clock { schedule: Schedule::Every { every, .. }, .. } => Some(*every),
                        _ => None,
                    };
                    if repeat.is_some() && !able {
                        cb.next[k] = None;
                        continue;
                    }
                    hit = true;
                    cb.latch[k] = true;
                    cb.next[k] = repeat.and_then(|every| t.checked_add(every));
                }
                if hit && able {
                    self.try_fire(id, Cause::Tick(t), None, &[], out);
                }
            }
        }
        self.now = to;
        Ok(())
    }

    /// Removes a live job: its callbacks stop, its label is freed.
    ///
    /// # Errors
    /// A job that is not live.
    pub fn remove_job(&mut self, id: u64, out: &mut Vec<Firing>) -> Result<(), Error> {
        let Some(job) = self.jobs.get(&id) else {
            return Err(Error::new(ErrorKind::UnknownJob, format!("job {id} is not live")));
        };
        // Removal is an event (spec §9), delivered once: not again if the host sent it.
        if !job.removed_reported {
            self.dispatch(&Event::job(EventName::Removed, id), Cause::Removed(id), out)?;
        }
        let job =
            self.jobs.remove(&id).ok_or_else(|| Error::new(ErrorKind::UnknownJob, format!("job {id} is not live")))?;
        // What happened to a removed job is forgotten with it.
        self.history.retain(|f| f.job != id);
        for cb in job.callbacks {
            let cb = &mut self.callbacks[cb as usize];
            cb.alive = false;
            cb.latch = Vec::new();
            cb.next = Vec::new();
            cb.atoms = Vec::new();
            cb.seen = Vec::new();
        }
        Ok(())
    }

    /// Removes a live callback by id, a global one or a job's: it stops for good.
    ///
    /// # Errors
    /// An id that names no live callback.
    pub fn remove_callback(&mut self, id: CallbackId) -> Result<(), Error> {
        match self.callbacks.get_mut(id.as_usize()) {
            Some(cb) if cb.alive => {
                cb.alive = false;
                cb.latch = Vec::new();
                cb.next = Vec::new();
                cb.atoms = Vec::new();
                Ok(())
            }
            _ => Err(Error::new(ErrorKind::UnknownCallback, format!("callback {} is not live", id.as_u32()))),
        }
    }

    // -- submission --------------------------------------------------------------------

    fn job_ids(&self, specs: &[JobSpec]) -> Result<Vec<u64>, Error> {
        let mut ids: Vec<u64> = Vec::new();
        let mut largest = self.max_id;
        for (i, spec) in specs.iter().enumerate() {
            let bad = |m: String| Error::new(ErrorKind::BadJobId, format!("job {i}: {m}")).in_job_at(i).in_field("id");
            let id = match spec.id {
                Some(id) => id,
                None if largest == u64::MAX => return Err(bad("no job id is left after u64::MAX".into())),
                None => largest + 1,
            };
            if id == 0 {
                return Err(bad("job id 0 is reserved for `no parent`".into()));
            }
            if self.jobs.contains_key(&id) {
                return Err(bad(format!("job id {id} is already live")));
            }
            if ids.contains(&id) {
                return Err(bad(format!("job id {id} is repeated in the submission")));
            }
            // The first job's id numbers the submission's new group; the id of a group
            // with live jobs is refused unless the job joins that group by name.
            let members: Vec<u64> = self.jobs.iter().filter(|(_, j)| j.pgrp == id).map(|(&k, _)| k).collect();
            if i == 0 && spec.pgrp != Some(id) && !members.is_empty() {
                let live = members.iter().min().copied().unwrap_or(id);
                return Err(bad(format!(
                    "job id {id} would start process group {id}, which is still live (job {live}); \
                     expected an id that is not a live group's, or pgrp {id} to join that group"
                )));
            }
            largest = largest.max(id);
            ids.push(id);
        }
        Ok(ids)
    }

    fn job_groups(&self, specs: &[JobSpec], ids: &[u64]) -> Result<Vec<u64>, Error> {
        let mut pgrps = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            let g = match spec.pgrp {
                None => ids[0],
                Some(g) if g == ids[0] || self.jobs.values().any(|j| j.pgrp == g) => g,
                Some(g) => {
                    return Err(Error::new(
                        ErrorKind::UnknownGroup,
                        format!("job {i}: process group {g} has no live job; expected an existing pgrp"),
                    )
                    .in_job_at(i)
                    .in_field("pgrp"))
                }
            };
            pgrps.push(g);
        }
        Ok(pgrps)
    }

    /// Explicit labels first, then `qubeN` for the others in order (spec §8).
    fn job_labels(&self, specs: &[JobSpec], ids: &[u64], pgrps: &[u64]) -> Result<Vec<String>, Error> {
        let mut labels: Vec<Option<String>> = vec![None; specs.len()];
        // Labels compare ignoring ASCII case (spec §9).
        let taken = |labels: &[Option<String>], g: u64, l: &str| {
            self.jobs.values().any(|j| j.pgrp == g && j.label.eq_ignore_ascii_case(l))
                || labels
                    .iter()
                    .zip(pgrps)
                    .any(|(x, &xg)| xg == g && x.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(l)))
        };
        for (i, spec) in specs.iter().enumerate() {
            let Some(label) = &spec.label else { continue };
            let bad = |m: String| Error::new(ErrorKind::BadLabel, m).in_field("label").in_job(i, ids[i]);
            // Any non-empty label is accepted; one a trigger cannot spell is never named.
            if label.is_empty() {
                return Err(bad("an empty label; expected at least one character".to_string()));
            }
            if taken(&labels, pgrps[i], label) {
                return Err(bad(format!("label `{label}` is already used in process group {}", pgrps[i])));
            }
            labels[i] = Some(label.clone());
        }
        for i in 0..specs.len() {
            if labels[i].is_none() {
                let label = (0u64..).map(|n| format!("qube{n}")).find(|l| !taken(&labels, pgrps[i], l));
                labels[i] = label;
            }
        }
        Ok(labels.into_iter().map(Option::unwrap_or_default).collect())
    }

    /// A job's callbacks in order: its own, those of `dependency`, the universal ones.
    fn job_callbacks(
        &self,
        spec: &JobSpec,
        owner: Owner,
        pending: &mut Vec<Pending>,
        totals: &mut Totals,
    ) -> Result<(), Error> {
        let limits = self.config.limits;
        let limit = limits.subjobs;
        if spec.subjobs > limit {
            return Err(Error::new(
                ErrorKind::BadValue,
                format!("{} subjobs is more than the limit of {limit}", spec.subjobs),
            )
            .in_field("subjobs"));
        }
        // Per-submission limits: instances (at least one a job), callbacks, atoms.
        totals.instances += u128::from(spec.subjobs.max(1));
        if totals.instances > u128::from(limits.submission_instances) {
            return Err(over(
                LimitName::SubmissionInstances,
                limits.submission_instances,
                "instances in one submission",
            )
            .in_field("subjobs"));
        }
        let mut index = 0u32;
        let mut take = |pending: &mut Vec<Pending>, action: Arc<Action>, expr: Expr| -> Result<(), Error> {
            totals.callbacks += 1;
            if totals.callbacks > u128::from(limits.submission_callbacks) {
                let max = limits.submission_callbacks;
                return Err(over(LimitName::SubmissionCallbacks, max, "callbacks in one submission"));
            }
            let mut atoms = Vec::new();
            collect_atoms(&expr, &mut atoms);
            totals.atoms += atoms.len() as u128;
            if totals.atoms > u128::from(limits.submission_atoms) {
                let max = limits.submission_atoms;
                return Err(over(LimitName::SubmissionAtoms, max, "trigger atoms in one submission"));
            }
            pending.push(Pending { owner: Some(owner), index, action, expr });
            index += 1;
            Ok(())
        };
        let full = |pending: &Vec<Pending>| self.callbacks.len() + pending.len() >= u32::MAX as usize;
        for (c, cb) in spec.callbacks.iter().enumerate() {
            if full(pending) {
                return Err(id_space());
            }
            let checked = (|| {
                let action = check_action(cb)?;
                let (expr, source) = self.parse_triggers(&cb.triggers)?;
                check_contexts(&expr, Some(owner), &source)?;
                Ok((action, expr))
            })();
            let (action, expr) = checked.map_err(|e: Error| e.in_callback(c))?;
            take(pending, action, expr).map_err(|e| e.in_callback(c))?;
        }
        if let Some(dep) = &spec.dependency {
            for (code, expr) in dependency(dep, spec, self.config.limits.parse.atoms)? {
                if full(pending) {
                    return Err(id_space());
                }
                let level = CodeLevel::of(code);
                let action = Action { language: Language::Qube, code: code.into(), maximum: None, level };
                take(pending, Arc::new(action), expr).map_err(|e| e.in_field("dependency"))?;
            }
        }
        for u in &self.universal {
            // A universal callback naming `parent` is skipped for a job without one.
            if owner.pid.is_some() || !mentions_parent(&u.expr) {
                if full(pending) {
                    return Err(id_space());
                }
                take(pending, Arc::clone(&u.action), u.expr.clone())?;
            }
        }
        Ok(())
    }

    /// Parses a list of triggers into their OR; the atoms' spans point into the
    /// elements joined with ` || `, which is the source that later errors render.
    fn parse_triggers(&self, triggers: &[String]) -> Result<(Expr, String), Error> {
        let mut exprs = Vec::new();
        let mut offset = 0;
        for (t, text) in triggers.iter().enumerate() {
            let mut expr = parse(text, &self.config.limits.parse, &self.custom).map_err(|e| match triggers.len() {
                1 => Error::parse(e, "trigger"),
                _ => Error::parse(e, &format!("trigger {t}")).in_trigger(t),
            })?;
            // A list is one trigger: the atom limit counts all of its elements.
            let so_far: usize = exprs
                .iter()
                .chain([&expr])
                .map(|x| {
                    let mut atoms = Vec::new();
                    collect_atoms(x, &mut atoms);
                    atoms.len()
                })
                .sum();
            let limit = self.config.limits.parse.atoms;
            if so_far > limit as usize {
                let message = format!("trigger {t}: more atoms than the limit of {limit} in the list of triggers");
                return Err(Error::new(ErrorKind::Parse(ParseErrorKind::TooManyAtoms { limit }), message)
                    .at(Span::new(offset, offset + text.len()), &triggers.join(" || "))
                    .in_trigger(t)
                    .in_field("triggers"));
            }
            shift(&mut expr, offset);
            offset += text.len() + " || ".len();
            exprs.push(expr);
        }
        match exprs.len() {
            0 => Err(Error::new(ErrorKind::Parse(ParseErrorKind::Empty), "no trigger given")),
            1 => Ok((exprs.remove(0), triggers[0].clone())),
            _ => Ok((Expr::Or(exprs), triggers.join(" || "))),
        }
    }

    /// Adds checked callbacks, their latches false but for one-shot times already
    /// reached and (with `retroactive`) facts already known.
    fn register(&mut self, pending: Vec<Pending>) {
        for p in pending {
            let mut atoms = Vec::new();
            collect_atoms(&p.expr, &mut atoms);
            let mut latch = vec![false; atoms.len()];
            let mut next = vec![None; atoms.len()];
            for (k, atom) in atoms.iter().enumerate() {
                match atom {
                    AtomKind::Clock { schedule: Schedule::At(t), .. } if *t <= self.now => latch[k] = true,
                    AtomKind::Clock { schedule: Schedule::At(t), .. } => next[k] = Some(*t),
                    AtomKind::Clock { schedule: Schedule::Every { start, every }, .. } => {
                        next[k] = first_tick_after(*start, *every, self.now);
                    }
                    AtomKind::Event { .. } => {}
                }
            }
            self.callbacks.push(Callback {
                owner: p.owner,
                index: p.index,
                action: p.action,
                expr: p.expr,
                atoms,
                latch,
                next,
                count: 0,
                alive: true,
                seen: Vec::new(),
            });
        }
    }

    /// Sets the retroactive latches of the callbacks from `first` on, then fires, in
    /// id order, those whose latches registration set (spec §8).
    fn fire_preset(&mut self, first: usize, out: &mut Vec<Firing>) {
        let mut preset = Vec::new();
        for id in first..self.callbacks.len() {
            if self.config.retroactive {
                for k in 0..self.callbacks[id].atoms.len() {
                    let cb = &self.callbacks[id];
                    let known = self.history.iter().any(|f| self.fact_matches(&cb.atoms[k], cb.owner, f));
                    self.callbacks[id].latch[k] |= known;
                }
            }
            if self.callbacks[id].latch.iter().any(|&b| b) {
                preset.push(id);
            }
        }
        for id in preset {
            self.try_fire(id, Cause::Registration, None, &[], out);
        }
    }

    // -- events ------------------------------------------------------------------------

    fn dispatch(&mut self, event: &Event, cause: Cause, out: &mut Vec<Firing>) -> Result<(), Error> {
        match &event.name {
            Name::Builtin(EventName::Done) => {
                return Err(Error::new(
                    ErrorKind::BadEvent,
                    "`done` is derived and cannot be reported; report complete, failed or killed",
                ));
            }
            Name::Builtin(_) => {}
            Name::Custom(c) => {
                if self.custom.get(c).is_none() {
                    return Err(Error::new(ErrorKind::BadEvent, format!("unknown event name `{c}`")));
                }
            }
        }
        if event.extra == EventExtra::None && event.name == Name::Builtin(EventName::Removed) {
            if let Some(job) = self.jobs.get_mut(&event.job) {
                job.removed_reported = true;
            }
        }
        for id in 0..self.callbacks.len() {
            let cb = &self.callbacks[id];
            if !cb.alive {
                continue;
            }
            let hits: Vec<usize> =
                (0..cb.atoms.len()).filter(|&k| self.atom_matches(&cb.atoms[k], cb.owner, event)).collect();
            if hits.is_empty() {
                continue;
            }
            // The items this event brings to the callback's `*` atoms (spec §9,
            // "Re-firing"): (atom, job, item).
            let wild: Vec<Seen> = hits
                .iter()
                .filter(|&&k| matches!(&cb.atoms[k], AtomKind::Event { extra: Extra::Any, .. }))
                .filter_map(|&k| item(&event.extra).map(|i| (k, event.job, i)))
                .collect();
            for k in hits {
                self.callbacks[id].latch[k] = true;
            }
            let target = self.target(id, event);
            self.try_fire(id, cause, target, &wild, out);
        }
        if self.config.retroactive {
            let extras = match item(&event.extra) {
                None => vec![FactExtra::None],
                Some(i) => vec![FactExtra::Any, FactExtra::Item(i)],
            };
            for extra in extras {
                // Names compare ignoring case: one fact, however the event spells it.
                let name = match &event.name {
                    Name::Custom(c) => Name::Custom(c.to_ascii_lowercase().into()),
                    n => n.clone(),
                };
                let fact = Fact { job: event.job, name, ty: event.event_type(), extra };
                if !self.history.contains(&fact) {
                    self.history.push(fact);
                }
            }
            let cap = usize::try_from(self.config.limits.facts).unwrap_or(usize::MAX);
            if self.history.len() > cap {
                let excess = self.history.len() - cap;
                self.history.drain(..excess);
            }
        }
        Ok(())
    }

    /// Whether `event` matches an event atom of a callback of `owner` now (spec §3).
    fn atom_matches(&self, atom: &AtomKind, owner: Option<Owner>, event: &Event) -> bool {
        let AtomKind::Event { name, ty, context, extra } = atom else { return false };
        let name_ok = match (name, &event.name) {
            (Name::Builtin(EventName::Done), Name::Builtin(n)) => n.is_terminal(),
            (Name::Builtin(a), Name::Builtin(b)) => a == b,
            (Name::Custom(a), Name::Custom(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        };
        let extra_ok = match (extra, &event.extra) {
            (Extra::None, EventExtra::None) | (Extra::Any, _) => true,
            (Extra::Name(a), EventExtra::Work(b) | EventExtra::Host(b)) => **a == **b,
            (Extra::Subjob(a), EventExtra::Subjob(b)) => a == b,
            _ => false,
        };
        name_ok && *ty == event.event_type() && extra_ok && self.context_is(context, owner, event.job)
    }

    /// Whether a kept fact satisfies an event atom of a callback of `owner` now: as
    /// [`Reference::atom_matches`], but a `*` atom needs a fact kept under `*`.
    fn fact_matches(&self, atom: &AtomKind, owner: Option<Owner>, fact: &Fact) -> bool {
        let AtomKind::Event { name, ty, context, extra } = atom else { return false };
        let name_ok = match (name, &fact.name) {
            (Name::Builtin(EventName::Done), Name::Builtin(n)) => n.is_terminal(),
            (Name::Builtin(a), Name::Builtin(b)) => a == b,
            (Name::Custom(a), Name::Custom(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        };
        let extra_ok = match (extra, &fact.extra) {
            (Extra::None, FactExtra::None) | (Extra::Any, FactExtra::Any) => true,
            (Extra::Name(a), FactExtra::Item(b)) => **a == **b,
            (Extra::Subjob(a), FactExtra::Item(b)) => a.to_string() == *b,
            _ => false,
        };
        name_ok && *ty == fact.ty && extra_ok && self.context_is(context, owner, fact.job)
    }

    /// Whether `context`, seen from `owner`, names `job` now.
    fn context_is(&self, context: &Context, owner: Option<Owner>, job: u64) -> bool {
        match (context, owner) {
            (Context::Id(id), _) => *id == job,
            (Context::SelfJob, Some(o)) => o.id == job,
            (Context::Parent, Some(o)) => o.pid == Some(job),
            (Context::Label(l), Some(o)) => {
                self.jobs.get(&job).is_some_and(|j| j.pgrp == o.pgrp && j.label.eq_ignore_ascii_case(l))
            }
            (_, None) => false,
        }
    }

    /// What a work- or subjob-level qube code acts on (spec §8 "Targets").
    fn target(&self, id: usize, event: &Event) -> Option<Target> {
        let cb = &self.callbacks[id];
        let owner = self.jobs.get(&cb.owner?.id)?;
        match (cb.action.level?, &event.extra) {
            (CodeLevel::Work, EventExtra::Work(w)) if owner.agenda.contains(w) => {
                Some(Target::Work(Arc::from(w.as_str())))
            }
            (CodeLevel::Subjob, EventExtra::Subjob(i)) if *i < owner.subjobs => Some(Target::Subjob(*i)),
            _ => None,
        }
    }

    /// Fires callback `id` once if its trigger is true and its count under its maximum.
    /// With `on-rise`, a callback that has fired fires again only when `wild` (the
    /// `*` atoms this event matched, with its job and item) holds an item that has not
    /// caused a firing of it through that atom.
    fn try_fire(&mut self, id: usize, cause: Cause, target: Option<Target>, wild: &[Seen], out: &mut Vec<Firing>) {
        let on_rise = self.config.refire == Refire::OnRise;
        let cb = &mut self.callbacks[id];
        if !eval(&cb.expr, &cb.latch, &mut 0) || cb.action.maximum.is_some_and(|m| cb.count >= m) {
            return;
        }
        if on_rise {
            if cb.count > 0 && wild.iter().all(|w| cb.seen.contains(w)) {
                return;
            }
            for w in wild {
                if !cb.seen.contains(w) {
                    cb.seen.push(w.clone());
                }
            }
        }
        cb.count += 1;
        out.push(Firing {
            callback: CallbackId::from_u32(id as u32),
            owner: cb.owner.map(|o| o.id),
            index: cb.index,
            action: Arc::clone(&cb.action),
            target,
            cause,
            count: u32::try_from(cb.count).unwrap_or(u32::MAX),
        });
    }

    // -- clock -------------------------------------------------------------------------

    /// The catch-up ticks a move to `to` would fire: for each repeat schedule of a
    /// callback that can still fire, its ticks up to `to` beyond the first. Atoms of one callback with the same schedule are
    /// one atom: they are set together.
    fn catch_up_due(&self, to: u64) -> u64 {
        let mut n: u64 = 0;
        for cb in self.callbacks.iter().filter(|c| c.alive && can_fire(c)) {
            let mut seen: Vec<Schedule> = Vec::new();
            for (k, atom) in cb.atoms.iter().enumerate() {
                let (AtomKind::Clock { schedule: schedule @ Schedule::Every { every, .. }, .. }, Some(t)) =
                    (atom, cb.next[k])
                else {
                    continue;
                };
                if t > to || seen.contains(schedule) {
                    continue;
                }
                seen.push(*schedule);
                n = n.saturating_add((to - t) / every);
            }
        }
        n
    }
}

/// Whether `cb` is under its maximum.
fn can_fire(cb: &Callback) -> bool {
    cb.action.maximum.map_or(true, |m| cb.count < m)
}

impl Apply for Reference {
    fn apply(&mut self, command: &Command, out: &mut Vec<Outcome>) -> Result<(), Error> {
        *self.metrics.commands.entry(command.kind()).or_default() += 1;
        let from = out.len();
        let result = self.apply_counted(command, out);
        self.metrics.rejections += u64::from(result.is_err());
        self.metrics.firings += out[from..].iter().filter(|o| matches!(o, Outcome::Fired(_))).count() as u64;
        if result.is_ok() && matches!(command, Command::Event(_)) {
            self.metrics.events += 1;
        }
        result
    }
}

impl Reference {
    fn apply_counted(&mut self, command: &Command, out: &mut Vec<Outcome>) -> Result<(), Error> {
        let mut firings = Vec::new();
        match command {
            Command::Submit(jobs) => {
                let submission = self.submit(jobs, &mut firings)?;
                out.push(Outcome::Submitted(submission));
            }
            Command::Global(spec) => {
                let (callback, index) = self.add_global(spec, &mut firings)?;
                out.push(Outcome::GlobalAdded { callback, index });
            }
            Command::Event(event) => self.process(event, &mut firings)?,
            Command::Time(to) => self.advance_clock(*to, &mut firings)?,
            Command::Remove(job) => self.remove_job(*job, &mut firings)?,
            Command::RemoveCallback(id) => self.remove_callback(*id)?,
            Command::Explain { job, work } => out.push(Outcome::Explained(self.explain(*job, work.as_deref())?)),
            Command::Satisfy { job, callback, atom } => {
                self.satisfy(*job, *callback, atom.as_deref(), &mut firings)?;
                out.push(Outcome::Satisfied { job: *job, callback: *callback });
            }
            Command::Rearm { job, callback } => {
                let id = self.callback_at(*job, *callback)?;
                let cb = &mut self.callbacks[id];
                cb.latch.iter_mut().for_each(|l| *l = false);
                cb.count = 0;
                out.push(Outcome::Rearmed { job: *job, callback: *callback });
            }
            Command::Metrics => {
                let alive = self.callbacks.iter().filter(|c| c.alive);
                let fired = alive.clone().filter(|c| c.count > 0).count() as u64;
                out.push(Outcome::Metrics(Metrics {
                    jobs: self.jobs.len() as u64,
                    callbacks_fired: fired,
                    callbacks_waiting: alive.count() as u64 - fired,
                    ..self.metrics.clone()
                }));
            }
            // `Command` grows with the engine; the oracle must learn each new command
            // before a test can compare it, so an unknown one stops the test loudly.
            other => unimplemented!("the reference semantics do not implement {other:?}"),
        }
        out.extend(firings.into_iter().map(Outcome::Fired));
        Ok(())
    }
}

// -- operations -----------------------------------------------------------------------

impl Reference {
    /// Forces the occurrences of `atom` (by its text as explanations print it), or every
    /// atom, of a live job's callback satisfied, then fires it if it is true.
    ///
    /// # Errors
    /// A job that is not live, a callback or atom it does not have.
    pub fn satisfy(&mut self, job: u64, index: u32, atom: Option<&str>, out: &mut Vec<Firing>) -> Result<(), Error> {
        let id = self.callback_at(job, index)?;
        let cb = &self.callbacks[id];
        let texts: Vec<String> = cb.atoms.iter().map(|a| seen_from(a, cb.owner).to_string()).collect();
        let hit: Vec<bool> = texts.iter().map(|t| atom.map_or(true, |a| a == t)).collect();
        if !hit.iter().any(|&h| h) {
            let mut known: Vec<&str> = Vec::new();
            for t in &texts {
                if !known.contains(&t.as_str()) {
                    known.push(t);
                }
            }
            return Err(Error::new(
                ErrorKind::BadValue,
                format!(
                    "callback {index} of job {job} has no atom `{}`; its atoms are {}",
                    atom.unwrap_or_default(),
                    known.join(", ")
                ),
            )
            .in_field("atom"));
        }
        for (k, h) in hit.into_iter().enumerate() {
            self.callbacks[id].latch[k] |= h;
        }
        self.try_fire(id, Cause::Forced, None, &[], out);
        Ok(())
    }

    /// The callback id of callback `index` of live job `job`.
    fn callback_at(&self, job: u64, index: u32) -> Result<usize, Error> {
        let j =
            self.jobs.get(&job).ok_or_else(|| Error::new(ErrorKind::UnknownJob, format!("job {job} is not live")))?;
        let id = j.callbacks.get(index as usize).ok_or_else(|| {
            Error::new(
                ErrorKind::BadValue,
                format!("job {job} has {} callback(s); there is no callback {index}", j.callbacks.len()),
            )
            .in_field("callback")
        })?;
        if !self.callbacks[*id as usize].alive {
            return Err(Error::new(
                ErrorKind::UnknownCallback,
                format!("callback {index} of job {job} (callback {id}) was removed"),
            )
            .in_field("callback"));
        }
        Ok(*id as usize)
    }
}

// -- warnings at submit -------------------------------------------------------------

impl Reference {
    /// The warnings of a submission just registered, as `src/front/warnings.rs` lists
    /// them, from the specs and the callbacks' own parsed triggers.
    fn warnings(&self, specs: &[JobSpec], ids: &[u64]) -> Vec<Warning> {
        let mut out: Vec<Warning> = Vec::new();
        for (spec, &id) in specs.iter().zip(ids) {
            let job = &self.jobs[&id];
            let mut warn = |callback: Option<u32>, kind: WarningKind, message: String| {
                if !out.iter().any(|w| w.job == id && w.callback == callback && w.message == message) {
                    out.push(Warning { job: id, callback, kind, message });
                }
            };
            if let Some(label) = spec.label.as_deref().filter(|l| !trigwire::syntax::is_label(l)) {
                let message = format!(
                    "label `{label}` cannot be named by a trigger (it holds `-`, white space, parentheses, `&&` or `||`, is all digits, or is self, parent, and or or)"
                );
                warn(None, WarningKind::UnspellableLabel, message);
            }
            let links = spec.dependency.as_deref().map(|d| parse_dependency(d).unwrap_or_default()).unwrap_or_default();
            for link in &links {
                if link.kind == LinkKind::Work && spec.agenda.is_empty() {
                    warn(
                        None,
                        WarningKind::Link,
                        "dependency: a work link on a job without agenda makes no callback".into(),
                    );
                    continue;
                }
                let kind = format!("{:?}", link.kind).to_lowercase();
                let target = match &link.target {
                    Context::Id(t) => Some(*t),
                    Context::Label(l) => self
                        .jobs
                        .iter()
                        .find(|(_, j)| j.pgrp == job.pgrp && j.label.eq_ignore_ascii_case(l))
                        .map(|(t, _)| *t),
                    _ => None,
                };
                match target.map(|t| (t, self.jobs.get(&t))) {
                    Some((t, None)) if link.kind != LinkKind::Job => {
                        warn(None, WarningKind::Link, format!("dependency: {kind} link to job {t}, which is not live"));
                    }
                    Some((_, Some(j))) if link.kind == LinkKind::Work && j.agenda.is_empty() => {
                        let message = format!("dependency: work link to job {}, which has no agenda", link.target);
                        warn(None, WarningKind::Link, message);
                    }
                    _ => {}
                }
            }
            let generated = spec.dependency.as_deref().map_or(0, |d| {
                dependency(d, spec, self.config.limits.parse.atoms).map_or(0, |callbacks| callbacks.len())
            });
            for &cb_id in job.callbacks.iter().take(spec.callbacks.len() + generated) {
                let cb = &self.callbacks[cb_id as usize];
                let at = Some(cb.index);
                let owner = cb.owner.expect("a job's callback has its owner");
                let events = || {
                    cb.atoms.iter().filter_map(|a| match a {
                        AtomKind::Event { ty, context, .. } => Some((*ty, context)),
                        AtomKind::Clock { .. } => None,
                    })
                };
                if owner.pid.is_none() && events().any(|(_, c)| *c == Context::Parent) {
                    let message = "`parent` names no job: this job has no parent, so the atom is never met";
                    warn(at, WarningKind::NeverMet, message.into());
                }
                for (_, context) in events() {
                    let Context::Label(l) = context else { continue };
                    if !self.jobs.values().any(|j| j.pgrp == owner.pgrp && j.label.eq_ignore_ascii_case(l)) {
                        let message = format!(
                            "label `{}` names no job of process group {} yet",
                            l.to_ascii_lowercase(),
                            owner.pgrp
                        );
                        warn(at, WarningKind::UnknownLabel, message);
                    }
                }
                // What is known of live jobs, in the job's own callbacks only.
                for atom in cb.atoms.iter().filter(|_| (cb.index as usize) < spec.callbacks.len()) {
                    let AtomKind::Event { ty, context, extra, .. } = atom else { continue };
                    let holder = match context {
                        Context::SelfJob => Some(owner.id),
                        Context::Parent => owner.pid,
                        Context::Id(j) => Some(*j),
                        Context::Label(l) => self
                            .jobs
                            .iter()
                            .find(|(_, j)| j.pgrp == owner.pgrp && j.label.eq_ignore_ascii_case(l))
                            .map(|(id, _)| *id),
                    };
                    let Some((j, target)) = holder.and_then(|j| self.jobs.get(&j).map(|t| (j, t))) else { continue };
                    let message = match (ty, extra) {
                        (EventType::Work, Extra::Name(w)) if !target.agenda.iter().any(|a| **a == **w) => {
                            format!(
                                "job {j} has no work item `{w}` in its agenda, so a work atom naming it is never met"
                            )
                        }
                        (EventType::Work, Extra::Any) if target.agenda.is_empty() => {
                            format!("job {j} has no agenda, so a work atom about any of its items is never met")
                        }
                        (EventType::Subjob, Extra::Subjob(i)) if *i >= target.subjobs => format!(
                            "job {j} has {} instance(s), so a subjob atom naming instance {i} is never met",
                            target.subjobs
                        ),
                        _ => continue,
                    };
                    warn(at, WarningKind::NeverMet, message);
                }
                if cb.action.level == Some(CodeLevel::Work) && !events().any(|(ty, _)| ty == EventType::Work) {
                    let message = format!(
                        "`{}` is a work-level code, but the trigger has no work atom to give it a frame",
                        cb.action.code
                    );
                    warn(at, WarningKind::WorkCodeWithoutWorkAtom, message);
                }
            }
        }
        out
    }
}

// -- explanations ---------------------------------------------------------------------

impl Reference {
    /// A live job's callbacks with their atoms met or not, as [`trigwire::Engine::explain`]
    /// documents it: written from the callbacks' own parsed triggers.
    ///
    /// # Errors
    /// A job that is not live.
    pub fn explain(&self, job: u64, work: Option<&str>) -> Result<Explanation, Error> {
        let j =
            self.jobs.get(&job).ok_or_else(|| Error::new(ErrorKind::UnknownJob, format!("job {job} is not live")))?;
        let mut callbacks = Vec::new();
        for &id in &j.callbacks {
            let cb = &self.callbacks[id as usize];
            let about = |a: &AtomKind| matches!(a, AtomKind::Event { ty: EventType::Work, extra: Extra::Name(n), .. } if Some(&**n) == work);
            if !cb.alive || (work.is_some() && !cb.atoms.iter().any(about)) {
                continue;
            }
            // Distinct atoms by their text, in order of first appearance; an atom is met
            // when an occurrence of it is.
            let mut atoms: Vec<AtomState> = Vec::new();
            let mut which = Vec::new();
            for (k, a) in cb.atoms.iter().enumerate() {
                let text = seen_from(a, cb.owner).to_string();
                let at = atoms.iter().position(|s| s.atom == text).unwrap_or_else(|| {
                    atoms.push(AtomState { atom: text, met: false });
                    atoms.len() - 1
                });
                atoms[at].met |= cb.latch[k];
                which.push(at);
            }
            let tree = merged(&cb.expr, &mut which.iter().copied());
            let gate = gate_of(&tree, &atoms);
            callbacks.push(CallbackExplanation {
                id: CallbackId::from_u32(id),
                index: cb.index,
                trigger: tree_text(&tree, &atoms, true),
                action: Arc::clone(&cb.action),
                fired: u32::try_from(cb.count).unwrap_or(u32::MAX),
                maximum: cb.action.maximum,
                atoms,
                gate,
            });
        }
        Ok(Explanation { job, callbacks })
    }
}

/// An atom as explanations print it, seen from its owner: the owner as `self`, a parent
/// by its id, a label in lowercase, clock atoms in their global form.
fn seen_from(atom: &AtomKind, owner: Option<Owner>) -> AtomKind {
    match atom {
        AtomKind::Clock { schedule, .. } => AtomKind::Clock { owner: None, schedule: *schedule },
        AtomKind::Event { name, ty, context, extra } => {
            let context = match (context, owner) {
                (Context::Parent, Some(Owner { pid: Some(p), .. })) => Context::Id(p),
                (Context::Label(l), _) => Context::Label(l.to_ascii_lowercase().into()),
                (c, _) => c.clone(),
            };
            // The owner by any name is `self`.
            let context = match (context, owner) {
                (Context::Id(id), Some(o)) if id == o.id => Context::SelfJob,
                (c, _) => c,
            };
            let extra = match extra {
                Extra::Subjob(i) => Extra::Name(i.to_string().into()),
                e => e.clone(),
            };
            AtomKind::Event { name: name.clone(), ty: *ty, context, extra }
        }
    }
}

/// A trigger over distinct atoms: operands of the same operator merged, repeated
/// operands dropped, a single operand standing for itself.
#[derive(Clone, Debug, PartialEq)]
enum Tree {
    Atom(usize),
    And(Vec<Tree>),
    Or(Vec<Tree>),
}

fn merged(expr: &Expr, which: &mut impl Iterator<Item = usize>) -> Tree {
    let (and, xs) = match expr {
        Expr::Atom(_) => return Tree::Atom(which.next().expect("one index per atom")),
        Expr::And(xs) => (true, xs),
        Expr::Or(xs) => (false, xs),
    };
    let mut out: Vec<Tree> = Vec::new();
    for x in xs {
        let child = merged(x, which);
        let parts = match child {
            Tree::And(ys) if and => ys,
            Tree::Or(ys) if !and => ys,
            other => vec![other],
        };
        for p in parts {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    match (out.len(), and) {
        (1, _) => out.remove(0),
        (_, true) => Tree::And(out),
        (_, false) => Tree::Or(out),
    }
}

fn tree_text(tree: &Tree, atoms: &[AtomState], top: bool) -> String {
    match tree {
        Tree::Atom(i) => atoms[*i].atom.clone(),
        Tree::And(xs) => xs.iter().map(|x| tree_text(x, atoms, false)).collect::<Vec<_>>().join(" && "),
        Tree::Or(xs) if top => xs.iter().map(|x| tree_text(x, atoms, true)).collect::<Vec<_>>().join(" || "),
        Tree::Or(_) => format!("({})", tree_text(tree, atoms, true)),
    }
}

fn gate_of(tree: &Tree, atoms: &[AtomState]) -> Gate {
    match tree {
        Tree::Atom(i) => Gate { kind: GateKind::Atom(*i), value: atoms[*i].met, children: Vec::new() },
        Tree::And(xs) => {
            let children: Vec<Gate> = xs.iter().map(|x| gate_of(x, atoms)).collect();
            Gate { kind: GateKind::And, value: children.iter().all(|g| g.value), children }
        }
        Tree::Or(xs) => {
            let children: Vec<Gate> = xs.iter().map(|x| gate_of(x, atoms)).collect();
            Gate { kind: GateKind::Or, value: children.iter().any(|g| g.value), children }
        }
    }
}

/// Checks a callback's language and code (spec §6).
fn check_action(spec: &CallbackSpec) -> Result<Arc<Action>, Error> {
    let level = match spec.language {
        Language::Qube => match CodeLevel::of(&spec.code) {
            Some(level) => Some(level),
            None => {
                return Err(Error::new(
                    ErrorKind::UnknownCode,
                    format!("unknown qube action code `{}`; expected one of spec §6 such as unblock-self", spec.code),
                )
                .in_field("code"))
            }
        },
        _ => None,
    };
    Ok(Arc::new(Action { language: spec.language, code: spec.code.as_str().into(), maximum: spec.maximum, level }))
}

/// Checks every atom's context against the owner, in order (spec §2): `parent` needs a
/// pid, and a global callback can name neither `self`, `parent` nor a label.
fn check_contexts(expr: &Expr, owner: Option<Owner>, source: &str) -> Result<(), Error> {
    match expr {
        Expr::Atom(Atom { kind, span }) => {
            let context = match kind {
                AtomKind::Event { context, .. } => Some(context),
                AtomKind::Clock { owner: Some((_, context)), .. } => Some(context),
                AtomKind::Clock { owner: None, .. } => None,
            };
            let bad = |m: &str| Err(Error::new(ErrorKind::BadContext, m).in_field("triggers").at(*span, source));
            match (context, owner) {
                (None | Some(Context::Id(_)), _) => Ok(()),
                // `parent` on a job without one is accepted and never met (spec §9).
                (Some(_), Some(_)) => Ok(()),
                (Some(_), None) => bad("a global callback has no owner, so it cannot use self, parent or labels"),
            }
        }
        Expr::And(xs) | Expr::Or(xs) => xs.iter().try_for_each(|x| check_contexts(x, owner, source)),
    }
}

/// Whether a trigger names `parent` anywhere.
fn mentions_parent(expr: &Expr) -> bool {
    match expr {
        Expr::Atom(Atom { kind: AtomKind::Event { context, .. }, .. }) => *context == Context::Parent,
        Expr::Atom(Atom { kind: AtomKind::Clock { owner, .. }, .. }) => {
            owner.as_ref().is_some_and(|(_, context)| *context == Context::Parent)
        }
        Expr::And(xs) | Expr::Or(xs) => xs.iter().any(mentions_parent),
    }
}

/// The callbacks a `dependency` attribute stands for (spec §4, §8): one ANDing the job
/// links, one per agenda item for the work links, one per instance for the subjob links.
fn dependency(dep: &str, spec: &JobSpec, limit: u32) -> Result<Vec<(&'static str, Expr)>, Error> {
    let links = parse_dependency(dep)
        .map_err(|e| Error::new(ErrorKind::Dependency, e.to_string()).at(e.span, dep).in_field("dependency"))?;
    for (kind, word) in [(LinkKind::Job, "job"), (LinkKind::Work, "work"), (LinkKind::Subjob, "subjob")] {
        if links.iter().filter(|l| l.kind == kind).count() > limit as usize {
            let message = format!("more {word} links than the limit of {limit} atoms a trigger may have");
            return Err(Error::new(ErrorKind::Dependency, message).in_field("dependency"));
        }
    }
    let atoms = |kind: LinkKind, ty: trigwire::EventType, extra: Extra| {
        let atoms: Vec<Expr> = links
            .iter()
            .filter(|l| l.kind == kind)
            .map(|l| {
                let kind = AtomKind::Event {
                    name: Name::Builtin(l.state),
                    ty,
                    context: l.target.clone(),
                    extra: extra.clone(),
                };
                Expr::Atom(Atom { kind, span: Span::new(0, 0) })
            })
            .collect();
        match atoms.len() {
            0 => None,
            1 => atoms.into_iter().next(),
            _ => Some(Expr::And(atoms)),
        }
    };
    let mut out = Vec::new();
    if let Some(expr) = atoms(LinkKind::Job, trigwire::EventType::Job, Extra::None) {
        out.push(("unblock-self", expr));
    }
    for w in &spec.agenda {
        match atoms(LinkKind::Work, trigwire::EventType::Work, Extra::Name(w.as_str().into())) {
            Some(expr) => out.push(("unblock-work-self", expr)),
            None => break,
        }
    }
    for i in 0..spec.subjobs.max(1) {
        match atoms(LinkKind::Subjob, trigwire::EventType::Subjob, Extra::Subjob(i)) {
            Some(expr) => out.push(("unblock-subjob-self", expr)),
            None => break,
        }
    }
    Ok(out)
}

fn id_space() -> Error {
    Error::new(ErrorKind::IdSpaceExhausted, "more than 2^32 callbacks registered over the engine's life")
}

/// Moves the atoms' spans `offset` bytes on.
fn shift(expr: &mut Expr, offset: usize) {
    match expr {
        Expr::Atom(a) => a.span = Span::new(a.span.start + offset, a.span.end + offset),
        Expr::And(xs) | Expr::Or(xs) => xs.iter_mut().for_each(|x| shift(x, offset)),
    }
}

/// The atoms of `expr`, depth first, left to right.
fn collect_atoms(expr: &Expr, out: &mut Vec<AtomKind>) {
    match expr {
        Expr::Atom(a) => out.push(a.kind.clone()),
        Expr::And(xs) | Expr::Or(xs) => xs.iter().for_each(|x| collect_atoms(x, out)),
    }
}

/// Evaluates `expr` with its atoms' latches, numbered depth first from `*at`. Every
/// operand is visited (no short cut), so the numbering stays in step.
fn eval(expr: &Expr, latch: &[bool], at: &mut usize) -> bool {
    match expr {
        Expr::Atom(_) => {
            *at += 1;
            latch[*at - 1]
        }
        Expr::And(xs) => {
            let values: Vec<bool> = xs.iter().map(|x| eval(x, latch, at)).collect();
            values.iter().all(|&v| v)
        }
        Expr::Or(xs) => {
            let values: Vec<bool> = xs.iter().map(|x| eval(x, latch, at)).collect();
            values.iter().any(|&v| v)
        }
    }
}

/// The first tick of `start`, `start + every`, ... after `now`: ticks at or before the
/// current time have been reached already and are not replayed. `None` past `u64::MAX`.
fn first_tick_after(start: u64, every: u64, now: u64) -> Option<u64> {
    let mut t = start;
    if t <= now {
        let steps = ((now - start) / every).checked_add(1)?;
        t = start.checked_add(steps.checked_mul(every)?)?;
    }
    Some(t)
}
