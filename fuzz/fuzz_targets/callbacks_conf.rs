//! Any bytes as a `callbacks.conf` file: never a panic, errors name a line that exists.
//! See `check_callbacks_conf` in `fuzz/src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| trigwire_fuzz::check_callbacks_conf(data));
