//! A small farm simulator: runs jobs frame by frame, reports the events that a queue
//! would report, applies the qube codes of the firings to job and work states, and
//! feeds the events those changes cause back in. Used by `trigwire demo` and tests.

use std::collections::{HashMap, VecDeque};

use trigwire::{Engine, Error, Event, EventName, Firing, JobSpec, JobStatus, Language, Target};

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

/// The farm: an engine, the jobs, a clock and a timeline.
#[derive(Debug, Default)]
pub struct Farm {
    engine: Engine,
    jobs: Vec<SimJob>,
    by_id: HashMap<u64, usize>,
    triggers: HashMap<(u64, u32), String>,
    queue: VecDeque<Event>,
    timeline: Vec<String>,
    time: u64,
}

impl Farm {
    /// An empty farm over a default engine.
    pub fn new() -> Farm {
        Farm::default()
    }

    /// Submits jobs; `work_blocked[i]` starts every agenda item of job `i` blocked.
    ///
    /// # Errors
    /// The engine's submission error; nothing is added then.
    pub fn submit(&mut self, jobs: Vec<JobSpec>, work_blocked: &[bool]) -> Result<Vec<u64>, Error> {
        let mut firings = Vec::new();
        let sub = self.engine.submit(&jobs, &mut firings)?;
        for ((spec, &id), &wb) in jobs.iter().zip(&sub.ids).zip(work_blocked.iter().chain(std::iter::repeat(&false))) {
            for (i, cb) in spec.callbacks.iter().enumerate() {
                self.triggers.insert((id, i as u32), cb.triggers.join(" || "));
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
            });
            self.note(format!(
                "submit {} (job {id}){}",
                spec.name,
                if spec.status == JobStatus::Blocked { ", blocked" } else { "" }
            ));
        }
        self.apply_all(&firings);
        self.drain();
        Ok(sub.ids)
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
        let mut firings = Vec::new();
        if self.engine.advance_clock(self.time, &mut firings).is_ok() {
            self.apply_all(&firings);
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
            Some(_) if job.progress + 1 < job.frame_time => {
                self.jobs[j].progress += 1;
                true
            }
            Some(w) => {
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

    fn drain(&mut self) {
        let mut firings = Vec::new();
        while let Some(event) = self.queue.pop_front() {
            firings.clear();
            if self.engine.process(&event, &mut firings).is_ok() {
                self.apply_all(&firings);
            }
        }
    }

    fn apply_all(&mut self, firings: &[Firing]) {
        for f in firings {
            self.apply(f);
        }
    }

    /// Applies one firing's qube code to the farm's state.
    fn apply(&mut self, f: &Firing) {
        let action = &f.action;
        let Some(owner) = f.owner else { return };
        let Some(&j) = self.by_id.get(&owner) else { return };
        let why = self.triggers.get(&(owner, f.index)).cloned().unwrap_or_else(|| "dependency".into());
        let work = match &f.target {
            Some(Target::Work(w)) => Some(w.to_string()),
            _ => None,
        };
        let name = self.jobs[j].name.clone();
        if action.language != Language::Qube {
            self.note(format!("  -> {name}: {} callback fired (because {why})", action.language.as_str()));
            return;
        }
        let what = match (&*action.code, &work) {
            ("unblock-self", _) => {
                self.jobs[j].blocked = false;
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
        self.note(format!("  -> {what} (because {why})"));
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
    match farm.submit(jobs, &[false, true, true, true, false, false]) {
        Ok(ids) => farm.set_frame_time(ids[1], 2),
        Err(e) => return vec![e.to_string()],
    }
    farm.run(20, 60);
    farm.timeline().to_vec()
}
