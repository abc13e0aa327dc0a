//! The one front door: every host (the CLI's wire format, the pipeline, the simulator,
//! and the Python and network hosts to come) turns its input into [`Command`]s and
//! prints the [`Outcome`]s that [`Engine::apply`] produces.
//!
//! A command is plain owned data (`Send`, `'static`), so it can cross a channel or a
//! language boundary as it is. An outcome carries everything a host prints with the
//! names already resolved to text ([`Firing`] shares the engine's strings through
//! `Arc`), so no host needs the engine after the fact to say what fired.
//!
//! # Order
//!
//! One command's outcomes come in this order: for an accepted submission (its warnings
//! on it), [`Outcome::Submitted`] and then its firings (registration firings first, then those
//! of each job's `submit` event); for a global callback, [`Outcome::GlobalAdded`] and
//! then its registration firings; for an event or a clock move, its firings; for an
//! explanation or metrics, its one answer; for a satisfy, [`Outcome::Satisfied`] and
//! then its firing, if any; for a re-arm, [`Outcome::Rearmed`]. A rejected
//! command has exactly one outcome, [`Outcome::Rejected`], and changed nothing.

use crate::engine::{BatchFiring, Engine, Explanation, Metrics, Submission};
use crate::error::Error;
use crate::front::ids::CallbackId;
use crate::front::model::{CallbackSpec, Event, Firing, JobSpec};

/// One thing a host asks of the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// Submit jobs together ([`Engine::submit`]).
    Submit(Vec<JobSpec>),
    /// Register a global callback ([`Engine::add_global`]).
    Global(CallbackSpec),
    /// Report an event ([`Engine::process`]).
    Event(Event),
    /// Move the clock to this Qube time ([`Engine::advance_clock`]).
    Time(u64),
    /// Remove a live job ([`Engine::remove_job`]).
    Remove(u64),
    /// Remove a live callback, global or a job's ([`Engine::remove_callback`]). Like
    /// [`Command::Remove`], it has no outcome of its own when accepted.
    RemoveCallback(CallbackId),
    /// Explain a live job's callbacks, or those about one work item
    /// ([`Engine::explain`]); answered by [`Outcome::Explained`].
    Explain {
        /// The job.
        job: u64,
        /// Only the callbacks with an atom about this work item.
        work: Option<String>,
    },
    /// Report the counters ([`Engine::metrics`]); answered by [`Outcome::Metrics`].
    Metrics,
    /// Force an atom of a callback, or all of them, satisfied ([`Engine::satisfy`]);
    /// answered by [`Outcome::Satisfied`] and any firing it causes.
    Satisfy {
        /// The callback's job.
        job: u64,
        /// The callback's position in the job's list.
        callback: u32,
        /// The atom's canonical text; `None` is every atom.
        atom: Option<String>,
    },
    /// Clear a callback's latches and count ([`Engine::rearm`]); answered by
    /// [`Outcome::Rearmed`].
    Rearm {
        /// The callback's job.
        job: u64,
        /// The callback's position in the job's list.
        callback: u32,
    },
}

impl Command {
    /// The command's kind in lowercase, as the wire format and metrics name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Command::Submit(_) => "submit",
            Command::Global(_) => "callback",
            Command::Event(_) => "event",
            Command::Time(_) => "time",
            Command::Remove(_) => "remove",
            Command::RemoveCallback(_) => "remove_callback",
            Command::Explain { .. } => "explain",
            Command::Metrics => "metrics",
            Command::Satisfy { .. } => "satisfy",
            Command::Rearm { .. } => "rearm",
        }
    }
}

