//! A small farm simulator: runs jobs frame by frame, reports the events that a queue
//! would report, applies the qube codes of the firings to job and work states, and
//! feeds the events those changes cause back in. Used by `trigwire demo` and tests.
//!
//! It drives the engine through the command API ([`Command`]), wrapped in a
//! [`Recorder`], so the same observations give both the text timeline's "fired because"
//! and the picture of `trigwire demo --timeline`.

use std::collections::{HashMap, VecDeque};

use trigwire::{
    Apply, Command, Engine, Error, Event, EventName, Firing, JobSpec, JobStatus, Language, Outcome, Target,
};

use crate::timeline::{Recorder, State, Timeline};

/// A job as the simulator sees it.
#[derive(Clone, Debug)]
pub struct SimJob {
    /// The job id.
    pub id: u64,
    /// Its name, for the timeline.
    pub name: String,
    /// Whether the job is blocked as a whole.
    pub blocked: bool,
    /// Whether it finished (complete, failed or killed).
    pub finished: bool,
    /// Its agenda items in order.
    pub work: Vec<SimWork>,
    /// Seconds one frame takes.
    pub frame_time: u64,
    /// Seconds spent on the frame in progress.
    progress: u64,
    /// When the job was last released (for the picture: its frames run no earlier).
    since: u64,
}

/// One agenda item.
#[derive(Clone, Debug)]
pub struct SimWork {
    /// The item's name.
    pub name: String,
    /// Blocked until a callback unblocks it.
    pub blocked: bool,
    /// Finished.
    pub done: bool,
}

impl Default for Farm {
    fn default() -> Farm {
        Farm::new()
    }
}

/// The farm: an engine, the jobs, a clock and a timeline.
#[derive(Debug)]
pub struct Farm {
    engine: Recorder<Engine>,
    jobs: Vec<SimJob>,
    by_id: HashMap<u64, usize>,
    queue: VecDeque<Event>,
    timeline: Vec<String>,
    time: u64,
}

impl Farm {
    /// An empty farm over a default engine.
    pub fn new() -> Farm {
        let mut engine = Recorder::new(Engine::default());
        engine.timeline_mut().set_time(0);
        Farm { engine, jobs: Vec::new(), by_id: HashMap::new(), queue: VecDeque::new(), timeline: Vec::new(), time: 0 }
    }

    /// What the recorder saw: the data of the picture (`trigwire demo --timeline`).
    pub fn recorded(&self) -> &Timeline {
        self.engine.timeline()
    }

    /// Applies one command; returns its firings, or its error.
    fn command(&mut self, command: &Command) -> Result<(Option<Vec<u64>>, Vec<Firing>), Error> {
        let mut outcomes = Vec::new();
        self.engine.apply(command, &mut outcomes)?;
        let mut ids = None;
        let mut firings = Vec::new();
        for outcome in outcomes {
            match outcome {
                Outcome::Submitted(sub) => ids = Some(sub.ids),
                Outcome::Fired(f) => firings.push(f),
                _ => {}
            }
        }
        Ok((ids, firings))
    }

    /// Submits jobs; `work_blocked[i]` starts every agenda item of job `i` blocked.
    ///
    /// # Errors
    /// The engine's submission error; nothing is added then.
    pub fn submit(&mut self, jobs: Vec<JobSpec>, work_blocked: &[bool]) -> Result<Vec<u64>, Error> {
        let command = Command::Submit(jobs);
        let (ids, firings) = self.command(&command)?;
        let (Command::Submit(jobs), Some(ids)) = (&command, ids) else { return Ok(Vec::new()) };
        for ((spec, &id), &wb) in jobs.iter().zip(&ids).zip(work_blocked.iter().chain(std::iter::repeat(&false))) {
            if wb {
                for w in &spec.agenda {
                    self.engine.timeline_mut().note_work(id, w, State::Blocked, self.time);
                }
            }
            let work = spec.agenda.iter().map(|n| SimWork { name: n.clone(), blocked: wb, done: false }).collect();
            self.by_id.insert(id, self.jobs.len());
            self.jobs.push(SimJob {
                id,
                name: spec.name.clone(),
                blocked: spec.status == JobStatus::Blocked,
                finished: false,
                work,
                frame_time: 1,
                progress: 0,
                since: 0,
            });
            self.note(format!(
                "submit {} (job {id}){}",
                spec.name,
                if spec.status == JobStatus::Blocked { ", blocked" } else { "" }
            ));
        }
        self.apply_all(&firings, &command);
        self.drain();
        Ok(ids)
    }

