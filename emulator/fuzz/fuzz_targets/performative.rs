//! `cargo +nightly fuzz run performative`: see `eventhubs_emulator::fuzz::performative`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| eventhubs_emulator::fuzz::performative(data));