/// One thing a command produced.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// A submission was accepted: the job ids in order and the first job's group.
    Submitted(Submission),
    /// A global callback was registered.
    GlobalAdded {
        /// Its id.
        callback: CallbackId,
        /// Its position among global callbacks.
        index: u32,
    },
    /// A callback fired.
    Fired(Firing),
    /// The answer to [`Command::Explain`].
    Explained(Explanation),
    /// The answer to [`Command::Metrics`] (the command itself counted).
    Metrics(Metrics),
    /// [`Command::Satisfy`] was applied to this callback; its firing, if any, follows.
    Satisfied {
        /// The job.
        job: u64,
        /// The callback's position in the job's list.
        callback: u32,
    },
    /// [`Command::Rearm`] was applied to this callback.
    Rearmed {
        /// The job.
        job: u64,
        /// The callback's position in the job's list.
        callback: u32,
    },
    /// The command was rejected and changed nothing.
    Rejected(Error),
}

/// A submission's jobs handed over one at a time: called with a `take` function, it
/// calls `take` with each job in order, and returns an error to abandon the submission.
pub type JobFeed<'f> = dyn FnMut(&mut dyn FnMut(&JobSpec)) -> Result<(), Error> + 'f;

/// Something that applies [`Command`]s: the engine, and the reference semantics that
/// tests and benchmarks compare it with. Hosts that can drive either (the wire format's
/// [`crate::wire::Replay`]) are generic over this trait.
pub trait Apply {
    /// Applies one command, appending its outcomes; see [`Engine::apply`].
    ///
    /// # Errors
    /// A rejected command, which changed nothing and appended nothing.
    fn apply(&mut self, command: &Command, out: &mut Vec<Outcome>) -> Result<(), Error>;

    /// Applies commands in order, appending every outcome tagged with its command's
    /// position; see [`Engine::apply_all`]. The default applies them one by one.
    fn apply_all(&mut self, commands: &[Command], out: &mut Vec<Reply>) {
        let mut one = Vec::new();
        for (i, command) in commands.iter().enumerate() {
            one.clear();
            if let Err(e) = self.apply(command, &mut one) {
                one.push(Outcome::Rejected(e));
            }
            out.extend(one.drain(..).map(|outcome| Reply { command: i, outcome }));
        }
    }

    /// Applies a submission whose jobs `feed` hands over one at a time, with the
    /// outcomes of [`Command::Submit`]; see [`Engine::submit_each`]. The default collects
    /// the jobs and applies them as one command.
    ///
    /// # Errors
    /// The error `feed` returns, or what the submission's command would be rejected for.
    fn submit_each(&mut self, feed: &mut JobFeed<'_>, out: &mut Vec<Outcome>) -> Result<(), Error> {
        let mut jobs = Vec::new();
        feed(&mut |job| jobs.push(job.clone()))?;
        self.apply(&Command::Submit(jobs), out)
    }
}

impl Apply for Engine {
    fn apply(&mut self, command: &Command, out: &mut Vec<Outcome>) -> Result<(), Error> {
        Engine::apply(self, command, out)
    }

    fn apply_all(&mut self, commands: &[Command], out: &mut Vec<Reply>) {
        Engine::apply_all(self, commands, out)
    }

    fn submit_each(&mut self, feed: &mut JobFeed<'_>, out: &mut Vec<Outcome>) -> Result<(), Error> {
        let mut firings = Vec::new();
        // A fault of the feed itself (the host's decoding) is not a command.
        let mut fed = true;
        let feeding = |take: &mut dyn FnMut(&JobSpec)| {
            let result = feed(take);
            fed = result.is_ok();
            result
        };
        let result = Engine::submit_each(self, feeding, &mut firings);
        if fed {
            self.counters.command("submit", 1);
            self.counters.rejections += u64::from(result.is_err());
        }
        let submission = result?;
        out.push(Outcome::Submitted(submission));
        out.extend(firings.into_iter().map(Outcome::Fired));
        Ok(())
    }
}

/// An outcome of [`Engine::apply_all`], with the position of its command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The index of the command in the slice given to [`Engine::apply_all`].
    pub command: usize,
    /// What it produced.
    pub outcome: Outcome,
}

