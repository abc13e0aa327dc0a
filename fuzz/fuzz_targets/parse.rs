//! Any bytes as a trigger: never a panic; a parsed trigger's canonical form parses back
//! to the same tree. See `check_parse` in `fuzz/src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| trigwire_fuzz::check_parse(data));
