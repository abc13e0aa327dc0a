//! The properties the fuzz targets check, one `check_*` function per target.
//!
//! Each function takes the raw bytes libFuzzer hands the target and panics when the
//! property fails. The fuzz targets under `fuzz_targets/` are one-line wrappers, and
//! `tools/tests/fuzz_regressions.rs` in the tools crate includes this very file to replay the
//! committed seeds and crash inputs under an ordinary `cargo test`, so a target and its
//! regression test can never drift apart.

use std::collections::BTreeSet;

use arbitrary::{Arbitrary, Unstructured};
use serde_json::Value;
use trigwire::syntax::{parse, Atom, CustomNames, Expr, Name, ParseLimits, Span};
use trigwire::wire::{decode, Mode, Replay};
use trigwire::{
    BatchFiring, CallbackSpec, Config, Engine, Error, Event, EventName, Firing, JobSpec, JobStatus, Language, Limits,
    Submission,
};
use trigwire_tools::Reference;

// ---------------------------------------------------------------------------------------
// parse

/// Tight limits, so that the fuzzer reaches the nesting, atom and length errors with
/// short inputs.
const TIGHT: ParseLimits = ParseLimits { nest: 4, atoms: 8, length: 256 };

/// `parse`: any UTF-8 text, under the default and under tight limits, parses or fails
/// with an error whose span lies on character boundaries of the text and which renders;
/// a parsed tree prints to a canonical form that parses back to the same tree (spans
/// aside) and prints the same again.
pub fn check_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for limits in [ParseLimits::default(), TIGHT] {
        check_parse_with(text, &limits);
    }
}

fn check_parse_with(text: &str, limits: &ParseLimits) {
    let custom = CustomNames::default();
    let expr = match parse(text, limits, &custom) {
        Ok(expr) => expr,
        Err(e) => {
            let span = e.span();
            assert!(e.source_text().get(span.range()).is_some(), "span {span:?} off the text: {e:?}");
            let _ = e.to_string();
            return;
        }
    };
    let printed = expr.to_string();
    // The canonical form may be longer than the source (`a&&b` prints as `a && b`);
    // nesting and atom count never grow, so only the length limit is lifted.
    let relaxed = ParseLimits { length: usize::MAX, ..*limits };
    let again = parse(&printed, &relaxed, &custom)
        .unwrap_or_else(|e| panic!("canonical form {printed:?} of {text:?} does not parse:\n{e}"));
    assert_eq!(strip_spans(&expr), strip_spans(&again), "round trip of {text:?} via {printed:?}");
    assert_eq!(again.to_string(), printed, "printing is not idempotent for {text:?}");
}

/// The tree with every span zeroed, for comparing trees parsed from different texts.
pub fn strip_spans(expr: &Expr) -> Expr {
    match expr {
        Expr::Atom(a) => Expr::Atom(Atom { kind: a.kind.clone(), span: Span::default() }),
        Expr::And(xs) => Expr::And(xs.iter().map(strip_spans).collect()),
        Expr::Or(xs) => Expr::Or(xs.iter().map(strip_spans).collect()),
    }
}

// ---------------------------------------------------------------------------------------
// wire

/// `wire`: any bytes as a `trigwire run` log replay without panicking; every output
/// line the writer printed is a JSON object; every line that does not decode gets an
/// error line, and a decoding error's span lies on character boundaries of the line;
/// every error line is counted by [`Replay::rejected`] and rendered for a person, and
/// replaying in batches gives exactly the output of replaying one event at a time.
pub fn check_wire(data: &[u8]) {
    let mut replay = Replay::new(wire_engine());
    let output = replay.run_bytes(data, Mode::OneByOne);
    let out: Vec<Value> =
        output.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    let rendered = &output.errors;
    for v in &out {
        assert!(v.is_object(), "the writer printed a line that is not a JSON object: {v}");
    }
    let errors: Vec<&Value> = out.iter().filter(|v| v.get("error").is_some()).collect();
    assert_eq!(errors.len(), replay.rejected(), "error lines vs rejected count");
    assert_eq!(rendered.len(), replay.rejected(), "rendered errors vs rejected count");
    let lines = log_lines(data);
    let error_lines: BTreeSet<u64> = errors.iter().filter_map(|v| v["line"].as_u64()).collect();
    for (n, raw) in &lines {
        let decodes = std::str::from_utf8(raw).map_err(|_| ()).and_then(|s| decode(s).map_err(|e| check_span(&e, s)));
        if decodes.is_err() {
            assert!(error_lines.contains(&(*n as u64)), "line {n} does not decode but got no error line");
        }
    }
    let last = lines.last().map_or(0, |(n, _)| *n as u64);
    for v in &out {
        let line = v["line"].as_u64().unwrap_or_else(|| panic!("output without a line number: {v}"));
        assert!((1..=last).contains(&line), "output for line {line} past the last line {last}: {v}");
    }
    for size in [1, 3] {
        let batched = Replay::new(wire_engine()).run_bytes(data, Mode::Batch(size));
        assert_eq!(batched.bytes, output.bytes, "Mode::Batch({size}) differs from Mode::OneByOne");
    }
}

