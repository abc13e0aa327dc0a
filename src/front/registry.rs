//! The job registry: ids, process groups, labels, actions, and turning submissions
//! into resolved callbacks for the compiled matcher.

use std::borrow::Cow;
use std::sync::Arc;

use hashbrown::HashMap;

use crate::engine::snapshot::{snapshot_error, Dec, Enc};
use crate::error::{Error, ErrorKind, LimitName};
use crate::front::ids::{ActionId, CallbackId, Symbol};
use crate::front::intern::{shrink_vec, Interner};
use crate::front::model::{CallbackSpec, Event, EventExtra, JobSpec, Language};
use crate::front::resolve::{resolve, Ctx, ExtraKey, NameKey, Owner, Resolved, Shape, Slot};
use crate::front::{parse_dependency, CodeLevel, Link, LinkKind};
use crate::syntax::{
    is_label, parse, Atom, AtomKind, Context, CustomNames, EventName, EventType, Expr, Extra, Name, ParseLimits,
    Schedule, Span,
};

/// A live job.
#[derive(Clone, Debug)]
pub(crate) struct JobRecord {
    pub pgrp: u64,
    pub label: Symbol,
    /// Agenda item names, for target lookups.
    pub agenda: Agenda,
    pub subjobs: u64,
    pub first_callback: CallbackId,
    pub callbacks: u32,
    /// Whether the host reported this job's `removed` event while it was live, so that
    /// removing it does not deliver the event a second time (spec §9).
    pub removed_reported: bool,
    /// Every symbol the job uses (label, agenda, its callbacks' terms), each once: the
    /// references it holds while live (see `src/front/intern.rs`).
    pub symbols: SymbolRuns,
}

/// A set of symbols as sorted runs of consecutive numbers: a frame agenda ("1" to
/// "1000", interned together) is one run of 8 bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SymbolRuns(Box<[(u32, u32)]>);

impl SymbolRuns {
    /// The runs of `symbols` (any order, repeats allowed).
    pub fn new(mut symbols: Vec<Symbol>) -> SymbolRuns {
        symbols.sort_unstable();
        symbols.dedup();
        let mut runs: Vec<(u32, u32)> = Vec::new();
        for s in symbols {
            match runs.last_mut() {
                Some((first, len)) if *first + *len == s.as_u32() => *len += 1,
                _ => runs.push((s.as_u32(), 1)),
            }
        }
        SymbolRuns(runs.into_boxed_slice())
    }

    /// Calls `f` with each symbol.
    pub fn each(&self, mut f: impl FnMut(Symbol)) {
        for &(first, len) in self.0.iter() {
            (first..first + len).for_each(|s| f(Symbol::from_u32(s)));
        }
    }

    /// Bytes held beside the record.
    pub fn heap_bytes(&self) -> usize {
        self.0.len() * 8
    }

    fn encode(&self, e: &mut Enc) {
        e.len(self.0.len());
        for &(first, len) in self.0.iter() {
            e.u32(first);
            e.u32(len);
        }
    }

    /// Decodes runs of live symbols of `symbols`, sorted and apart, as `new` makes them.
    fn decode(d: &mut Dec<'_>, symbols: &Interner) -> Result<SymbolRuns, Error> {
        let n = d.count(8)?;
        let mut runs = Vec::with_capacity(n);
        let mut end = 0u64;
        for _ in 0..n {
            let (first, len) = (d.u32()?, d.u32()?);
            let fine = len > 0
                && (runs.is_empty() || u64::from(first) > end)
                && u64::from(first) + u64::from(len) <= symbols.len() as u64
                && (first..first + len).all(|s| symbols.is_live(s));
            d.check(fine, || format!("symbol run {first}+{len} is out of order or names a freed symbol"))?;
            end = u64::from(first) + u64::from(len);
            runs.push((first, len));
        }
        Ok(SymbolRuns(runs.into_boxed_slice()))
    }
}

/// The symbols a callback's slots use.
pub(crate) fn slot_symbols(slots: &[Slot], out: &mut Vec<Symbol>) {
    for slot in slots {
        if let Slot::Event(term) = slot {
            if let NameKey::Custom(s) = term.name {
                out.push(s);
            }
            if let Ctx::Label(_, s) = term.ctx {
                out.push(s);
            }
            if let ExtraKey::Sym(s) = term.extra {
                out.push(s);
            }
        }
    }
}

/// Gives a map's memory back when it is mostly empty.
pub(crate) fn shrink_map<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > 4 * map.len() + 64 {
        map.shrink_to(2 * map.len());
    }
}

impl JobRecord {
    pub fn has_work(&self, work: Symbol) -> bool {
        self.agenda.contains(work)
    }
}

/// The set of a job's agenda item names. Frame names interned together ("1" to "1000")
/// are contiguous symbols, so most agendas are a range: no storage per frame and one
/// comparison per lookup. Others keep their sorted symbols.
#[derive(Clone, Debug)]
pub(crate) enum Agenda {
    /// Exactly the symbols `first..first + len`.
    Range { first: u32, len: u32 },
    /// Sorted, without duplicates.
    Sorted(Box<[Symbol]>),
}

impl Agenda {
    pub(super) fn new(mut symbols: Vec<Symbol>) -> Agenda {
        symbols.sort_unstable();
        symbols.dedup();
        let (Some(first), Some(last)) = (symbols.first(), symbols.last()) else {
            return Agenda::Range { first: 0, len: 0 };
        };
        let span = (last.as_u32() - first.as_u32()) as usize + 1;
        match u32::try_from(symbols.len()) {
            Ok(len) if span == symbols.len() => Agenda::Range { first: first.as_u32(), len },
            _ => Agenda::Sorted(symbols.into_boxed_slice()),
        }
    }

    /// Whether `work` is one of the names.
    /// Whether the agenda has no item.
    pub fn is_empty(&self) -> bool {
        matches!(self, Agenda::Range { len: 0, .. }) || matches!(self, Agenda::Sorted(s) if s.is_empty())
    }

