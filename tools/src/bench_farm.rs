//! Seeded synthetic farms for benchmarks, `trigwire bench` and scale tests.
//!
//! A farm is `jobs × frames` frame-level callbacks: every job has an agenda of frames
//! `1..=frames`, starts blocked, and carries one callback per frame whose trigger waits
//! on the same frame of other jobs of its submission, named by label (spec §7 example
//! 3), with the action `unblock-work-self`. Jobs are submitted in groups of
//! [`FarmSpec::group`] (one process group each), and each job picks its upstream jobs at
//! random inside its group. The event stream completes every frame of every job once,
//! in a random or in-order sequence.
//!
//! Everything is generated lazily from the seed (submissions one at a time, events one
//! at a time), so a farm of ten million callbacks costs a few bytes per event of
//! generator state, not gigabytes of `JobSpec`s, and the same seed gives the same farm
//! for the compiled engine and the reference.
//!
//! # Example
//! ```
//! use trigwire_tools::bench_farm::{Farm, FarmSpec, Order, TriggerShape};
//! use trigwire::Engine;
//! let farm = Farm::new(FarmSpec { jobs: 20, frames: 5, ..FarmSpec::default() });
//! let mut engine = Engine::default();
//! let mut firings = Vec::new();
//! for submission in farm.submissions() {
//!     engine.submit(&submission, &mut firings)?;
//! }
//! firings.clear();
//! for event in farm.events(Order::Random) {
//!     engine.process(&event, &mut firings)?;
//! }
//! // Every two-atom AND is released exactly once, when its second upstream frame completes.
//! assert_eq!(firings.len() as u64, farm.callbacks());
//! # Ok::<(), trigwire::Error>(())
//! ```

use trigwire::EventName;
use trigwire::{CallbackSpec, Event, JobSpec, JobStatus};

pub use crate::rng::Rng;

/// The shape of every per-frame trigger of a farm. `A`, `B`, `C` are labels of
/// upstream jobs in the same submission, `f` the frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TriggerShape {
    /// `complete-work-A-f && complete-work-B-f`: released once, by the later frame.
    #[default]
    And2,
    /// `complete-work-A-f || complete-work-B-f`: fires on each of the two frames.
    Or2,
    /// `complete-work-A-f`.
    Single,
    /// `(complete-work-A-f && complete-work-B-f) || complete-work-C-f`.
    Mixed,
}

impl TriggerShape {
    /// Every shape, for sweeps.
    pub const ALL: [TriggerShape; 4] =
        [TriggerShape::And2, TriggerShape::Or2, TriggerShape::Single, TriggerShape::Mixed];

    /// The shape's name on the command line: `and2`, `or2`, `single`, `mixed`.
    pub fn name(self) -> &'static str {
        match self {
            TriggerShape::And2 => "and2",
            TriggerShape::Or2 => "or2",
            TriggerShape::Single => "single",
            TriggerShape::Mixed => "mixed",
        }
    }

    /// Looks a shape up by [`TriggerShape::name`].
    pub fn parse(text: &str) -> Option<TriggerShape> {
        TriggerShape::ALL.into_iter().find(|s| s.name() == text)
    }

    /// How many upstream jobs a trigger of this shape names.
    pub fn upstream(self) -> usize {
        match self {
            TriggerShape::Single => 1,
            TriggerShape::And2 | TriggerShape::Or2 => 2,
            TriggerShape::Mixed => 3,
        }
    }

    /// The trigger of frame `f` over the upstream labels `up`.
    pub fn trigger(self, up: &[String], f: u32) -> String {
        let atom = |i: usize| format!("complete-work-{}-{f}", up[i]);
        match self {
            TriggerShape::Single => atom(0),
            TriggerShape::And2 => format!("{} && {}", atom(0), atom(1)),
            TriggerShape::Or2 => format!("{} || {}", atom(0), atom(1)),
            TriggerShape::Mixed => format!("({} && {}) || {}", atom(0), atom(1), atom(2)),
        }
    }
}

