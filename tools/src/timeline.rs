//! The picture of a replay: `trigwire run LOG --timeline OUT.html` and `trigwire demo
//! --timeline OUT.html` write one self-contained HTML page (no network access) with
//! jobs × work items as swimlanes over time, each firing marked with the event that
//! completed it, and the dependency graph of the jobs.
//!
//! Nothing here re-implements matching. [`Recorder`] wraps anything that applies
//! [`Command`]s (the engine, the reference) and watches the commands go in and the
//! [`Outcome`]s come out, as every host does; [`Timeline`] keeps what it saw:
//!
//! - **Time** is the host's clock when the host sets it ([`Timeline::set_time`]: the
//!   simulator's farm seconds), or else the position of the command in the log, one
//!   step per command that reached the engine (`trigwire run`: a clock move is a step
//!   like any other, and the Qube time it moved to is kept for the axis).
//! - **States**: a work item or job starts waiting (blocked if submitted blocked), and
//!   then follows its own events (`running`, `complete`, `failed`, `killed`, `blocked`,
//!   `waiting`) and the qube codes fired at it (`unblock-work-self` releases a blocked
//!   item, `fail-self` fails the job, ...), the way a queue applying the firings would.
//!   A host can add what only it knows ([`Timeline::note_work`]: the simulator says when
//!   a frame starts running). Items of a blocked, failed, killed or removed job show
//!   the job's state while they wait.
//! - **Causes**: each firing carries its [`Cause`]; an event cause is written as the
//!   atom the event meets (`complete-work-ribgen-5`, with the job's label when it has
//!   one), a clock cause as the time reached.
//! - **Edges** of the dependency graph come from parsing the submitted triggers and
//!   `dependency` attributes with [`trigwire::syntax`]: an atom about another job is an
//!   edge from that job to the owner; a label resolves to the job of the owner's process
//!   group with that label, an id to that job, `parent` to the owner's parent.
//!
//! The page draws on a canvas and draws only the rows in view, and a job whose items do
//! not fit folds into one lane that stacks the share of its items in each state, so it
//! stays usable at 50,000 work items; see `timeline.html`.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use serde_json::{json, Value};
use trigwire::qube::{parse_dependency, LinkKind};
use trigwire::syntax::{self, AtomKind, Context, CustomNames, Expr, ParseLimits};
use trigwire::{
    Apply, Cause, Command, Engine, Error, Event, EventExtra, Firing, JobFeed, JobSpec, JobStatus, Language, Outcome,
    Reply, Target,
};

/// The page: HTML, CSS and script, with two placeholders for the title and the data.
const TEMPLATE: &str = include_str!("timeline.html");

/// A work item's or a job's state, as the picture colours it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Submitted and free to run, or released.
    Waiting,
    /// Blocked until something unblocks it.
    Blocked,
    /// Running.
    Running,
    /// Complete.
    Complete,
    /// Failed.
    Failed,
    /// Killed.
    Killed,
    /// The job was removed.
    Removed,
}

impl State {
    /// Every state, in the order of the page's legend (a state's number in the page's
    /// data is its position here).
    pub const ALL: [State; 7] =
        [State::Waiting, State::Blocked, State::Running, State::Complete, State::Failed, State::Killed, State::Removed];

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Waiting => "waiting",
            State::Blocked => "blocked",
            State::Running => "running",
            State::Complete => "complete",
            State::Failed => "failed",
            State::Killed => "killed",
            State::Removed => "removed",
        }
    }

    fn number(self) -> u64 {
        State::ALL.iter().position(|&s| s == self).unwrap_or(0) as u64
    }

    /// Whether items of a job in this state show the job's state while they wait.
    fn holds_items(self) -> bool {
        matches!(self, State::Blocked | State::Failed | State::Killed | State::Removed)
    }

    /// The state an event of this name puts its job or item in, if any.
    fn of_event(name: &str) -> Option<State> {
        Some(match name {
            "running" => State::Running,
            "complete" => State::Complete,
            "failed" => State::Failed,
            "killed" => State::Killed,
            "blocked" => State::Blocked,
            "waiting" => State::Waiting,
            _ => return None,
        })
    }
}

/// Wraps anything that applies commands and records a [`Timeline`] of what went in and
/// came out; it applies every command exactly as the wrapped one does.
#[derive(Debug)]
pub struct Recorder<A = Engine> {
    inner: A,
    timeline: Timeline,
}