    pub fn contains(&self, work: Symbol) -> bool {
        // PERF: a target lookup per firing was a binary search over the agenda, a
        // quarter of random-order replay time at 3M callbacks. A range is one compare:
        // `trigwire bench --jobs 1000 --frames 1000`, 793-816 -> 601-630 ns per random
        // event, 49.3 -> 45.3 bytes per callback (three runs each, same session).
        match self {
            Agenda::Range { first, len } => work.as_u32().wrapping_sub(*first) < *len,
            Agenda::Sorted(symbols) => symbols.binary_search(&work).is_ok(),
        }
    }

    /// Bytes held beside the record.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Agenda::Range { .. } => 0,
            Agenda::Sorted(symbols) => symbols.len() * std::mem::size_of::<Symbol>(),
        }
    }
}

/// A callback's language, code and maximum, shared by identical callbacks.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Action {
    /// The language of the code.
    pub language: Language,
    /// The code, as given.
    pub code: Box<str>,
    /// How many times it may fire; `None` is unlimited.
    pub maximum: Option<u64>,
    /// For qube codes, what the code acts on.
    pub level: Option<CodeLevel>,
}

/// A trigger parsed once, for universal callbacks attached to every job.
#[derive(Clone, Debug)]
pub(super) struct Universal {
    pub(super) expr: Expr,
    pub(super) source: String,
    pub(super) action: ActionId,
}

/// An event resolved for matching.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ResolvedEvent {
    pub name: NameKey,
    pub ty: EventType,
    pub job: u64,
    /// The extra's symbol; `None` for job events and for names never interned (which no
    /// term can name exactly).
    pub extra: Option<Symbol>,
    /// The job's (process group, label) if it is live.
    pub label: Option<(u64, Symbol)>,
    /// For subjob events, the instance id (for targets).
    pub subjob: Option<u64>,
}

/// The rule that ties an event's name to the names a trigger may wait for, written
/// once: a terminal name (complete, failed, killed) also answers to the derived `done`.
fn derived(name: NameKey) -> Option<NameKey> {
    match name {
        NameKey::Builtin(n) if n.is_terminal() => Some(NameKey::Builtin(EventName::Done)),
        _ => None,
    }
}

// The one term-matching rule: an event matches a term when the term's name is among
// `names()`, its context among `contexts()` and its extra among `extras()`. The index
// looks up exactly these keys; kept facts (`retroactive`) are recorded under `extras()`
// and checked through `names_answering`, the inverse of `names()`.
impl ResolvedEvent {
    /// The names the event matches: its own, plus `done` for terminal events.
    pub fn names(&self) -> impl Iterator<Item = NameKey> {
        std::iter::once(self.name).chain(derived(self.name))
    }

    /// The contexts the event matches: its job id, plus its label if live.
    pub fn contexts(&self) -> impl Iterator<Item = Ctx> {
        let label = self.label.map(|(g, l)| Ctx::Label(g, l));
        std::iter::once(Ctx::Job(self.job)).chain(label)
    }

    /// The term extras the event matches: none for a job event; otherwise `*`, and its
    /// own extra if it has one that was interned.
    pub fn extras(&self) -> impl Iterator<Item = ExtraKey> {
        let (first, exact) = match self.ty {
            EventType::Job => (ExtraKey::None, None),
            _ => (ExtraKey::Any, self.extra.map(ExtraKey::Sym)),
        };
        std::iter::once(first).chain(exact)
    }

    /// The names of the events whose [`ResolvedEvent::names`] include `name`: the
    /// events a term naming `name` waits for.
    pub fn names_answering(name: NameKey) -> impl Iterator<Item = NameKey> {
        let mut from =
            EventName::ALL.into_iter().map(NameKey::Builtin).filter(move |&n| derived(n) == Some(name)).peekable();
        // A derived name is never an event's own.
        let own = from.peek().is_none().then_some(name);
        own.into_iter().chain(from)
    }
}

/// Limits on what one submission, clock move or wire line may ask for, beyond the
/// trigger limits. Each has a default that a 10,000-job farm stays well inside, and
/// each fails with an error that names it (README, "Limits").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Limits on each trigger.
    pub parse: ParseLimits,
    /// Most subjobs a job may declare. Default 1,000,000: a `dependency` subjob link
    /// makes one callback per instance.
    pub subjobs: u64,
    /// Most catch-up ticks one clock move may fire (`TooManyTicks` beyond it): ticks of
    /// repeat atoms beyond the first tick of each in the move, counting only callbacks
    /// that can still fire (live, under their `maximum`). One-shot atoms and a repeat's first tick are work that registration already
    /// bounds and are not counted, so a move of one second always passes and the clock
    /// can never be wedged (see `src/engine/clock.rs`). Default 1,000,000: a repeat
    /// trigger with a one-second interval and a clock jump of years would otherwise run
    /// for hours. Not consulted with `CatchUp::Once`, where every repeat fires at most
    /// once per move.
    pub ticks_per_move: u64,
    /// Most instances in one submission: the sum over its jobs of their subjobs, at
    /// least one a job (so it also bounds the jobs). Default 4,000,000: the per-job
    /// limit alone let a 545-byte line of 8 jobs declare 8M instances.
    /// [`ErrorKind::OverLimit`] with [`LimitName::SubmissionInstances`].
    pub submission_instances: u64,
    /// Most callbacks one submission may register: its jobs' own, those their
    /// `dependency` attributes generate (one per agenda item or instance for work and
    /// subjob links) and the universal ones attached to them. Default 2,000,000, above
    /// the 1,000,000 one job may generate from subjob links. Checked as callbacks are
    /// planned, so a submission past it stops there, holding at most this many.
    /// [`ErrorKind::OverLimit`] with [`LimitName::SubmissionCallbacks`].
    pub submission_callbacks: u64,
    /// Most trigger atoms one submission may register, every element of a trigger list
    /// and every link of a generated callback counted. Default 4,000,000 (two a
    /// callback at the callback limit). [`ErrorKind::OverLimit`] with
    /// [`LimitName::SubmissionAtoms`].
    pub submission_atoms: u64,
    /// Most bytes in one line of the wire format (`trigwire run --max-line-bytes`),
    /// without its line end. Default 256 MiB: the one-line submission of 10,000 jobs ×
    /// 100 frames of the host-boundary bench is 115 MB. A longer line is rejected
    /// ([`ErrorKind::OverLimit`] with [`LimitName::LineBytes`]); `trigwire run` keeps
    /// no more than the limit of it in memory. Read by hosts of the wire format
    /// (`Replay::limit_lines`), not by the engine.
    pub line_bytes: u64,
    /// Most facts kept for `retroactive` (an event keeps one, or two for a work,
    /// subjob or host event). Default 1,000,000 (about 100 MB); one more evicts the
    /// oldest, first recorded first. Facts about a job are dropped when it is removed.
    pub facts: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            parse: ParseLimits::default(),
            subjobs: 1_000_000,
            ticks_per_move: 1_000_000,
            submission_instances: 4_000_000,
            submission_callbacks: 2_000_000,
            submission_atoms: 4_000_000,
            line_bytes: 256 << 20,
            facts: 1_000_000,
        }
    }
}