/// The order in which a farm's frames complete.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// A seeded random permutation of all (job, frame) pairs: no locality at all.
    #[default]
    Random,
    /// Job by job, frames in order: consecutive events hit neighbouring terms.
    InOrder,
}

impl Order {
    /// Looks an order up by name: `random` or `inorder`.
    pub fn parse(text: &str) -> Option<Order> {
        match text {
            "random" => Some(Order::Random),
            "inorder" | "in-order" => Some(Order::InOrder),
            _ => None,
        }
    }
}

/// The size and shape of a farm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FarmSpec {
    /// Jobs (ids `1..=jobs`, labels `j<id>`). Default 100.
    pub jobs: u32,
    /// Frames per job (work names `1..=frames`). Default 100.
    pub frames: u32,
    /// The per-frame trigger. Default [`TriggerShape::And2`].
    pub shape: TriggerShape,
    /// The seed of the upstream picks and of the random event order. Default 1.
    pub seed: u64,
    /// Jobs per submission (and process group); upstream jobs are picked inside the
    /// group. Default 10: large enough for the three upstream jobs of `mixed`, small
    /// enough that one submission of 1,000-frame jobs stays a few megabytes.
    pub group: u32,
    /// Also give each job one job-level callback, `complete-job-A || complete-job-B`
    /// over its first two upstream jobs, mailing when either finishes. Default `false`.
    pub job_or: bool,
}

impl Default for FarmSpec {
    fn default() -> FarmSpec {
        FarmSpec { jobs: 100, frames: 100, shape: TriggerShape::And2, seed: 1, group: 10, job_or: false }
    }
}

/// A seeded synthetic farm: its submissions and its event streams.
#[derive(Clone, Debug)]
pub struct Farm {
    spec: FarmSpec,
    /// Upstream job indices (0-based) of each job, `shape.upstream()` each.
    upstream: Vec<u32>,
    /// Frame names `1..=frames`, shared by every job.
    agenda: Vec<String>,
}

impl Farm {
    /// Generates a farm. `jobs`, `frames` and `group` below 1 count as 1.
    pub fn new(spec: FarmSpec) -> Farm {
        let spec = FarmSpec { jobs: spec.jobs.max(1), frames: spec.frames.max(1), group: spec.group.max(1), ..spec };
        let mut rng = Rng::new(spec.seed);
        let k = spec.shape.upstream();
        let mut upstream = Vec::with_capacity(spec.jobs as usize * k);
        for job in 0..spec.jobs {
            let group = Farm::group_range(&spec, job);
            pick_upstream(&mut rng, job, group, k, &mut upstream);
        }
        let agenda = (1..=spec.frames).map(|f| f.to_string()).collect();
        Farm { spec, upstream, agenda }
    }

    /// The spec the farm was made from (with the minimums applied).
    pub fn spec(&self) -> &FarmSpec {
        &self.spec
    }

    /// Callbacks: `jobs × frames` frame-level ones, plus one per job with
    /// [`FarmSpec::job_or`].
    pub fn callbacks(&self) -> u64 {
        self.events_len() + if self.spec.job_or { u64::from(self.spec.jobs) } else { 0 }
    }

    /// Frame completion events: one per frame-level callback.
    pub fn events_len(&self) -> u64 {
        u64::from(self.spec.jobs) * u64::from(self.spec.frames)
    }

    /// How many submissions [`Farm::submissions`] yields.
    pub fn submissions_len(&self) -> u32 {
        (self.spec.jobs / self.spec.group).max(1)
    }

