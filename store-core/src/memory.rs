//! [`InMemoryStore`]: the reference implementation of the contract and the conformance suite's
//! oracle.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::{Error, ErrorKind, Result};
use crate::model::{
    Checkpoint, ETag, Ownership, PartitionScope, normalize_checkpoint, normalize_claims, normalize_name,
};
use crate::store::{Capabilities, CheckpointStore, ClaimOptions, SetCheckpointOptions};

type Key = (PartitionScope, String);

#[derive(Debug, Default)]
struct State {
    ownership: BTreeMap<Key, Ownership>,
    checkpoints: BTreeMap<Key, Checkpoint>,
    /// Etags are `"{generation}"` from one counter: unique for the life of the store (C5).
    generation: u64,
}

/// A strict in-memory store: it honours etags (C3, C4, C7), unlike the official SDKs' test
/// doubles, and implements fencing (C13). Nothing survives the process.
///
/// Clones share the same data, so a clone is a second handle on one store (as a second
/// connection is for a database).
///
/// ```
/// # tokio_test_block_on(async {
/// use eventhubs_store_core::{CheckpointStore, ClaimOptions, InMemoryStore, Ownership, PartitionScope};
///
/// let store = InMemoryStore::new();
/// let scope = PartitionScope::new("myns.servicebus.windows.net", "orders", "$Default")?;
/// let won = store.claim_ownership(&[Ownership::new(scope.clone(), "0", "me")], &ClaimOptions::default()).await?;
/// assert_eq!(won.len(), 1);
/// // The same create again loses (C3): the record exists now.
/// let lost = store.claim_ownership(&[Ownership::new(scope, "0", "you")], &ClaimOptions::default()).await?;
/// assert!(lost.is_empty());
/// # Ok::<(), eventhubs_store_core::Error>(())
/// # }).unwrap();
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct InMemoryStore {
    state: Arc<Mutex<State>>,
}

impl InMemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| Error::backend("in-memory store poisoned by a panic").with_backend("memory"))
    }
}

fn now_after(previous: Option<OffsetDateTime>) -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    match previous {
        Some(p) if p > now => p,
        _ => now,
    }
}

