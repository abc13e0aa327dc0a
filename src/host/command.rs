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

use crate::engine::{Engine, Explanation, Metrics, Submission};
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
///
/// Each method comes in two forms: one appends to a `Vec`, the other (`*_to`, and
/// [`Apply::submit_each`]) hands each outcome to a sink as it is produced. The engine
/// produces them one at a time, so a host that writes each outcome as it comes holds
/// none of a command's fan-out; the defaults of the sink forms gather a command's
/// outcomes first.
pub trait Apply {
    /// Applies one command, appending its outcomes; see [`Engine::apply`].
    ///
    /// # Errors
    /// A rejected command, which changed nothing and appended nothing.
    fn apply(&mut self, command: &Command, out: &mut Vec<Outcome>) -> Result<(), Error>;

    /// Applies one command, handing each outcome to `out` in order; see
    /// [`Engine::apply_to`]. The default gathers them with [`Apply::apply`] first.
    ///
    /// # Errors
    /// A rejected command, which changed nothing and handed nothing over.
    fn apply_to(&mut self, command: &Command, out: &mut dyn FnMut(Outcome)) -> Result<(), Error> {
        let mut outcomes = Vec::new();
        let result = self.apply(command, &mut outcomes);
        outcomes.into_iter().for_each(out);
        result
    }

    /// Applies commands in order, appending every outcome tagged with its command's
    /// position; see [`Engine::apply_all`].
    fn apply_all(&mut self, commands: &[Command], out: &mut Vec<Reply>) {
        self.apply_all_to(commands, &mut |reply| out.push(reply));
    }

    /// Applies commands in order, handing every outcome to `out`, tagged with its
    /// command's position; see [`Engine::apply_all_to`]. The default applies them one by
    /// one with [`Apply::apply_to`].
    fn apply_all_to(&mut self, commands: &[Command], out: &mut dyn FnMut(Reply)) {
        for (i, command) in commands.iter().enumerate() {
            if let Err(e) = self.apply_to(command, &mut |outcome| out(Reply { command: i, outcome })) {
                out(Reply { command: i, outcome: Outcome::Rejected(e) });
            }
        }
    }

    /// Applies a submission whose jobs `feed` hands over one at a time, handing `out`
    /// the outcomes of [`Command::Submit`] in order; see [`Engine::submit_each`]. The
    /// default collects the jobs and applies them as one command.
    ///
    /// # Errors
    /// The error `feed` returns, or what the submission's command would be rejected for.
    fn submit_each(&mut self, feed: &mut JobFeed<'_>, out: &mut dyn FnMut(Outcome)) -> Result<(), Error> {
        let mut jobs = Vec::new();
        feed(&mut |job| jobs.push(job.clone()))?;
        self.apply_to(&Command::Submit(jobs), out)
    }
}

impl Apply for Engine {
    fn apply(&mut self, command: &Command, out: &mut Vec<Outcome>) -> Result<(), Error> {
        Engine::apply(self, command, out)
    }

    fn apply_to(&mut self, command: &Command, out: &mut dyn FnMut(Outcome)) -> Result<(), Error> {
        Engine::apply_to(self, command, out)
    }

    fn apply_all_to(&mut self, commands: &[Command], out: &mut dyn FnMut(Reply)) {
        Engine::apply_all_to(self, commands, out)
    }

    fn submit_each(&mut self, feed: &mut JobFeed<'_>, out: &mut dyn FnMut(Outcome)) -> Result<(), Error> {
        // A fault of the feed itself (the host's decoding) is not a command.
        let mut fed = true;
        let feeding = |take: &mut dyn FnMut(&JobSpec)| {
            let result = feed(take);
            fed = result.is_ok();
            result
        };
        let result = self.accept_submission(feeding);
        if fed {
            self.counters.command("submit", 1);
            self.counters.count_rejections(u64::from(result.is_err()));
        }
        let (plan, submission) = result?;
        self.submit_accepted(plan, submission, out)
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
        self.apply_to(command, &mut |outcome| out.push(outcome))
    }

    /// Applies one command, handing each outcome to `out` as it is produced, in the
    /// order of the module docs: each firing as the matcher finds it, so a host that
    /// writes every outcome as it comes holds none of the command's fan-out (one event
    /// releasing a million callbacks). A rejected command hands nothing over and
    /// returns its error; every check comes before the first outcome.
    ///
    /// # Example
    /// ```
    /// use trigwire::{CallbackSpec, Command, Engine, Event, EventName, JobSpec, Outcome};
    /// let mut engine = Engine::default();
    /// let callbacks = vec![CallbackSpec::qube("complete-job-1", "unblock-self"); 3];
    /// engine.apply(&Command::Submit(vec![JobSpec::default(), JobSpec { callbacks, ..JobSpec::default() }]), &mut Vec::new())?;
    /// let mut written = 0;
    /// engine.apply_to(&Command::Event(Event::job(EventName::Complete, 1)), &mut |outcome| {
    ///     assert!(matches!(outcome, Outcome::Fired(_)));
    ///     written += 1; // a host writes the line here, and keeps nothing
    /// })?;
    /// assert_eq!(written, 3);
    /// # Ok::<(), trigwire::Error>(())
    /// ```
    ///
    /// # Errors
    /// Whatever the command's own method rejects.
    pub fn apply_to(&mut self, command: &Command, out: &mut dyn FnMut(Outcome)) -> Result<(), Error> {
        self.counters.command(command.kind(), 1);
        let result = self.apply_counted(command, out);
        self.counters.count_rejections(u64::from(result.is_err()));
        result
    }

