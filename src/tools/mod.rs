//! Tools built on the library: the farm simulator of `trigwire demo`, seeded farms for
//! benchmarks, and the naive reference semantics that tests and benchmarks compare
//! against.

pub mod bench_farm;
pub mod reference;
pub mod sim;
