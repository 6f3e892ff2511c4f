//! A bounded, stable-toolchain fuzz run of the emulator's decoders: the seed corpus of real
//! client frames (`emulator/fuzz/corpus`, recorded from fe2o3-amqp and the official Python
//! client) mutated with a seeded generator, every input through the entry points of
//! `eventhubs_emulator::fuzz`. It fails on any panic, and on any value the bounded validator
//! accepts whose decoding builds more than two values per input byte.
//!
//! `EMULATOR_FUZZ_SECONDS` (default 20) is the whole run's time; `EMULATOR_FUZZ_SEED` replays
//! a run. Coverage-guided runs on nightly use the same corpus (`emulator/fuzz/README.md`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use eventhubs_emulator::fuzz;
use eventhubs_emulator::wire::codec::value_len;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_amqp::value::Value;

type Target = (&'static str, fn(&[u8]));

const TARGETS: [Target; 6] = [
    ("frames", fuzz::frames),
    ("performative", fuzz::performative),
    ("message", fuzz::message),
    ("sasl", fuzz::sasl),
    ("cbs", fuzz::cbs),
    ("management", fuzz::management),
];

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("seed corpus {}: {e}", dir.display()))
        .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

/// Numbers that sit on the decoders' edges: sizes, counts and widths.
const INTERESTING_U32: [u32; 10] = [0, 1, 2, 7, 8, 0x7f, 0xff, 0x7fff_ffff, 0xffff_fffe, 0xffff_ffff];
/// Format codes: nulls and booleans (zero-width), arrays, lists, maps, described values.
const INTERESTING_U8: [u8; 14] = [
    0x00, 0x40, 0x41, 0x42, 0x45, 0xa1, 0xb1, 0xc0, 0xc1, 0xd0, 0xd1, 0xe0, 0xf0, 0xff,
];

fn mutate(rng: &mut StdRng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        if data.is_empty() {
            data.push(rng.random());
            continue;
        }
        let at = rng.random_range(0..data.len());
        match rng.random_range(0..8) {
            0 => data[at] ^= 1 << rng.random_range(0..8),
            1 => data[at] = INTERESTING_U8[rng.random_range(0..INTERESTING_U8.len())],
            2 if at + 4 <= data.len() => {
                let n = INTERESTING_U32[rng.random_range(0..INTERESTING_U32.len())];
                data[at..at + 4].copy_from_slice(&n.to_be_bytes());
            }
            3 => {
                let end = (at + rng.random_range(1..64)).min(data.len());
                data.drain(at..end);
            }
            4 => {
                let len = rng.random_range(1..32).min(data.len() - at);
                let chunk = data[at..at + len].to_vec();
                let times = rng.random_range(1..64);
                for _ in 0..times {
                    data.splice(at..at, chunk.iter().copied());
                }
            }
            5 if !other.is_empty() => {
                let from = rng.random_range(0..other.len());
                let len = rng.random_range(1..=(other.len() - from).min(256));
                data.splice(at..at, other[from..from + len].iter().copied());
            }
            6 => data.truncate(at),
            _ => {
                let insert: Vec<u8> = (0..rng.random_range(1..16)).map(|_| rng.random()).collect();
                data.splice(at..at, insert);
            }
        }
    }
    data
}

/// Values a decoder builds for `value` (every node, array elements included).
fn nodes(value: &Value) -> usize {
    1 + match value {
        Value::Described(d) => nodes(&d.value),
        Value::List(items) => items.iter().map(nodes).sum(),
        Value::Array(items) => items.iter().map(nodes).sum(),
        Value::Map(map) => map.iter().map(|(k, v)| nodes(k) + nodes(v)).sum(),
        _ => 0,
    }
}

/// Decoding work of every value the validator accepts at each of the first offsets of `data`:
/// the most values built per byte.
fn worst_nodes_per_byte(data: &[u8]) -> f64 {
    let mut worst: f64 = 0.0;
    for start in 0..data.len().min(16) {
        let bytes = &data[start..];
        let Ok(len) = value_len(bytes) else { continue };
        if let Ok(value) = serde_amqp::from_slice::<Value>(&bytes[..len]) {
            let n = nodes(&value);
            assert!(
                n <= 2 * len + 2,
                "a {len}-byte value passed the validator and decoded into {n} values: {:02x?}",
                &bytes[..len.min(64)]
            );
            worst = worst.max(n as f64 / len as f64);
        }
    }
    worst
}

#[test]
fn mutated_real_client_frames_never_panic_and_cost_work_proportional_to_their_bytes() {
    let seconds: u64 = std::env::var("EMULATOR_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("EMULATOR_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("fuzz seed {seed} (EMULATOR_FUZZ_SEED replays it), {seconds} s");
    let per_target = Duration::from_secs(seconds) / TARGETS.len() as u32;
    let mut rng = StdRng::seed_from_u64(seed);
    for (name, entry) in TARGETS {
        let seeds = corpus(name);
        // The seeds themselves first: real frames must pass untouched.
        for s in &seeds {
            entry(s);
        }
        let started = Instant::now();
        let (mut runs, mut bytes, mut worst_ratio) = (0u64, 0u64, 0.0f64);
        let mut slowest = (Duration::ZERO, 0usize);
        let mut largest = 0usize;
        while started.elapsed() < per_target {
            let seed_input = &seeds[rng.random_range(0..seeds.len())];
            let other = &seeds[rng.random_range(0..seeds.len())];
            let data = mutate(&mut rng, seed_input, other);
            let one = Instant::now();
            let outcome = std::panic::catch_unwind(|| entry(&data));
            let took = one.elapsed();
            if outcome.is_err() {
                panic!(
                    "{name}: input of {} bytes panicked (seed {seed}): {:02x?}",
                    data.len(),
                    &data
                );
            }
            worst_ratio = worst_ratio.max(worst_nodes_per_byte(&data));
            if took > slowest.0 {
                slowest = (took, data.len());
            }
            largest = largest.max(data.len());
            runs += 1;
            bytes += data.len() as u64;
        }
        assert!(runs > 0, "{name}: no input ran");
        println!(
            "{name}: {runs} inputs ({bytes} bytes, largest {largest}) from {} seeds; at most \
             {worst_ratio:.2} decoded values per byte; slowest input {:?} ({} bytes)",
            seeds.len(),
            slowest.0,
            slowest.1
        );
    }
}

#[test]
fn the_stalling_frames_decode_at_once() {
    // An open of arrays of 2^32 - 1 nulls, and a frame of many 4000-null arrays:
    // each is refused by the validator before any decoder runs.
    let open = common::raw::zero_width_open();
    assert_eq!(open.len(), 46);
    assert!(value_len(&open).is_err());
    fuzz::performative(&open);
    let small = [0xf0u8, 0, 0, 0, 5, 0, 0, 0x0f, 0xa0, 0x40];
    let mut list = vec![0xd0u8];
    let body: Vec<u8> = std::iter::repeat_n(small, 6000).flatten().collect();
    list.extend(u32::try_from(body.len() + 4).unwrap().to_be_bytes());
    list.extend(6000u32.to_be_bytes());
    list.extend(&body);
    assert!(value_len(&list).is_err(), "24 million nulls in 60 kB are refused");
    assert!(worst_nodes_per_byte(&list) <= 2.0);
}