    fn apply_counted(&mut self, command: &Command, out: &mut dyn FnMut(Outcome)) -> Result<(), Error> {
        match command {
            Command::Submit(jobs) => {
                let (plan, submission) = self.accept_submission(|take| {
                    jobs.iter().for_each(take);
                    Ok(())
                })?;
                self.submit_accepted(plan, submission, out)
            }
            Command::Global(spec) => {
                let resolved = self.accept_global(spec)?;
                out(Outcome::GlobalAdded { callback: resolved.id, index: resolved.index });
                self.fire_global(&resolved, &mut |f| out(Outcome::Fired(f)));
                Ok(())
            }
            Command::Event(event) => self.process_to(event, &mut |f| out(Outcome::Fired(f))),
            Command::Time(to) => self.advance_clock_to(*to, &mut |f| out(Outcome::Fired(f))),
            Command::Remove(job) => self.remove_job_to(*job, &mut |f| out(Outcome::Fired(f))),
            Command::RemoveCallback(id) => self.remove_callback(*id),
            Command::Explain { job, work } => {
                out(Outcome::Explained(self.explain(*job, work.as_deref())?));
                Ok(())
            }
            Command::Metrics => {
                out(Outcome::Metrics(self.metrics()));
                Ok(())
            }
            Command::Satisfy { job, callback, atom } => {
                // One callback: at most one firing, kept until the answer is out.
                let mut firings = Vec::new();
                self.satisfy(*job, *callback, atom.as_deref(), &mut firings)?;
                out(Outcome::Satisfied { job: *job, callback: *callback });
                firings.into_iter().for_each(|f| out(Outcome::Fired(f)));
                Ok(())
            }
            Command::Rearm { job, callback } => {
                self.rearm(*job, *callback)?;
                out(Outcome::Rearmed { job: *job, callback: *callback });
                Ok(())
            }
        }
    }

    /// Hands over an accepted submission, then fires it.
    fn submit_accepted(
        &mut self,
        plan: crate::front::plan::Plan,
        submission: Submission,
        out: &mut dyn FnMut(Outcome),
    ) -> Result<(), Error> {
        out(Outcome::Submitted(submission));
        self.fire_submission(&plan, &mut |f| out(Outcome::Fired(f)))
    }

    /// Applies commands in order and appends every outcome, tagged with its command's
    /// position; a rejected command gives one [`Outcome::Rejected`]. Runs of consecutive
    /// events go through [`Engine::process_batch`], so the outcomes are exactly those of
    /// calling [`Engine::apply`] on each command in turn, whatever the thread count.
    pub fn apply_all(&mut self, commands: &[Command], out: &mut Vec<Reply>) {
        self.apply_all_to(commands, &mut |reply| out.push(reply));
    }

    /// [`Engine::apply_all`], handing each reply to `out` as it is produced. A run of
    /// events is matched as one batch, whose matcher firings (72 bytes each)
    /// are gathered before the first reply of the run; each is turned into its
    /// [`Firing`] only as it is handed over.
    pub fn apply_all_to(&mut self, commands: &[Command], out: &mut dyn FnMut(Reply)) {
        let mut i = 0;
        let mut events: Vec<&Event> = Vec::new();
        while i < commands.len() {
            let run = commands[i..].iter().take_while(|c| matches!(c, Command::Event(_))).count();
            if run > 1 {
                events.clear();
                events.extend(commands[i..i + run].iter().filter_map(|c| match c {
                    Command::Event(e) => Some(e),
                    _ => None,
                }));
                let mut rejections = 0;
                self.process_batch_to(events.iter().copied(), &mut |e, result| {
                    let outcome = result.map_or_else(Outcome::Rejected, Outcome::Fired);
                    rejections += u64::from(matches!(outcome, Outcome::Rejected(_)));
                    out(Reply { command: i + e, outcome });
                });
                self.counters.command("event", run as u64);
                self.counters.count_rejections(rejections);
                i += run;
                continue;
            }
            if let Err(e) = self.apply_to(&commands[i], &mut |outcome| out(Reply { command: i, outcome })) {
                out(Reply { command: i, outcome: Outcome::Rejected(e) });
            }
            i += 1;
        }
    }
}
