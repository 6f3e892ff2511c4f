//! `cargo +nightly fuzz run message`: see `eventhubs_emulator::fuzz::message`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| eventhubs_emulator::fuzz::message(data));
