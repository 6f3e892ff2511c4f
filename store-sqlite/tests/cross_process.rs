//! C7 across OS processes: several child processes open one database file (a new one: they
//! also race to create and migrate it) and, round after round, all claim one partition with
//! the same expected etag. Exactly one wins each round and the stored record is the winner's.
//!
//! `RACE_ROUNDS` (default 300) and `RACE_PROCESSES` (default 5) tune the run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail by panicking

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::ChildStdin;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{open_as_child, protocol_line, say, scope, spawn_child};
use eventhubs_store_core::{CheckpointStore, ClaimOptions, ETag, Ownership};
use eventhubs_store_sqlite::SqliteStore;

const ENTRY: &str = "race_child_entry";
const CHILD_ID_ENV: &str = "EHSQLITE_TEST_CHILD_ID";
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn c7_processes_racing_on_one_file_have_exactly_one_winner_per_round() {
    let rounds = env_number("RACE_ROUNDS", 300);
    let processes = env_number("RACE_PROCESSES", 5);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("race.db");
    let started = Instant::now();

    // Children send (child id, protocol line) through one channel, so the parent can wait for
    // replies with a timeout instead of hanging on a stuck child.
    let (tx, replies) = mpsc::channel::<(usize, String)>();
    let mut children = Vec::new();
    let mut stdins: Vec<ChildStdin> = Vec::new();
    for id in 0..processes {
        let mut child = spawn_child(ENTRY, &db, &[(CHILD_ID_ENV, id.to_string())]);
        stdins.push(child.stdin.take().unwrap());
        let stdout = child.stdout.take().unwrap();
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(msg) = protocol_line(&line)
                    && tx.send((id, msg.to_string())).is_err()
                {
                    break;
                }
            }
        });
        children.push(child);
    }
    let next = |what: &str| -> (usize, String) {
        replies
            .recv_timeout(REPLY_TIMEOUT)
            .unwrap_or_else(|_| panic!("no reply from a child while waiting for {what}"))
    };
    for _ in 0..processes {
        let (id, msg) = next("READY");
        assert_eq!(msg, "READY", "child {id} failed to open the new database file");
    }

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = runtime.block_on(SqliteStore::open(&db)).unwrap();
    let created = runtime
        .block_on(store.claim_ownership(
            &[Ownership::new(scope(), "0", "parent")],
            &ClaimOptions::default(),
        ))
        .unwrap();
    let mut etag = created[0].etag.clone().unwrap();

    for round in 0..rounds {
        for stdin in &mut stdins {
            writeln!(stdin, "CLAIM {etag}").unwrap();
            stdin.flush().unwrap();
        }
        let mut winners = Vec::new();
        for _ in 0..processes {
            let (id, msg) = next("a claim result");
            match msg.split_once(' ') {
                Some(("WON", new_etag)) => winners.push((id, ETag::new(new_etag))),
                None if msg == "LOST" => {}
                _ => panic!("round {round}: child {id} answered {msg:?}"),
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "round {round}: C7 broken: {} of {processes} processes won with etag {etag}: {winners:?}",
            winners.len()
        );
        let (winner, new_etag) = winners.remove(0);
        let stored = runtime.block_on(store.list_ownership(&scope())).unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(
            stored[0].owner_id,
            format!("child-{winner}"),
            "round {round}: stored record is not the winner's"
        );
        assert_eq!(stored[0].etag.as_ref(), Some(&new_etag), "round {round}");
        assert_ne!(new_etag, etag, "round {round}: C5 etag must change");
        etag = new_etag;
    }

    drop(stdins); // EOF: children exit
    for mut child in children {
        let status = child.wait().unwrap();
        assert!(status.success(), "child exited with {status}");
    }
    println!(
        "cross-process race: {rounds} rounds x {processes} processes, exactly one winner each, in {:.1?}",
        started.elapsed()
    );
}

/// Child side of the race: opens the shared file, says READY, then answers each
/// `CLAIM <etag>` line from stdin with `WON <new etag>` or `LOST`.
#[test]
#[ignore = "child process of the cross-process race; started by it with the database path set"]
fn race_child_entry() {
    let Some((runtime, store)) = open_as_child(ENTRY) else {
        return;
    };
    let id = std::env::var(CHILD_ID_ENV).unwrap();
    say("READY");
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let etag = line.strip_prefix("CLAIM ").unwrap();
        let claim = Ownership::new(scope(), "0", format!("child-{id}")).with_etag(Some(ETag::new(etag)));
        let won = runtime
            .block_on(store.claim_ownership(&[claim], &ClaimOptions::default()))
            .unwrap();
        match won.as_slice() {
            [] => say("LOST"),
            [record] => say(&format!("WON {}", record.etag.as_ref().unwrap())),
            more => panic!("one claim, {} wins", more.len()),
        }
    }
}
