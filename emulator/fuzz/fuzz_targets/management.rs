//! `cargo +nightly fuzz run management`: see `eventhubs_emulator::fuzz::management`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| eventhubs_emulator::fuzz::management(data));
