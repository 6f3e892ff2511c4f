//! The suite must catch broken stores: each store below breaks one rule, and the case for that
//! rule must fail with a message naming it.

#![allow(clippy::panic)] // test helpers fail by panicking

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use eventhubs_conformance::{Harness, Instance, Outcome, SetupError, run_all};
use eventhubs_store_core::{
    BoxError, Capabilities, Checkpoint, CheckpointStore, ClaimOptions, Error, InMemoryStore, Ownership,
    PartitionScope, Result, SetCheckpointOptions,
};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Bug {
    /// No bug: the reference store itself.
    None,
    /// Claims win whatever the etag (the official SDKs' in-memory stores do this).
    IgnoresEtags,
    /// Compare and write are two steps with a gap between them.
    CheckThenWrite,
    /// Listing matches the hub name as a prefix.
    LeaksPrefixScopes,
    /// The sequence number is dropped when an offset is present.
    DropsSequenceNumber,
    /// Declares fencing but ignores the required owner.
    IgnoresFence,
    /// Declares durability but a reopened handle sees nothing.
    ForgetsOnReopen,
    /// Writing a checkpoint also claims ownership.
    CheckpointClaimsOwnership,
    /// During an outage, answers `Ok` to checkpoints it never wrote.
    AcksLostWrites,
    /// During an outage, fails with the non-retryable `Backend` kind.
    OutageNotRetryable,
    /// Answers won claims with the partition id as the caller wrote it, not lower-cased (C1).
    KeepsNameCase,
    /// A won renewal comes back with the etag it was made with, not a fresh one (C5).
    ReturnsStaleEtags,
    /// A batch in which any claim would lose is lost as a whole (C6).
    AllOrNothingBatches,
    /// Answers a relinquish as won but leaves the owner in place (C8).
    IgnoresRelinquish,
    /// Acknowledges checkpoints of partition ids with `-`, `.` or non-ASCII characters, and
    /// writes nothing (C11).
    DropsHostileNames,
    /// Keeps ownership and checkpoint in one row and claims by read-modify-write of the whole
    /// row: a checkpoint written in between is put back to what was read (C10).
    ClaimRewritesCheckpoint,
    /// A reopened handle serves listings from a copy up to 30 ms old (a replica that lags).
    LaggingListings,
    /// After a won claim, "the response was lost" and the claim is sent again: the retry loses,
    /// and the loss is returned although the first attempt won.
    RetriedClaimReportsLoss,
    /// Owner ids are stored lower-cased (breaks sharing a store with the official SDKs).
    FoldsOwnerIds,
    /// A fenced checkpoint checks the owner, then writes in a second step (C13).
    TwoStepFence,
}

/// A partition id the `DropsHostileNames` store silently drops.
fn hostile(partition_id: &str) -> bool {
    partition_id.contains(['-', '.']) || !partition_id.is_ascii()
}

/// Calls left to fail in the current simulated outage, shared by every handle of one instance:
/// [`Instance::interrupt`] starts an outage of [`OUTAGE_CALLS`] calls.
type Outage = Arc<AtomicU32>;
const OUTAGE_CALLS: u32 = 3;

/// A handle's copy of the listings, for `LaggingListings`: when it was taken, and its rows.
type Snapshot = Arc<std::sync::Mutex<Option<(std::time::Instant, Vec<Ownership>, Vec<Checkpoint>)>>>;

#[derive(Debug, Clone)]
struct BrokenStore {
    inner: InMemoryStore,
    bug: Bug,
    outage: Outage,
    /// Set on reopened handles of a `LaggingListings` store.
    lagging: Option<Snapshot>,
}

impl BrokenStore {
    /// A lagging handle's listings: its copy, refreshed when older than 30 ms.
    async fn lagged(
        &self,
        snapshot: &Snapshot,
        scope: &PartitionScope,
    ) -> Result<(Vec<Ownership>, Vec<Checkpoint>)> {
        if let Ok(guard) = snapshot.lock()
            && let Some((taken, owners, checkpoints)) = guard.as_ref()
            && taken.elapsed() < Duration::from_millis(30)
        {
            return Ok((owners.clone(), checkpoints.clone()));
        }
        let owners = self.inner.list_ownership(scope).await?;
        let checkpoints = self.inner.list_checkpoints(scope).await?;
        if let Ok(mut guard) = snapshot.lock() {
            *guard = Some((std::time::Instant::now(), owners.clone(), checkpoints.clone()));
        }
        Ok((owners, checkpoints))
    }

