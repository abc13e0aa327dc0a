//! A structured farm (`Farm`, built with `Arbitrary` from the bytes): the compiled
//! engine, the reference semantics and batched processing give the same results and
//! firings at every step. See `run_farm` in `fuzz/src/lib.rs`; `cargo fuzz fmt` prints
//! the farm an input decodes to.
#![no_main]

libfuzzer_sys::fuzz_target!(|farm: trigwire_fuzz::Farm| trigwire_fuzz::run_farm(&farm));
