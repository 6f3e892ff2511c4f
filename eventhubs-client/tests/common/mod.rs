//! Test support shared by the client's integration tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use eventhubs_store_core::{
    Capabilities, Checkpoint, CheckpointStore, ClaimOptions, Error as StoreError, Ownership, PartitionScope,
    SetCheckpointOptions,
};

/// A real store that can be taken down: every call fails with `Unavailable` while `down`.
#[derive(Debug)]
pub struct Outage {
    store: Arc<dyn CheckpointStore>,
    /// Set to take the store down, clear to bring it back.
    pub down: AtomicBool,
}

impl Outage {
    pub fn new(store: Arc<dyn CheckpointStore>) -> Self {
        Outage {
            store,
            down: AtomicBool::new(false),
        }
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable("the store is down (test outage)"));
        }
        Ok(())
    }
}

#[async_trait]
impl CheckpointStore for Outage {
    async fn list_ownership(&self, scope: &PartitionScope) -> Result<Vec<Ownership>, StoreError> {
        self.check()?;
        self.store.list_ownership(scope).await
    }
    async fn claim_ownership(
        &self,
        claims: &[Ownership],
        options: &ClaimOptions,
    ) -> Result<Vec<Ownership>, StoreError> {
        self.check()?;
        self.store.claim_ownership(claims, options).await
    }
    async fn list_checkpoints(&self, scope: &PartitionScope) -> Result<Vec<Checkpoint>, StoreError> {
        self.check()?;
        self.store.list_checkpoints(scope).await
    }
    async fn set_checkpoint(
        &self,
        checkpoint: &Checkpoint,
        options: &SetCheckpointOptions,
    ) -> Result<(), StoreError> {
        self.check()?;
        self.store.set_checkpoint(checkpoint, options).await
    }
    fn backend_name(&self) -> &'static str {
        "outage"
    }
    fn capabilities(&self) -> Capabilities {
        self.store.capabilities()
    }
}