    /// Inside an outage: the error this call fails with (`Ok(true)`: swallow a write, `AcksLostWrites`).
    fn outage(&self) -> std::result::Result<bool, Error> {
        let left = self
            .outage
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if left.is_err() {
            return Ok(false);
        }
        match self.bug {
            Bug::AcksLostWrites => Ok(true),
            Bug::OutageNotRetryable => Err(Error::backend("connection reset by peer")),
            _ => Err(Error::unavailable("connection reset by peer")),
        }
    }
}

#[async_trait]
impl CheckpointStore for BrokenStore {
    fn backend_name(&self) -> &'static str {
        "broken"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::all()
    }

    async fn list_ownership(&self, scope: &PartitionScope) -> Result<Vec<Ownership>> {
        if let Some(snapshot) = &self.lagging {
            return Ok(self.lagged(snapshot, scope).await?.0);
        }
        if self.bug == Bug::LeaksPrefixScopes {
            let mut all = Vec::new();
            for s in self.inner.list_scopes().await? {
                if s.namespace() == scope.namespace()
                    && s.event_hub().starts_with(scope.event_hub())
                    && s.consumer_group() == scope.consumer_group()
                {
                    all.extend(self.inner.list_ownership(&s).await?);
                }
            }
            return Ok(all);
        }
        self.inner.list_ownership(scope).await
    }

    async fn claim_ownership(&self, claims: &[Ownership], options: &ClaimOptions) -> Result<Vec<Ownership>> {
        match self.bug {
            Bug::IgnoresEtags | Bug::CheckThenWrite => {
                let mut won = Vec::new();
                for claim in claims {
                    let current = self.inner.list_ownership(&claim.scope).await?;
                    let stored = current
                        .iter()
                        .find(|o| o.partition_id == claim.partition_id.to_lowercase());
                    let matches = stored.map(|s| s.etag.clone())
                        == Some(claim.etag.clone()).filter(|e| e.is_some())
                        || (stored.is_none() && claim.etag.is_none());
                    if self.bug == Bug::CheckThenWrite {
                        if !matches {
                            continue;
                        }
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    // Write over whatever is there now.
                    let latest = self.inner.list_ownership(&claim.scope).await?;
                    let etag = latest
                        .iter()
                        .find(|o| o.partition_id == claim.partition_id.to_lowercase())
                        .and_then(|o| o.etag.clone());
                    let forced = Ownership {
                        etag,
                        ..claim.clone()
                    };
                    won.extend(self.inner.claim_ownership(&[forced], options).await?);
                }
                Ok(won)
            }
            Bug::KeepsNameCase => {
                let won = self.inner.claim_ownership(claims, options).await?;
                Ok(won
                    .into_iter()
                    .map(|w| {
                        let as_written = claims
                            .iter()
                            .find(|c| c.partition_id.to_lowercase() == w.partition_id)
                            .map_or_else(|| w.partition_id.clone(), |c| c.partition_id.clone());
                        Ownership {
                            partition_id: as_written,
                            ..w
                        }
                    })
                    .collect())
            }
            Bug::ReturnsStaleEtags => {
                let won = self.inner.claim_ownership(claims, options).await?;
                Ok(won
                    .into_iter()
                    .map(|w| {
                        let given = claims
                            .iter()
                            .find(|c| c.partition_id.to_lowercase() == w.partition_id)
                            .and_then(|c| c.etag.clone());
                        Ownership {
                            etag: given.or(w.etag.clone()),
                            ..w
                        }
                    })
                    .collect())
            }
            Bug::AllOrNothingBatches => {
                for claim in claims {
                    let current = self.inner.list_ownership(&claim.scope).await?;
                    let stored = current
                        .iter()
                        .find(|o| o.partition_id == claim.partition_id.to_lowercase());
                    let wins = match (stored, &claim.etag) {
                        (None, None) => true,
                        (Some(s), Some(e)) => s.etag.as_ref() == Some(e),
                        _ => false,
                    };
                    if !wins {
                        return Ok(Vec::new());
                    }
                }
                self.inner.claim_ownership(claims, options).await
            }
            Bug::IgnoresRelinquish => {
                let (releases, rest): (Vec<Ownership>, Vec<Ownership>) =
                    claims.iter().cloned().partition(|c| c.owner_id.is_empty());
                let mut won = self.inner.claim_ownership(&rest, options).await?;
                won.extend(releases.into_iter().map(|c| Ownership {
                    partition_id: c.partition_id.to_lowercase(),
                    etag: Some(eventhubs_store_core::ETag::new("released")),
                    ..c
                }));
                Ok(won)
            }
            Bug::ClaimRewritesCheckpoint => {
                // Read the rows (ownership and checkpoint together), decide, write them back.
                let mut read = Vec::new();
                for claim in claims {
                    let checkpoints = self.inner.list_checkpoints(&claim.scope).await?;
                    let row = checkpoints
                        .into_iter()
                        .find(|c| c.partition_id == claim.partition_id.to_lowercase());
                    read.push((claim.clone(), row));
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
                let won = self.inner.claim_ownership(claims, options).await?;
                for (claim, row) in read {
                    if !won
                        .iter()
                        .any(|w| w.partition_id == claim.partition_id.to_lowercase())
                    {
                        continue;
                    }
                    match row {
                        Some(cp) => {
                            self.inner
                                .set_checkpoint(&cp, &SetCheckpointOptions::default())
                                .await?
                        }
                        None => {
                            self.inner
                                .delete_checkpoint(&claim.scope, &claim.partition_id)
                                .await?;
                        }
                    }
                }
                Ok(won)
            }
            Bug::RetriedClaimReportsLoss => {
                let first = self.inner.claim_ownership(claims, options).await?;
                if first.is_empty() {
                    return Ok(first);
                }
                // The response "was lost": the same batch again, and its answer returned.
                self.inner.claim_ownership(claims, options).await
            }
            Bug::FoldsOwnerIds => {
                let folded: Vec<Ownership> = claims
                    .iter()
                    .map(|c| Ownership {
                        owner_id: c.owner_id.to_lowercase(),
                        ..c.clone()
                    })
                    .collect();
                self.inner.claim_ownership(&folded, options).await
            }
            _ => self.inner.claim_ownership(claims, options).await,
        }
    }

    async fn list_checkpoints(&self, scope: &PartitionScope) -> Result<Vec<Checkpoint>> {
        if self.bug != Bug::AcksLostWrites {
            self.outage()?;
        }
        if let Some(snapshot) = &self.lagging {
            return Ok(self.lagged(snapshot, scope).await?.1);
        }
        self.inner.list_checkpoints(scope).await
    }

    async fn set_checkpoint(&self, checkpoint: &Checkpoint, options: &SetCheckpointOptions) -> Result<()> {
        if self.outage()? {
            return Ok(()); // AcksLostWrites: acknowledged, never written
        }
        if self.bug == Bug::DropsHostileNames && hostile(&checkpoint.partition_id) {
            return Ok(()); // acknowledged, never written
        }
        let mut cp = checkpoint.clone();
        if self.bug == Bug::DropsSequenceNumber && cp.offset.is_some() {
            cp.sequence_number = None;
        }
        if self.bug == Bug::CheckpointClaimsOwnership {
            let _ = self
                .inner
                .claim_ownership(
                    &[Ownership::new(
                        cp.scope.clone(),
                        cp.partition_id.clone(),
                        "checkpointer",
                    )],
                    &ClaimOptions::default(),
                )
                .await?;
        }
        if self.bug == Bug::TwoStepFence
            && let Some(owner) = &options.required_owner
        {
            let owners = self.inner.list_ownership(&cp.scope).await?;
            let holds = owners
                .iter()
                .any(|o| o.partition_id == cp.partition_id.to_lowercase() && o.owner_id == *owner);
            if !holds {
                return Err(Error::new(
                    eventhubs_store_core::ErrorKind::OwnershipLost,
                    format!("{owner} does not hold {}", cp.partition_id),
                ));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
            return self
                .inner
                .set_checkpoint(&cp, &SetCheckpointOptions::default())
                .await;
        }
        let options = if self.bug == Bug::IgnoresFence {
            SetCheckpointOptions::default()
        } else {
            options.clone()
        };
        self.inner.set_checkpoint(&cp, &options).await
    }

    async fn delete_checkpoint(&self, scope: &PartitionScope, partition_id: &str) -> Result<bool> {
        self.inner.delete_checkpoint(scope, partition_id).await
    }

    async fn list_scopes(&self) -> Result<Vec<PartitionScope>> {
        self.inner.list_scopes().await
    }
}

struct BrokenHarness(Bug);
struct BrokenInstance(BrokenStore);

#[async_trait]
impl Harness for BrokenHarness {
    fn name(&self) -> &str {
        "broken"
    }
    async fn setup(&self) -> std::result::Result<Box<dyn Instance>, SetupError> {
        Ok(Box::new(BrokenInstance(BrokenStore {
            inner: InMemoryStore::new(),
            bug: self.0,
            outage: Outage::default(),
            lagging: None,
        })))
    }
}

#[async_trait]
impl Instance for BrokenInstance {
    fn store(&self) -> Arc<dyn CheckpointStore> {
        Arc::new(self.0.clone())
    }
    async fn reopen(&self) -> std::result::Result<Option<Arc<dyn CheckpointStore>>, BoxError> {
        let mut again = self.0.clone();
        if self.0.bug == Bug::ForgetsOnReopen {
            again.inner = InMemoryStore::new();
        }
        if self.0.bug == Bug::LaggingListings {
            again.lagging = Some(Snapshot::default());
        }
        Ok(Some(Arc::new(again)))
    }
    /// Every handle's next few calls fail (or, with `AcksLostWrites`, lie).
    async fn interrupt(&self) -> std::result::Result<Option<u64>, BoxError> {
        self.0.outage.store(OUTAGE_CALLS, Ordering::SeqCst);
        Ok(Some(1))
    }
}

/// Runs `case` against a store with `bug` and returns the failure message.
async fn failure_of(bug: Bug, case: &str) -> String {
    let report = run_all(&BrokenHarness(bug), &|name| name == case).await;
    assert_eq!(report.cases.len(), 1, "no case named {case}");
    match &report.cases[0].outcome {
        Outcome::Failed(f) => f.to_string(),
        other => panic!("{case} should fail against a store that {bug:?}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suite_catches_a_store_that_ignores_etags() {
    let msg = failure_of(Bug::IgnoresEtags, "c3_create_only_when_absent").await;
    assert!(msg.contains("rule C3"), "{msg}");
    let msg = failure_of(Bug::IgnoresEtags, "c4_update_requires_matching_etag").await;
    assert!(msg.contains("rule C4"), "{msg}");
    let msg = failure_of(Bug::IgnoresEtags, "c7_linearizable_claims").await;
    assert!(msg.contains("rule C7"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suite_catches_check_then_write_races() {
    let msg = failure_of(Bug::CheckThenWrite, "c7_linearizable_claims").await;
    assert!(
        msg.contains("rule C7") && msg.contains("of 32 concurrent claims"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suite_catches_scope_leaks() {
    let msg = failure_of(Bug::LeaksPrefixScopes, "c2_scopes_are_isolated").await;
    assert!(msg.contains("rule C2"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suite_catches_lossy_checkpoints() {
    let msg = failure_of(Bug::DropsSequenceNumber, "c9_checkpoint_values_round_trip").await;
    assert!(msg.contains("rule C9"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suite_catches_an_ignored_fence() {
    let msg = failure_of(Bug::IgnoresFence, "c13_fenced_checkpoint_requires_current_owner").await;
    assert!(msg.contains("rule C13"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suite_catches_lost_writes_on_reopen() {
    let msg = failure_of(Bug::ForgetsOnReopen, "c12_writes_survive_reopen").await;
    assert!(msg.contains("rule C12"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suite_catches_checkpoints_that_claim_ownership() {
    let msg = failure_of(
        Bug::CheckpointClaimsOwnership,
        "c10_checkpoints_and_ownership_are_independent",
    )
    .await;
    assert!(msg.contains("rule C10"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suite_catches_writes_acknowledged_but_lost_in_an_outage() {
    let msg = failure_of(
        Bug::AcksLostWrites,
        "c12_acknowledged_writes_survive_cut_connections",
    )
    .await;
    assert!(
        msg.contains("rule C12") && msg.contains("was acknowledged during the outages"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suite_catches_an_outage_reported_as_not_retryable() {
    let msg = failure_of(
        Bug::OutageNotRetryable,
        "c12_acknowledged_writes_survive_cut_connections",
    )
    .await;
    assert!(
        msg.contains("rule error kinds") && msg.contains("Backend"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suite_catches_names_returned_as_written_c1() {
    let msg = failure_of(Bug::KeepsNameCase, "c1_names_are_case_insensitive").await;
    assert!(
        msg.contains("rule C1") && msg.contains("lower-cased partition id"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suite_catches_stale_etags_on_renewal_c5() {
    let msg = failure_of(Bug::ReturnsStaleEtags, "c5_won_claim_returns_fresh_etag").await;
    assert!(msg.contains("rule C5") && msg.contains("issued before"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suite_catches_all_or_nothing_batches_c6() {
    let msg = failure_of(
        Bug::AllOrNothingBatches,
        "c6_batch_claims_win_or_lose_individually",
    )
    .await;
    assert!(msg.contains("rule C6") && msg.contains("to win alone"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suite_catches_an_ignored_relinquish_c8() {
    let msg = failure_of(Bug::IgnoresRelinquish, "c8_relinquish_lists_empty_owner").await;
    assert!(
        msg.contains("rule C8") && msg.contains("listed with owner"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suite_catches_hostile_names_acknowledged_but_dropped_c11() {
    let msg = failure_of(
        Bug::DropsHostileNames,
        "c11_hostile_names_round_trip_or_are_refused",
    )
    .await;
    assert!(
        msg.contains("rule C11") && msg.contains("every acknowledged"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn model_check_shrinks_an_etag_bug_to_a_short_sequence() {
    let msg = failure_of(Bug::IgnoresEtags, "model_random_sequences_match_reference").await;
    assert!(msg.contains("rule C3/C4"), "{msg}");
    let steps = msg
        .lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .count();
    assert!(
        (1..=3).contains(&steps),
        "shrinking should leave a minimal sequence, got {steps} steps:\n{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reference_store_passes_every_case() {
    let report = run_all(&BrokenHarness(Bug::None), &|_| true).await;
    assert!(report.is_success(), "{report}");
    assert_eq!(report.passed(), eventhubs_conformance::CASES.len());
    assert!(
        report
            .to_string()
            .ends_with(&format!("{} passed, 0 failed, 0 skipped", report.passed()))
    );
}

/// Runs the concurrent-history case against a store with `bug` and checks that its report is
/// the readable timeline of a sub-history no order explains, citing `rule`.
async fn history_catches(bug: Bug, rule: &str) {
    let msg = failure_of(bug, "c7_concurrent_histories_are_linearizable").await;
    assert!(
        msg.contains(&format!("rule {rule} broken")) && msg.contains("no order of these operations explains"),
        "{bug:?}: {msg}"
    );
    assert!(
        msg.contains("client ") && msg.contains(" ms  call #"),
        "a timeline: {msg}"
    );
    eprintln!("{bug:?} caught:\n{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn histories_catch_a_claim_that_rewrites_the_checkpoint_c10() {
    // The lost checkpoint shows as checkpoints no order explains, with the claims around them
    // (C10), or alongside fenced writes (C13) when those are in the smallest sub-history.
    let msg = failure_of(
        Bug::ClaimRewritesCheckpoint,
        "c7_concurrent_histories_are_linearizable",
    )
    .await;
    assert!(msg.contains("no order of these operations explains"), "{msg}");
    assert!(
        msg.contains("checkpoint")
            && (msg.contains("claims of the partition ran meanwhile") || msg.contains(": claim for")),
        "the report shows the checkpoints and the claims: {msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn histories_catch_listings_that_lag_writes_through_another_handle() {
    let msg = failure_of(Bug::LaggingListings, "c7_concurrent_histories_are_linearizable").await;
    assert!(msg.contains("no order of these operations explains"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn histories_catch_a_retried_claim_that_reports_a_loss_c7() {
    history_catches(Bug::RetriedClaimReportsLoss, "C7").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn histories_catch_owner_ids_folded_to_lower_case_c7() {
    history_catches(Bug::FoldsOwnerIds, "C7").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn histories_catch_a_fence_checked_and_written_in_two_steps_c13() {
    history_catches(Bug::TwoStepFence, "C13").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn histories_catch_claims_that_ignore_etags_c7() {
    history_catches(Bug::IgnoresEtags, "C7").await;
}
