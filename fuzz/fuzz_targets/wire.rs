//! Any bytes as a `trigwire run` log: never a panic, every bad line gets an error line,
//! batches replay like single events. See `check_wire` in `fuzz/src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| trigwire_fuzz::check_wire(data));
