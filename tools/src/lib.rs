//! Tools built beside the [`trigwire`] library, outside its public API: the farm
//! simulator of `trigwire demo` ([`sim`]), the picture of a replay ([`timeline`]), seeded farms for benchmarks and scale tests
//! ([`bench_farm`]), and the naive reference semantics ([`Reference`]) that the tests,
//! the fuzz targets and the benchmarks compare the engine against. The `trigwire`
//! binary (`src/main.rs`: `run`, `check`, `demo`, `bench`) is built on them.
//!
//! The reference shares nothing with the engine but the syntax tree, the public model
//! types, the Qube `dependency` parser and the public [`trigwire::Error`] builder, so it
//! can disagree with the engine wherever the engine is wrong.
#![deny(missing_docs, missing_debug_implementations)]

pub mod bench_farm;
pub mod reference;
mod rng;
pub mod sim;
pub mod timeline;

pub use reference::Reference;
