//! `cargo +nightly fuzz run sasl`: see `eventhubs_emulator::fuzz::sasl`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| eventhubs_emulator::fuzz::sasl(data));
