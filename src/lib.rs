//! trigwire
#![deny(missing_docs)]

pub mod bench_farm;
mod engine;
mod error;
pub mod ids;
mod intern;
mod model;
pub mod pipeline;
pub mod qube;
pub mod reference;
pub mod sim;
mod registry;
mod resolve;
pub mod syntax;
pub mod wire;

pub use engine::{explain, BatchFiring, Compiled, Config, Engine, MemoryUsage, Stats, Submission};
pub use error::{Error, ErrorKind};
pub use model::{CallbackSpec, Cause, Event, EventExtra, Firing, JobSpec, JobStatus, Language, Target};
pub use reference::Reference;
pub use registry::{Action, Limits};
pub use syntax::{EventName, EventType};
