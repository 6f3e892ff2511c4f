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
/// Time between two cuts, at the least; a cut also waits for every writer to have a write
/// acknowledged since the last one, so a store that retries with back-off inside a call (blob)
/// still makes progress between cuts.
const CUT_EVERY: Duration = Duration::from_millis(30);

/// C12 under outages: while the harness cuts the store's connections from the server side
/// ([`crate::Instance::interrupt`], e.g. `pg_terminate_backend` or `CLIENT KILL`), every call
/// either succeeds or fails with the retryable `Unavailable` kind; the same store object
/// recovers by itself; and every acknowledged checkpoint, fenced (C13, where offered) or not,
/// is there: read back right after its acknowledgement, and at the end through the same handle
/// and a reopened one. Not applicable where the harness cannot cut connections (it answers
/// `None`: embedded stores).
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
        return ctx.not_applicable("the harness cannot cut the store's connections (Instance::interrupt)");
    };

    let run = Run {
        ctx,
        scope: &scope,
        fenced: ctx.store().capabilities().fenced_checkpoints,
        started: Instant::now(),
        cuts: AtomicU64::new(first),
        failures: AtomicU64::new(0),
        progress: (0..WRITERS).map(|_| AtomicU64::new(0)).collect(),
        failed: AtomicBool::new(false),
        done: AtomicBool::new(false),
    };
    let writers = async {
        let acked = join_all((0..WRITERS).map(|w| run.writer(w))).await;
        run.done.store(true, Ordering::SeqCst);
        acked
    };
    let (acked, cut) = join(writers, run.cutter()).await;
    cut?;
    let acked: Vec<u64> = acked.into_iter().collect::<Result<_, _>>()?;
    let cuts = run.cuts.load(Ordering::SeqCst);
    ensure!(
        cuts > 0,
        "harness",
        "the harness says it can cut connections but cut none in {:?}",
        run.started.elapsed()
    );

    // Later calls work on the same store object, and nothing acknowledged is lost.
    let reopened = ctx.reopen().await?;
    let handles: Vec<(&str, &dyn CheckpointStore)> = std::iter::once(("the same handle", ctx.store()))
        .chain(reopened.as_deref().map(|s| ("a reopened handle", s)))
        .collect();
    let expected: Vec<Checkpoint> = acked
        .iter()
        .enumerate()
        .map(|(w, &seq)| checkpoint(&scope, w, seq))
        .collect();
    for (which, store) in handles {
        let mut cps = list_until_ok(store, &scope, which).await?;
        cps.sort_by(|a, b| a.partition_id.cmp(&b.partition_id));
        ensure!(
            cps == expected,
            "C12",
            "after {cuts} cut connections and {} retried calls, {which} should list the last \
             acknowledged checkpoints {expected:?}, got {cps:?}",
            run.failures.load(Ordering::SeqCst)
        );
    }
    Ok(())
}

/// Writer `w`'s checkpoint number `seq`: partition `w`, offset `o<seq>`, sequence number `seq`.
fn checkpoint(scope: &PartitionScope, w: usize, seq: u64) -> Checkpoint {
    Checkpoint::new(
        scope.clone(),
        w.to_string(),
        Some(format!("o{seq}")),
        Some(i64::try_from(seq).unwrap_or(i64::MAX)),
    )
}

/// What the writers and the cutter of one outage run share.
struct Run<'a> {
    ctx: &'a Ctx,
    scope: &'a PartitionScope,
    /// Whether the store offers fenced checkpoints (C13).
    fenced: bool,
    started: Instant,
    /// Connections cut so far.
    cuts: AtomicU64,
    /// Calls that failed (with `Unavailable`) and were repeated.
    failures: AtomicU64,
    /// Per writer: its last acknowledged sequence number.
    progress: Vec<AtomicU64>,
    /// A writer failed: the others stop, the case fails at once.
    failed: AtomicBool,
    /// Every writer has stopped: so does the cutter.
    done: AtomicBool,
}

impl Run<'_> {
    /// At least [`MIN_WRITES`], then on until [`MIN_CUTS`] cuts or [`MAX_RUN`].
    fn keep_writing(&self, written: u64) -> bool {
        !self.failed.load(Ordering::SeqCst)
            && (written < MIN_WRITES
                || (self.cuts.load(Ordering::SeqCst) < MIN_CUTS && self.started.elapsed() < MAX_RUN))
    }

    /// Writes partition `w`'s checkpoints 1, 2, … and reads each back once acknowledged.
    /// Answers the last acknowledged sequence number.
    async fn writer(&self, w: usize) -> Result<u64, Failure> {
        let written = self.write_and_read_back(w).await;
        if written.is_err() {
            self.failed.store(true, Ordering::SeqCst);
        }
        written
    }

    async fn write_and_read_back(&self, w: usize) -> Result<u64, Failure> {
        let store = self.ctx.store();
        let mut acked = 0u64;
        while self.keep_writing(acked) {
            let seq = acked + 1;
            let cp = checkpoint(self.scope, w, seq);
            // Odd writes are fenced (C13) where the store offers fencing: a store never repeats
            // those by itself, so an outage shows through there as the error kind under test.
            let options = if self.fenced && seq % 2 == 1 {
                SetCheckpointOptions::fenced("writer")
            } else {
                SetCheckpointOptions::new()
            };
            write_until_acked(store, &cp, &options, &self.failures).await?;
            acked = seq;
            self.progress[w].store(seq, Ordering::SeqCst);
            // Read it back at once: a store that acknowledged a write the outage swallowed is
            // caught here, before a later write could hide the loss.
            let listed = list_until_ok(store, self.scope, "the same handle").await?;
            let stored = listed.iter().find(|c| c.partition_id == cp.partition_id);
            ensure!(
                stored == Some(&cp),
                "C12",
                "checkpoint {seq} of partition {w} was acknowledged during the outages but the \
                 store lists {stored:?}"
            );
            // Embedded stores never wait: let the cutter run between writes.
            tokio::task::yield_now().await;
        }
        Ok(acked)
    }

    /// Cuts the connections every [`CUT_EVERY`], once every writer has made progress since the
    /// last cut, until the writers are done.
    async fn cutter(&self) -> Result<(), Failure> {
        let mut seen: Vec<u64> = vec![0; WRITERS];
        loop {
            tokio::time::sleep(CUT_EVERY).await;
            let now: Vec<u64> = self.progress.iter().map(|p| p.load(Ordering::SeqCst)).collect();
            if self.done.load(Ordering::SeqCst) {
                return Ok(());
            }
            if now.iter().zip(&seen).any(|(n, s)| n == s) {
                continue;
            }
            seen = now;
            let cut = self.ctx.interrupt().await?;
            self.cuts.fetch_add(cut.unwrap_or(0), Ordering::SeqCst);
        }
    }
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
