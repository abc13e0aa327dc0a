//! trigwire decides which render-farm callbacks fire when farm events happen.
//!
//! A scheduler in the Qube! tradition lets each job carry callbacks: a trigger
//! expression over farm events (`complete-work-ribgen-5 && complete-work-render-5`) and
//! an action (`unblock-work-self`, python code, mail). trigwire compiles the triggers
//! once and then, for each event, touches only the callbacks that wait on it.
//!
//! # Overview
//!
//! - [`Engine`] is the whole engine: [`Engine::submit`] jobs ([`JobSpec`]) with their
//!   callbacks ([`CallbackSpec`]), [`Engine::process`] events ([`Event`]) one at a
//!   time or [`Engine::process_batch`] many, [`Engine::advance_clock`],
//!   [`Engine::remove_job`]. What fired comes back as [`Firing`]s, in a deterministic
//!   order, with the action and the work item or instance a qube code acts on
//!   ([`Target`]) as shared text, so a firing can be printed or sent anywhere without
//!   the engine.
//! - **One front door for hosts.** [`Command`] is everything a host can ask (submit,
//!   global callback, event, clock move, removal) as owned data that crosses threads and
//!   language boundaries; [`Engine::apply`] and [`Engine::apply_all`] turn commands into
//!   [`Outcome`]s (submitted, fired, rejected) in a documented order. Every host is a
//!   translator over it: [`wire`], the JSON-lines format of `trigwire run` (decoded
//!   straight from the line, written straight to bytes, large submissions planned job by
//!   job as they are read: [`Engine::submit_each`]); [`pipeline`], commands from many
//!   producer threads through bounded channels, each answer tagged with its command's
//!   ticket; and the tools' simulator. [`Apply`] is the trait such hosts are generic
//!   over.
//! - [`syntax`] parses triggers on their own; [`qube`] holds action codes, the
//!   `dependency` attribute, frame ranges and `callbacks.conf`.
//! - The tools live beside the library, in the `trigwire-tools` crate (`tools/` in the
//!   repository, not published): the `trigwire` binary, a small farm simulator, seeded
//!   bench farms, and `Reference`, a naive implementation of the same specification that
//!   shares only the syntax tree with the engine: the oracle of the tests and the
//!   baseline of the benchmarks. It builds its errors with the public [`Error`] builder
//!   ([`Error::new`] and the `in_*`/[`Error::at`] notes), so both give identical errors.

//! # Example
//!
//! ```
//! use trigwire::{CallbackSpec, Engine, Event, EventName, JobSpec};
//!
//! let mut engine = Engine::default();
//! let mut firings = Vec::new();
//! let frames = vec!["5".to_string()];
//! let jobs = [
//!     JobSpec { label: Some("ribgen".into()), agenda: frames.clone(), ..JobSpec::default() },
//!     JobSpec { label: Some("render".into()), agenda: frames.clone(), ..JobSpec::default() },
//!     JobSpec {
//!         agenda: frames,
//!         callbacks: vec![CallbackSpec::qube(
//!             "complete-work-ribgen-5 && complete-work-render-5",
//!             "unblock-work-self",
//!         )],
//!         ..JobSpec::default()
//!     },
//! ];
//! engine.submit(&jobs, &mut firings)?;
//! engine.process(&Event::work(EventName::Complete, 2, "5"), &mut firings)?;
//! assert!(firings.is_empty(), "render alone is not enough");
//! engine.process(&Event::work(EventName::Complete, 1, "5"), &mut firings)?;
//! assert_eq!(firings.len(), 1);
//! # Ok::<(), trigwire::Error>(())
//! ```
//!
//! # Error reporting
//!
//! Every rejection is an [`Error`] with an [`ErrorKind`], a message that says what was
//! expected and, where it points into a trigger or attribute, a byte span; `Display`
//! prints the source line with `^^^` under the span. A rejected submission, event,
//! clock move or removal changes nothing. Limits on trigger size and nesting, subjob
//! counts, clock jumps, and what one submission or wire line may ask for (instances,
//! callbacks, atoms, bytes: [`ErrorKind::OverLimit`]) are configuration ([`Limits`]);
//! no input can panic the engine, overflow its stack or hang it.
//!
//! # The pipeline and what each stage costs
//!
//! **Syntax.** A logos DFA splits the text into operators and atoms; a recursive-descent
//! parser with a binding-power table builds an [`syntax::Expr`] with spans. Linear in the
//! text; recursion bounded by the nesting limit.
//!
//! **Resolve.** Each atom is bound to a term against its owner: `self` and `parent`
//! become job ids, a label becomes (process group, symbol), strings become interned
//! symbols. Duplicate atoms share one latch slot. Linear in the atoms.
//!
//! **Compile.** The tree over slots is flattened and hash-consed into a shared
//! template: every callback with the same shape (a million `a-f && b-f` frame triggers)
//! shares one, and keeps only a 64-bit latch word, its count and its owner.
//!
//! **Index.** Each event atom leaves a posting (callback, slot) under its term. An
//! event expands to at most eight keys (its name and `done`, its job id and label, its
//! extra and `*`); each posting found sets a bit and checks one circuit. The work per
//! event is proportional to the callbacks that depend on it, never to the number
//! registered.
//!
//! **Batch.** [`Engine::process_batch`] looks keys up in parallel over events, then
//! updates latches in parallel over disjoint shards of callbacks, and merges the
//! firings back into the order of one-at-a-time processing.
//!
//! **Hosts.** [`wire::Replay`] decodes a line into a [`Command`] without an
//! intermediate JSON tree (event lines in their plain form without serde at all) and
//! writes each outcome as bytes; a run of event lines becomes one batch. On a farm of a
//! million callbacks and a million events its cost per event is about twice the
//! engine's own (`trigwire bench --wire`); the README has the figures.
//!
//! # Performance
//!
//! See the README's performance section for measured figures and the commands that
//! reproduce them; [`Engine::memory_usage`] reports bytes by structure and
//! [`Engine::stats`] counts postings touched.
#![deny(missing_docs, missing_debug_implementations)]

/// The README's examples are doctests too.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

mod engine;
mod error;
mod front;
mod host;
pub mod syntax;

pub use front::ids;
pub use host::{pipeline, wire};

/// Qube compatibility: action codes (spec §6), the `dependency` attribute (spec §4) and
/// the `callbacks.conf` file of universal callbacks (spec §1).
pub mod qube {
    pub use crate::front::{
        frame_range, parse_dependency, CodeLevel, DependencyError, FrameRangeError, Link, LinkKind,
    };
    pub use crate::host::conf::{load_callbacks_conf, parse_callbacks_conf, ConfEntry, ConfError, UniversalCallback};
}

pub use engine::{check, AtomState, CallbackExplanation, Checked, Explanation, Gate, GateKind, Metrics, COMMAND_KINDS};
pub use engine::{
    explain, on_pool_thread, BatchFiring, CatchUp, Compiled, Config, Engine, MemoryUsage, Refire, Stats, Submission,
};
pub use engine::{CallbackInfo, JobInfo};
pub use error::{Error, ErrorKind, LimitName, WireFault};
pub use front::model::{CallbackSpec, Cause, Event, EventExtra, Firing, JobSpec, JobStatus, Language, Target};
pub use front::registry::{Action, Limits};
pub use front::{Warning, WarningKind};
pub use host::command::{Apply, Command, JobFeed, Outcome, Reply};
pub use syntax::{EventName, EventType, UnknownWord};
