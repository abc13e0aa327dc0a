//! Qube compatibility: action codes (spec §6), the `dependency` attribute (spec §4) and
//! the `callbacks.conf` file of universal callbacks (spec §1).

mod codes;
mod conf;
mod dependency;

pub use codes::CodeLevel;
pub use conf::{load_callbacks_conf, parse_callbacks_conf, ConfEntry, ConfError};
pub use dependency::{parse_dependency, DependencyError, Link, LinkKind};
