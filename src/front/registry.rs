//! The job registry: ids, process groups, labels, actions, and turning submissions
//! into resolved callbacks for the compiled matcher.

use std::borrow::Cow;
use std::sync::Arc;

use hashbrown::HashMap;

use crate::error::{Error, ErrorKind};
use crate::front::ids::{ActionId, CallbackId, Symbol};
use crate::front::intern::Interner;
use crate::front::model::{CallbackSpec, Event, EventExtra, JobSpec, Language};
use crate::front::resolve::{resolve, Ctx, ExtraKey, NameKey, Owner, Resolved, Shape};
use crate::front::{parse_dependency, CodeLevel, Link, LinkKind};
use crate::syntax::{parse, Atom, AtomKind, CustomNames, EventName, EventType, Expr, Extra, Name, ParseLimits, Span};

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

/// Limits on what one submission may ask for, beyond the trigger limits.
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
    /// Most facts kept for `retroactive` (an event keeps one, or two for a work,
    /// subjob or host event). Default 1,000,000 (about 100 MB); one more evicts the
    /// oldest, first recorded first. Facts about a job are dropped when it is removed.
    pub facts: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { parse: ParseLimits::default(), subjobs: 1_000_000, ticks_per_move: 1_000_000, facts: 1_000_000 }
    }
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
    actions: Vec<Arc<Action>>,
    action_ids: HashMap<Action, ActionId>,
    pub(super) universal: Vec<Universal>,
    pub(super) max_id: u64,
    pub(super) next_callback: u32,
    globals: u32,
}

impl Registry {
    pub fn new(limits: Limits) -> Registry {
        Registry { limits, ..Registry::default() }
    }

    pub fn action(&self, id: ActionId) -> &Arc<Action> {
        &self.actions[id.as_usize()]
    }

    /// Parses, checks and resolves one callback.
    pub fn callback(
        &mut self,
        spec: &CallbackSpec,
        owner: Option<Owner>,
        id: CallbackId,
        index: u32,
    ) -> Result<Resolved, Error> {
        let action = self.check_action(spec)?;
        let (expr, source) = self.parse_triggers(&spec.triggers)?;
        let (slots, shape) = resolve(&expr, owner, &source, &mut self.symbols)?;
        Ok(Resolved { id, owner: owner.map(|o| o.id), index, action, slots, shape })
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
        let id = ActionId::new(self.actions.len()).expect("fewer than 2^32 distinct actions");
        self.actions.push(Arc::new(action.clone()));
        self.action_ids.insert(action, id);
        id
    }

    /// Adds a universal callback, attached to every job submitted from now on.
    pub fn add_universal(&mut self, spec: &CallbackSpec) -> Result<(), Error> {
        let action = self.check_action(spec)?;
        let (expr, source) = self.parse_triggers(&spec.triggers)?;
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
            }
        }
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

fn atom_count(expr: &Expr) -> u64 {
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
