//! C12 under `kill -9`: a child process claims (renews) four partitions in one batch and writes
//! fenced checkpoints in a loop, printing each write only after it returned `Ok`. The parent
//! kills it with SIGKILL at a random moment (during start-up, open, a write, a print), then
//! opens the store afresh and checks that every record parses and that no acknowledged write
//! was lost: each record holds the last acknowledged value or the one write in flight after it.
//!
//! Every value carries a counter that only grows across children (each child continues after
//! the largest counter stored), so "not lost" is a comparison of counters.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use eventhubs_store_core::{
    Checkpoint, CheckpointStore, ClaimOptions, ETag, Ownership, SetCheckpointOptions,
};
use eventhubs_store_file::FileStore;
use rand::Rng;

use crate::{child_command, env_number, runtime, scope};

const PARTITIONS: [&str; 4] = ["0", "1", "2", "3"];
/// Kill after a random delay in `0..MAX_KILL_DELAY_MS`.
const MAX_KILL_DELAY_MS: u64 = 100;

/// The last acknowledged write per partition.
#[derive(Default)]
struct Acked {
    owner: HashMap<String, (u64, String)>,
    checkpoint: HashMap<String, u64>,
    total: u64,
}

pub fn c12_kill_9_loses_no_acknowledged_write() -> Result<String, String> {
    let rounds = env_number("CRASH_ROUNDS", 300);
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let mut rng = rand::rng();
    let mut acked = Acked::default();
    let (mut in_flight_found, mut rounds_with_acks) = (0, 0);
    for round in 0..rounds {
        let mut child = child_command("crash", dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        // One kill in four lands anywhere from process start (open, reading the state); the
        // others land in the write loop, after the first acknowledged write (so a loaded
        // machine's slow start cannot turn them all into start-up kills).
        let mut out = String::new();
        if rng.random_range(0..4) > 0 {
            let mut ready = String::new();
            stdout.read_line(&mut ready).unwrap();
            let mut first = String::new();
            stdout.read_line(&mut first).unwrap();
            if ready != "ready\n" || !first.ends_with('\n') {
                child.kill().unwrap();
                child.wait().unwrap();
                return Err(format!(
                    "round {round}: the writer did not start writing: {ready:?} {first:?}"
                ));
            }
            out.push_str(&first);
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(0..MAX_KILL_DELAY_MS)));
        child.kill().unwrap(); // SIGKILL
        stdout.read_to_string(&mut out).unwrap();
        let status = child.wait().unwrap();
        #[cfg(unix)]
        let killed = std::os::unix::process::ExitStatusExt::signal(&status) == Some(9);
        #[cfg(not(unix))]
        let killed = !status.success();
        if !killed {
            return Err(format!(
                "round {round}: the writer stopped by itself ({status}); see its stderr"
            ));
        }
        let before = acked.total;
        record_acks(&out, &mut acked).map_err(|e| format!("round {round}: {e}"))?;
        rounds_with_acks += usize::from(acked.total > before);
        in_flight_found +=
            check_store(&rt, dir.path(), &mut acked).map_err(|e| format!("round {round}: {e}"))?;
    }
    if rounds_with_acks * 2 <= rounds {
        return Err(format!(
            "most kills should land after acknowledged writes: {rounds_with_acks} of {rounds} did"
        ));
    }
    Ok(format!(
        "{rounds} kills ({rounds_with_acks} after acknowledged writes), {} acknowledged writes kept, \
         {in_flight_found} unacknowledged writes found committed",
        acked.total
    ))
}

/// Reads the child's complete output lines (a line cut by the kill is not an acknowledgement).
fn record_acks(out: &str, acked: &mut Acked) -> Result<(), String> {
    let complete = out.rsplit_once('\n').map_or("", |(done, _)| done);
    for line in complete.lines().filter(|l| *l != "ready") {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts.as_slice() {
            ["own", p, n, etag] => {
                acked
                    .owner
                    .insert(p.to_string(), (n.parse().unwrap(), etag.to_string()));
            }
            ["cp", p, n] => {
                acked.checkpoint.insert(p.to_string(), n.parse().unwrap());
            }
            _ => return Err(format!("unexpected writer output {line:?}")),
        }
        acked.total += 1;
    }
    Ok(())
}