impl<A: Apply> Recorder<A> {
    /// Records what `inner` is asked and answers.
    pub fn new(inner: A) -> Recorder<A> {
        Recorder { inner, timeline: Timeline::default() }
    }

    /// The wrapped engine.
    pub fn inner(&self) -> &A {
        &self.inner
    }

    /// What was recorded so far.
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// What was recorded so far, for the host to add to (its clock, its own states).
    pub fn timeline_mut(&mut self) -> &mut Timeline {
        &mut self.timeline
    }
}

impl<A: Apply> Apply for Recorder<A> {
    fn apply(&mut self, command: &Command, out: &mut Vec<Outcome>) -> Result<(), Error> {
        let start = out.len();
        let result = self.inner.apply(command, out);
        self.timeline.record(command, out[start..].iter(), result.is_err());
        result
    }

    /// Gathers the replies of `inner`'s batches to record them, then hands them over.
    fn apply_all_to(&mut self, commands: &[Command], out: &mut dyn FnMut(Reply)) {
        let mut replies = Vec::new();
        self.inner.apply_all(commands, &mut replies);
        // The replies come in command order, each command's together.
        let mut at = 0;
        for (i, command) in commands.iter().enumerate() {
            let len = replies[at..].iter().take_while(|r| r.command == i).count();
            let mine = &replies[at..at + len];
            let rejected = mine.iter().any(|r| matches!(r.outcome, Outcome::Rejected(_)));
            self.timeline.record(command, mine.iter().map(|r| &r.outcome), rejected);
            at += len;
        }
        replies.into_iter().for_each(out);
    }

    fn submit_each(&mut self, feed: &mut JobFeed<'_>, out: &mut dyn FnMut(Outcome)) -> Result<(), Error> {
        let mut jobs = Vec::new();
        let mut seen = Vec::new();
        let result = {
            let jobs = &mut jobs;
            self.inner.submit_each(
                &mut |take: &mut dyn FnMut(&JobSpec)| {
                    feed(&mut |job: &JobSpec| {
                        jobs.push(job.clone());
                        take(job);
                    })
                },
                &mut |outcome| {
                    seen.push(outcome.clone());
                    out(outcome);
                },
            )
        };
        self.timeline.record(&Command::Submit(jobs), seen.iter(), result.is_err());
        result
    }
}

/// What a [`Recorder`] saw: jobs with the state changes of their items, firings with
/// their causes, and the clock. [`Timeline::to_json`] is the page's data;
/// [`Timeline::to_html`] the page.
#[derive(Debug, Default)]
pub struct Timeline {
    title: String,
    /// The host's clock, once it set one.
    host_time: Option<u64>,
    /// Commands that reached the engine, rejected ones included.
    commands: u64,
    rejected: u64,
    jobs: Vec<JobTrack>,
    by_id: HashMap<u64, usize>,
    fired: Vec<Fired>,
    globals: Vec<String>,
    /// (step, Qube time) of each clock move.
    clock: Vec<(u64, u64)>,
    custom: CustomNames,
}

#[derive(Debug)]
struct JobTrack {
    id: u64,
    name: String,
    label: Option<String>,
    pgrp: u64,
    parent: Option<u64>,
    submitted: u64,
    triggers: Vec<String>,
    dependency: Option<String>,
    states: Vec<(u64, State)>,
    work: Vec<String>,
    work_index: HashMap<String, u32>,
    items: Vec<Vec<(u64, State)>>,
}

#[derive(Debug)]
struct Fired {
    time: u64,
    job: Option<usize>,
    item: Option<u32>,
    callback: u32,
    count: u32,
    code: String,
    cause: String,
}

/// Appends a state change, keeping times in order: a change at the time of the last
/// replaces it, and a change to the current state is no change.
fn change(track: &mut Vec<(u64, State)>, time: u64, state: State) {
    let time = track.last().map_or(time, |&(t, _)| time.max(t));
    if track.last().is_some_and(|&(_, s)| s == state) {
        return;
    }
    match track.last_mut() {
        Some(last) if last.0 == time => {
            last.1 = state;
            let n = track.len();
            if n >= 2 && track[n - 2].1 == state {
                track.pop();
            }
        }
        _ => track.push((time, state)),
    }
}

