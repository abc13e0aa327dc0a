//! Any bytes as a Qube `dependency` attribute: never a panic, errors point into the
//! text. See `check_dependency` in `fuzz/src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| trigwire_fuzz::check_dependency(data));