#[async_trait]
impl CheckpointStore for InMemoryStore {
    fn backend_name(&self) -> &'static str {
        "memory"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::all().with_durable(false)
    }

    #[tracing::instrument(level = "debug", skip(self), fields(backend = "memory", %scope))]
    async fn list_ownership(&self, scope: &PartitionScope) -> Result<Vec<Ownership>> {
        let state = self.lock()?;
        Ok(state
            .ownership
            .iter()
            .filter(|((s, _), _)| s == scope)
            .map(|(_, o)| o.clone())
            .collect())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "memory", claims = claims.len()))]
    async fn claim_ownership(&self, claims: &[Ownership], _options: &ClaimOptions) -> Result<Vec<Ownership>> {
        let claims = normalize_claims(claims).map_err(|e| e.with_backend("memory"))?;
        let mut state = self.lock()?;
        let mut won = Vec::new();
        for claim in claims {
            let key = (claim.scope.clone(), claim.partition_id.clone());
            let current = state.ownership.get(&key);
            let wins = match (&claim.etag, current) {
                (None, None) => true,                                                     // C3
                (Some(expected), Some(stored)) => stored.etag.as_ref() == Some(expected), // C4
                _ => false,
            };
            if !wins {
                continue;
            }
            let previous_time = current.and_then(|c| c.last_modified_time);
            state.generation += 1;
            let record = Ownership {
                etag: Some(ETag::new(state.generation.to_string())),
                last_modified_time: Some(now_after(previous_time)),
                ..claim
            };
            state.ownership.insert(key, record.clone());
            won.push(record);
        }
        Ok(won)
    }

    #[tracing::instrument(level = "debug", skip(self), fields(backend = "memory", %scope))]
    async fn list_checkpoints(&self, scope: &PartitionScope) -> Result<Vec<Checkpoint>> {
        let state = self.lock()?;
        Ok(state
            .checkpoints
            .iter()
            .filter(|((s, _), _)| s == scope)
            .map(|(_, c)| c.clone())
            .collect())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "memory", scope = %checkpoint.scope, partition = %checkpoint.partition_id))]
    async fn set_checkpoint(&self, checkpoint: &Checkpoint, options: &SetCheckpointOptions) -> Result<()> {
        let checkpoint = normalize_checkpoint(checkpoint).map_err(|e| e.with_backend("memory"))?;
        let key = (checkpoint.scope.clone(), checkpoint.partition_id.clone());
        let mut state = self.lock()?;
        if let Some(owner) = &options.required_owner {
            let holds = !owner.is_empty() && state.ownership.get(&key).is_some_and(|o| &o.owner_id == owner);
            if !holds {
                return Err(fence_refused(owner, &checkpoint.partition_id).with_backend("memory"));
            }
        }
        state.checkpoints.insert(key, checkpoint);
        Ok(())
    }

    async fn delete_checkpoint(&self, scope: &PartitionScope, partition_id: &str) -> Result<bool> {
        let partition_id = normalize_name("partition_id", partition_id)?;
        let mut state = self.lock()?;
        Ok(state.checkpoints.remove(&(scope.clone(), partition_id)).is_some())
    }

    async fn list_scopes(&self) -> Result<Vec<PartitionScope>> {
        let state = self.lock()?;
        let mut scopes: Vec<PartitionScope> = state
            .ownership
            .keys()
            .chain(state.checkpoints.keys())
            .map(|(s, _)| s.clone())
            .collect();
        scopes.sort();
        scopes.dedup();
        Ok(scopes)
    }
}

/// The error every store returns when a fenced checkpoint (C13) is refused.
pub fn fence_refused(required_owner: &str, partition_id: &str) -> Error {
    Error::new(
        ErrorKind::OwnershipLost,
        format!(
            "checkpoint of partition {partition_id:?} refused: owner {required_owner:?} does not hold it (rule C13)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> PartitionScope {
        PartitionScope::new("ns", "hub", "cg").unwrap()
    }

    #[tokio::test]
    async fn c4_stale_etag_loses_and_c5_etag_changes() {
        let store = InMemoryStore::new();
        let opts = ClaimOptions::default();
        let first = store
            .claim_ownership(&[Ownership::new(scope(), "0", "a")], &opts)
            .await
            .unwrap();
        let etag1 = first[0].etag.clone();
        let renewed = store
            .claim_ownership(
                &[Ownership::new(scope(), "0", "a").with_etag(etag1.clone())],
                &opts,
            )
            .await
            .unwrap();
        assert_ne!(renewed[0].etag, etag1);
        assert!(renewed[0].last_modified_time >= first[0].last_modified_time);
        let stale = store
            .claim_ownership(&[Ownership::new(scope(), "0", "b").with_etag(etag1)], &opts)
            .await
            .unwrap();
        assert!(stale.is_empty());
    }

    #[tokio::test]
    async fn c13_fenced_checkpoint_needs_the_owner() {
        let store = InMemoryStore::new();
        let cp = Checkpoint::new(scope(), "0", Some("10".into()), Some(1));
        let e = store
            .set_checkpoint(&cp, &SetCheckpointOptions::fenced("a"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::OwnershipLost);
        assert!(store.list_checkpoints(&scope()).await.unwrap().is_empty());
        store
            .claim_ownership(&[Ownership::new(scope(), "0", "a")], &ClaimOptions::default())
            .await
            .unwrap();
        store
            .set_checkpoint(&cp, &SetCheckpointOptions::fenced("a"))
            .await
            .unwrap();
        assert_eq!(store.list_checkpoints(&scope()).await.unwrap(), vec![cp]);
    }
}
