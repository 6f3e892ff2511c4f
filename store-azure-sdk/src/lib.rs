//! Any [`eventhubs_store_core::CheckpointStore`] (SQLite, files, PostgreSQL, Redis, our Azure
//! Blob store, or yours) as the `CheckpointStore` of the official `azure_messaging_eventhubs`
//! crate, so its `EventProcessor` keeps ownership and checkpoints there.
//!
//! ```no_run
//! # async fn run(consumer: azure_messaging_eventhubs::ConsumerClient) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use azure_messaging_eventhubs::EventProcessor;
//! use eventhubs_store_azure_sdk::SdkCheckpointStore;
//!
//! let ours = Arc::new(eventhubs_store_sqlite::SqliteStore::open("checkpoints.db").await?);
//! let processor = EventProcessor::builder()
//!     .build(consumer, Arc::new(SdkCheckpointStore::new(ours)))
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! # Behavior
//! - Claims follow our contract (the rules in `eventhubs_store_core::CheckpointStore`'s docs),
//!   which is the official blob store's: a claim without an etag wins only when no record
//!   exists (C3), one with an etag only when it is the stored one (C4); a lost claim is left
//!   out of the result, not an error (C6). An owner id of `None` relinquishes the partition
//!   (stored as `""`, listed back as `None`: C8).
//! - Names: our stores keep names lower-cased (C1); the adapter hands back the namespace, event
//!   hub and consumer group exactly as the caller wrote them (the official processor compares
//!   them), and each claimed partition id as the claim wrote it. Owner ids, etags, offsets and
//!   sequence numbers round-trip exactly (C9).
//! - `update_checkpoint` is an unconditional upsert (C9), as in every official store; the
//!   official trait names no owner, so it is never fenced (C13).
//! - `Unavailable` errors are retried by the adapter (see [`RetryOptions`]): the official
//!   processor stops on the first store error it sees. What remains is mapped to an
//!   `azure_core` error kind in one place (the `errors` module's table).

mod errors;
mod retry;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use azure_core::http::Etag;
use azure_messaging_eventhubs::models::{Checkpoint as SdkCheckpoint, Ownership as SdkOwnership};
use eventhubs_store_core::{
    Checkpoint, CheckpointStore, ClaimOptions, ETag, Ownership, PartitionScope, SetCheckpointOptions,
};

pub use errors::azure_kind;
pub use retry::RetryOptions;

/// One of our stores as the official crate's `CheckpointStore`.
#[derive(Clone)]
pub struct SdkCheckpointStore {
    store: Arc<dyn CheckpointStore>,
    retry: RetryOptions,
}

impl fmt::Debug for SdkCheckpointStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SdkCheckpointStore")
            .field("store", &self.store)
            .field("retry", &self.retry)
            .finish()
    }
}

impl SdkCheckpointStore {
    /// `store`, with the default [`RetryOptions`].
    pub fn new(store: Arc<dyn CheckpointStore>) -> Self {
        SdkCheckpointStore {
            store,
            retry: RetryOptions::default(),
        }
    }

    /// How `Unavailable` store errors are retried before one reaches the processor.
    pub fn with_retry(mut self, retry: RetryOptions) -> Self {
        self.retry = retry;
        self
    }

    /// The store underneath.
    pub fn store(&self) -> &Arc<dyn CheckpointStore> {
        &self.store
    }
}

fn scope(namespace: &str, event_hub: &str, consumer_group: &str) -> azure_core::Result<PartitionScope> {
    PartitionScope::new(namespace, event_hub, consumer_group).map_err(errors::to_azure)
}

/// A store's ownership as the official type, named as the caller named its scope.
fn sdk_ownership(record: Ownership, names: (&str, &str, &str), partition_id: String) -> SdkOwnership {
    SdkOwnership {
        fully_qualified_namespace: names.0.to_owned(),
        event_hub_name: names.1.to_owned(),
        consumer_group: names.2.to_owned(),
        partition_id,
        owner_id: Some(record.owner_id).filter(|o| !o.is_empty()),
        etag: record.etag.map(|e| Etag::from(e.as_str())),
        last_modified_time: record.last_modified_time,
    }
}