    /// The submissions, generated one at a time; submit them in order into a fresh
    /// engine (job ids are explicit, `1..=jobs`).
    pub fn submissions(&self) -> impl Iterator<Item = Vec<JobSpec>> + '_ {
        (0..self.submissions_len()).map(|s| self.submission(s))
    }

    /// Submission `s` (0-based): its jobs, with their per-frame callbacks.
    pub fn submission(&self, s: u32) -> Vec<JobSpec> {
        let first = s * self.spec.group;
        let end = if s + 1 == self.submissions_len() { self.spec.jobs } else { first + self.spec.group };
        (first..end).map(|job| self.job(job)).collect()
    }

    fn job(&self, job: u32) -> JobSpec {
        let k = self.spec.shape.upstream();
        let up: Vec<String> = self.upstream[job as usize * k..][..k].iter().map(|&u| label(u)).collect();
        let mut callbacks: Vec<CallbackSpec> = (1..=self.spec.frames)
            .map(|f| CallbackSpec::qube(&self.spec.shape.trigger(&up, f), "unblock-work-self"))
            .collect();
        if self.spec.job_or {
            let either = format!("complete-job-{} || complete-job-{}", up[0], up[up.len().min(2) - 1]);
            callbacks.push(CallbackSpec {
                triggers: vec![either],
                language: trigwire::Language::Mail,
                code: "upstream done".into(),
                maximum: None,
            });
        }
        JobSpec {
            id: Some(u64::from(job) + 1),
            name: format!("job {}", job + 1),
            label: Some(label(job)),
            status: JobStatus::Blocked,
            agenda: self.agenda.clone(),
            callbacks,
            ..JobSpec::default()
        }
    }

    /// Writes the farm as a `trigwire run` log: its submissions, then its events in
    /// `order` (the first `events` of them, or all), one JSON line each.
    ///
    /// # Errors
    /// What writing to `out` returns.
    pub fn write_wire(&self, order: Order, events: Option<u64>, out: &mut impl std::io::Write) -> std::io::Result<()> {
        for submission in self.submissions() {
            let jobs: Vec<serde_json::Value> = submission.iter().map(job_json).collect();
            serde_json::to_writer(&mut *out, &serde_json::json!({ "submit": jobs }))?;
            out.write_all(b"\n")?;
        }
        for event in self.events(order).take(events.map_or(usize::MAX, |n| n as usize)) {
            let trigwire::EventExtra::Work(frame) = &event.extra else { continue };
            let name = event.name.as_str();
            writeln!(out, r#"{{"event":"{name}","type":"work","job":{},"extra":"{frame}"}}"#, event.job)?;
        }
        Ok(())
    }

    /// The event stream: every frame of every job completes once, in `order`.
    pub fn events(&self, order: Order) -> Events<'_> {
        let permutation = match order {
            Order::InOrder => None,
            Order::Random => {
                let mut p: Vec<u64> = (0..self.events_len()).collect();
                Rng::new(self.spec.seed ^ 0x5EED_0FE7_E275).shuffle(&mut p);
                Some(p)
            }
        };
        Events { farm: self, permutation, next: 0 }
    }

    /// The `k`-th event of the in-order stream: job `k / frames`, frame `k % frames`.
    pub fn event_at(&self, k: u64) -> Event {
        let frames = u64::from(self.spec.frames);
        Event::work(EventName::Complete, k / frames + 1, &self.agenda[(k % frames) as usize])
    }

    /// The job indices a submission's jobs are picked from.
    fn group_range(spec: &FarmSpec, job: u32) -> std::ops::Range<u32> {
        let groups = (spec.jobs / spec.group).max(1);
        let g = (job / spec.group).min(groups - 1);
        let end = if g + 1 == groups { spec.jobs } else { (g + 1) * spec.group };
        g * spec.group..end
    }
}

/// Picks `k` upstream jobs for `job` inside `group`: distinct and other than `job`
/// while the group allows, then repeating.
fn pick_upstream(rng: &mut Rng, job: u32, group: std::ops::Range<u32>, k: usize, out: &mut Vec<u32>) {
    let from = out.len();
    let size = u64::from(group.end - group.start);
    while out.len() - from < k {
        let pick = group.start + rng.below(size) as u32;
        let fresh = pick != job && !out[from..].contains(&pick);
        if fresh || size <= (out.len() - from) as u64 + 1 {
            out.push(pick);
        }
    }
}

