//! `cargo +nightly fuzz run cbs`: see `eventhubs_emulator::fuzz::cbs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| eventhubs_emulator::fuzz::cbs(data));
