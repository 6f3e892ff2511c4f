//! [`PartitionClient`]: one partition a processor owns, handed to the application to read and
//! checkpoint.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use eventhubs_store_core::{Checkpoint, CheckpointStore, PartitionScope, SetCheckpointOptions};

use super::Inner;
use super::events::LossReason;
use super::lease::Lease;
use crate::error::{Error, ErrorKind, Result};
use crate::event::{ReceivedEvent, StartPosition};
use crate::receiver::PartitionReceiver;

/// A partition this processor owns: read its events, record how far it got.
///
/// It stops working (`OwnerLevelConflict`) once the partition is lost: another processor
/// claimed it (its link is stolen by the new owner's receiver, a fenced checkpoint (C13) is
/// refused), or the ownership expired because the store could not be reached to renew it.
/// Its receiver recovers from dropped connections and detached links by itself.
///
/// Call [`PartitionClient::close`] when done with it: the processor then relinquishes the
/// partition (C8). A client dropped without `close` (a loop that ended on an error) is handed
/// out again by the processor, starting after the last checkpoint: a partition is never owned
/// and unread.
pub struct PartitionClient {
    pub(super) receiver: Option<PartitionReceiver>,
    pub(super) scope: PartitionScope,
    /// Where the receiver started (after the checkpoint, or the processor's default).
    pub(super) start: StartPosition,
    /// The least time between two background checkpoint writes.
    pub(super) background_interval: Duration,
    /// The sequence number of the last event handed to the application.
    pub(super) last_received: Option<i64>,
    /// The partition's ownership, checkpoints and metrics, shared with background writes.
    pub(super) target: Arc<Target>,
}

impl std::fmt::Debug for PartitionClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionClient")
            .field("partition_id", &self.target.partition_id)
            .field("scope", &self.scope)
            .field("owner_id", &self.target.owner_id)
            .field("start", &self.start)
            .field("fenced", &self.target.fenced)
            .finish()
    }
}

impl PartitionClient {
    /// The partition id.
    pub fn partition_id(&self) -> &str {
        &self.target.partition_id
    }

    /// The partition's last enqueued event as of the last event received (with
    /// [`ProcessorOptions::track_last_enqueued_event_properties`](super::ProcessorOptions::track_last_enqueued_event_properties),
    /// the default): how far this client is behind the partition.
    pub fn last_enqueued_event_properties(&self) -> Option<&crate::LastEnqueuedEventProperties> {
        self.receiver.as_ref()?.last_enqueued_event_properties()
    }

    /// Where this client started reading: right after the partition's checkpoint, or the
    /// processor's default start when there was none.
    pub fn start_position(&self) -> &StartPosition {
        &self.start
    }

    /// Up to `max` events, waiting at most `wait` for the first.
    ///
    /// # Errors
    /// `OwnerLevelConflict` once the partition is lost; `Closed` once the processor is
    /// closing (checkpoint, then [`PartitionClient::close`]); the receiver's errors after its
    /// own recovery gave up.
    #[tracing::instrument(level = "debug", skip(self), fields(partition = %self.target.partition_id))]
    pub async fn receive_events(&mut self, max: usize, wait: Duration) -> Result<Vec<ReceivedEvent>> {
        let lease = &self.target.lease;
        if lease.closing.load(Ordering::SeqCst) {
            return Err(Error::new(
                ErrorKind::Closed,
                "the processor is closing: make a last checkpoint and close the partition client",
            ));
        }
        lease.ensure_owned()?;
        let Some(receiver) = self.receiver.as_mut() else {
            return Err(Error::new(ErrorKind::Closed, "the partition client was closed"));
        };
        let result = receiver.receive(max, wait).await;
        if let Ok(events) = &result {
            self.target.metrics.received(events.len());
            if let Some(last) = events.last() {
                self.last_received = Some(last.sequence_number);
            }
            if let (Some(latest), Some(received)) =
                (receiver.last_enqueued_event_properties(), self.last_received)
            {
                self.target.metrics.receive_lag(latest.sequence_number - received);
            }
        }
        if let Err(e) = &result {
            // OwnerLevelConflict: a receiver with an equal or higher owner level took the link,
            // another processor owns the partition now (the next cycle confirms it).
            self.target.failed(e);
        }
        result
    }

    /// Records `event` as the last one processed: the next owner of the partition starts after
    /// it. Fenced (C13) where the store offers it, so a processor that lost the partition cannot
    /// move its checkpoint. Allowed while the processor is closing, until it relinquishes.
    ///
    /// # Errors
    /// `InvalidInput` for an event of another partition; `OwnerLevelConflict` when the
    /// partition is owned by another processor (or the ownership expired); the store's errors
    /// otherwise.
    #[tracing::instrument(level = "debug", skip(self, event), fields(partition = %self.target.partition_id, sequence_number = event.sequence_number))]
    pub async fn update_checkpoint(&self, event: &ReceivedEvent) -> Result<()> {
        let checkpoint = self.checkpoint_of(event)?;
        self.target.write(checkpoint).await
    }

