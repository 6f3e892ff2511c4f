//! `cargo +nightly fuzz run frames`: see `eventhubs_emulator::fuzz::frames`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| eventhubs_emulator::fuzz::frames(data));