    /// Sets how many seconds each frame of `job` takes (default 1).
    pub fn set_frame_time(&mut self, job: u64, seconds: u64) {
        if let Some(&j) = self.by_id.get(&job) {
            self.jobs[j].frame_time = seconds.max(1);
        }
    }

    /// The jobs, in submission order.
    pub fn jobs(&self) -> &[SimJob] {
        &self.jobs
    }

    /// The timeline so far, one line per happening.
    pub fn timeline(&self) -> &[String] {
        &self.timeline
    }

    /// Runs steps until nothing can run and the clock has passed `until`, or `max_steps`.
    pub fn run(&mut self, until: u64, max_steps: u64) {
        for _ in 0..max_steps {
            let progressed = self.step();
            if !progressed && self.time >= until {
                break;
            }
        }
    }

    /// One second of farm time: the clock moves, then every runnable job completes its
    /// next runnable frame. Returns whether any frame ran.
    pub fn step(&mut self) -> bool {
        self.time += 1;
        self.engine.timeline_mut().set_time(self.time);
        let command = Command::Time(self.time);
        if let Ok((_, firings)) = self.command(&command) {
            self.apply_all(&firings, &command);
        }
        self.drain();
        let mut ran = false;
        for j in 0..self.jobs.len() {
            ran |= self.run_job(j);
        }
        ran
    }

    fn run_job(&mut self, j: usize) -> bool {
        let job = &self.jobs[j];
        if job.blocked || job.finished {
            return false;
        }
        let id = job.id;
        match job.work.iter().position(|w| !w.blocked && !w.done) {
            Some(w) if job.progress + 1 < job.frame_time => {
                if job.progress == 0 {
                    self.started(j, w);
                }
                self.jobs[j].progress += 1;
                true
            }
            Some(w) => {
                if job.progress == 0 {
                    self.started(j, w);
                }
                self.jobs[j].progress = 0;
                self.jobs[j].work[w].done = true;
                let name = self.jobs[j].work[w].name.clone();
                self.note(format!("{} frame {name} complete", self.jobs[j].name));
                self.queue.push_back(Event::work(EventName::Complete, id, &name));
                self.drain();
                true
            }
            None if job.work.iter().all(|w| w.done) => {
                self.jobs[j].finished = true;
                self.note(format!("{} complete", self.jobs[j].name));
                self.queue.push_back(Event::job(EventName::Complete, id));
                self.drain();
                true
            }
            None => false,
        }
    }

    /// Tells the picture that frame `w` of job `j` started running: in the second that
    /// just ended, the one its first step of work took.
    fn started(&mut self, j: usize, w: usize) {
        let job = &self.jobs[j];
        let (id, name, at) = (job.id, job.work[w].name.clone(), job.since.max(self.time - 1));
        self.engine.timeline_mut().note_work(id, &name, State::Running, at);
    }

    fn drain(&mut self) {
        while let Some(event) = self.queue.pop_front() {
            let command = Command::Event(event);
            if let Ok((_, firings)) = self.command(&command) {
                self.apply_all(&firings, &command);
            }
        }
    }

    fn apply_all(&mut self, firings: &[Firing], command: &Command) {
        for f in firings {
            self.apply(f, command);
        }
    }

    /// Applies one firing's qube code to the farm's state. `command` is the command
    /// whose outcome it is.
    fn apply(&mut self, f: &Firing, command: &Command) {
        let action = &f.action;
        let Some(owner) = f.owner else { return };
        let Some(&j) = self.by_id.get(&owner) else { return };
        let recorded = self.engine.timeline();
        let why = format!(
            "fired because {} (trigger {})",
            recorded.cause(f.cause, command),
            recorded.trigger(f.owner, f.index)
        );
        let work = match &f.target {
            Some(Target::Work(w)) => Some(w.to_string()),
            _ => None,
        };
        let name = self.jobs[j].name.clone();
        if action.language != Language::Qube {
            self.note(format!("  -> {name}: {} callback {why}", action.language.as_str()));
            return;
        }
        let what = match (&*action.code, &work) {
            ("unblock-self", _) => {
                self.jobs[j].blocked = false;
                self.jobs[j].since = self.time;
                format!("{name} released")
            }
            ("block-self", _) => {
                self.jobs[j].blocked = true;
                format!("{name} blocked")
            }
            ("unblock-work-self", Some(w)) => {
                let again = self.jobs[j].work.iter().any(|i| i.name == *w && !i.blocked);
                self.set_work(j, w, |item| item.blocked = false);
                let again = if again { " again, already running or done" } else { "" };
                format!("{name} frame {w} released{again}")
            }
            ("block-work-self", Some(w)) => {
                self.set_work(j, w, |item| item.blocked = true);
                format!("{name} frame {w} blocked")
            }
            ("fail-work-self", Some(w)) => {
                self.set_work(j, w, |item| item.done = true);
                self.queue.push_back(Event::work(EventName::Failed, owner, w));
                format!("{name} frame {w} failed")
            }
            ("fail-self" | "kill-self", _) => {
                self.jobs[j].finished = true;
                let ev = if &*action.code == "fail-self" { EventName::Failed } else { EventName::Killed };
                self.queue.push_back(Event::job(ev, owner));
                format!("{name} {}", ev.as_str())
            }
            (code, _) => format!("{name}: {code}"),
        };
        self.note(format!("  -> {what}, {why}"));
    }