/// A decoding error that points into its line points at whole characters of it.
fn check_span(e: &Error, line: &str) {
    if let (Some(span), Some(text)) = (e.span(), e.source_text()) {
        if text == line {
            assert!(line.get(span.range()).is_some(), "span {span:?} cuts a character of {line:?}: {e}");
        }
    }
}

/// The engine the `wire` target replays onto: the defaults, with the tick and subjob
/// limits lowered from 1,000,000 to 1,000. At the defaults one `{"time": T}` line may
/// fire a million callbacks, a million output lines that `Replay::run_bytes` holds as
/// JSON values (about a gigabyte), and the fuzzer stops on its memory limit. The code
/// paths are the same at either limit; only the numbers differ.
fn wire_engine() -> Engine {
    let limits = Limits { ticks_per_move: 1_000, subjobs: 1_000, ..Limits::default() };
    Engine::new(Config { limits, ..Config::default() })
}

/// The non-blank lines of a log with their 1-based numbers, split as `Replay` splits.
fn log_lines(data: &[u8]) -> Vec<(usize, &[u8])> {
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    body.split(|&b| b == b'\n')
        .map(|raw| raw.strip_suffix(b"\r").unwrap_or(raw))
        .enumerate()
        .filter(|(_, raw)| !raw.iter().all(u8::is_ascii_whitespace))
        .map(|(i, raw)| (i + 1, raw))
        .collect()
}

// ---------------------------------------------------------------------------------------
// dependency and callbacks_conf

/// `dependency`: any UTF-8 text parses or fails naming an item whose span lies on
/// character boundaries of the text; parsed targets are valid trigger contexts.
pub fn check_dependency(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match trigwire::qube::parse_dependency(text) {
        Ok(links) => {
            for link in links {
                if let trigwire::syntax::Context::Label(l) = &link.target {
                    assert!(trigwire::syntax::is_label(l), "target {l:?} is not a label");
                }
            }
        }
        Err(e) => {
            assert!(text.get(e.span.range()).is_some(), "span {:?} off the text", e.span);
            let _ = e.to_string();
        }
    }
}

/// `callbacks_conf`: any UTF-8 text reads into entries and errors on lines that exist,
/// each line at most once; every entry has a file, a trigger and a line number in
/// range, and its trigger can be parsed.
pub fn check_callbacks_conf(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let count = text.lines().count();
    let (entries, errors) = trigwire::qube::parse_callbacks_conf(text);
    let mut lines: Vec<usize> = Vec::new();
    for entry in &entries {
        assert!((1..=count).contains(&entry.line), "entry line {} of {count}", entry.line);
        assert!(!entry.file.is_empty() && !entry.trigger.is_empty(), "empty part in {entry:?}");
        let _ = parse(&entry.trigger, &ParseLimits::default(), &CustomNames::default());
        lines.push(entry.line);
    }
    for e in &errors {
        assert!((1..=count).contains(&e.line), "error line {} of {count}", e.line);
        let _ = e.to_string();
        lines.push(e.line);
    }
    lines.sort_unstable();
    assert!(lines.windows(2).all(|w| w[0] < w[1]), "a line is both an entry and an error, or counted twice");
}

// ---------------------------------------------------------------------------------------
// engine_vs_reference

