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
//!   order, with the work item or instance a qube code acts on ([`Target`]).
//! - [`syntax`] parses triggers on their own; [`wire`] is the JSON-lines format of
//!   `trigwire run`; [`qube`] holds action codes, the `dependency` attribute and
//!   `callbacks.conf`; [`pipeline`] serves many producer threads.
//! - The tools live beside the library, in the `trigwire-tools` crate (`tools/` in the
//!   repository, not published): the `trigwire` binary, a small farm simulator, seeded
//!   bench farms, and `Reference`, a naive implementation of the same specification that
//!   shares only the syntax tree with the engine: the oracle of the tests and the
//!   baseline of the benchmarks. It builds its errors with the public [`Error`] builder
//!   ([`Error::new`] and the `in_*`/[`Error::at`] notes), so both give identical errors.
//!
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
//! counts and clock jumps are configuration ([`Limits`]); no input can panic the engine,
//! overflow its stack or hang it.
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

/// The seeded generator of the bench farms, for the library's own unit tests (the wire
/// decoder's mutation test draws from it). The bench farms live in the tools crate
/// (`tools/src/rng.rs`); the one small generator is included from there, not copied.
/// Qube compatibility: action codes (spec §6), the `dependency` attribute (spec §4) and
/// the `callbacks.conf` file of universal callbacks (spec §1).
pub mod qube {
    pub use crate::front::{
        frame_range, parse_dependency, CodeLevel, DependencyError, FrameRangeError, Link, LinkKind,
    };
    pub use crate::host::conf::{load_callbacks_conf, parse_callbacks_conf, ConfEntry, ConfError};
}

pub use engine::{explain, on_pool_thread, BatchFiring, Compiled, Config, Engine, MemoryUsage, Stats, Submission};
pub use error::{Error, ErrorKind, WireFault};
pub use front::model::{CallbackSpec, Cause, Event, EventExtra, Firing, JobSpec, JobStatus, Language, Target};
pub use front::registry::{Action, Limits};
pub use host::command::{Apply, Command, JobFeed, Outcome, Reply};
pub use syntax::{EventName, EventType, UnknownWord};