/// Opens the store as a restarted process would and compares it with the acknowledgements.
/// Then raises the expectations to what is stored: a write in flight at the kill may or may not
/// have landed, but once seen it must never be rolled back by a later crash. Returns how many
/// records held such a newer, unacknowledged write.
fn check_store(rt: &tokio::runtime::Runtime, root: &Path, acked: &mut Acked) -> Result<usize, String> {
    let store = rt
        .block_on(FileStore::open(root))
        .map_err(|e| format!("reopen: {e}"))?;
    let owners = rt
        .block_on(store.list_ownership(&scope()))
        .map_err(|e| format!("C12: list_ownership: {e}"))?;
    let cps = rt
        .block_on(store.list_checkpoints(&scope()))
        .map_err(|e| format!("C12: list_checkpoints: {e}"))?;
    let mut newer = 0;
    for (p, (n, etag)) in acked.owner.iter_mut() {
        let Some(stored) = owners.iter().find(|o| &o.partition_id == p) else {
            return Err(format!("C12: acknowledged ownership of {p} (w{n}) is gone"));
        };
        let stored_n = counter_of(&stored.owner_id)?;
        let stored_etag = stored.etag.as_ref().map_or("", ETag::as_str);
        if stored_n < *n || (stored_n == *n && stored_etag != etag.as_str()) {
            return Err(format!(
                "C12: ownership of {p}: acknowledged w{n} {etag}, stored {stored:?}"
            ));
        }
        if stored_n > *n {
            newer += 1;
            (*n, *etag) = (stored_n, stored_etag.to_string());
        }
    }
    for (p, n) in acked.checkpoint.iter_mut() {
        let Some(stored) = cps.iter().find(|c| &c.partition_id == p) else {
            return Err(format!("C12: acknowledged checkpoint of {p} ({n}) is gone"));
        };
        let stored_n = stored.sequence_number.unwrap_or(-1);
        if stored_n < *n as i64 || stored.offset != Some(format!("o{stored_n}")) {
            return Err(format!(
                "C12: checkpoint of {p}: acknowledged {n}, stored {stored:?}"
            ));
        }
        if stored_n > *n as i64 {
            newer += 1;
            *n = stored_n as u64;
        }
    }
    Ok(newer)
}

fn counter_of(owner_id: &str) -> Result<u64, String> {
    owner_id
        .strip_prefix('w')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("C12: unexpected owner id {owner_id:?}"))
}

/// The child: continues after the largest stored counter, then renews all partitions in one
/// batch and writes a fenced checkpoint per partition, forever, printing each write after `Ok`.
pub fn child(root: &Path) {
    let rt = runtime();
    rt.block_on(async {
        let store = FileStore::open(root).await.unwrap();
        let owners = store.list_ownership(&scope()).await.unwrap();
        let cps = store.list_checkpoints(&scope()).await.unwrap();
        let mut etags: HashMap<String, ETag> = HashMap::new();
        let mut counter = 0u64;
        for o in owners {
            counter = counter.max(counter_of(&o.owner_id).unwrap());
            etags.insert(o.partition_id.clone(), o.etag.unwrap());
        }
        for c in cps {
            counter = counter.max(c.sequence_number.unwrap() as u64);
        }
        let mut stdout = std::io::stdout();
        writeln!(stdout, "ready").unwrap();
        loop {
            counter += 1;
            let owner = format!("w{counter}");
            let claims: Vec<Ownership> = PARTITIONS
                .iter()
                .map(|p| Ownership::new(scope(), *p, owner.clone()).with_etag(etags.get(*p).cloned()))
                .collect();
            let won = store
                .claim_ownership(&claims, &ClaimOptions::default())
                .await
                .unwrap();
            assert_eq!(
                won.len(),
                PARTITIONS.len(),
                "the only writer lost a claim: {won:?}"
            );
            for w in won {
                let etag = w.etag.unwrap();
                writeln!(stdout, "own {} {counter} {etag}", w.partition_id).unwrap();
                etags.insert(w.partition_id, etag);
            }
            for p in PARTITIONS {
                counter += 1;
                let cp = Checkpoint::new(scope(), p, Some(format!("o{counter}")), Some(counter as i64));
                store
                    .set_checkpoint(&cp, &SetCheckpointOptions::fenced(owner.clone()))
                    .await
                    .unwrap();
                writeln!(stdout, "cp {p} {counter}").unwrap();
            }
        }
    });
}