/// `engine_vs_reference`: the bytes, read as an [`Arbitrary`] [`Farm`], drive the
/// compiled engine, the reference semantics and a third engine fed through
/// [`Engine::process_batch`] through the same steps; every step must give the same
/// result and the same firings in the same order.
pub fn check_farm(data: &[u8]) {
    let Ok(farm) = Farm::arbitrary_take_rest(Unstructured::new(data)) else { return };
    run_farm(&farm);
}

/// A farm history in miniature. Names, labels and frames come from small pools so that
/// triggers and events meet often.
#[derive(Debug, Clone)]
pub struct Farm {
    /// `Config::retroactive` for all three engines.
    pub retroactive: bool,
    /// `Limits::ticks_per_move` for all three engines, when small enough to trip.
    pub ticks_limit: Option<u8>,
    /// `Config::refire` is `OnRise` (else `EachMatch`).
    pub on_rise: bool,
    /// `Config::catch_up` is `Once` (else `All`).
    pub catch_up_once: bool,
    /// `Limits::facts`, when small enough to evict.
    pub facts_limit: Option<u8>,
    /// What happens, in order.
    pub steps: Vec<Step>,
}

/// Most steps of a farm.
pub const MAX_STEPS: usize = 24;

/// The latest time the farm moves the clock to: the end of time itself, where repeat
/// ticks must stop without overflowing (tests/data/clock_at_the_end_of_time).
pub const LAST_TIME: u64 = u64::MAX;

impl<'a> Arbitrary<'a> for Farm {
    /// Steps are read until the bytes run out, rather than behind `arbitrary`'s
    /// continuation flags, so that any byte string of some length is a farm with
    /// several steps.
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Farm> {
        // One byte of options: bit 0 is `retroactive` (as the `bool` it was, so older
        // seeds keep their steps), bits 1 and 2 the re-firing and catch-up policies, bit
        // 3 a fact limit of the high four bits.
        let options: u8 = u.arbitrary()?;
        let retroactive = options & 1 == 1;
        let (on_rise, catch_up_once) = (options & 2 != 0, options & 4 != 0);
        let facts_limit = (options & 8 != 0).then_some(options >> 4);
        let ticks_limit = u.arbitrary()?;
        let mut steps = Vec::new();
        while !u.is_empty() && steps.len() < MAX_STEPS {
            steps.push(u.arbitrary()?);
        }
        Ok(Farm { retroactive, ticks_limit, on_rise, catch_up_once, facts_limit, steps })
    }
}

/// One thing the host does.
#[derive(Arbitrary, Debug, Clone)]
pub enum Step {
    /// Submit jobs together.
    Submit(Vec<JobIn>),
    /// Register a global callback.
    Global(CallbackIn),
    /// Register a universal callback for later jobs.
    Universal(CallbackIn),
    /// A run of events: one at a time on two engines, one batch on the third.
    Events(Vec<EventIn>),
    /// Move the clock forward by this much (0 stays put).
    Clock(u8),
    /// Try to move the clock back by one second.
    ClockBack,
    /// Jump the clock to this many seconds before [`LAST_TIME`].
    ClockFar(u8),
    /// Register the custom event name `approved` (again: an error).
    RegisterName,
    /// Remove a job.
    Remove(JobRef),
    /// Remove a callback by id (live, removed or never registered).
    RemoveCallback(u8),
    /// Save the two engines and carry on with the engines restored from the bytes.
    SaveRestore,
}

/// A job as submitted.
#[derive(Arbitrary, Debug, Clone)]
pub struct JobIn {
    /// An explicit id (1..=8) or the next free one.
    pub id: Option<u8>,
    /// A label from the pool, or none.
    pub label: Option<LabelIn>,
    /// Join an existing group (or a group that does not exist).
    pub pgrp: Option<JobRef>,
    /// A parent job.
    pub pid: Option<JobRef>,
    /// Submitted blocked.
    pub blocked: bool,
    /// Agenda items from the frame pool.
    pub agenda: Vec<FrameIn>,
    /// Subjob count, modulo 4.
    pub subjobs: u8,
    /// A `dependency` attribute from a pool.
    pub dependency: Option<DependencyIn>,
    /// The job's own callbacks.
    pub callbacks: Vec<CallbackIn>,
}

