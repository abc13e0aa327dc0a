//! Arbitrary bytes to `Engine::restore`, as they are and with their section checksums
//! made valid: an engine that works or a snapshot error, never a panic. See
//! `check_restore` in `fuzz/src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| trigwire_fuzz::check_restore(data));