    /// Records `event` as the last one processed, like [`PartitionClient::update_checkpoint`],
    /// but returns at once: the checkpoint is written in the background while the application
    /// reads on, so a store's round trip no longer slows the reading down.
    ///
    /// # Behavior
    /// - One write at a time per partition, at most one per
    ///   [`ProcessorOptions::background_checkpoint_interval`](super::ProcessorOptions::background_checkpoint_interval)
    ///   (default 1 s); checkpoints queued meanwhile are coalesced, and only the newest is
    ///   written next.
    /// - [`PartitionClient::close`] waits for the queued checkpoints before the partition is
    ///   relinquished, and the processor waits for them before it hands a dropped client's
    ///   partition out again or relinquishes on [`Processor::close`](super::Processor::close):
    ///   the next reader starts after the last checkpoint queued, never before it.
    /// - After the partition is lost, nothing more is written (fenced writes, C13, where the
    ///   store offers them).
    /// - A failed write is reported on [`Processor::events`](super::Processor::events), and
    ///   returned once, by the next call of this method or by
    ///   [`PartitionClient::flush_checkpoints`].
    ///
    /// # Errors
    /// `InvalidInput` for an event of another partition; `OwnerLevelConflict` once the partition
    /// is lost; the error of an earlier background write not returned yet.
    #[tracing::instrument(level = "debug", skip(self, event), fields(partition = %self.target.partition_id, sequence_number = event.sequence_number))]
    pub fn checkpoint_in_background(&self, event: &ReceivedEvent) -> Result<()> {
        let checkpoint = self.checkpoint_of(event)?;
        let (start, failed) = self.target.lease.writes.queue(checkpoint);
        if start {
            let target = Arc::clone(&self.target);
            let interval = self.background_interval;
            tokio::spawn(async move {
                let lease = Arc::clone(&target.lease);
                lease
                    .writes
                    .drain(|checkpoint| target.write(checkpoint), interval)
                    .await;
            });
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Waits until the checkpoints queued with [`PartitionClient::checkpoint_in_background`]
    /// are written.
    ///
    /// # Errors
    /// The error of the last background write that failed and was not returned yet.
    pub async fn flush_checkpoints(&self) -> Result<()> {
        self.target.lease.writes.flush().await
    }

    fn checkpoint_of(&self, event: &ReceivedEvent) -> Result<Checkpoint> {
        let partition_id = &self.target.partition_id;
        if &event.partition_id != partition_id {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "event of partition {} cannot checkpoint partition {partition_id}",
                    event.partition_id
                ),
            ));
        }
        self.target.lease.ensure_owned()?;
        Ok(Checkpoint::new(
            self.scope.clone(),
            partition_id.as_str(),
            Some(event.offset.clone()),
            Some(event.sequence_number),
        ))
    }

    /// Closes the link; the processor relinquishes the partition (C8) in its next cycle, so
    /// another processor (or this one) can take it.
    ///
    /// # Errors
    /// The link's error on close (the partition is released either way).
    pub async fn close(mut self) -> Result<()> {
        // The checkpoints queued in the background land before the partition is given up.
        let flushed = self.target.lease.writes.flush().await;
        self.target.lease.released.store(true, Ordering::SeqCst);
        let closed = match self.receiver.take() {
            Some(receiver) => receiver.close().await,
            None => Ok(()),
        };
        flushed.and(closed)
    }
}

/// One handed-out partition: where its checkpoints go, its ownership, its metrics, and the
/// processor that hears of failures.
pub(super) struct Target {
    pub(super) store: Arc<dyn CheckpointStore>,
    pub(super) partition_id: String,
    pub(super) owner_id: String,
    /// Checkpoints are fenced (C13) when the store offers it.
    pub(super) fenced: bool,
    pub(super) lease: Arc<Lease>,
    /// The processor, told when the client is dropped (to hand the partition out again), a
    /// read or checkpoint finds another owner, or something fails.
    pub(super) processor: std::sync::Weak<Inner>,
    pub(super) metrics: crate::telemetry::PartitionMetrics,
}

impl Target {
    /// Writes `checkpoint` while the partition is owned; a refusal by the fence (C13) marks
    /// the partition lost, other errors are reported.
    async fn write(&self, checkpoint: Checkpoint) -> Result<()> {
        self.lease.ensure_owned()?;
        let options = if self.fenced {
            SetCheckpointOptions::fenced(self.owner_id.clone())
        } else {
            SetCheckpointOptions::new()
        };
        let started = std::time::Instant::now();
        let written = self.store.set_checkpoint(&checkpoint, &options).await;
        self.metrics.checkpointed(written.is_ok(), started.elapsed());
        written.map_err(|e| {
            let e = Error::from(e);
            self.failed(&e);
            e
        })
    }

    /// Tells the processor of a failed read or write: another owner (`OwnerLevelConflict`:
    /// a stolen link, a refused fence) loses the partition, anything else is reported.
    fn failed(&self, e: &Error) {
        let Some(processor) = self.processor.upgrade() else {
            return;
        };
        if e.kind() == ErrorKind::OwnerLevelConflict {
            processor.lose(&self.partition_id, &self.lease, LossReason::Stolen);
        } else {
            processor.report(Some(&self.partition_id), e);
        }
    }
}

impl Drop for PartitionClient {
    /// A client dropped without [`PartitionClient::close`]: the processor hands the partition
    /// out again (after the last checkpoint) while it still owns it.
    fn drop(&mut self) {
        let lease = &self.target.lease;
        if lease.released.load(Ordering::SeqCst) {
            return;
        }
        lease.dropped.store(true, Ordering::SeqCst);
        if let Some(processor) = self.target.processor.upgrade() {
            processor.wake.notify_one();
        }
    }
}