/// A label. `Shouted` is `ribgen` in capitals: labels compare ignoring case, so it
/// collides with `Ribgen` in a group and answers triggers that name `ribgen`; in a
/// trigger context it names the same job.
#[derive(Arbitrary, Debug, Clone, Copy)]
#[allow(missing_docs)]
pub enum LabelIn {
    Ribgen,
    Render,
    Comp,
    Shouted,
}

impl LabelIn {
    fn as_str(self) -> &'static str {
        match self {
            LabelIn::Ribgen => "ribgen",
            LabelIn::Render => "render",
            LabelIn::Comp => "comp",
            LabelIn::Shouted => "RIBGEN",
        }
    }
}

/// A frame name.
#[derive(Arbitrary, Debug, Clone, Copy)]
#[allow(missing_docs)]
pub enum FrameIn {
    One,
    Two,
    Three,
    Segment,
}

impl FrameIn {
    fn as_str(self) -> &'static str {
        match self {
            FrameIn::One => "1",
            FrameIn::Two => "2",
            FrameIn::Three => "3",
            FrameIn::Segment => "Segment: 1-200",
        }
    }
}

/// A job named by its position among the jobs submitted so far, or a raw small id.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum JobRef {
    /// The n-th accepted job (modulo their number).
    Submitted(u8),
    /// A raw id, modulo 10 (0 and unknown ids included).
    Raw(u8),
}

/// A `dependency` attribute.
#[derive(Arbitrary, Debug, Clone, Copy)]
#[allow(missing_docs)]
pub enum DependencyIn {
    JobLabel,
    WorkLabel,
    SubjobLabel,
    JobId,
    Mixed,
    Bad,
}

impl DependencyIn {
    fn as_str(self) -> &'static str {
        match self {
            DependencyIn::JobLabel => "link-complete-job-ribgen",
            DependencyIn::WorkLabel => "link-done-work-render",
            DependencyIn::SubjobLabel => "link-complete-subjob-ribgen",
            DependencyIn::JobId => "1",
            DependencyIn::Mixed => "link-complete-work-ribgen, link-failed-work-comp, info-{a,b}, 2",
            DependencyIn::Bad => "link-complete-frame-ribgen",
        }
    }
}

/// A callback.
#[derive(Arbitrary, Debug, Clone)]
pub struct CallbackIn {
    /// The trigger list (their OR); an empty list is an error.
    pub triggers: Vec<TriggerIn>,
    /// The action.
    pub code: CodeIn,
    /// `Some(m % 3)` or unlimited.
    pub maximum: Option<u8>,
}

/// An action: a qube code of each level, or opaque python.
#[derive(Arbitrary, Debug, Clone, Copy)]
#[allow(missing_docs)]
pub enum CodeIn {
    UnblockSelf,
    UnblockWork,
    UnblockSubjob,
    MailStatus,
    Python,
    Unknown,
}

/// A trigger: atoms folded left by operators, with parentheses where the operator says.
#[derive(Arbitrary, Debug, Clone)]
pub struct TriggerIn {
    /// The first atom.
    pub first: AtomIn,
    /// The next atoms with how each joins the text so far (the first seven only).
    pub rest: Vec<(OpIn, AtomIn)>,
}

/// How an atom joins the text so far.
#[derive(Arbitrary, Debug, Clone, Copy)]
#[allow(missing_docs)]
pub enum OpIn {
    /// `s && a`
    And,
    /// `s || a`
    Or,
    /// `(s) && a`
    GroupAnd,
    /// `(s) || a`
    GroupOr,
    /// `a && (s)`
    AndGroup,
    /// `a or (s)`
    OrGroup,
}

/// One atom of the small grammar.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum AtomIn {
    /// `NAME-TYPE-CONTEXT[-EXTRA]`.
    Event(NameIn, TypeIn, CtxIn, ExtraIn),
    /// `dummy-time-self-T`.
    Time(u8),
    /// `dummy-repeat-self-T-I`, I in 1..=4.
    Repeat(u8, u8),
    /// `globaltime-T`.
    GlobalTime(u8),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