/// The error for a submission or line past `limit`, whose value is `max`; `what` says
/// what was counted, as the message reads.
pub(crate) fn over_limit(limit: LimitName, max: u64, what: &str) -> Error {
    let message = format!("more than the limit of {max} {what} (Limits::{})", limit.field());
    Error::new(ErrorKind::OverLimit { limit, max }, message)
}

/// Jobs, groups, labels, symbols and actions.
#[derive(Clone, Debug, Default)]
pub(crate) struct Registry {
    pub jobs: HashMap<u64, JobRecord>,
    /// Live process groups: label → job id.
    pub groups: HashMap<u64, HashMap<Symbol, u64>>,
    pub symbols: Interner,
    pub custom: CustomNames,
    pub limits: Limits,
    /// By action id: the action and its reference count (one per live callback and
    /// per universal callback); `None` once freed. See `src/front/intern.rs` for the
    /// same scheme over symbols.
    actions: Vec<Option<(Arc<Action>, u32)>>,
    action_ids: HashMap<Action, ActionId>,
    /// Freed action ids below `actions.len()`, reused last freed first.
    free_actions: Vec<ActionId>,
    /// Actions made since the last [`Registry::settle`].
    fresh_actions: Vec<ActionId>,
    /// Live global callbacks: the symbols each holds.
    pub(crate) globals_live: HashMap<CallbackId, SymbolRuns>,
    pub(super) universal: Vec<Universal>,
    pub(super) max_id: u64,
    pub(super) next_callback: u32,
    globals: u32,
    /// Work counted planning submissions ([`crate::Stats::plan_steps`]).
    pub plan_steps: u64,
    /// Per live group, a number below which every `qubeN` is a live label of the group,
    /// where the search for a generated label starts. A hint: a group without one
    /// starts at 0, which is always right, so a snapshot may leave it out.
    pub(super) qube_floor: HashMap<u64, u64>,
}

impl Registry {
    pub fn new(limits: Limits) -> Registry {
        Registry { limits, ..Registry::default() }
    }

    /// The id the next callback registered takes.
    pub fn next_callback(&self) -> u32 {
        self.next_callback
    }

    /// How many global callbacks were ever registered: the next one's position.
    pub fn globals(&self) -> u32 {
        self.globals
    }

    /// Whether action id `id` is a live action.
    pub fn action_live(&self, id: u32) -> bool {
        matches!(self.actions.get(id as usize), Some(Some(_)))
    }

    /// The reference count of each action id (0 for freed ones).
    pub fn action_refs(&self) -> Vec<u32> {
        self.actions.iter().map(|a| a.as_ref().map_or(0, |(_, refs)| *refs)).collect()
    }