    fn set_work(&mut self, j: usize, w: &str, change: impl Fn(&mut SimWork)) {
        if let Some(item) = self.jobs[j].work.iter_mut().find(|i| i.name == w) {
            change(item);
        }
    }

    fn note(&mut self, text: String) {
        self.timeline.push(format!("[t={:>2}] {text}", self.time));
    }
}

/// The documented Qube scenarios of spec §7 on a four-frame shot, with what each job
/// shows: the lines of [`demo`]'s header.
pub const DEMO_JOBS: &[&str] = &[
    "ribgen     renders frames 1-4",
    "render     frame f waits for ribgen frame f              (§7.2 complete-work-ribgen-f), 2 s a frame",
    "composite  frame f waits for ribgen f and render f       (§7.3 ... && ...)",
    "preview    frame f: (ribgen f && render f) || comp f     (§7.4; may fire again)",
    "dailies    blocked until composite completes as a whole  (§7.1 complete-job-composite)",
    "archive    blocked until the clock reaches t=20          (§7.5 dummy-time-self-20)",
];

/// Runs the scenarios of [`DEMO_JOBS`] on the simulator and returns the timeline.
pub fn demo() -> Vec<String> {
    match demo_farm() {
        Ok(farm) => farm.timeline().to_vec(),
        Err(e) => vec![e.to_string()],
    }
}

/// Runs the scenarios of [`DEMO_JOBS`] on the simulator and returns the farm: its text
/// timeline ([`Farm::timeline`]) and what was recorded for the picture
/// ([`Farm::recorded`]).
///
/// # Errors
/// The engine rejected the demo's submission (it does not).
pub fn demo_farm() -> Result<Farm, Error> {
    let frames: Vec<String> = (1..=4).map(|f| f.to_string()).collect();
    let per_frame = |trigger: &dyn Fn(&str) -> String| -> Vec<trigwire::CallbackSpec> {
        frames.iter().map(|f| trigwire::CallbackSpec::qube(&trigger(f), "unblock-work-self")).collect()
    };
    let job = |name: &str, status: JobStatus, agenda: &[String], callbacks| JobSpec {
        name: name.into(),
        label: Some(name.into()),
        status,
        agenda: agenda.to_vec(),
        callbacks,
        ..JobSpec::default()
    };
    let jobs = vec![
        job("ribgen", JobStatus::Pending, &frames, vec![]),
        job("render", JobStatus::Pending, &frames, per_frame(&|f| format!("complete-work-ribgen-{f}"))),
        job(
            "composite",
            JobStatus::Pending,
            &frames,
            per_frame(&|f| format!("complete-work-ribgen-{f} && complete-work-render-{f}")),
        ),
        job(
            "preview",
            JobStatus::Pending,
            &frames,
            per_frame(&|f| {
                format!("(complete-work-ribgen-{f} && complete-work-render-{f}) || complete-work-composite-{f}")
            }),
        ),
        job(
            "dailies",
            JobStatus::Blocked,
            &frames,
            vec![trigwire::CallbackSpec::qube("complete-job-composite", "unblock-self")],
        ),
        job(
            "archive",
            JobStatus::Blocked,
            &["all".to_string()],
            vec![trigwire::CallbackSpec::qube("dummy-time-self-20", "unblock-self")],
        ),
    ];
    let mut farm = Farm::new();
    farm.engine.timeline_mut().set_title("trigwire demo: the documented Qube scenarios");
    let ids = farm.submit(jobs, &[false, true, true, true, false, false])?;
    farm.set_frame_time(ids[1], 2);
    farm.run(20, 60);
    Ok(farm)
}