#[allow(missing_docs)]
pub enum NameIn {
    Complete,
    Failed,
    Killed,
    Done,
    Submit,
    /// The custom name `approved`: unknown until registered.
    Approved,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
#[allow(missing_docs)]
pub enum TypeIn {
    Job,
    Work,
    Subjob,
}

/// The context of an atom.
#[derive(Arbitrary, Debug, Clone, Copy)]
#[allow(missing_docs)]
pub enum CtxIn {
    SelfJob,
    Parent,
    Label(LabelIn),
    /// A job id, modulo 8.
    Id(u8),
}

/// The extra of a work or subjob atom (job atoms print none).
#[derive(Arbitrary, Debug, Clone, Copy)]
#[allow(missing_docs)]
pub enum ExtraIn {
    Frame(FrameIn),
    Any,
    /// A subjob id (for work atoms, a frame name), modulo 4.
    Number(u8),
}

/// An event.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct EventIn {
    /// What happened (`Done` is rejected).
    pub name: EventNameIn,
    /// To which job.
    pub job: JobRef,
    /// To what part of it.
    pub item: ItemIn,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
#[allow(missing_docs)]
pub enum EventNameIn {
    Complete,
    Failed,
    Killed,
    Done,
    Submit,
    Running,
    /// The custom name `approved`: rejected until registered.
    Approved,
}

/// The type and extra of an event.
#[derive(Arbitrary, Debug, Clone, Copy)]
#[allow(missing_docs)]
pub enum ItemIn {
    Job,
    Work(FrameIn),
    Subjob(u8),
    Host,
}

fn name_str(n: NameIn) -> &'static str {
    match n {
        NameIn::Complete => "complete",
        NameIn::Failed => "failed",
        NameIn::Killed => "killed",
        NameIn::Done => "done",
        NameIn::Submit => "submit",
        NameIn::Approved => "approved",
    }
}

fn type_str(t: TypeIn) -> &'static str {
    match t {
        TypeIn::Job => "job",
        TypeIn::Work => "work",
        TypeIn::Subjob => "subjob",
    }
}

fn atom_text(a: AtomIn) -> String {
    match a {
        AtomIn::Event(name, ty, ctx, extra) => {
            let ctx = match ctx {
                CtxIn::SelfJob => "self".to_string(),
                CtxIn::Parent => "parent".to_string(),
                CtxIn::Label(l) => l.as_str().to_string(),
                CtxIn::Id(i) => (i % 8).to_string(),
            };
            let name = name_str(name);
            match (ty, extra) {
                (TypeIn::Job, _) => format!("{name}-job-{ctx}"),
                (TypeIn::Work | TypeIn::Subjob, ExtraIn::Any) => format!("{name}-{}-{ctx}-*", type_str(ty)),
                (TypeIn::Work, ExtraIn::Frame(f)) => format!("{name}-work-{ctx}-{}", f.as_str()),
                (TypeIn::Subjob, ExtraIn::Frame(f)) => format!("{name}-subjob-{ctx}-{}", f as u8),
                (_, ExtraIn::Number(n)) => format!("{name}-{}-{ctx}-{}", type_str(ty), n % 4),
            }
        }
        AtomIn::Time(t) => format!("dummy-time-self-{t}"),
        AtomIn::Repeat(t, i) => format!("dummy-repeat-self-{t}-{}", i % 4 + 1),
        AtomIn::GlobalTime(t) => format!("globaltime-{t}"),
    }
}

fn trigger_text(t: &TriggerIn) -> String {
    let mut s = atom_text(t.first);
    for (op, atom) in t.rest.iter().take(7) {
        let a = atom_text(*atom);
        s = match op {
            OpIn::And => format!("{s} && {a}"),
            OpIn::Or => format!("{s} || {a}"),
            OpIn::GroupAnd => format!("({s}) && {a}"),
            OpIn::GroupOr => format!("({s}) || {a}"),
            OpIn::AndGroup => format!("{a} && ({s})"),
            OpIn::OrGroup => format!("{a} or ({s})"),
        };
    }
    s
}

fn callback_spec(c: &CallbackIn) -> CallbackSpec {
    let (language, code) = match c.code {
        CodeIn::UnblockSelf => (Language::Qube, "unblock-self"),
        CodeIn::UnblockWork => (Language::Qube, "unblock-work-self"),
        CodeIn::UnblockSubjob => (Language::Qube, "unblock-subjob-self"),
        CodeIn::MailStatus => (Language::Qube, "mail-status"),
        CodeIn::Python => (Language::Python, "print('released')"),
        CodeIn::Unknown => (Language::Qube, "unblock-everything"),
    };
    CallbackSpec {
        triggers: c.triggers.iter().take(3).map(trigger_text).collect(),
        language,
        code: code.to_string(),
        maximum: c.maximum.map(|m| u64::from(m % 3)),
    }
}

