//! C7 across OS processes: several child processes, each with several tasks on handles of its
//! own, claim one partition with the same expected etag at the same instant, round after round.
//! Exactly one claim may win each round, the stored record must be the winner's, and every
//! winning etag must be new (C5).

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use eventhubs_store_core::{CheckpointStore, ClaimOptions, ETag, Ownership};
use eventhubs_store_file::FileStore;

use crate::{child_command, env_number, runtime, scope};

const PROCESSES: usize = 4;
const TASKS_PER_PROCESS: usize = 4;
/// How far ahead of now the parent sets each round's start, so every child is waiting for it.
const START_DELAY: Duration = Duration::from_millis(5);

struct Racer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

pub fn c7_processes_race_for_one_partition() -> Result<String, String> {
    let rounds = env_number("RACE_ROUNDS", 200);
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let store = rt.block_on(FileStore::open(dir.path())).unwrap();
    let mut racers: Vec<Racer> = (0..PROCESSES)
        .map(|_| {
            let mut child = child_command("race", dir.path())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let stdin = child.stdin.take().unwrap();
            let stdout = BufReader::new(child.stdout.take().unwrap());
            Racer { child, stdin, stdout }
        })
        .collect();

    let mut etag: Option<ETag> = None; // round 0 races to create the record (C3)
    let mut seen = HashSet::new();
    for round in 0..rounds {
        let start = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + START_DELAY;
        let expected = etag.as_ref().map_or("-".to_string(), |e| e.to_string());
        for r in &mut racers {
            writeln!(r.stdin, "{round} {expected} {}", start.as_nanos()).unwrap();
            r.stdin.flush().unwrap();
        }
        let mut winners = Vec::new();
        for r in &mut racers {
            for _ in 0..TASKS_PER_PROCESS {
                let mut line = String::new();
                r.stdout.read_line(&mut line).unwrap();
                let parts: Vec<&str> = line.split_whitespace().collect();
                match parts.as_slice() {
                    [n, "won", owner, tag] if *n == round.to_string() => {
                        winners.push((owner.to_string(), ETag::new(*tag)))
                    }
                    [n, "lost"] if *n == round.to_string() => {}
                    _ => return Err(format!("round {round}: unexpected child output {line:?}")),
                }
            }
        }
        if winners.len() != 1 {
            return Err(format!(
                "C7: round {round}: {} of {} claims with etag {expected} won: {winners:?}",
                winners.len(),
                PROCESSES * TASKS_PER_PROCESS
            ));
        }
        let (owner, won_etag) = winners.remove(0);
        let listed = rt.block_on(store.list_ownership(&scope())).unwrap();
        if listed.len() != 1 || listed[0].owner_id != owner || listed[0].etag.as_ref() != Some(&won_etag) {
            return Err(format!(
                "C7: round {round}: stored {listed:?}, winner was {owner} {won_etag}"
            ));
        }
        if !seen.insert(won_etag.clone()) {
            return Err(format!("C5: round {round}: etag {won_etag} was issued before"));
        }
        etag = Some(won_etag);
    }
    for r in racers {
        drop(r.stdin);
        let status = { r.child }.wait().unwrap();
        if !status.success() {
            return Err(format!("a racing process failed: {status}"));
        }
    }
    Ok(format!(
        "{rounds} rounds of {} claims from {PROCESSES} processes, one winner each",
        PROCESSES * TASKS_PER_PROCESS
    ))
}

/// The child: one store handle per task; per stdin line `<round> <etag|-> <start nanos>`, every
/// task claims partition 0 at the start instant and prints `<round> won <owner> <etag>` or
/// `<round> lost`.
pub fn child(root: &Path) {
    let rt = runtime();
    let pid = std::process::id();
    let handles: Vec<Arc<FileStore>> = (0..TASKS_PER_PROCESS)
        .map(|_| Arc::new(rt.block_on(FileStore::open(root)).unwrap()))
        .collect();
    let stdout = std::io::stdout();
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [round, expected, start] = parts.as_slice() else {
            panic!("bad command {line:?}")
        };
        let etag = (*expected != "-").then(|| ETag::new(*expected));
        let start = Duration::from_nanos(start.parse().unwrap());
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        std::thread::sleep(start.saturating_sub(now));
        let results = rt.block_on(async {
            let tasks: Vec<_> = handles
                .iter()
                .enumerate()
                .map(|(i, store)| {
                    let store = store.clone();
                    let claim = Ownership::new(scope(), "0", format!("p{pid}-t{i}")).with_etag(etag.clone());
                    tokio::spawn(
                        async move { store.claim_ownership(&[claim], &ClaimOptions::default()).await },
                    )
                })
                .collect();
            let mut out = Vec::new();
            for task in tasks {
                out.push(task.await.unwrap().unwrap());
            }
            out
        });
        let mut out = stdout.lock();
        for won in results {
            match won.as_slice() {
                [] => writeln!(out, "{round} lost").unwrap(),
                [w] => writeln!(out, "{round} won {} {}", w.owner_id, w.etag.as_ref().unwrap()).unwrap(),
                more => panic!("one claim returned {} records", more.len()),
            }
        }
        out.flush().unwrap();
    }
}
