//! Cut connections (C12 and the `Unavailable` error kind): the server side drops the store's
//! connections again and again while checkpoints are written.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use eventhubs_store_core::{
    Checkpoint, CheckpointStore, ErrorKind, Ownership, PartitionScope, SetCheckpointOptions,
};
use futures::future::{join, join_all};

use crate::context::{CaseResult, Ctx, Failure, ensure};

/// Concurrent writers, one partition each.
const WRITERS: usize = 4;
/// Each writer writes at least this many checkpoints ...
const MIN_WRITES: u64 = 40;
/// ... and goes on until the harness has cut this many connections (or the time is up).
const MIN_CUTS: u64 = 10;
/// How long the writers may go on waiting for cuts.
const MAX_RUN: Duration = Duration::from_secs(20);
/// How long one write may keep failing before the store counts as never recovering.
const RECOVERY: Duration = Duration::from_secs(10);
/// Time between two cuts.
const CUT_EVERY: Duration = Duration::from_millis(30);

/// C12 under outages: while the harness cuts the store's connections from the server side
/// ([`crate::Instance::interrupt`], e.g. `pg_terminate_backend` or `CLIENT KILL`), every call
/// either succeeds or fails with the retryable `Unavailable` kind; the same store object
/// recovers by itself; and every acknowledged checkpoint, fenced (C13) or not, is there at the
/// end, through the same handle and a reopened one. Passes trivially for stores without
/// connections to cut (the harness answers `None`).
pub async fn c12_acknowledged_writes_survive_cut_connections(ctx: &Ctx) -> CaseResult {
    let scope = ctx.scope("hub", "$default");
    let claims: Vec<Ownership> = (0..WRITERS)
        .map(|w| Ownership::new(scope.clone(), w.to_string(), "writer"))
        .collect();
    let won = ctx.claim("C3", &claims).await?;
    ensure!(
        won.len() == WRITERS,
        "C3",
        "{WRITERS} creates should win, got {won:?}"
    );
    let Some(first) = ctx.interrupt().await? else {
        return Ok(());
    };

    let cuts = AtomicU64::new(first);
    let failures = AtomicU64::new(0);
    let writers_done = AtomicBool::new(false);
    let started = Instant::now();
    let keep_writing = |written: u64| {
        written < MIN_WRITES || (cuts.load(Ordering::SeqCst) < MIN_CUTS && started.elapsed() < MAX_RUN)
    };
    let writers = join_all((0..WRITERS).map(|w| {
        let scope = scope.clone();
        let failures = &failures;
        let keep_writing = &keep_writing;
        async move {
            let mut acked = 0u64;
            while keep_writing(acked) {
                let seq = acked + 1;
                let cp = Checkpoint::new(
                    scope.clone(),
                    w.to_string(),
                    Some(format!("o{seq}")),
                    Some(seq as i64),
                );
                // Odd writes are fenced (C13): a store never repeats those by itself, so an
                // outage shows through there as the error kind under test.
                let options = if seq % 2 == 1 {
                    SetCheckpointOptions::fenced("writer")
                } else {
                    SetCheckpointOptions::new()
                };
                write_until_acked(ctx.store(), &cp, &options, failures).await?;
                acked = seq;
                // Read it back at once: a store that acknowledged a write the outage swallowed
                // is caught here, before a later write could hide the loss.
                let listed = list_until_ok(ctx.store(), &scope, "the same handle").await?;
                let stored = listed.iter().find(|c| c.partition_id == cp.partition_id);
                ensure!(
                    stored == Some(&cp),
                    "C12",
                    "checkpoint {seq} of partition {w} was acknowledged during the outages but \
                     the store lists {stored:?}"
                );
                // Embedded stores never wait: let the cutter run between writes.
                tokio::task::yield_now().await;
            }
            Ok::<u64, Failure>(acked)
        }
    }));
    let writers = async {
        let acked = writers.await;
        writers_done.store(true, Ordering::SeqCst);
        acked
    };
    let cutter = async {
        while !writers_done.load(Ordering::SeqCst) {
            tokio::time::sleep(CUT_EVERY).await;
            if writers_done.load(Ordering::SeqCst) {
                break;
            }
            match ctx.interrupt().await {
                Ok(n) => cuts.fetch_add(n.unwrap_or(0), Ordering::SeqCst),
                Err(f) => return Err(f),
            };
        }
        Ok(())
    };
    let (acked, cut) = join(writers, cutter).await;
    cut?;
    let acked: Vec<u64> = acked.into_iter().collect::<Result<_, _>>()?;
    let cuts = cuts.load(Ordering::SeqCst);
    ensure!(
        cuts > 0,
        "harness",
        "the harness says it can cut connections but cut none in {:?}",
        started.elapsed()
    );

    // Later calls work on the same store object, and nothing acknowledged is lost.
    let reopened = ctx.reopen().await?;
    let handles: Vec<(&str, &dyn CheckpointStore)> = std::iter::once(("the same handle", ctx.store()))
        .chain(reopened.as_deref().map(|s| ("a reopened handle", s)))
        .collect();
    for (which, store) in handles {
        let mut cps = list_until_ok(store, &scope, which).await?;
        cps.sort_by(|a, b| a.partition_id.cmp(&b.partition_id));
        let expected: Vec<Checkpoint> = acked
            .iter()
            .enumerate()
            .map(|(w, &seq)| {
                Checkpoint::new(
                    scope.clone(),
                    w.to_string(),
                    Some(format!("o{seq}")),
                    Some(seq as i64),
                )
            })
            .collect();
        ensure!(
            cps == expected,
            "C12",
            "after {cuts} cut connections and {} retried calls, {which} should list the last \
             acknowledged checkpoints {expected:?}, got {cps:?}",
            failures.load(Ordering::SeqCst)
        );
    }
    Ok(())
}

/// Writes `cp` until the store acknowledges it; a failure must be `Unavailable` and retryable.
async fn write_until_acked(
    store: &dyn CheckpointStore,
    cp: &Checkpoint,
    options: &SetCheckpointOptions,
    failures: &AtomicU64,
) -> Result<(), Failure> {
    let deadline = Instant::now() + RECOVERY;
    loop {
        let Err(e) = store.set_checkpoint(cp, options).await else {
            return Ok(());
        };
        ensure!(
            e.kind() == ErrorKind::Unavailable && e.is_retryable(),
            "error kinds",
            "a call during a cut connection must fail with the retryable Unavailable kind, got \
             {:?}: {e}",
            e.kind()
        );
        failures.fetch_add(1, Ordering::SeqCst);
        ensure!(
            Instant::now() < deadline,
            "error kinds",
            "the store did not recover within {RECOVERY:?} of the cut: {e}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Lists the checkpoints of `scope`. The last cut may land just before this call, so a retryable
/// `Unavailable` is retried like any other call here; anything else fails C12.
async fn list_until_ok(
    store: &dyn CheckpointStore,
    scope: &PartitionScope,
    which: &str,
) -> Result<Vec<Checkpoint>, Failure> {
    let deadline = Instant::now() + RECOVERY;
    loop {
        match store.list_checkpoints(scope).await {
            Ok(cps) => return Ok(cps),
            Err(e) if e.kind() == ErrorKind::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => {
                return Err(Failure::new(
                    "C12",
                    format!("list_checkpoints through {which} after the outages failed: {e}"),
                ));
            }
        }
    }
}