fn current(track: &[(u64, State)]) -> State {
    track.last().map_or(State::Waiting, |&(_, s)| s)
}

impl Timeline {
    /// Names the page.
    pub fn set_title(&mut self, title: &str) {
        self.title = title.to_string();
    }

    /// Sets the time of what is recorded next (the host's clock, e.g. farm seconds);
    /// from then on, commands no longer count as steps of time.
    pub fn set_time(&mut self, time: u64) {
        self.host_time = Some(time);
    }

    /// Registers a custom event name, so that triggers using it are parsed for the graph.
    pub fn register_event_name(&mut self, name: &str) {
        self.custom.insert(name);
    }

    /// The current time: the host's clock, or the number of commands so far.
    pub fn now(&self) -> u64 {
        self.host_time.unwrap_or(self.commands)
    }

    /// Records a state of a work item that only the host knows (say, that it started
    /// running) at `time`, which may lie before [`Timeline::now`] but not before the
    /// item's last change. Unknown jobs and items are ignored.
    pub fn note_work(&mut self, job: u64, work: &str, state: State, time: u64) {
        if let Some(&j) = self.by_id.get(&job) {
            let track = &mut self.jobs[j];
            if let Some(&i) = track.work_index.get(work) {
                change(&mut track.items[i as usize], time, state);
            }
        }
    }

    /// The firings recorded so far.
    pub fn firings(&self) -> usize {
        self.fired.len()
    }

    /// The work items of the jobs recorded so far.
    pub fn work_items(&self) -> usize {
        self.jobs.iter().map(|j| j.work.len()).sum()
    }

    /// The trigger text of callback `index` of job `owner` as submitted (the triggers of
    /// a callback joined with ` || `), or what else it is.
    pub fn trigger(&self, owner: Option<u64>, index: u32) -> String {
        let text = match owner {
            Some(id) => self.by_id.get(&id).and_then(|&j| self.jobs[j].triggers.get(index as usize)),
            None => self.globals.get(index as usize),
        };
        text.cloned().unwrap_or_else(|| "the dependency attribute or a universal callback".to_string())
    }

    /// What made a firing fire, for people: the atom its event meets
    /// (`complete-work-ribgen-5`), `submit-job-…`, `removed-job-…`, `the clock reached
    /// T` or `its registration`. `command` is the command whose outcome it is.
    pub fn cause(&self, cause: Cause, command: &Command) -> String {
        match cause {
            Cause::Event => match command {
                Command::Event(e) => self.event_text(e),
                other => format!("the {} command", other.kind()),
            },
            Cause::Submitted(job) => format!("submit-job-{}", self.job_ref(job)),
            Cause::Removed(job) => format!("removed-job-{}", self.job_ref(job)),
            Cause::Tick(time) => format!("the clock reached {time}"),
            Cause::Registration => "its registration".to_string(),
            Cause::Forced => "an operator's satisfy".to_string(),
        }
    }

    /// An event written as the atom it meets, with the job's label when it has one.
    fn event_text(&self, e: &Event) -> String {
        let mut text = format!("{}-{}-{}", e.name.as_str(), e.event_type().as_str(), self.job_ref(e.job));
        let _ = match &e.extra {
            EventExtra::None => Ok(()),
            EventExtra::Work(w) | EventExtra::Host(w) => write!(text, "-{w}"),
            EventExtra::Subjob(id) => write!(text, "-{id}"),
        };
        text
    }

    fn job_ref(&self, id: u64) -> String {
        match self.by_id.get(&id).and_then(|&j| self.jobs[j].label.as_deref()) {
            Some(label) => label.to_string(),
            None => id.to_string(),
        }
    }