#[async_trait::async_trait]
impl azure_messaging_eventhubs::CheckpointStore for SdkCheckpointStore {
    #[tracing::instrument(level = "debug", name = "eventhubs.sdk_adapter.claim_ownership", skip_all, fields(claims = ownerships.len()))]
    async fn claim_ownership(&self, ownerships: &[SdkOwnership]) -> azure_core::Result<Vec<SdkOwnership>> {
        let mut claims = Vec::with_capacity(ownerships.len());
        // The caller's names for each partition, by our key (lower-cased, C1).
        let mut names: HashMap<(PartitionScope, String), &SdkOwnership> = HashMap::new();
        for o in ownerships {
            let scope = scope(&o.fully_qualified_namespace, &o.event_hub_name, &o.consumer_group)?;
            let claim = Ownership::new(
                scope.clone(),
                o.partition_id.clone(),
                o.owner_id.clone().unwrap_or_default(),
            )
            .with_etag(o.etag.as_ref().map(|e| ETag::new(e.as_ref())));
            names.insert((scope, o.partition_id.to_lowercase()), o);
            claims.push(claim);
        }
        let options = ClaimOptions::default();
        let won = retry::retrying("claim_ownership", &self.retry, || {
            self.store.claim_ownership(&claims, &options)
        })
        .await
        .map_err(errors::to_azure)?;
        Ok(won
            .into_iter()
            .filter_map(|record| {
                let key = (record.scope.clone(), record.partition_id.to_lowercase());
                let asked = names.get(&key)?;
                let partition_id = asked.partition_id.clone();
                let caller = (
                    asked.fully_qualified_namespace.as_str(),
                    asked.event_hub_name.as_str(),
                    asked.consumer_group.as_str(),
                );
                Some(sdk_ownership(record, caller, partition_id))
            })
            .collect())
    }

    #[tracing::instrument(level = "debug", name = "eventhubs.sdk_adapter.list_checkpoints", skip(self))]
    async fn list_checkpoints(
        &self,
        namespace: &str,
        event_hub_name: &str,
        consumer_group: &str,
    ) -> azure_core::Result<Vec<SdkCheckpoint>> {
        let scope = scope(namespace, event_hub_name, consumer_group)?;
        let records = retry::retrying("list_checkpoints", &self.retry, || {
            self.store.list_checkpoints(&scope)
        })
        .await
        .map_err(errors::to_azure)?;
        Ok(records
            .into_iter()
            .map(|c| SdkCheckpoint {
                fully_qualified_namespace: namespace.to_owned(),
                event_hub_name: event_hub_name.to_owned(),
                consumer_group: consumer_group.to_owned(),
                partition_id: c.partition_id,
                offset: c.offset,
                sequence_number: c.sequence_number,
            })
            .collect())
    }

    #[tracing::instrument(level = "debug", name = "eventhubs.sdk_adapter.list_ownerships", skip(self))]
    async fn list_ownerships(
        &self,
        namespace: &str,
        event_hub_name: &str,
        consumer_group: &str,
    ) -> azure_core::Result<Vec<SdkOwnership>> {
        let scope = scope(namespace, event_hub_name, consumer_group)?;
        let records = retry::retrying("list_ownership", &self.retry, || {
            self.store.list_ownership(&scope)
        })
        .await
        .map_err(errors::to_azure)?;
        Ok(records
            .into_iter()
            .map(|o| {
                let partition_id = o.partition_id.clone();
                sdk_ownership(o, (namespace, event_hub_name, consumer_group), partition_id)
            })
            .collect())
    }

    #[tracing::instrument(
        level = "debug",
        name = "eventhubs.sdk_adapter.update_checkpoint",
        skip_all,
        fields(partition = %checkpoint.partition_id)
    )]
    async fn update_checkpoint(&self, checkpoint: SdkCheckpoint) -> azure_core::Result<()> {
        let scope = scope(
            &checkpoint.fully_qualified_namespace,
            &checkpoint.event_hub_name,
            &checkpoint.consumer_group,
        )?;
        let ours = Checkpoint::new(
            scope,
            checkpoint.partition_id,
            checkpoint.offset,
            checkpoint.sequence_number,
        );
        let options = SetCheckpointOptions::new();
        retry::retrying("set_checkpoint", &self.retry, || {
            self.store.set_checkpoint(&ours, &options)
        })
        .await
        .map_err(errors::to_azure)
    }
}
