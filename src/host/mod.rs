//! Host adapters: the ways a scheduler drives the engine. Each one translates its own
//! input into [`crate::Command`]s and prints the [`crate::Outcome`]s they produce.
//!
//! `wire` is the JSON-lines format of `trigwire run`; `pipeline` runs the engine on a
//! worker thread behind bounded channels; `conf` reads Qube's `callbacks.conf`.

pub mod command;
pub(crate) mod conf;
pub mod pipeline;
pub mod wire;