    /// The actions of the universal callbacks, one per callback.
    pub fn universal_actions(&self) -> impl Iterator<Item = ActionId> + '_ {
        self.universal.iter().map(|u| u.action)
    }

    /// A live action.
    pub fn action(&self, id: ActionId) -> &Arc<Action> {
        &self.actions[id.as_usize()].as_ref().expect("a live action").0
    }

    /// Takes a reference on an action.
    pub fn retain_action(&mut self, id: ActionId) {
        if let Some((_, refs)) = self.actions.get_mut(id.as_usize()).and_then(Option::as_mut) {
            *refs += 1;
        }
    }

    /// Drops a reference on an action, freeing it when none is left.
    pub fn release_action(&mut self, id: ActionId) {
        let Some((_, refs)) = self.actions.get_mut(id.as_usize()).and_then(Option::as_mut) else { return };
        *refs = refs.saturating_sub(1);
        if *refs == 0 {
            self.free_action(id);
        }
    }

    fn free_action(&mut self, id: ActionId) {
        let Some((action, _)) = self.actions[id.as_usize()].take() else { return };
        self.action_ids.remove(&*action);
        self.free_actions.push(id);
        while matches!(self.actions.last(), Some(None)) {
            self.actions.pop();
        }
    }

    /// Frees the symbols and actions made since the last call that nothing holds: what
    /// a rejected command, or the resolution of an event, interned. Called after every
    /// command, so a rejected one leaves the tables as it found them.
    pub fn settle(&mut self) {
        self.symbols.settle();
        let fresh = std::mem::take(&mut self.fresh_actions);
        for &id in fresh.iter().rev() {
            if matches!(self.actions.get(id.as_usize()), Some(Some((_, 0)))) {
                self.free_action(id);
            }
        }
        self.fresh_actions = fresh;
        self.fresh_actions.clear();
        shrink_vec(&mut self.fresh_actions);
        // Memory back from a mostly empty table, as in `Interner::settle`.
        let end = self.actions.len();
        if self.free_actions.len() > 2 * (end - self.action_ids.len()) + 64 {
            self.free_actions.retain(|a| a.as_usize() < end);
        }
        shrink_vec(&mut self.actions);
        shrink_vec(&mut self.free_actions);
        shrink_map(&mut self.action_ids);
        shrink_map(&mut self.jobs);
        shrink_map(&mut self.groups);
        shrink_map(&mut self.qube_floor);
        shrink_map(&mut self.globals_live);
    }

    /// Takes a reference on each symbol of `runs`.
    pub fn retain_symbols(&mut self, runs: &SymbolRuns) {
        runs.each(|s| self.symbols.retain(s));
    }

    /// Drops a reference on each symbol of `runs`.
    pub fn release_symbols(&mut self, runs: &SymbolRuns) {
        runs.each(|s| self.symbols.release(s));
    }

    /// Bytes of the live process groups: their label maps and generated-label floors.
    pub fn group_bytes(&self) -> usize {
        self.groups.capacity() * 49
            + self.groups.values().map(|g| g.capacity() * 13).sum::<usize>()
            + self.qube_floor.capacity() * (std::mem::size_of::<(u64, u64)>() + 1)
    }

    /// Bytes of the action table, and of the records of live global callbacks,
    /// universal callbacks and custom event names.
    pub fn table_bytes(&self) -> (usize, usize) {
        let actions = self.actions.capacity() * std::mem::size_of::<Option<(Arc<Action>, u32)>>()
            + self
                .actions
                .iter()
                .flatten()
                .map(|(a, _)| std::mem::size_of::<Action>() + 16 + a.code.len())
                .sum::<usize>()
            + self.action_ids.capacity() * (std::mem::size_of::<(Action, ActionId)>() + 1)
            + self.action_ids.keys().map(|a| a.code.len()).sum::<usize>()
            + (self.free_actions.capacity() + self.fresh_actions.capacity()) * 4;
        let globals = self.globals_live.capacity() * (std::mem::size_of::<(CallbackId, SymbolRuns)>() + 1)
            + self.globals_live.values().map(SymbolRuns::heap_bytes).sum::<usize>();
        // Universal callbacks (their source, and their tree at one node per atom) and
        // custom event names: they grow with what a host registers, and stay.
        let universal = self.universal.capacity() * std::mem::size_of::<Universal>()
            + self
                .universal
                .iter()
                .map(|u| u.source.capacity() + atom_count(&u.expr) as usize * std::mem::size_of::<Expr>() * 2)
                .sum::<usize>();
        let custom = self.custom.iter().map(|n| n.len() + 16).sum::<usize>();
        (actions, globals + universal + custom)
    }

    /// Parses, checks and resolves one callback.
    pub fn callback(
        &mut self,
        spec: &CallbackSpec,
        owner: Option<Owner>,
        id: CallbackId,
        index: u32,
    ) -> Result<Resolved, Error> {
        self.callback_counted(spec, owner, id, index).map(|(resolved, _)| resolved)
    }

    /// [`Registry::callback`], and how many atoms its trigger (or list) has.
    pub fn callback_counted(
        &mut self,
        spec: &CallbackSpec,
        owner: Option<Owner>,
        id: CallbackId,
        index: u32,
    ) -> Result<(Resolved, u64), Error> {
        let action = self.check_action(spec)?;
        let (expr, source) = self.parse_triggers(&spec.triggers)?;
        let (slots, shape) = resolve(&expr, owner, &source, &mut self.symbols, &mut self.plan_steps)?;
        Ok((Resolved { id, owner: owner.map(|o| o.id), index, action, slots, shape }, atom_count(&expr)))
    }

    /// Parses a list of triggers into their OR. Errors name the element.
    /// Parses a list of triggers into their OR. Parse errors name the element; the
    /// spans of a list's atoms point into the elements joined with ` || `, the text
    /// that later (resolve) errors render.
    fn parse_triggers<'t>(&self, triggers: &'t [String]) -> Result<(Expr, Cow<'t, str>), Error> {
        if let [text] = triggers {
            let expr = parse(text, &self.limits.parse, &self.custom).map_err(|e| Error::parse(e, "trigger"))?;
            return Ok((expr, Cow::Borrowed(text)));
        }
        let mut exprs = Vec::with_capacity(triggers.len());
        let (mut offset, mut atoms) = (0, 0u64);
        for (t, text) in triggers.iter().enumerate() {
            let mut expr = parse(text, &self.limits.parse, &self.custom).map_err(|e| match triggers.len() {
                1 => Error::parse(e, "trigger"),
                _ => Error::parse(e, &format!("trigger {t}")).in_trigger(t),
            })?;
            // The atom limit holds for the list as a whole: a list is one trigger.
            atoms += atom_count(&expr);
            let limit = self.limits.parse.atoms;
            if atoms > u64::from(limit) {
                let kind = crate::syntax::ParseErrorKind::TooManyAtoms { limit };
                let message = format!("trigger {t}: more atoms than the limit of {limit} in the list of triggers");
                let span = Span::new(offset, offset + text.len());
                return Err(Error::new(ErrorKind::Parse(kind), message)
                    .at(span, &triggers.join(OR_JOIN))
                    .in_trigger(t)
                    .in_field("triggers"));
            }
            shift_spans(&mut expr, offset);
            offset += text.len() + OR_JOIN.len();
            exprs.push(expr);
        }
        match exprs.len() {
            0 => Err(Error::new(ErrorKind::Parse(crate::syntax::ParseErrorKind::Empty), "no trigger given")),
            1 => Ok((exprs.pop().expect("one"), Cow::Borrowed(&triggers[0]))),
            _ => Ok((Expr::Or(exprs), Cow::Owned(triggers.join(OR_JOIN)))),
        }
    }

    fn check_action(&mut self, spec: &CallbackSpec) -> Result<ActionId, Error> {
        let level = match spec.language {
            Language::Qube => Some(CodeLevel::of(&spec.code).ok_or_else(|| {
                Error::new(
                    ErrorKind::UnknownCode,
                    format!("unknown qube action code `{}`; expected one of spec §6 such as unblock-self", spec.code),
                )
                .in_field("code")
            })?),
            _ => None,
        };
        Ok(self.intern_action(spec.language, &spec.code, spec.maximum, level))
    }

    pub(super) fn intern_action(
        &mut self,
        language: Language,
        code: &str,
        maximum: Option<u64>,
        level: Option<CodeLevel>,
    ) -> ActionId {
        let action = Action { language, code: code.into(), maximum, level };
        if let Some(&id) = self.action_ids.get(&action) {
            return id;
        }
        let shared = Some((Arc::new(action.clone()), 0));
        let id = loop {
            match self.free_actions.pop() {
                Some(a) if a.as_usize() < self.actions.len() => {
                    self.actions[a.as_usize()] = shared;
                    break a;
                }
                Some(_) => continue,
                None => {
                    let a = ActionId::new(self.actions.len()).expect("fewer than 2^32 distinct actions");
                    self.actions.push(shared);
                    break a;
                }
            }
        };
        self.action_ids.insert(action, id);
        self.fresh_actions.push(id);
        id
    }

    /// Adds a universal callback, attached to every job submitted from now on.
    pub fn add_universal(&mut self, spec: &CallbackSpec) -> Result<(), Error> {
        let action = self.check_action(spec)?;
        let (expr, source) = self.parse_triggers(&spec.triggers)?;
        // A universal callback holds its action for good.
        self.retain_action(action);
        self.universal.push(Universal { expr, source: source.into_owned(), action });
        Ok(())
    }

    /// Resolves a global callback and takes its id and index.
    pub fn global(&mut self, spec: &CallbackSpec) -> Result<Resolved, Error> {
        let id = CallbackId::from_u32(self.next_callback);
        if self.next_callback == u32::MAX {
            return Err(id_space());
        }
        let resolved = self.callback(spec, None, id, self.globals)?;
        self.next_callback += 1;
        self.globals += 1;
        Ok(resolved)
    }

    /// The record of a live job.
    ///
    /// # Errors
    /// A job that is not live.
    pub fn live_job(&self, id: u64) -> Result<&JobRecord, Error> {
        self.jobs.get(&id).ok_or_else(|| not_live(id))
    }

    /// Removes a live job: frees its label and group membership.
    pub fn remove(&mut self, id: u64) -> Result<JobRecord, Error> {
        let record = self.jobs.remove(&id).ok_or_else(|| not_live(id))?;
        if let Some(group) = self.groups.get_mut(&record.pgrp) {
            group.remove(&record.label);
            if group.is_empty() {
                self.groups.remove(&record.pgrp);
                self.qube_floor.remove(&record.pgrp);
            } else {
                shrink_map(group);
                if let Some(n) = generated_number(self.symbols.resolve(record.label)) {
                    // `qubeN` is free again: the search must reach it.
                    if let Some(floor) = self.qube_floor.get_mut(&record.pgrp) {
                        *floor = (*floor).min(n);
                    }
                }
            }
        }
        self.symbols.release(record.label);
        self.release_symbols(&record.symbols);
        Ok(record)
    }

    /// Checks an event and resolves it for matching. `intern` interns its extra (needed
    /// when facts are kept); otherwise an unknown extra stays `None`.
    pub fn resolve_event(&mut self, event: &Event, intern: bool) -> Result<ResolvedEvent, Error> {
        let name = match &event.name {
            Name::Builtin(EventName::Done) => {
                return Err(Error::new(
                    ErrorKind::BadEvent,
                    "`done` is derived and cannot be reported; report complete, failed or killed",
                ));
            }
            Name::Builtin(n) => NameKey::Builtin(*n),
            Name::Custom(c) => match self.custom.get(c) {
                // The registered (lowercase) spelling, as triggers store it.
                Some(registered) => NameKey::Custom(self.symbols.intern(registered)),
                None => return Err(Error::new(ErrorKind::BadEvent, format!("unknown event name `{c}`"))),
            },
        };
        let mut digits = [0u8; 20];
        let text = match &event.extra {
            EventExtra::None => None,
            EventExtra::Work(s) | EventExtra::Host(s) => Some(s.as_str()),
            EventExtra::Subjob(i) => Some(decimal(*i, &mut digits)),
        };
        // PERF: no allocation per event (the subjob id is written into `digits`); an
        // extra that was never interned cannot be named by any term, so a lookup will do.
        let extra = match (text, intern) {
            (None, _) => None,
            (Some(t), true) => Some(self.symbols.intern(t)),
            (Some(t), false) => self.symbols.get(t),
        };
        let label = match self.jobs.get_mut(&event.job) {
            Some(record) => {
                if event.extra == EventExtra::None && event.name == Name::Builtin(EventName::Removed) {
                    record.removed_reported = true;
                }
                Some((record.pgrp, record.label))
            }
            None => None,
        };
        let subjob = match event.extra {
            EventExtra::Subjob(i) => Some(i),
            _ => None,
        };
        Ok(ResolvedEvent { name, ty: event.event_type(), job: event.job, extra, label, subjob })
    }

    /// The job currently holding `label` in `pgrp`.
    pub fn label_holder(&self, pgrp: u64, label: Symbol) -> Option<u64> {
        self.groups.get(&pgrp).and_then(|g| g.get(&label)).copied()
    }
}