    /// Records one command and its outcomes (none but the rejection if `rejected`).
    fn record<'o>(&mut self, command: &Command, outcomes: impl Iterator<Item = &'o Outcome>, rejected: bool) {
        self.commands += 1;
        if rejected {
            self.rejected += 1;
            return;
        }
        let now = self.now();
        match command {
            Command::Event(e) => self.event(e, now),
            Command::Time(to) => self.clock.push((now, *to)),
            Command::Remove(id) => {
                if let Some(&j) = self.by_id.get(id) {
                    change(&mut self.jobs[j].states, now, State::Removed);
                }
            }
            Command::Global(spec) => self.globals.push(spec.triggers.join(" || ")),
            Command::Submit(_) => {}
            // A command added later: its firings are still recorded below.
            _ => {}
        }
        for outcome in outcomes {
            match outcome {
                Outcome::Submitted(sub) => {
                    if let Command::Submit(jobs) = command {
                        for (spec, &id) in jobs.iter().zip(&sub.ids) {
                            self.submitted(spec, id, sub.pgrp, now);
                        }
                    }
                }
                Outcome::Fired(f) => self.fired(f, command, now),
                _ => {}
            }
        }
    }

    fn submitted(&mut self, spec: &JobSpec, id: u64, pgrp: u64, now: u64) {
        let start = if spec.status == JobStatus::Blocked { State::Blocked } else { State::Waiting };
        let work_index = spec.agenda.iter().enumerate().map(|(i, w)| (w.clone(), i as u32)).collect();
        self.by_id.insert(id, self.jobs.len());
        self.jobs.push(JobTrack {
            id,
            name: spec.name.clone(),
            label: spec.label.clone(),
            pgrp: spec.pgrp.unwrap_or(pgrp),
            parent: spec.pid.filter(|&p| p != 0),
            submitted: now,
            triggers: spec.callbacks.iter().map(|c| c.triggers.join(" || ")).collect(),
            dependency: spec.dependency.clone(),
            states: vec![(now, start)],
            work: spec.agenda.clone(),
            work_index,
            items: spec.agenda.iter().map(|_| vec![(now, State::Waiting)]).collect(),
        });
    }

    fn event(&mut self, e: &Event, now: u64) {
        let (Some(&j), Some(state)) = (self.by_id.get(&e.job), State::of_event(e.name.as_str())) else { return };
        let track = &mut self.jobs[j];
        match &e.extra {
            EventExtra::None => change(&mut track.states, now, state),
            EventExtra::Work(w) => {
                if let Some(&i) = track.work_index.get(w.as_str()) {
                    change(&mut track.items[i as usize], now, state);
                }
            }
            _ => {}
        }
    }

    fn fired(&mut self, f: &Firing, command: &Command, now: u64) {
        let cause = self.cause(f.cause, command);
        let job = f.owner.and_then(|id| self.by_id.get(&id).copied());
        let item = match (&f.target, job) {
            (Some(Target::Work(w)), Some(j)) => self.jobs[j].work_index.get(&**w).copied(),
            _ => None,
        };
        if let (Some(j), Language::Qube) = (job, f.action.language) {
            self.act(j, item, &f.action.code, now);
        }
        self.fired.push(Fired {
            time: now,
            job,
            item,
            callback: f.index,
            count: f.count,
            code: format!("{}{}", if f.action.language == Language::Qube { "" } else { "(opaque) " }, f.action.code),
            cause,
        });
    }

    /// What a qube code does to the state of its job or item, as a queue applying it would.
    fn act(&mut self, j: usize, item: Option<u32>, code: &str, now: u64) {
        let track = &mut self.jobs[j];
        if let Some(i) = item {
            let lane = &mut track.items[i as usize];
            let state = match (code, current(lane)) {
                ("unblock-work-self", State::Blocked) => State::Waiting,
                ("block-work-self", State::Waiting) => State::Blocked,
                ("fail-work-self", _) => State::Failed,
                ("kill-work-self", _) => State::Killed,
                ("complete-work-self", _) => State::Complete,
                ("retry-work-self" | "requeue-work-self", _) => State::Waiting,
                _ => return,
            };
            change(lane, now, state);
            return;
        }
        let state = match (code, current(&track.states)) {
            ("unblock-self", State::Blocked) => State::Waiting,
            ("block-self", State::Waiting | State::Running) => State::Blocked,
            ("fail-self", _) => State::Failed,
            ("kill-self", _) => State::Killed,
            _ => return,
        };
        change(&mut track.states, now, state);
    }

    /// The edges of the dependency graph: (from job, to job, the atoms' `name-type`s).
    fn edges(&self) -> Vec<(usize, usize, String)> {
        let labels: HashMap<(u64, &str), usize> =
            self.jobs.iter().enumerate().filter_map(|(k, j)| j.label.as_deref().map(|l| ((j.pgrp, l), k))).collect();
        let mut edges: Vec<(usize, usize, BTreeSet<String>)> = Vec::new();
        let mut at: HashMap<(usize, usize), usize> = HashMap::new();
        let limits = ParseLimits::default();
        for (to, job) in self.jobs.iter().enumerate() {
            let resolve = |context: &Context| -> Option<usize> {
                match context {
                    Context::SelfJob => None,
                    Context::Parent => job.parent.and_then(|p| self.by_id.get(&p).copied()),
                    Context::Id(id) => self.by_id.get(id).copied(),
                    Context::Label(l) => labels.get(&(job.pgrp, &**l)).copied(),
                }
            };
            let mut found: Vec<(usize, String)> = Vec::new();
            for trigger in &job.triggers {
                for text in trigger.split(" || ") {
                    if let Ok(expr) = syntax::parse(text, &limits, &self.custom) {
                        atoms(&expr, &mut |kind| {
                            if let AtomKind::Event { name, ty, context, .. } = kind {
                                if let Some(from) = resolve(context) {
                                    found.push((from, format!("{}-{}", name.as_str(), ty.as_str())));
                                }
                            }
                        });
                    }
                }
            }
            if let Some(Ok(links)) = job.dependency.as_deref().map(parse_dependency) {
                for link in links {
                    if let Some(from) = resolve(&link.target) {
                        let kind = match link.kind {
                            LinkKind::Job => "job",
                            LinkKind::Work => "work",
                            LinkKind::Subjob => "subjob",
                        };
                        found.push((from, format!("link-{}-{kind}", link.state.as_str())));
                    }
                }
            }
            for (from, what) in found.into_iter().filter(|&(from, _)| from != to) {
                let e = *at.entry((from, to)).or_insert_with(|| {
                    edges.push((from, to, BTreeSet::new()));
                    edges.len() - 1
                });
                edges[e].2.insert(what);
            }
        }
        edges.into_iter().map(|(from, to, what)| (from, to, what.into_iter().collect::<Vec<_>>().join(", "))).collect()
    }

    /// The page's data: see the module docs and `timeline.html` for its shape.
    pub fn to_json(&self) -> Value {
        let flat = |track: &[(u64, State)]| -> Vec<u64> { track.iter().flat_map(|&(t, s)| [t, s.number()]).collect() };
        let end = self
            .fired
            .iter()
            .map(|f| f.time)
            .chain(self.jobs.iter().flat_map(|j| j.states.iter().chain(j.items.iter().flatten()).map(|&(t, _)| t)));
        let end = end.chain([self.now()]).max().unwrap_or(0).max(1);
        let jobs: Vec<Value> = self
            .jobs
            .iter()
            .map(|j| {
                let items: Vec<Vec<u64>> = j.items.iter().map(|lane| flat(&held(&j.states, lane))).collect();
                json!({
                    "id": j.id, "name": j.name, "label": j.label, "group": j.pgrp, "t": j.submitted,
                    "triggers": j.triggers, "s": flat(&j.states), "work": j.work, "items": items,
                })
            })
            .collect();
        let opt = |v: Option<usize>| v.map_or(-1, |v| v as i64);
        let fired: Vec<Value> = self
            .fired
            .iter()
            .map(|f| json!([f.time, opt(f.job), opt(f.item.map(|i| i as usize)), f.callback, f.count, f.code, f.cause]))
            .collect();
        let edges: Vec<Value> = self.edges().into_iter().map(|(a, b, what)| json!([a, b, what])).collect();
        json!({
            "title": self.title,
            "axis": if self.host_time.is_some() { "farm seconds" } else { "commands in log order" },
            "end": end,
            "states": State::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            "commands": self.commands,
            "rejected": self.rejected,
            "jobs": jobs,
            "fired": fired,
            "globals": self.globals,
            "clock": self.clock.iter().map(|&(t, q)| json!([t, q])).collect::<Vec<_>>(),
            "edges": edges,
        })
    }

    /// The whole page, data embedded.
    pub fn to_html(&self) -> String {
        let data = embed_json(&self.to_json().to_string());
        let title = if self.title.is_empty() { "trigwire timeline" } else { &self.title };
        let title = escape_html(title);
        // The data goes in last, so that nothing in it is taken for a placeholder.
        let (head, tail) = TEMPLATE.split_once("@@DATA@@").unwrap_or((TEMPLATE, ""));
        [head.replace("@@TITLE@@", &title), data, tail.replace("@@TITLE@@", &title)].concat()
    }

    /// Writes the page to `path`.
    ///
    /// # Errors
    /// The file cannot be written; the message names it.
    pub fn write_html(&self, path: &str) -> Result<(), String> {
        std::fs::write(path, self.to_html()).map_err(|e| format!("cannot write {path}: {e}"))
    }
}

