//! C12 under kill -9 (issue item 6): a child process writes claim batches, fenced and plain
//! checkpoints in a loop and prints each write after its `Ok`; the parent kills it with SIGKILL
//! at a random moment, reopens the file and checks that every record parses and that no
//! acknowledged write was lost (the stored value is the acknowledged one or a later one).
//!
//! `CRASH_ROUNDS` (default 300) sets the number of kills, e.g. `CRASH_ROUNDS=5000`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail by panicking

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::time::{Duration, Instant};

use common::{open_as_child, protocol_line, say, scope, spawn_child};
use eventhubs_store_core::{
    Checkpoint, CheckpointStore, ClaimOptions, ETag, Ownership, SetCheckpointOptions,
};
use eventhubs_store_sqlite::SqliteStore;
use rand::Rng;

const ENTRY: &str = "crash_child_entry";
const PARTITIONS: usize = 4;

/// The last acknowledged write of each kind, per partition.
#[derive(Debug, Default, Clone)]
struct Acked {
    /// (owner generation, etag) of the last acknowledged claim.
    ownership: Option<(u64, String)>,
    /// Sequence number of the last acknowledged checkpoint.
    checkpoint: Option<i64>,
}

fn owner_name(generation: u64) -> String {
    format!("w{generation}")
}

fn owner_generation(owner: &str) -> u64 {
    owner
        .strip_prefix('w')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("stored owner id {owner:?} does not parse"))
}

fn offset_for(sequence_number: i64) -> String {
    format!("opaque:{sequence_number}:end")
}

#[test]
fn c12_killed_writer_loses_no_acknowledged_write() {
    let rounds: usize = std::env::var("CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut acked: BTreeMap<String, Acked> = BTreeMap::new();
    let mut rng = rand::rng();
    let (mut writes_acked, mut rounds_with_writes) = (0usize, 0usize);
    let started = Instant::now();

    for round in 0..rounds {
        let mut child = spawn_child(ENTRY, &db, &[]);
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut out = String::new();
        // Mostly mid-loop kills: wait for the first acknowledged write (so a loaded machine's
        // slow process start cannot turn them into start-up kills), then a random delay. Some
        // kills land anywhere: during process start, open, recovery or migration.
        let delay = if rng.random_bool(0.15) {
            rng.random_range(0..8)
        } else {
            wait_for_first_ack(&mut stdout, &mut out, round);
            rng.random_range(0..50)
        };
        std::thread::sleep(Duration::from_millis(delay));
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            stdout.read_to_string(&mut out).unwrap();
            child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            let tail: Vec<&str> = out.lines().rev().take(3).collect();
            panic!("round {round}: the writer exited by itself with {status}: {tail:?} {err}");
        }
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        stdout.read_to_string(&mut out).unwrap();

        let mut writes = 0;
        // Only complete lines count: a line cut by the kill acknowledges nothing.
        let complete = out.rsplit_once('\n').map_or("", |(done, _)| done);
        for line in complete.lines() {
            let Some(msg) = protocol_line(line) else { continue };
            let fields: Vec<&str> = msg.split(' ').collect();
            match fields.as_slice() {
                ["OWN", p, generation, etag] => {
                    acked.entry(p.to_string()).or_default().ownership =
                        Some((generation.parse().unwrap(), etag.to_string()));
                }
                ["CP", p, seq] => {
                    acked.entry(p.to_string()).or_default().checkpoint = Some(seq.parse().unwrap())
                }
                ["FAIL", ..] => panic!("round {round}: the writer reported {msg}"),
                _ => continue,
            }
            writes += 1;
        }
        writes_acked += writes;
        rounds_with_writes += usize::from(writes > 0);

        runtime.block_on(verify(&db, &acked, round));
        if round % 50 == 49 || round + 1 == rounds {
            integrity_check(&db);
        }
    }
    assert!(
        rounds_with_writes * 2 > rounds,
        "most kills should land after some acknowledged writes ({rounds_with_writes} of {rounds})"
    );
    println!(
        "crash test: {rounds} SIGKILL rounds, {writes_acked} acknowledged writes checked, \
         {rounds_with_writes} rounds with writes, in {:.1?}",
        started.elapsed()
    );
}

/// Reads the writer's output into `out` up to and including its first protocol line.
fn wait_for_first_ack(stdout: &mut impl BufRead, out: &mut String, round: usize) {
    loop {
        let mut line = String::new();
        let n = stdout.read_line(&mut line).unwrap();
        assert!(
            n > 0,
            "round {round}: the writer closed its output before acknowledging a write: {out}"
        );
        out.push_str(&line);
        if protocol_line(line.trim_end()).is_some() {
            return;
        }
    }
}

