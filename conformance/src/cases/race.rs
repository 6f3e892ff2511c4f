//! N-way claim races (C7).

use std::sync::Arc;

use eventhubs_store_core::{CheckpointStore, ClaimOptions, Ownership, PartitionScope};

use crate::context::{CaseResult, Ctx, Failure, ensure};

/// Concurrent claimants per round (the issue asks for at least 32).
pub const RACERS: usize = 32;

/// Rounds per race case; `EVENTHUBS_CONFORMANCE_RACE_ROUNDS` overrides.
pub fn race_rounds() -> usize {
    std::env::var("EVENTHUBS_CONFORMANCE_RACE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

/// C7: of 32 concurrent claims of one partition with the same expected etag exactly one wins,
/// round after round, and the stored record is the winner's.
pub async fn c7_linearizable_claims(ctx: &Ctx) -> CaseResult {
    let handles = vec![ctx.store.clone()];
    race(ctx, &ctx.scope("hub", "$default"), &handles).await
}

/// C7 across handles: the same race with the claimants spread over several independently opened
/// handles (connections, processes' worth of file handles). Falls back to one handle for stores
/// that cannot be reopened.
pub async fn c7_linearizable_claims_across_handles(ctx: &Ctx) -> CaseResult {
    let mut handles = vec![ctx.store.clone()];
    for _ in 0..3 {
        if let Some(h) = ctx.reopen().await? {
            handles.push(h);
        }
    }
    race(ctx, &ctx.scope("hub", "across"), &handles).await
}

async fn race(ctx: &Ctx, scope: &PartitionScope, handles: &[Arc<dyn CheckpointStore>]) -> CaseResult {
    let mut etag = None;
    for round in 0..race_rounds() {
        let mut tasks = Vec::with_capacity(RACERS);
        for racer in 0..RACERS {
            let store = handles[racer % handles.len()].clone();
            let claim = Ownership::new(scope.clone(), "0", format!("racer-{racer}")).with_etag(etag.clone());
            tasks.push(tokio::spawn(async move {
                store.claim_ownership(&[claim], &ClaimOptions::default()).await
            }));
        }
        let mut winners = Vec::new();
        for (racer, task) in tasks.into_iter().enumerate() {
            let result = task
                .await
                .map_err(|e| Failure::new("C7", format!("racer {racer} task failed: {e}")))?;
            match result {
                Ok(won) => winners.extend(won),
                Err(e) if e.is_retryable() => {} // a retryable failure is a loss, never a win
                Err(e) => {
                    return Err(Failure::new(
                        "C7",
                        format!("racer {racer} failed in round {round}: {e}"),
                    ));
                }
            }
        }
        ensure!(
            winners.len() == 1,
            "C7",
            "round {round}: {} of {RACERS} concurrent claims with etag {etag:?} won (exactly one must): {:?}",
            winners.len(),
            winners.iter().map(|w| &w.owner_id).collect::<Vec<_>>()
        );
        let listed = ctx.ownership("C7", scope).await?;
        ensure!(
            listed.len() == 1
                && listed[0].owner_id == winners[0].owner_id
                && listed[0].etag == winners[0].etag,
            "C7",
            "round {round}: the stored record must be the winner's ({:?}), listed {listed:?}",
            winners[0]
        );
        etag = winners[0].etag.clone();
    }
    Ok(())
}