impl Engine {
    /// Applies one command, appending its outcomes to `out` in the order of the module
    /// docs. Returns the error of a rejected command (which changed nothing and
    /// appended nothing).
    ///
    /// # Example
    /// ```
    /// use trigwire::{CallbackSpec, Command, Engine, Event, EventName, JobSpec, Outcome};
    /// let mut engine = Engine::default();
    /// let mut out = Vec::new();
    /// let job = JobSpec { callbacks: vec![CallbackSpec::qube("complete-job-7", "unblock-self")], ..JobSpec::default() };
    /// engine.apply(&Command::Submit(vec![job]), &mut out)?;
    /// engine.apply(&Command::Event(Event::job(EventName::Complete, 7)), &mut out)?;
    /// let Outcome::Fired(firing) = &out[1] else { panic!("a firing") };
    /// assert_eq!(&*firing.action.code, "unblock-self");
    /// # Ok::<(), trigwire::Error>(())
    /// ```
    ///
    /// # Errors
    /// Whatever the command's own method rejects.
    pub fn apply(&mut self, command: &Command, out: &mut Vec<Outcome>) -> Result<(), Error> {
        self.counters.command(command.kind(), 1);
        let result = self.apply_counted(command, out);
        self.counters.rejections += u64::from(result.is_err());
        result
    }

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
            Command::Metrics => out.push(Outcome::Metrics(self.metrics())),
            Command::Satisfy { job, callback, atom } => {
                self.satisfy(*job, *callback, atom.as_deref(), &mut firings)?;
                out.push(Outcome::Satisfied { job: *job, callback: *callback });
            }
            Command::Rearm { job, callback } => {
                self.rearm(*job, *callback)?;
                out.push(Outcome::Rearmed { job: *job, callback: *callback });
            }
        }
        out.extend(firings.into_iter().map(Outcome::Fired));
        Ok(())
    }

    /// Applies commands in order and appends every outcome, tagged with its command's
    /// position; a rejected command gives one [`Outcome::Rejected`]. Runs of consecutive
    /// events go through [`Engine::process_batch`], so the outcomes are exactly those of
    /// calling [`Engine::apply`] on each command in turn, whatever the thread count.
    pub fn apply_all(&mut self, commands: &[Command], out: &mut Vec<Reply>) {
        let mut i = 0;
        let mut one = Vec::new();
        let mut events: Vec<&Event> = Vec::new();
        let mut fired = Vec::new();
        while i < commands.len() {
            let run = commands[i..].iter().take_while(|c| matches!(c, Command::Event(_))).count();
            if run > 1 {
                events.clear();
                events.extend(commands[i..i + run].iter().filter_map(|c| match c {
                    Command::Event(e) => Some(e),
                    _ => None,
                }));
                fired.clear();
                let rejected = self.process_batch_of(events.iter().copied(), &mut fired);
                self.counters.command("event", run as u64);
                self.counters.rejections += rejected.len() as u64;
                merge_batch(i, run, rejected, &mut fired, out);
                i += run;
                continue;
            }
            one.clear();
            if let Err(e) = self.apply(&commands[i], &mut one) {
                one.push(Outcome::Rejected(e));
            }
            out.extend(one.drain(..).map(|outcome| Reply { command: i, outcome }));
            i += 1;
        }
    }
}

/// Interleaves a batch's rejections and firings in command order: a rejected event has
/// no firings, so its rejection takes its place.
fn merge_batch(
    first: usize,
    len: usize,
    rejected: Vec<(usize, Error)>,
    fired: &mut Vec<BatchFiring>,
    out: &mut Vec<Reply>,
) {
    let mut rejected = rejected.into_iter().peekable();
    let mut fired = fired.drain(..).peekable();
    for e in 0..len {
        if let Some((_, err)) = rejected.next_if(|(j, _)| *j == e) {
            out.push(Reply { command: first + e, outcome: Outcome::Rejected(err) });
        }
        while let Some(f) = fired.next_if(|f| f.event == e) {
            out.push(Reply { command: first + e, outcome: Outcome::Fired(f.firing) });
        }
    }
}