/// Reopens the file as a restarted process would and compares it with what was acknowledged.
async fn verify(db: &std::path::Path, acked: &BTreeMap<String, Acked>, round: usize) {
    let store = SqliteStore::open(db)
        .await
        .unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
    let owners = by_partition(
        store.list_ownership(&scope()).await,
        |o: &Ownership| &o.partition_id,
        round,
    );
    let checkpoints = by_partition(
        store.list_checkpoints(&scope()).await,
        |c: &Checkpoint| &c.partition_id,
        round,
    );
    for c in checkpoints.values() {
        let seq = c.sequence_number.expect("every checkpoint has a sequence number");
        assert_eq!(
            c.offset.as_deref(),
            Some(offset_for(seq).as_str()),
            "round {round}: torn checkpoint {c:?}"
        );
    }
    for (p, a) in acked {
        if let Some((generation, etag)) = &a.ownership {
            let stored = owners
                .get(p)
                .unwrap_or_else(|| panic!("round {round}: acknowledged ownership of {p} lost"));
            let stored_generation = owner_generation(&stored.owner_id);
            assert!(
                stored_generation >= *generation,
                "round {round}: partition {p}: acknowledged owner w{generation} replaced by older {stored:?}"
            );
            if stored_generation == *generation {
                assert_eq!(
                    stored.etag.as_ref().map(ETag::as_str),
                    Some(etag.as_str()),
                    "round {round}: {p}"
                );
            }
        }
        if let Some(seq) = a.checkpoint {
            let stored = checkpoints
                .get(p)
                .unwrap_or_else(|| panic!("round {round}: acknowledged checkpoint of {p} lost"));
            assert!(
                stored.sequence_number >= Some(seq),
                "round {round}: partition {p}: acknowledged checkpoint {seq} rolled back to {stored:?}"
            );
        }
    }
}

/// A listing keyed by partition id; a listing error (a record that does not parse) fails.
fn by_partition<T>(
    listed: eventhubs_store_core::Result<Vec<T>>,
    partition: impl Fn(&T) -> &String,
    round: usize,
) -> BTreeMap<String, T> {
    let listed = listed.unwrap_or_else(|e| panic!("round {round}: records do not parse: {e}"));
    listed
        .into_iter()
        .map(|item| (partition(&item).clone(), item))
        .collect()
}

fn integrity_check(db: &std::path::Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let result: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(result, "ok");
}

/// Child side: continues from what the file holds and writes until killed, printing
/// `OWN <partition> <generation> <etag>` and `CP <partition> <seq>` after each `Ok`.
#[test]
#[ignore = "child process of the crash test; started by it with the database path set"]
fn crash_child_entry() {
    let Some((runtime, store)) = open_as_child(ENTRY) else {
        return;
    };
    runtime.block_on(async {
        let mut owners: BTreeMap<String, (u64, Option<ETag>)> =
            (0..PARTITIONS).map(|p| (p.to_string(), (0, None))).collect();
        for o in store.list_ownership(&scope()).await.unwrap() {
            owners.insert(o.partition_id.clone(), (owner_generation(&o.owner_id), o.etag));
        }
        let mut seqs: BTreeMap<String, i64> = (0..PARTITIONS).map(|p| (p.to_string(), 0)).collect();
        for c in store.list_checkpoints(&scope()).await.unwrap() {
            seqs.insert(c.partition_id.clone(), c.sequence_number.unwrap());
        }
        for step in 0u64.. {
            let p = (step as usize % PARTITIONS).to_string();
            match step % 3 {
                // The whole batch in one transaction: all win (no one else writes) or none.
                0 => {
                    let claims: Vec<Ownership> = owners
                        .iter()
                        .map(|(p, (generation, etag))| {
                            Ownership::new(scope(), p, owner_name(generation + 1)).with_etag(etag.clone())
                        })
                        .collect();
                    let won = store
                        .claim_ownership(&claims, &ClaimOptions::default())
                        .await
                        .unwrap();
                    if won.len() != claims.len() {
                        say(&format!("FAIL claim batch won {} of {}", won.len(), claims.len()));
                        return;
                    }
                    for o in won {
                        let generation = owner_generation(&o.owner_id);
                        say(&format!(
                            "OWN {} {generation} {}",
                            o.partition_id,
                            o.etag.as_ref().unwrap()
                        ));
                        owners.insert(o.partition_id, (generation, o.etag));
                    }
                }
                kind => {
                    let seq = seqs[&p] + 1;
                    let checkpoint = Checkpoint::new(scope(), &p, Some(offset_for(seq)), Some(seq));
                    let options = match (kind, &owners[&p]) {
                        (1, (generation, Some(_))) => SetCheckpointOptions::fenced(owner_name(*generation)),
                        _ => SetCheckpointOptions::new(),
                    };
                    if let Err(e) = store.set_checkpoint(&checkpoint, &options).await {
                        say(&format!("FAIL set_checkpoint {e}"));
                        return;
                    }
                    say(&format!("CP {p} {seq}"));
                    seqs.insert(p, seq);
                }
            }
        }
    });
}