/// A generated job in the wire format.
fn job_json(job: &JobSpec) -> serde_json::Value {
    let callbacks: Vec<serde_json::Value> = job
        .callbacks
        .iter()
        .map(|c| serde_json::json!({"triggers": c.triggers[0], "language": c.language.as_str(), "code": c.code}))
        .collect();
    serde_json::json!({
        "id": job.id, "name": job.name, "label": job.label, "status": job.status.as_str(),
        "agenda": job.agenda, "callbacks": callbacks,
    })
}

fn label(job: u32) -> String {
    format!("j{}", job + 1)
}

/// The events of a farm, generated one at a time.
#[derive(Clone, Debug)]
pub struct Events<'a> {
    farm: &'a Farm,
    permutation: Option<Vec<u64>>,
    next: u64,
}

impl Iterator for Events<'_> {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        if self.next >= self.farm.events_len() {
            return None;
        }
        let k = self.permutation.as_ref().map_or(self.next, |p| p[self.next as usize]);
        self.next += 1;
        Some(self.farm.event_at(k))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.farm.events_len() - self.next) as usize;
        (left, Some(left))
    }
}

/// A job-level fanout: job 1 (label `up`, no callbacks) and downstream jobs of
/// `frames` frames whose every frame waits on `complete-job-1`, `callbacks` callbacks
/// in all (rounded up to whole jobs). Returns the submissions and the one event that
/// releases every callback.
pub fn fanout(callbacks: u32, frames: u32) -> (Vec<Vec<JobSpec>>, Event) {
    let frames = frames.max(1);
    let agenda: Vec<String> = (1..=frames).map(|f| f.to_string()).collect();
    let upstream = JobSpec { id: Some(1), label: Some("up".into()), ..JobSpec::default() };
    let jobs = callbacks.div_ceil(frames);
    let mut submissions = vec![vec![upstream]];
    let per = 100;
    for first in (0..jobs).step_by(per) {
        let sub = (first..(first + per as u32).min(jobs))
            .map(|j| JobSpec {
                id: Some(u64::from(j) + 2),
                status: JobStatus::Blocked,
                agenda: agenda.clone(),
                callbacks: vec![CallbackSpec::qube("complete-job-1", "unblock-work-self"); frames as usize],
                ..JobSpec::default()
            })
            .collect();
        submissions.push(sub);
    }
    (submissions, Event::job(EventName::Complete, 1))
}

/// How [`measure`] replays a farm's events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayOptions {
    /// The order of the frame events.
    pub order: Order,
    /// Replay only the first this many events of the stream; `None` replays all.
    pub events: Option<u64>,
    /// Feed events to [`trigwire::Engine::process_batch`] this many at a time (threads from the
    /// current rayon pool); `None` calls [`trigwire::Engine::process`] one event at a time.
    pub batch: Option<usize>,
}

/// Which engine [`measure`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    /// The compiled engine, [`trigwire::Engine`].
    Compiled,
    /// The naive reference semantics, [`crate::Reference`].
    Reference,
}

/// Where a measurement is, for a progress display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// `done` of `of` submissions registered.
    Registering {
        /// Submissions done.
        done: u64,
        /// Submissions in all.
        of: u64,
    },
    /// `done` of `of` events replayed.
    Replaying {
        /// Events done.
        done: u64,
        /// Events in all.
        of: u64,
    },
}

/// What one engine did with one farm: the figures `trigwire bench` prints.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Figures {
    /// Frame-level callbacks registered.
    pub callbacks: u64,
    /// Seconds spent in `submit` (generating the job specs is not counted).
    pub register_s: f64,
    /// Events replayed.
    pub events: u64,
    /// Seconds spent processing events (building the `Event` values is not counted).
    pub match_s: f64,
    /// `events / match_s`.
    pub events_per_s: f64,
    /// Firings caused by the replayed events.
    pub firings: u64,
    /// [`trigwire::Engine::memory_usage`] total over `callbacks`, after the replay; `None` for the
    /// reference, which does not account its memory.
    pub bytes_per_callback: Option<f64>,
    /// [`trigwire::Engine::memory_usage`] by structure, in bytes; `None` for the reference.
    pub memory: Option<serde_json::Value>,
    /// The process's peak resident set (`VmHWM`) after the run, where `/proc` has it.
    pub peak_rss_bytes: Option<u64>,
    /// Bytes of the process's memory in transparent huge pages after the run
    /// (`AnonHugePages`), where `/proc` has it. On a big farm, events run markedly faster
    /// when the engine's structures sit in huge pages (fewer TLB misses); see the README.
    pub huge_page_bytes: Option<u64>,
    /// An order-sensitive hash of (event position, callback id) over all firings: equal
    /// checksums mean the same firings in the same order.
    pub checksum: u64,
}

