//! The front end: what a host submits, and everything that happens to it before the
//! matcher sees it.
//!
//! [`model`] holds the host's vocabulary (jobs, callbacks, events, firings); [`registry`]
//! assigns ids, process groups and labels, checks actions and plans a whole submission
//! before anything is committed; [`resolve`] binds each atom to a term; `codes` and
//! `dependency` are the Qube action codes and the `dependency` attribute. The compiled
//! matcher reads what this stage produces; the reference semantics do not use it.

pub(crate) mod codes;
pub(crate) mod dependency;
pub(crate) mod frames;
pub mod ids;
pub(crate) mod intern;
pub(crate) mod model;
pub(crate) mod plan;
pub(crate) mod registry;
pub(crate) mod resolve;
pub(crate) mod warnings;

pub use codes::CodeLevel;
pub use dependency::{parse_dependency, DependencyError, Link, LinkKind};
pub use frames::{frame_range, FrameRangeError};
pub use warnings::{Warning, WarningKind};