/// The three engines and what the farm has accepted so far.
struct Rig {
    engine: Engine,
    reference: Reference,
    batch: Engine,
    /// Ids of accepted jobs, in order (removed ones included).
    ids: Vec<u64>,
}

impl Rig {
    fn job_id(&self, r: JobRef) -> u64 {
        match r {
            JobRef::Submitted(n) if !self.ids.is_empty() => self.ids[usize::from(n) % self.ids.len()],
            JobRef::Submitted(n) | JobRef::Raw(n) => u64::from(n % 10),
        }
    }

    fn job_spec(&self, j: &JobIn) -> JobSpec {
        JobSpec {
            id: j.id.map(|i| u64::from(i % 8) + 1),
            name: String::new(),
            label: j.label.map(|l| l.as_str().to_string()),
            pgrp: j.pgrp.map(|r| self.job_id(r)),
            pid: j.pid.map(|r| self.job_id(r)),
            status: if j.blocked { JobStatus::Blocked } else { JobStatus::Pending },
            agenda: j.agenda.iter().take(4).map(|f| f.as_str().to_string()).collect(),
            subjobs: u64::from(j.subjobs % 4),
            dependency: j.dependency.map(|d| d.as_str().to_string()),
            callbacks: j.callbacks.iter().take(4).map(callback_spec).collect(),
        }
    }

    fn event(&self, e: &EventIn) -> Event {
        let name = match e.name {
            EventNameIn::Complete => EventName::Complete,
            EventNameIn::Failed => EventName::Failed,
            EventNameIn::Killed => EventName::Killed,
            EventNameIn::Done => EventName::Done,
            EventNameIn::Submit => EventName::Submit,
            EventNameIn::Running => EventName::Running,
            EventNameIn::Approved => EventName::Dummy,
        };
        let job = self.job_id(e.job);
        let mut event = match e.item {
            ItemIn::Job => Event::job(name, job),
            ItemIn::Work(f) => Event::work(name, job, f.as_str()),
            ItemIn::Subjob(i) => Event::subjob(name, job, u64::from(i % 4)),
            ItemIn::Host => Event::host(name, job, "node01"),
        };
        if let EventNameIn::Approved = e.name {
            event.name = Name::Custom("approved".into());
        }
        event
    }