/// Events built per replay step: their construction is outside the timed region.
const REPLAY_CHUNK: usize = 4096;

/// Registers `farm` into a fresh engine of `subject`, replays its events, and reports
/// the figures. `progress` is called every few percent.
///
/// # Errors
/// A submission or event the engine rejects (a bug in the generator or the engine).
///
/// # Performance
/// Holds one submission's specs and 4,096 events at a time, plus the random
/// order's permutation (8 bytes per event).
pub fn measure(
    farm: &Farm,
    subject: Subject,
    replay: ReplayOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<Figures, trigwire::Error> {
    match subject {
        Subject::Compiled => measure_with(trigwire::Engine::default(), farm, replay, progress),
        Subject::Reference => measure_with(crate::Reference::default(), farm, replay, progress),
    }
}

/// What [`measure`] asks of the engine it measures.
trait Measured {
    fn submit(&mut self, jobs: &[JobSpec], out: &mut Vec<trigwire::Firing>) -> Result<(), trigwire::Error>;
    fn process(&mut self, event: &Event, out: &mut Vec<trigwire::Firing>) -> Result<(), trigwire::Error>;
    /// Like [`trigwire::Engine::process_batch`].
    fn process_batch(
        &mut self,
        events: &[Event],
        out: &mut Vec<trigwire::BatchFiring>,
    ) -> Vec<(usize, trigwire::Error)>;
    /// [`trigwire::Engine::memory_usage`], where the engine accounts its memory.
    fn memory_usage(&self) -> Option<trigwire::MemoryUsage>;
}

impl Measured for trigwire::Engine {
    fn submit(&mut self, jobs: &[JobSpec], out: &mut Vec<trigwire::Firing>) -> Result<(), trigwire::Error> {
        trigwire::Engine::submit(self, jobs, out).map(drop)
    }

    fn process(&mut self, event: &Event, out: &mut Vec<trigwire::Firing>) -> Result<(), trigwire::Error> {
        trigwire::Engine::process(self, event, out)
    }

    fn process_batch(
        &mut self,
        events: &[Event],
        out: &mut Vec<trigwire::BatchFiring>,
    ) -> Vec<(usize, trigwire::Error)> {
        trigwire::Engine::process_batch(self, events, out)
    }

    fn memory_usage(&self) -> Option<trigwire::MemoryUsage> {
        Some(trigwire::Engine::memory_usage(self))
    }
}

impl Measured for crate::Reference {
    fn submit(&mut self, jobs: &[JobSpec], out: &mut Vec<trigwire::Firing>) -> Result<(), trigwire::Error> {
        crate::Reference::submit(self, jobs, out).map(drop)
    }

    fn process(&mut self, event: &Event, out: &mut Vec<trigwire::Firing>) -> Result<(), trigwire::Error> {
        crate::Reference::process(self, event, out)
    }

    /// One event at a time, each firing tagged with its event's position.
    fn process_batch(
        &mut self,
        events: &[Event],
        out: &mut Vec<trigwire::BatchFiring>,
    ) -> Vec<(usize, trigwire::Error)> {
        let mut rejected = Vec::new();
        let mut one = Vec::new();
        for (i, event) in events.iter().enumerate() {
            one.clear();
            match crate::Reference::process(self, event, &mut one) {
                Ok(()) => out.extend(one.drain(..).map(|firing| trigwire::BatchFiring { event: i, firing })),
                Err(e) => rejected.push((i, e)),
            }
        }
        rejected
    }

    fn memory_usage(&self) -> Option<trigwire::MemoryUsage> {
        None
    }
}

fn measure_with(
    mut engine: impl Measured,
    farm: &Farm,
    replay: ReplayOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<Figures, trigwire::Error> {
    let register_s = register(&mut engine, farm, progress)?;
    let (tally, match_s) = replay_events(&mut engine, farm, replay, progress)?;
    let callbacks = farm.callbacks();
    let memory = engine.memory_usage();
    let bytes = memory.map(|m| m.total() as f64 / callbacks as f64);
    Ok(Figures {
        callbacks,
        register_s,
        events: tally.events,
        match_s,
        events_per_s: tally.events as f64 / match_s.max(1e-9),
        firings: tally.firings,
        bytes_per_callback: bytes,
        memory: memory.as_ref().map(breakdown),
        peak_rss_bytes: peak_rss_bytes(),
        huge_page_bytes: huge_page_bytes(),
        checksum: tally.checksum,
    })
}

/// Replays the farm's events; returns the tally and the seconds spent in the engine.
fn replay_events(
    engine: &mut impl Measured,
    farm: &Farm,
    replay: ReplayOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Tally, f64), trigwire::Error> {
    let of = replay.events.map_or(farm.events_len(), |n| n.min(farm.events_len()));
    let mut events = farm.events(replay.order).take(of as usize);
    let mut chunk: Vec<Event> = Vec::with_capacity(REPLAY_CHUNK);
    let mut tally = Tally::default();
    let mut match_s = 0.0;
    let step = (of / 50).max(1);
    let mut next_report = step;
    loop {
        chunk.clear();
        chunk.extend(events.by_ref().take(REPLAY_CHUNK));
        if chunk.is_empty() {
            break;
        }
        match_s += tally.replay(engine, &chunk, replay.batch)?;
        if tally.events >= next_report || tally.events == of {
            progress(Progress::Replaying { done: tally.events, of });
            next_report = tally.events + step;
        }
    }
    Ok((tally, match_s))
}

/// What saving and restoring a registered farm cost: the figures `trigwire bench
/// --snapshot` adds.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SnapshotFigures {
    /// Seconds to register the farm into the engine that is saved.
    pub register_s: f64,
    /// Seconds in [`trigwire::Engine::save_to_path`] (temporary file, fsync, rename).
    pub save_s: f64,
    /// Seconds in [`trigwire::Engine::restore_from_path`] (the file is likely cached).
    pub restore_s: f64,
    /// Seconds to read the file's bytes into memory and nothing else (`std::fs::read`,
    /// right after the restore): the floor under `restore_s`.
    pub read_s: f64,
    /// `register_s / restore_s`.
    pub restore_speedup: f64,
    /// The snapshot file's size.
    pub snapshot_bytes: u64,
    /// [`trigwire::Engine::memory_usage`] total of the saved engine.
    pub memory_bytes: u64,
    /// `snapshot_bytes / memory_bytes`.
    pub snapshot_to_memory: f64,
    /// Firings of the events replayed on the restored engine.
    pub firings: u64,
    /// Their checksum, as [`Figures::checksum`]: equal to the registered engine's.
    pub checksum: u64,
}

/// Registers `farm`, saves the engine to a file in `dir`, drops it, restores it from
/// the file, and replays the farm's events on the restored engine.
///
/// # Errors
/// What the engine rejects, or a file that cannot be written or read back.
pub fn measure_snapshot(
    farm: &Farm,
    replay: ReplayOptions,
    dir: &std::path::Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<SnapshotFigures, String> {
    let mut engine = trigwire::Engine::default();
    let register_s = register(&mut engine, farm, progress).map_err(|e| e.to_string())?;
    let memory_bytes = engine.memory_usage().total() as u64;
    let path = dir.join(format!("trigwire-bench-{}.state", std::process::id()));
    let start = std::time::Instant::now();
    engine.save_to_path(&path).map_err(|e| e.to_string())?;
    let save_s = start.elapsed().as_secs_f64();
    drop(engine);
    let snapshot_bytes = std::fs::metadata(&path).map_err(|e| e.to_string())?.len();
    let start = std::time::Instant::now();
    let restored = trigwire::Engine::restore_from_path(&path);
    let restore_s = start.elapsed().as_secs_f64();
    let start = std::time::Instant::now();
    let read = std::fs::read(&path).map_err(|e| e.to_string())?;
    let read_s = start.elapsed().as_secs_f64();
    drop(read);
    let _ = std::fs::remove_file(&path);
    let mut engine = restored.map_err(|e| e.to_string())?;
    let (tally, _) = replay_events(&mut engine, farm, replay, progress).map_err(|e| e.to_string())?;
    Ok(SnapshotFigures {
        register_s,
        save_s,
        restore_s,
        read_s,
        restore_speedup: register_s / restore_s.max(1e-12),
        snapshot_bytes,
        memory_bytes,
        snapshot_to_memory: snapshot_bytes as f64 / memory_bytes.max(1) as f64,
        firings: tally.firings,
        checksum: tally.checksum,
    })
}

/// What the wire path did with a farm: the figures `trigwire bench --wire` adds.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct WireFigures {
    /// Bytes of the log: the farm's submissions and events as `trigwire run` lines.
    pub log_bytes: u64,
    /// Seconds replaying the submission lines: decoding, planning, registering and
    /// writing the answers.
    pub register_s: f64,
    /// Seconds replaying the event lines: decoding, matching and writing the firings.
    pub match_s: f64,
    /// Event lines over `match_s`.
    pub events_per_s: f64,
    /// Firing lines written.
    pub firings: u64,
    /// Output bytes written (to memory, then dropped).
    pub output_bytes: u64,
}

/// Writes `farm` as a wire log, then replays it through [`trigwire::wire::Replay`] as
/// `trigwire run` does (in batches of `replay.batch` events, or one line at a time),
/// timing the submission lines and the event lines apart, on a thread of the batch
/// pool as `trigwire run` does. Writing the log is not timed; the output goes to a
/// buffer that is emptied every megabyte.
///
/// # Errors
/// A line the replay rejects (a bug in the generator or the engine), as its output.
pub fn measure_wire(farm: &Farm, replay: ReplayOptions) -> Result<WireFigures, String> {
    trigwire::on_pool_thread(|| measure_wire_here(farm, replay))
}

fn measure_wire_here(farm: &Farm, replay: ReplayOptions) -> Result<WireFigures, String> {
    use trigwire::wire::{Mode, Output, Replay};
    let mut log = Vec::new();
    farm.write_wire(replay.order, replay.events, &mut log).map_err(|e| e.to_string())?;
    let mode = replay.batch.map_or(Mode::OneByOne, Mode::Batch);
    let mut wire = Replay::new(trigwire::Engine::default());
    let mut out = Output::default();
    let submissions = farm.submissions_len() as usize;
    let mut lines = log.split(|&b| b == b'\n').filter(|l| !l.is_empty());
    let (mut firings, mut output_bytes) = (0u64, 0u64);
    // Counts the firing lines and empties the output; returns the seconds that took, so
    // that the check is not counted as the wire's work.
    let mut take = |out: &mut Output| {
        let start = std::time::Instant::now();
        firings += out
            .bytes
            .split(|&b| b == b'\n')
            .filter(|l| l.starts_with(b"{\"line\":") && l.windows(8).any(|w| w == b"\"fired\":"))
            .count() as u64;
        output_bytes += out.bytes.len() as u64;
        let errors = std::mem::take(&mut out.errors);
        out.bytes.clear();
        match errors.first() {
            Some(e) => Err(e.clone()),
            None => Ok(start.elapsed().as_secs_f64()),
        }
    };
    let (start, mut checking) = (std::time::Instant::now(), 0.0);
    for line in lines.by_ref().take(submissions) {
        wire.feed(line, mode, &mut out);
        checking += take(&mut out)?;
    }
    let register_s = start.elapsed().as_secs_f64() - checking;
    let (mut events, start, mut checking) = (0u64, std::time::Instant::now(), 0.0);
    for line in lines {
        wire.feed(line, mode, &mut out);
        events += 1;
        if out.bytes.len() > 1 << 20 {
            checking += take(&mut out)?;
        }
    }
    wire.finish(&mut out);
    checking += take(&mut out)?;
    let match_s = start.elapsed().as_secs_f64() - checking;
    let events_per_s = events as f64 / match_s.max(1e-9);
    Ok(WireFigures { log_bytes: log.len() as u64, register_s, match_s, events_per_s, firings, output_bytes })
}

fn register(
    engine: &mut impl Measured,
    farm: &Farm,
    progress: &mut dyn FnMut(Progress),
) -> Result<f64, trigwire::Error> {
    let of = u64::from(farm.submissions_len());
    let mut firings = Vec::new();
    let mut seconds = 0.0;
    for (s, submission) in farm.submissions().enumerate() {
        firings.clear();
        let start = std::time::Instant::now();
        engine.submit(&submission, &mut firings)?;
        seconds += start.elapsed().as_secs_f64();
        let done = s as u64 + 1;
        if done % (of / 50).max(1) == 0 || done == of {
            progress(Progress::Registering { done, of });
        }
    }
    Ok(seconds)
}

/// Counts and hashes firings as they come.
#[derive(Default)]
struct Tally {
    events: u64,
    firings: u64,
    checksum: u64,
    one: Vec<trigwire::Firing>,
    batch: Vec<trigwire::BatchFiring>,
}

impl Tally {
    /// Processes `chunk`; returns the seconds spent in the engine.
    fn replay(
        &mut self,
        engine: &mut impl Measured,
        chunk: &[Event],
        batch: Option<usize>,
    ) -> Result<f64, trigwire::Error> {
        let base = self.events;
        let start = std::time::Instant::now();
        match batch {
            None => {
                for (i, event) in chunk.iter().enumerate() {
                    self.one.clear();
                    engine.process(event, &mut self.one)?;
                    for j in 0..self.one.len() {
                        let callback = self.one[j].callback.as_u32();
                        self.add(base + i as u64, callback);
                    }
                }
            }
            Some(size) => {
                for (c, part) in chunk.chunks(size.max(1)).enumerate() {
                    self.batch.clear();
                    if let Some((_, e)) = engine.process_batch(part, &mut self.batch).into_iter().next() {
                        return Err(e);
                    }
                    let first = base + (c * size.max(1)) as u64;
                    for i in 0..self.batch.len() {
                        let (event, callback) = (self.batch[i].event, self.batch[i].firing.callback);
                        self.add(first + event as u64, callback.as_u32());
                    }
                }
            }
        }
        let seconds = start.elapsed().as_secs_f64();
        self.events += chunk.len() as u64;
        Ok(seconds)
    }

    fn add(&mut self, event: u64, callback: u32) {
        self.firings += 1;
        let x = (event << 32 | u64::from(callback)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.checksum = (self.checksum.rotate_left(5) ^ x).wrapping_mul(0x100_0000_01B3);
    }
}

fn breakdown(m: &trigwire::MemoryUsage) -> serde_json::Value {
    serde_json::json!({
        "callbacks": m.callbacks, "templates": m.templates, "index_heads": m.index_heads,
        "index_tables": m.index_tables, "timers": m.timers, "jobs": m.jobs, "symbols": m.symbols,
        "facts": m.facts, "total": m.total(),
    })
}

/// The process's peak resident set in bytes (`VmHWM` of `/proc/self/status`).
pub fn peak_rss_bytes() -> Option<u64> {
    proc_kb("/proc/self/status", "VmHWM:")
}

/// The process's memory in transparent huge pages, in bytes (`AnonHugePages` of
/// `/proc/self/smaps_rollup`).
pub fn huge_page_bytes() -> Option<u64> {
    proc_kb("/proc/self/smaps_rollup", "AnonHugePages:")
}

/// The `key: N kB` figure of a `/proc` file, in bytes.
fn proc_kb(path: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
