//! [`PartitionClient`]: one partition a processor owns, handed to the application to read and
//! checkpoint.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use eventhubs_store_core::{Checkpoint, CheckpointStore, PartitionScope, SetCheckpointOptions};

use crate::error::{Error, ErrorKind, Result};
use crate::event::ReceivedEvent;
use crate::receiver::PartitionReceiver;

/// A partition this processor owns: read its events, record how far it got.
///
/// It stops working (`OwnerLevelConflict`) once another processor takes the partition over:
/// its link is stolen by the new owner's receiver, and a fenced checkpoint (C13) is refused.
/// Call [`PartitionClient::close`] when done with it: the processor then lets the partition go.
pub struct PartitionClient {
    pub(super) receiver: PartitionReceiver,
    pub(super) store: Arc<dyn CheckpointStore>,
    pub(super) scope: PartitionScope,
    pub(super) owner_id: String,
    /// Checkpoints are fenced (C13) when the store offers it.
    pub(super) fenced: bool,
    /// Set by the processor when a load-balancing cycle finds the partition owned by another.
    pub(super) lost: Arc<AtomicBool>,
    /// Set by [`PartitionClient::close`]: the processor relinquishes the partition.
    pub(super) released: Arc<AtomicBool>,
}

impl std::fmt::Debug for PartitionClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionClient")
            .field("partition_id", &self.receiver.partition_id())
            .field("scope", &self.scope)
            .field("owner_id", &self.owner_id)
            .field("fenced", &self.fenced)
            .finish()
    }
}

impl PartitionClient {
    /// The partition id.
    pub fn partition_id(&self) -> &str {
        self.receiver.partition_id()
    }

    /// Up to `max` events, waiting at most `wait` for the first.
    ///
    /// # Errors
    /// `OwnerLevelConflict` once another processor owns the partition; the receiver's errors.
    #[tracing::instrument(level = "debug", skip(self), fields(partition = %self.partition_id()))]
    pub async fn receive_events(&mut self, max: usize, wait: Duration) -> Result<Vec<ReceivedEvent>> {
        self.ensure_owned()?;
        self.receiver.receive(max, wait).await
    }

    /// Records `event` as the last one processed: the next owner of the partition starts after
    /// it. Fenced (C13) where the store offers it, so a processor that lost the partition cannot
    /// move its checkpoint.
    ///
    /// # Errors
    /// `OwnerLevelConflict` when the partition is owned by another processor; the store's
    /// errors otherwise.
    #[tracing::instrument(level = "debug", skip(self, event), fields(partition = %self.partition_id(), sequence_number = event.sequence_number))]
    pub async fn update_checkpoint(&self, event: &ReceivedEvent) -> Result<()> {
        if event.partition_id != self.partition_id() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "event of partition {} cannot checkpoint partition {}",
                    event.partition_id,
                    self.partition_id()
                ),
            ));
        }
        self.ensure_owned()?;
        let checkpoint = Checkpoint::new(
            self.scope.clone(),
            self.partition_id(),
            Some(event.offset.clone()),
            Some(event.sequence_number),
        );
        let options = if self.fenced {
            SetCheckpointOptions::fenced(self.owner_id.clone())
        } else {
            SetCheckpointOptions::new()
        };
        self.store.set_checkpoint(&checkpoint, &options).await?;
        Ok(())
    }

    /// Closes the link; the processor relinquishes the partition (C8) in its next cycle, so
    /// another processor (or this one) can take it.
    ///
    /// # Errors
    /// The link's error on close (the partition is released either way).
    pub async fn close(self) -> Result<()> {
        self.released.store(true, Ordering::SeqCst);
        self.receiver.close().await
    }

    fn ensure_owned(&self) -> Result<()> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(Error::new(
                ErrorKind::OwnerLevelConflict,
                format!(
                    "partition {} is owned by another processor now",
                    self.partition_id()
                ),
            ));
        }
        Ok(())
    }
}