    /// Runs `f` on the engine and the reference and checks they agree; the batch engine
    /// gets the same call so it stays in step. Returns the engine's result.
    fn both<T: PartialEq + std::fmt::Debug>(
        &mut self,
        what: &str,
        mut f: impl FnMut(&mut dyn Driver, &mut Vec<Firing>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let (mut fe, mut fr, mut fb) = (Vec::new(), Vec::new(), Vec::new());
        let e = f(&mut self.engine, &mut fe);
        let r = f(&mut self.reference, &mut fr);
        let b = f(&mut self.batch, &mut fb);
        assert_eq!(e, r, "{what}: engine and reference results differ");
        assert_eq!(fe, fr, "{what}: engine and reference firings differ");
        assert_eq!(e, b, "{what}: batch engine result differs");
        assert_eq!(fe, fb, "{what}: batch engine firings differ");
        e
    }

    fn step(&mut self, step: &Step) {
        match step {
            Step::Submit(jobs) => {
                let specs: Vec<JobSpec> = jobs.iter().take(4).map(|j| self.job_spec(j)).collect();
                let sub = self.both("submit", |d, out| d.submit(&specs, out));
                if let Ok(Submission { ids, .. }) = sub {
                    self.ids.extend(ids);
                }
            }
            Step::Global(c) => {
                let spec = callback_spec(c);
                let _ = self.both("add_global", |d, out| d.add_global(&spec, out));
            }
            Step::Universal(c) => {
                let spec = callback_spec(c);
                let _ = self.both("add_universal", |d, _| d.add_universal(&spec));
            }
            Step::Events(events) => {
                let events: Vec<Event> = events.iter().take(12).map(|e| self.event(e)).collect();
                self.events(&events);
            }
            Step::Clock(d) => {
                let to = self.engine.now().saturating_add(u64::from(*d));
                let _ = self.both("advance_clock", |d, out| d.advance_clock(to, out));
            }
            Step::ClockBack => {
                if let Some(to) = self.engine.now().checked_sub(1) {
                    let _ = self.both("advance_clock back", |d, out| d.advance_clock(to, out));
                }
            }
            Step::ClockFar(n) => {
                let to = LAST_TIME - u64::from(*n);
                let _ = self.both("advance_clock far", |d, out| d.advance_clock(to, out));
            }
            Step::RegisterName => {
                let _ = self.both("register_event_name", |d, _| d.register_event_name("approved"));
            }
            Step::Remove(r) => {
                let id = self.job_id(*r);
                let _ = self.both("remove_job", |d, out| d.remove_job(id, out));
            }
            Step::RemoveCallback(c) => {
                let id = trigwire::ids::CallbackId::from_u32(u32::from(*c % 32));
                let _ = self.both("remove_callback", |d, _| d.remove_callback(id));
            }
            Step::SaveRestore => {
                self.engine = save_and_restore(&self.engine);
                self.batch = save_and_restore(&self.batch);
            }
        }
    }

    /// One at a time on the engine and the reference, one batch on the third engine.
    fn events(&mut self, events: &[Event]) {
        let mut sequential = Vec::new();
        let mut rejected = Vec::new();
        for (i, event) in events.iter().enumerate() {
            let (mut fe, mut fr) = (Vec::new(), Vec::new());
            let e = self.engine.process(event, &mut fe);
            let r = self.reference.process(event, &mut fr);
            assert_eq!(e, r, "event {i} {event:?}: engine and reference results differ");
            assert_eq!(fe, fr, "event {i} {event:?}: engine and reference firings differ");
            if let Err(err) = e {
                rejected.push((i, err));
            }
            sequential.extend(fe.into_iter().map(|firing| BatchFiring { event: i, firing }));
        }
        let mut batched = Vec::new();
        let batch_rejected = self.batch.process_batch(events, &mut batched);
        assert_eq!(batch_rejected, rejected, "process_batch rejects other events");
        assert_eq!(batched, sequential, "process_batch firings differ from one at a time");
    }
}

/// The calls a farm step makes, on either engine.
trait Driver {
    fn submit(&mut self, jobs: &[JobSpec], out: &mut Vec<Firing>) -> Result<Submission, Error>;
    fn add_global(&mut self, spec: &CallbackSpec, out: &mut Vec<Firing>) -> Result<(), Error>;
    fn add_universal(&mut self, spec: &CallbackSpec) -> Result<(), Error>;
    fn advance_clock(&mut self, to: u64, out: &mut Vec<Firing>) -> Result<(), Error>;
    fn remove_job(&mut self, id: u64, out: &mut Vec<Firing>) -> Result<(), Error>;
    fn register_event_name(&mut self, name: &str) -> Result<(), Error>;
    fn remove_callback(&mut self, id: trigwire::ids::CallbackId) -> Result<(), Error>;
}

macro_rules! driver {
    ($ty:ty) => {
        impl Driver for $ty {
            fn submit(&mut self, jobs: &[JobSpec], out: &mut Vec<Firing>) -> Result<Submission, Error> {
                <$ty>::submit(self, jobs, out)
            }
            fn add_global(&mut self, spec: &CallbackSpec, out: &mut Vec<Firing>) -> Result<(), Error> {
                <$ty>::add_global(self, spec, out).map(|_| ())
            }
            fn add_universal(&mut self, spec: &CallbackSpec) -> Result<(), Error> {
                <$ty>::add_universal(self, spec)
            }
            fn advance_clock(&mut self, to: u64, out: &mut Vec<Firing>) -> Result<(), Error> {
                <$ty>::advance_clock(self, to, out)
            }
            fn remove_job(&mut self, id: u64, out: &mut Vec<Firing>) -> Result<(), Error> {
                <$ty>::remove_job(self, id, out)
            }
            fn register_event_name(&mut self, name: &str) -> Result<(), Error> {
                <$ty>::register_event_name(self, name)
            }
            fn remove_callback(&mut self, id: trigwire::ids::CallbackId) -> Result<(), Error> {
                <$ty>::remove_callback(self, id)
            }
        }
    };
}

driver!(Engine);
driver!(Reference);

/// The engine restored from its snapshot, which saves the same bytes again.
fn save_and_restore(engine: &Engine) -> Engine {
    let mut bytes = Vec::new();
    engine.save(&mut bytes).expect("saving to memory");
    let restored = Engine::restore(&bytes[..]).unwrap_or_else(|e| panic!("a saved engine does not restore: {e}"));
    let mut again = Vec::new();
    restored.save(&mut again).expect("saving to memory");
    assert!(again == bytes, "a restored engine saves other bytes");
    restored
}

/// Arbitrary bytes fed to `Engine::restore`, as they are and with every section's
/// checksum rewritten to match (so that the fuzzer reaches the checks behind them): the
/// answer is an engine or a snapshot error at an offset inside the input, never a
/// panic; a restored engine then runs a small log, saves, and restores to the same
/// bytes.
pub fn check_restore(data: &[u8]) {
    let mut sealed = data.to_vec();
    reseal(&mut sealed);
    for input in [data, &sealed[..]] {
        match Engine::restore(input) {
            Ok(engine) => {
                let engine = save_and_restore(&engine);
                let mut replay = Replay::new(engine);
                let _ = replay.run_bytes(RESTORE_LOG.as_bytes(), Mode::Batch(3));
                save_and_restore(replay.engine());
            }
            Err(e) => match e.kind() {
                trigwire::ErrorKind::Snapshot { offset } => {
                    assert!(*offset <= input.len() as u64, "offset {offset} past the input: {e}");
                }
                other => panic!("restoring from memory failed with {other:?}: {e}"),
            },
        }
    }
}

/// What a restored engine is asked to do in `check_restore`.
const RESTORE_LOG: &str = concat!(
    r#"{"submit": [{"label": "ribgen", "agenda": ["1", "2"], "callbacks": [{"triggers": "complete-work-self-1 && done-job-1", "language": "qube", "code": "unblock-work-self"}]}]}"#,
    "\n",
    r#"{"event": "complete", "type": "work", "job": 1, "extra": "1"}"#,
    "\n",
    r#"{"event": "complete", "type": "job", "job": 1}"#,
    "\n",
    r#"{"event": "complete", "type": "work", "job": 2, "extra": "2"}"#,
    "\n",
    r#"{"time": 100}"#,
    "\n",
    r#"{"remove": 1}"#,
    "\n",
    r#"{"remove": 2}"#,
    "\n",
    r#"{"callback": {"triggers": "globaltime-200 || complete-job-3", "language": "mail", "code": "mail-status"}}"#,
    "\n",
    r#"{"time": 300}"#,
    "\n",
);

/// Rewrites the checksum of each section that lies whole in `bytes` (the format of
/// `src/engine/snapshot.rs`: a 12-byte header, then sections of a 4-byte tag, a u64
/// length, a CRC-32 and the payload).
pub fn reseal(bytes: &mut [u8]) {
    let mut at = 12;
    while at + 16 <= bytes.len() {
        let len = u64::from_le_bytes(bytes[at + 4..at + 12].try_into().expect("eight bytes"));
        let Some(end) = usize::try_from(len).ok().and_then(|l| (at + 16).checked_add(l)) else { return };
        if end > bytes.len() {
            return;
        }
        let crc = crc32(&bytes[at + 16..end]);
        bytes[at + 12..at + 16].copy_from_slice(&crc.to_le_bytes());
        at = end;
    }
}

/// CRC-32 (IEEE), bit by bit: inputs are small.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// Runs a farm through the three engines, checking every step.
pub fn run_farm(farm: &Farm) {
    let mut config = Config { retroactive: farm.retroactive, ..Config::default() };
    if let Some(limit) = farm.ticks_limit {
        config.limits.ticks_per_move = u64::from(limit);
    }
    if farm.on_rise {
        config.refire = trigwire::Refire::OnRise;
    }
    if farm.catch_up_once {
        config.catch_up = trigwire::CatchUp::Once;
    }
    if let Some(limit) = farm.facts_limit {
        config.limits.facts = u64::from(limit);
    }
    let mut rig = Rig {
        engine: Engine::new(config),
        reference: Reference::new(config),
        batch: Engine::new(config),
        ids: Vec::new(),
    };
    for step in &farm.steps {
        rig.step(step);
    }
}