/// An item's changes with its job's holds merged in: while the item waits, it shows
/// the job's state when that is blocked, failed, killed or removed.
fn held(job: &[(u64, State)], item: &[(u64, State)]) -> Vec<(u64, State)> {
    if job.iter().all(|&(_, s)| !s.holds_items()) {
        return item.to_vec();
    }
    let mut times: Vec<u64> = job.iter().chain(item).map(|&(t, _)| t).collect();
    times.sort_unstable();
    times.dedup();
    let at = |track: &[(u64, State)], t: u64| {
        let n = track.partition_point(|&(u, _)| u <= t);
        if n == 0 {
            State::Waiting
        } else {
            track[n - 1].1
        }
    };
    let mut out = Vec::new();
    for t in times {
        let (j, i) = (at(job, t), at(item, t));
        change(&mut out, t, if i == State::Waiting && j.holds_items() { j } else { i });
    }
    out
}

fn atoms(expr: &Expr, visit: &mut dyn FnMut(&AtomKind)) {
    match expr {
        Expr::Atom(atom) => visit(&atom.kind),
        Expr::And(parts) | Expr::Or(parts) => parts.iter().for_each(|p| atoms(p, visit)),
    }
}

/// JSON made safe inside a `<script>` element: every `<` (which JSON has only inside
/// strings) becomes `\u003c`, so no `</script>` or `<!--` can end or bend the element.
fn embed_json(json: &str) -> String {
    json.replace('<', "\\u003c")
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use trigwire::{CallbackSpec, EventName};

    fn job(name: &str, agenda: &[&str], trigger: Option<&str>, code: &str) -> JobSpec {
        JobSpec {
            name: name.into(),
            label: Some(name.into()),
            agenda: agenda.iter().map(|s| s.to_string()).collect(),
            callbacks: trigger.map(|t| vec![CallbackSpec::qube(t, code)]).unwrap_or_default(),
            ..JobSpec::default()
        }
    }

    #[test]
    fn records_states_causes_and_edges_from_commands() {
        let mut r = Recorder::new(Engine::default());
        let mut out = Vec::new();
        let jobs = vec![
            job("ribgen", &["1", "2"], None, ""),
            job("render", &["1", "2"], Some("complete-work-ribgen-1"), "unblock-work-self"),
        ];
        r.apply(&Command::Submit(jobs), &mut out).unwrap();
        let ids = match &out[0] {
            Outcome::Submitted(s) => s.ids.clone(),
            other => panic!("{other:?}"),
        };
        r.timeline_mut().note_work(ids[1], "1", State::Blocked, 1);
        r.apply(&Command::Event(Event::work(EventName::Complete, ids[0], "1")), &mut out).unwrap();
        // An unregistered event name is rejected: counted, and nothing else recorded.
        let bogus = Event::named("rendered", ids[0], trigwire::EventExtra::None);
        assert!(r.apply(&Command::Event(bogus), &mut out).is_err());
        let t = r.timeline();
        assert_eq!(t.firings(), 1);
        assert_eq!(t.fired[0].cause, "complete-work-ribgen-1");
        assert_eq!(t.fired[0].item, Some(0));
        assert_eq!(t.jobs[0].items[0], vec![(1, State::Waiting), (2, State::Complete)]);
        assert_eq!(t.jobs[1].items[0], vec![(1, State::Blocked), (2, State::Waiting)]);
        assert_eq!((t.commands, t.rejected), (3, 1));
        assert_eq!(t.edges(), vec![(0, 1, "complete-work".to_string())]);
    }

    #[test]
    fn the_page_cannot_be_closed_by_its_data() {
        let mut r = Recorder::new(Engine::default());
        let mut out = Vec::new();
        let spec = JobSpec { label: Some("a".into()), ..job("a</script><!--", &["</script>"], None, "") };
        r.apply(&Command::Submit(vec![spec]), &mut out).unwrap();
        let html = r.timeline().to_html();
        assert_eq!(html.matches("</script>").count(), TEMPLATE.matches("</script>").count());
        assert!(html.contains("\\u003c/script>"));
    }
}