/// `N` if `label` is `qubeN` as a generated label spells it (no leading zero).
fn generated_number(label: &str) -> Option<u64> {
    let digits = label.strip_prefix("qube")?;
    let canonical =
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && (digits == "0" || !digits.starts_with('0'));
    canonical.then(|| digits.parse().ok()).flatten()
}

/// `n` in decimal, written into the end of `buf`.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &str {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[at..]).expect("ASCII digits")
}

/// How a list of triggers is joined into one text.
const OR_JOIN: &str = " || ";

pub(super) fn atom_count(expr: &Expr) -> u64 {
    match expr {
        Expr::Atom(_) => 1,
        Expr::And(xs) | Expr::Or(xs) => xs.iter().map(atom_count).sum(),
    }
}

fn shift_spans(expr: &mut Expr, offset: usize) {
    match expr {
        Expr::Atom(a) => a.span = Span::new(a.span.start + offset, a.span.end + offset),
        Expr::And(xs) | Expr::Or(xs) => xs.iter_mut().for_each(|x| shift_spans(x, offset)),
    }
}

/// The callbacks that a `dependency` attribute compiles to (spec §8), handed to `each`
/// one at a time with their code: one for all job links, one per agenda item for work
/// links, one per instance for subjob links. Each ANDs the links of its kind, so a kind
/// may have at most `atoms` links (the trigger atom limit).
pub(super) fn dependency_callbacks(
    dep: &str,
    spec: &JobSpec,
    atoms: u32,
    budget: impl FnOnce(&[(u64, u64)]) -> Result<(), Error>,
    mut each: impl FnMut(Expr, &'static str) -> Result<(), Error>,
) -> Result<(), Error> {
    let links = parse_dependency(dep)
        .map_err(|e| Error::new(ErrorKind::Dependency, e.to_string()).at(e.span, dep).in_field("dependency"))?;
    let of = |kind: LinkKind| links.iter().filter(move |l| l.kind == kind);
    for kind in [LinkKind::Job, LinkKind::Work, LinkKind::Subjob] {
        if of(kind).count() > atoms as usize {
            let message = format!("more {kind:?} links than the limit of {atoms} atoms a trigger may have");
            return Err(Error::new(ErrorKind::Dependency, message.to_lowercase()).in_field("dependency"));
        }
    }
    // What will be generated, as (callbacks, atoms each), in order: `budget` can refuse
    // it before any is made.
    let groups = [
        (1, of(LinkKind::Job).count() as u64),
        (spec.agenda.len() as u64, of(LinkKind::Work).count() as u64),
        (spec.subjobs.max(1), of(LinkKind::Subjob).count() as u64),
    ];
    let groups: Vec<(u64, u64)> = groups.into_iter().filter(|&(n, links)| n > 0 && links > 0).collect();
    budget(&groups)?;
    if of(LinkKind::Job).next().is_some() {
        each(and(of(LinkKind::Job).map(|l| link_atom(l, EventType::Job, Extra::None)).collect()), "unblock-self")?;
    }
    if of(LinkKind::Work).next().is_some() {
        for w in &spec.agenda {
            let atoms = of(LinkKind::Work).map(|l| link_atom(l, EventType::Work, Extra::Name(w.as_str().into())));
            each(and(atoms.collect()), "unblock-work-self")?;
        }
    }
    if of(LinkKind::Subjob).next().is_some() {
        // One callback per instance; a job has at least one (spec §9).
        for i in 0..spec.subjobs.max(1) {
            let atoms = of(LinkKind::Subjob).map(|l| link_atom(l, EventType::Subjob, Extra::Subjob(i)));
            each(and(atoms.collect()), "unblock-subjob-self")?;
        }
    }
    Ok(())
}

fn not_live(id: u64) -> Error {
    Error::new(ErrorKind::UnknownJob, format!("job {id} is not live"))
}

pub(super) fn level_of(code: &str) -> CodeLevel {
    CodeLevel::of(code).expect("generated codes are valid")
}

pub(super) fn id_space() -> Error {
    Error::new(ErrorKind::IdSpaceExhausted, "more than 2^32 callbacks registered over the engine's life")
}

fn link_atom(link: &Link, ty: EventType, extra: Extra) -> Expr {
    let kind = AtomKind::Event { name: Name::Builtin(link.state), ty, context: link.target.clone(), extra };
    Expr::Atom(Atom { kind, span: Span::new(0, 0) })
}

fn and(mut atoms: Vec<Expr>) -> Expr {
    if atoms.len() == 1 {
        atoms.pop().expect("one")
    } else {
        Expr::And(atoms)
    }
}

impl Shape {
    /// How many slots a shape refers to (the highest slot + 1).
    pub fn width(&self) -> u32 {
        match self {
            Shape::Slot(s) => s + 1,
            Shape::And(xs) | Shape::Or(xs) => xs.iter().map(Shape::width).max().unwrap_or(0),
        }
    }
}

// Snapshots (format and bounds: src/engine/snapshot.rs). One `encode`/`decode` pair per
// struct; a field added to a struct is added to its pair.

impl Limits {
    /// Encodes every field.
    pub(crate) fn encode(&self, e: &mut Enc) {
        let Limits {
            parse: ParseLimits { nest, atoms, length },
            subjobs,
            ticks_per_move,
            submission_instances,
            submission_callbacks,
            submission_atoms,
            line_bytes,
            facts,
        } = *self;
        e.u32(nest);
        e.u32(atoms);
        e.len(length);
        e.u64(subjobs);
        e.u64(ticks_per_move);
        e.u64(submission_instances);
        e.u64(submission_callbacks);
        e.u64(submission_atoms);
        e.u64(line_bytes);
        e.u64(facts);
    }

    pub(crate) fn decode(d: &mut Dec<'_>) -> Result<Limits, Error> {
        let nest = d.u32()?;
        let atoms = d.u32()?;
        let length = d.u64()?;
        let length = usize::try_from(length).map_err(|_| d.err("a trigger length limit too large for this machine"))?;
        Ok(Limits {
            parse: ParseLimits { nest, atoms, length },
            subjobs: d.u64()?,
            ticks_per_move: d.u64()?,
            submission_instances: d.u64()?,
            submission_callbacks: d.u64()?,
            submission_atoms: d.u64()?,
            line_bytes: d.u64()?,
            facts: d.u64()?,
        })
    }
}

impl Registry {
    /// Encodes everything but the limits and the symbols, which have sections of their
    /// own. Process groups are not written: they are the live jobs' (pgrp, label)s.
    /// Nor are the generated-label floors (`qube_floor`, hints whose absence means a
    /// search from `qube0`, with the same answer) or `plan_steps` (a work counter).
    pub(crate) fn encode(&self, e: &mut Enc) {
        e.len(self.custom.iter().count());
        self.custom.iter().for_each(|n| e.str(n));
        e.len(self.actions.len());
        for slot in &self.actions {
            let Some((a, refs)) = slot else {
                e.u32(0);
                continue;
            };
            e.u32(*refs);
            let language = Language::ALL.iter().position(|&l| l == a.language).expect("listed");
            e.u8(language as u8);
            e.str(&a.code);
            e.opt_u64(a.maximum);
        }
        e.len(self.free_actions.len());
        self.free_actions.iter().for_each(|a| e.u32(a.as_u32()));
        e.len(self.universal.len());
        for u in &self.universal {
            e.u32(u.action.as_u32());
            e.str(&u.source);
            encode_expr(&u.expr, e);
        }
        // In id order, so that one state always writes the same bytes.
        let mut jobs: Vec<_> = self.jobs.iter().collect();
        jobs.sort_unstable_by_key(|(id, _)| **id);
        e.len(jobs.len());
        for (&id, job) in jobs {
            e.u64(id);
            job.encode(e);
        }
        e.u64(self.max_id);
        e.u32(self.next_callback);
        e.u32(self.globals);
        e.by_callback(self.globals_live.iter(), |e, runs| runs.encode(e));
    }

    /// Decodes what [`Registry::encode`] wrote, checking every id against `symbols`.
    pub(crate) fn decode(d: &mut Dec<'_>, limits: Limits, symbols: Interner) -> Result<Registry, Error> {
        let mut reg = Registry { limits, symbols, ..Registry::default() };
        for _ in 0..d.count(8)? {
            let at = d.offset();
            let name = d.str()?;
            let fine = !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                && reg.custom.insert(name);
            if !fine {
                return Err(snapshot_error(at, format!("`{name}` is not a custom event name the engine accepts")));
            }
        }
        let n = d.count_upto(4, u32::MAX.into())?;
        for id in 0..n {
            let refs = d.u32()?;
            if refs == 0 {
                reg.actions.push(None);
                continue;
            }
            let language = Language::ALL[d.tag(Language::ALL.len() as u8, "language")? as usize];
            let at = d.offset();
            let code = d.str()?;
            let maximum = d.opt_u64()?;
            let level = match language {
                Language::Qube => Some(
                    CodeLevel::of(code)
                        .ok_or_else(|| snapshot_error(at, format!("`{code}` is not a qube action code")))?,
                ),
                _ => None,
            };
            let action = Action { language, code: code.into(), maximum, level };
            let taken = reg.action_ids.insert(action.clone(), ActionId::from_u32(id as u32)).is_some();
            d.check(!taken, || "an action is listed twice".into())?;
            reg.actions.push(Some((Arc::new(action), refs)));
        }
        d.check(!matches!(reg.actions.last(), Some(None)), || "the action table ends in a freed action".into())?;
        let mut seen = vec![false; n];
        for _ in 0..d.count(4)? {
            let a = d.u32()?;
            if let Some(slot) = reg.actions.get(a as usize) {
                // `intern_action` reuses a listed id below the end without looking.
                d.check(slot.is_none() && !seen[a as usize], || format!("free action {a} is live or listed twice"))?;
                seen[a as usize] = true;
            }
            reg.free_actions.push(ActionId::from_u32(a));
        }
        let depth = limits.parse.nest.saturating_add(2);
        for _ in 0..d.count(13)? {
            let at = d.offset();
            let action = ActionId::from_u32(d.u32()?);
            if !reg.action_live(action.as_u32()) {
                return Err(snapshot_error(at, format!("universal callback names freed action {}", action.as_u32())));
            }
            let source = d.str()?.to_string();
            let expr = decode_expr(d, depth, &reg.custom, &source)?;
            reg.universal.push(Universal { expr, source, action });
        }
        let jobs = d.count(46)?;
        reg.jobs.reserve(jobs);
        for _ in 0..jobs {
            let at = d.offset();
            let id = d.u64()?;
            let job = JobRecord::decode(d, &reg.symbols)?;
            let taken = reg.groups.entry(job.pgrp).or_default().insert(job.label, id).is_some();
            if id == 0 || taken || reg.jobs.insert(id, job).is_some() {
                return Err(snapshot_error(at, format!("job {id} is 0, listed twice or holds a label taken")));
            }
        }
        reg.max_id = d.u64()?;
        reg.next_callback = d.u32()?;
        reg.globals = d.u32()?;
        for _ in 0..d.count(12)? {
            let at = d.offset();
            let id = d.u32()?;
            let runs = SymbolRuns::decode(d, &reg.symbols)?;
            let fine = id < reg.next_callback && reg.globals_live.insert(CallbackId::from_u32(id), runs).is_none();
            if !fine {
                return Err(snapshot_error(at, format!("global callback {id} is past the ids or listed twice")));
            }
        }
        let next = u64::from(reg.next_callback);
        let mut ranges = Vec::with_capacity(reg.jobs.len());
        for (&id, job) in &reg.jobs {
            let first = u64::from(job.first_callback.as_u32());
            let end = first + u64::from(job.callbacks);
            d.check(id <= reg.max_id && end <= next, || format!("job {id} is past the registry's next ids"))?;
            if job.callbacks > 0 {
                ranges.push((first, end));
            }
        }
        ranges.sort_unstable();
        d.check(ranges.windows(2).all(|w| w[0].1 <= w[1].0), || "two jobs claim the same callbacks".into())?;
        d.check(reg.globals <= reg.next_callback, || "more global callbacks than callbacks".into())?;
        Ok(reg)
    }
}

impl JobRecord {
    fn encode(&self, e: &mut Enc) {
        let JobRecord { pgrp, label, agenda, subjobs, first_callback, callbacks, removed_reported, symbols } = self;
        e.u64(*pgrp);
        e.u32(label.as_u32());
        match agenda {
            Agenda::Range { first, len } => {
                e.u8(0);
                e.u32(*first);
                e.u32(*len);
            }
            Agenda::Sorted(symbols) => {
                e.u8(1);
                e.len(symbols.len());
                symbols.iter().for_each(|s| e.u32(s.as_u32()));
            }
        }
        e.u64(*subjobs);
        e.u32(first_callback.as_u32());
        e.u32(*callbacks);
        e.bool(*removed_reported);
        symbols.encode(e);
    }

    fn decode(d: &mut Dec<'_>, interner: &Interner) -> Result<JobRecord, Error> {
        let symbols = interner.len();
        let pgrp = d.u64()?;
        let at = d.offset();
        let label = Symbol::from_u32(d.id(symbols, "symbol")?);
        d.check(interner.is_live(label.as_u32()), || format!("label symbol at {at} is freed"))?;
        let agenda = match d.tag(2, "agenda kind")? {
            0 => {
                let (first, len) = (d.u32()?, d.u32()?);
                d.check(u64::from(first) + u64::from(len) <= symbols as u64, || "an agenda past the symbols".into())?;
                Agenda::Range { first, len }
            }
            _ => {
                let n = d.count(4)?;
                let mut list = Vec::with_capacity(n);
                for _ in 0..n {
                    list.push(Symbol::from_u32(d.id(symbols, "symbol")?));
                }
                d.check(list.windows(2).all(|w| w[0] < w[1]), || "an agenda is not sorted".into())?;
                Agenda::Sorted(list.into_boxed_slice())
            }
        };
        Ok(JobRecord {
            pgrp,
            label,
            agenda,
            subjobs: d.u64()?,
            first_callback: CallbackId::from_u32(d.u32()?),
            callbacks: d.u32()?,
            removed_reported: d.bool()?,
            symbols: SymbolRuns::decode(d, interner)?,
        })
    }
}

/// A clock atom's schedule.
pub(crate) fn encode_schedule(schedule: Schedule, e: &mut Enc) {
    match schedule {
        Schedule::At(t) => {
            e.u8(0);
            e.u64(t);
        }
        Schedule::Every { start, every } => {
            e.u8(1);
            e.u64(start);
            e.u64(every);
        }
    }
}

pub(crate) fn decode_schedule(d: &mut Dec<'_>) -> Result<Schedule, Error> {
    Ok(match d.tag(2, "schedule")? {
        0 => Schedule::At(d.u64()?),
        _ => {
            let start = d.u64()?;
            let every = d.u64()?;
            d.check(every > 0, || "a repeat every 0 seconds".into())?;
            Schedule::Every { start, every }
        }
    })
}

/// A universal callback's trigger tree, as parsed.
fn encode_expr(expr: &Expr, e: &mut Enc) {
    match expr {
        Expr::Atom(atom) => {
            e.u8(0);
            e.len(atom.span.start);
            e.len(atom.span.end);
            match &atom.kind {
                AtomKind::Event { name, ty, context, extra } => {
                    e.u8(0);
                    encode_name(name, e);
                    e.u8(*ty as u8);
                    encode_context(context, e);
                    match extra {
                        Extra::None => e.u8(0),
                        Extra::Any => e.u8(1),
                        Extra::Name(n) => {
                            e.u8(2);
                            e.str(n);
                        }
                        Extra::Subjob(i) => {
                            e.u8(3);
                            e.u64(*i);
                        }
                    }
                }
                AtomKind::Clock { owner, schedule } => {
                    e.u8(1);
                    e.bool(owner.is_some());
                    if let Some((name, context)) = owner {
                        encode_name(name, e);
                        encode_context(context, e);
                    }
                    encode_schedule(*schedule, e);
                }
            }
        }
        Expr::And(xs) | Expr::Or(xs) => {
            e.u8(if matches!(expr, Expr::And(_)) { 1 } else { 2 });
            e.len(xs.len());
            xs.iter().for_each(|x| encode_expr(x, e));
        }
    }
}

/// Decodes a trigger tree no deeper than `depth`, whose spans must lie in `source` and
/// whose custom names must be registered: what the parser would have accepted.
fn decode_expr(d: &mut Dec<'_>, depth: u32, custom: &CustomNames, source: &str) -> Result<Expr, Error> {
    d.nested(depth, |d| match d.tag(3, "trigger node")? {
        0 => {
            let at = d.offset();
            let (start, end) = (d.u64()?, d.u64()?);
            let fits = |i: u64| usize::try_from(i).is_ok_and(|i| source.is_char_boundary(i));
            if start > end || !fits(start) || !fits(end) {
                return Err(snapshot_error(at, format!("the span {start}..{end} is not in its trigger")));
            }
            let span = Span::new(start as usize, end as usize);
            let kind = match d.tag(2, "atom kind")? {
                0 => {
                    let name = decode_name(d, custom)?;
                    let ty = EventType::ALL[d.tag(4, "event type")? as usize];
                    let context = decode_context(d)?;
                    let extra = match d.tag(4, "extra")? {
                        0 => Extra::None,
                        1 => Extra::Any,
                        2 => Extra::Name(d.str()?.into()),
                        _ => Extra::Subjob(d.u64()?),
                    };
                    AtomKind::Event { name, ty, context, extra }
                }
                _ => {
                    let owner = if d.bool()? { Some((decode_name(d, custom)?, decode_context(d)?)) } else { None };
                    let schedule = decode_schedule(d)?;
                    AtomKind::Clock { owner, schedule }
                }
            };
            Ok(Expr::Atom(Atom { kind, span }))
        }
        tag => {
            let n = d.count(1)?;
            d.check(n > 0, || "an empty AND or OR".into())?;
            let xs = (0..n).map(|_| decode_expr(d, depth, custom, source)).collect::<Result<Vec<_>, _>>()?;
            Ok(if tag == 1 { Expr::And(xs) } else { Expr::Or(xs) })
        }
    })
}

fn encode_name(name: &Name, e: &mut Enc) {
    match name {
        Name::Builtin(n) => {
            e.u8(0);
            e.u8(*n as u8);
        }
        Name::Custom(c) => {
            e.u8(1);
            e.str(c);
        }
    }
}

fn decode_name(d: &mut Dec<'_>, custom: &CustomNames) -> Result<Name, Error> {
    Ok(match d.tag(2, "event name kind")? {
        0 => Name::Builtin(EventName::ALL[d.tag(EventName::ALL.len() as u8, "event name")? as usize]),
        _ => {
            let at = d.offset();
            let name = d.str()?;
            if custom.get(name).is_none() {
                return Err(snapshot_error(at, format!("`{name}` is not a registered event name")));
            }
            Name::Custom(name.into())
        }
    })
}

fn encode_context(context: &Context, e: &mut Enc) {
    match context {
        Context::SelfJob => e.u8(0),
        Context::Parent => e.u8(1),
        Context::Id(id) => {
            e.u8(2);
            e.u64(*id);
        }
        Context::Label(l) => {
            e.u8(3);
            e.str(l);
        }
    }
}

fn decode_context(d: &mut Dec<'_>) -> Result<Context, Error> {
    Ok(match d.tag(4, "context")? {
        0 => Context::SelfJob,
        1 => Context::Parent,
        2 => Context::Id(d.u64()?),
        _ => {
            let at = d.offset();
            let label = d.str()?;
            if !is_label(label) {
                return Err(snapshot_error(at, format!("`{label}` is not a label")));
            }
            Context::Label(label.into())
        }
    })
}
