//! The load-balancing [`Processor`]: spreads the partitions of a consumer group over every
//! processor that shares a checkpoint store, and hands each one its partitions as
//! [`PartitionClient`]s that start after the last checkpoint.
//!
//! Defaults follow Go's azeventhubs v2: a load-balancing cycle every 10 s (jittered by ±10 %),
//! ownership expiring 60 s after its last renewal, owner level 0 on partition links; the
//! strategy is our `Adaptive` (balanced within two cycles; Go's `balanced` and `greedy` remain).
//! Each cycle renews what the processor owns, then claims per [`load_balancer`]. A partition that another processor claimed is lost: its
//! partition client fails with `OwnerLevelConflict`, its fenced checkpoints (C13) are refused.
//! [`Processor::close`] relinquishes everything (C8); dropping a processor without closing it
//! is what a crash looks like, and its partitions move once they expire.

mod adaptive;
mod background;
mod cycle;
pub mod events;
mod lease;
pub mod load_balancer;
mod partition_client;
pub mod simulation;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventhubs_store_core::{CheckpointStore, Ownership, PartitionScope};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::{Mutex, Notify, broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use crate::client::EventHubClient;
use crate::error::{Error, ErrorKind, Result};
use crate::event::StartPosition;
pub use events::{LossReason, ProcessorEvent};
use lease::Lease;
pub use load_balancer::LoadBalancingStrategy;
pub use partition_client::PartitionClient;

/// How many [`ProcessorEvent`]s a slow subscriber may fall behind before it misses the oldest.
const EVENTS_CAPACITY: usize = 1024;

/// How a [`Processor`] balances and reads.
#[derive(Debug, Clone)]
pub struct ProcessorOptions {
    /// How partitions are claimed (default `Adaptive`).
    pub strategy: LoadBalancingStrategy,
    /// Time between load-balancing cycles (default 10 s, jittered by ±10 %). Must be well
    /// below `partition_expiration`: every cycle renews the processor's ownership.
    pub update_interval: Duration,
    /// Ownership not renewed for this long is free for others (default 60 s).
    pub partition_expiration: Duration,
    /// Where a partition without a checkpoint starts (default `Latest`), unless
    /// `partition_start` names it.
    pub start: StartPosition,
    /// Where particular partitions without a checkpoint start, by partition id (default
    /// none): as the official SDKs' per-partition start positions. A checkpoint always wins.
    pub partition_start: HashMap<String, StartPosition>,
    /// The owner level of partition links (default `Some(0)`): a new owner's link steals the
    /// old owner's.
    pub owner_level: Option<i64>,
    /// Events each partition link may prefetch (default 300); 0 asks for events only while
    /// [`PartitionClient::receive_events`] waits (see [`ReceiverOptions::prefetch`](crate::ReceiverOptions::prefetch)).
    pub prefetch: u32,
    /// This processor's owner id (default a random UUID).
    pub owner_id: Option<String>,
    /// How long [`Processor::close`] waits for the application to make its last checkpoints
    /// and close its partition clients before it relinquishes the partitions (default 10 s).
    pub close_timeout: Duration,
    /// The least time between two writes of one partition's checkpoints queued with
    /// [`PartitionClient::checkpoint_in_background`] (default 1 s): the checkpoints queued
    /// meanwhile are coalesced into the newest. Closing or dropping the client, closing the
    /// processor and [`PartitionClient::flush_checkpoints`] write at once. `Duration::ZERO`
    /// writes as fast as the store answers.
    pub background_checkpoint_interval: Duration,
    /// Ask the service for each partition's last enqueued event with every event (default
    /// `true`): [`PartitionClient::last_enqueued_event_properties`] and the receive-lag metric
    /// (`messaging.eventhubs.receive.lag`) come from it.
    pub track_last_enqueued_event_properties: bool,
}

impl Default for ProcessorOptions {
    fn default() -> Self {
        ProcessorOptions {
            strategy: LoadBalancingStrategy::Adaptive,
            update_interval: Duration::from_secs(10),
            partition_expiration: Duration::from_secs(60),
            start: StartPosition::Latest,
            partition_start: HashMap::new(),
            owner_level: Some(0),
            prefetch: 300,
            owner_id: None,
            close_timeout: Duration::from_secs(10),
            background_checkpoint_interval: Duration::from_secs(1),
            track_last_enqueued_event_properties: true,
        }
    }
}

/// Spreads a consumer group's partitions over the processors sharing `store`.
///
/// An example only (compiled, not run: it needs an event hub):
///
/// ```no_run
/// # async fn run(store: std::sync::Arc<dyn eventhubs_store_core::CheckpointStore>) -> eventhubs_client::Result<()> {
/// use std::time::Duration;
/// use eventhubs_client::{EventHubClient, Processor, ProcessorOptions};
///
/// let client = EventHubClient::from_connection_string("Endpoint=sb://…;EntityPath=orders", None).await?;
/// let processor = Processor::new(client, "$Default", store, ProcessorOptions::default())?;
/// processor.start().await?;
/// let mut events = processor.events(); // partitions gained and lost, errors met
/// tokio::spawn(async move {
///     while let Ok(event) = events.recv().await {
///         eprintln!("{event:?}");
///     }
/// });
/// while let Some(mut partition) = processor.next_partition_client().await {
///     tokio::spawn(async move {
///         // Ends when the partition is lost or the processor closes; a dropped client is
///         // handed out again, so ending on any error loses nothing.
///         while let Ok(events) = partition.receive_events(100, Duration::from_secs(5)).await {
///             if let Some(last) = events.last() {
///                 // … process the events, then:
///                 if partition.update_checkpoint(last).await.is_err() {
///                     break;
///                 }
///             }
///         }
///         let _ = partition.close().await;
///     });
/// }
/// # Ok(()) }
/// ```
pub struct Processor {
    inner: Arc<Inner>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Processor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processor")
            .field("scope", &self.inner.scope)
            .field("owner_id", &self.inner.owner_id)
            .field("options", &self.inner.options)
            .finish()
    }
}

struct Inner {
    client: EventHubClient,
    store: Arc<dyn CheckpointStore>,
    scope: PartitionScope,
    consumer_group: String,
    owner_id: String,
    options: ProcessorOptions,
    state: Mutex<State>,
    ready_tx: mpsc::UnboundedSender<PartitionClient>,
    ready_rx: Mutex<mpsc::UnboundedReceiver<PartitionClient>>,
    closed: watch::Sender<bool>,
    events: broadcast::Sender<ProcessorEvent>,
    /// Woken when a partition client is dropped (hand it out again) or lost.
    wake: Notify,
    /// Itself, for the partition clients it hands out.
    weak: std::sync::Weak<Inner>,
}

struct State {
    /// Partitions this processor owns, by id, with the lease shared with their client.
    owned: BTreeMap<String, Arc<Lease>>,
    /// The hub's partition ids as last read (used while the hub cannot be reached).
    partition_ids: Vec<String>,
    /// When the first live record of another owner expires (the next cycle runs then).
    next_expiry: Option<std::time::Instant>,
    rng: StdRng,
}

impl Processor {
    /// A processor of `consumer_group` on `client`'s event hub, balancing through `store`.
    ///
    /// # Errors
    /// `InvalidInput` for a bad consumer group name or options.
    pub fn new(
        client: EventHubClient,
        consumer_group: &str,
        store: Arc<dyn CheckpointStore>,
        options: ProcessorOptions,
    ) -> Result<Self> {
        let scope = PartitionScope::new(
            client.fully_qualified_namespace(),
            client.event_hub(),
            consumer_group,
        )
        .map_err(|e| Error::new(ErrorKind::InvalidInput, e.to_string()).with_source(e))?;
        if options.update_interval.is_zero() || options.update_interval >= options.partition_expiration {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "update_interval ({:?}) must be above zero and below partition_expiration ({:?}): \
                     every cycle renews the processor's ownership",
                    options.update_interval, options.partition_expiration
                ),
            ));
        }
        crate::receiver::selector(&options.start)
            .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("start: {e}")))?;
        for (partition, start) in &options.partition_start {
            crate::receiver::selector(start).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!("partition_start[{partition:?}]: {e}"),
                )
            })?;
        }
        let owner_id = options
            .owner_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        if owner_id.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "owner_id must not be empty: an empty owner means relinquished (C8)",
            ));
        }
        let (ready_tx, ready_rx) = mpsc::unbounded_channel();
        let (closed, _) = watch::channel(false);
        Ok(Processor {
            inner: Arc::new_cyclic(|weak| Inner {
                client,
                store,
                scope,
                consumer_group: consumer_group.to_owned(),
                owner_id,
                options,
                state: Mutex::new(State {
                    owned: BTreeMap::new(),
                    partition_ids: Vec::new(),
                    next_expiry: None,
                    rng: StdRng::from_rng(&mut rand::rng()),
                }),
                ready_tx,
                ready_rx: Mutex::new(ready_rx),
                closed,
                events: broadcast::channel(EVENTS_CAPACITY).0,
                wake: Notify::new(),
                weak: weak.clone(),
            }),
            task: Mutex::new(None),
        })
    }

    /// This processor's owner id.
    pub fn owner_id(&self) -> &str {
        &self.inner.owner_id
    }

    /// Runs the first load-balancing cycle, then keeps balancing in the background until
    /// [`Processor::close`].
    ///
    /// # Errors
    /// The first cycle's error (hub unreachable, store unreachable), so a misconfigured
    /// processor fails fast. Later cycles never stop the processor: their errors go to
    /// [`Processor::events`] and the cycle is tried again with backoff.
    pub async fn start(&self) -> Result<()> {
        let mut task = self.task.lock().await;
        if task.is_some() {
            return Ok(());
        }
        if *self.inner.closed.borrow() {
            return Err(Error::new(ErrorKind::Closed, "the processor was closed"));
        }
        self.inner.cycle().await?;
        let inner = Arc::clone(&self.inner);
        *task = Some(tokio::spawn(async move { inner.run().await }));
        Ok(())
    }

    /// The next partition this processor came to own (or whose previous client was dropped),
    /// ready to read; `None` once closed. Clients of partitions lost while they waited here
    /// are skipped.
    pub async fn next_partition_client(&self) -> Option<PartitionClient> {
        let mut closed = self.inner.closed.subscribe();
        let mut ready = self.inner.ready_rx.lock().await;
        loop {
            if *closed.borrow() {
                return None;
            }
            let client = tokio::select! {
                client = ready.recv() => client?,
                _ = closed.wait_for(|c| *c) => return None,
            };
            if client.target.lease.lost().is_none() {
                return Some(client);
            }
        }
    }

    /// The partitions this processor owns now: won in the last cycle and not lost since
    /// (stolen, expired, released).
    pub async fn owned_partitions(&self) -> Vec<String> {
        let state = self.inner.state.lock().await;
        state
            .owned
            .iter()
            .filter(|(_, lease)| lease.lost().is_none())
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// What happens to this processor from now on: partitions initialized and lost (with the
    /// reason), errors met (store, AMQP) while it keeps running. Each call is one subscriber;
    /// one that falls more than 1024 events behind misses the oldest (`Lagged`).
    pub fn events(&self) -> broadcast::Receiver<ProcessorEvent> {
        self.inner.events.subscribe()
    }

    /// Stops balancing, lets the application finish, and relinquishes every partition (C8), so
    /// other processors take them at once instead of waiting for them to expire.
    ///
    /// # Behavior
    /// - No more cycles; partition clients not yet taken from
    ///   [`Processor::next_partition_client`] are dropped.
    /// - `receive_events` on the clients handed out fails with `Closed`, while
    ///   `update_checkpoint` still works: the application makes its last checkpoints and
    ///   closes (or drops) its clients. `close` waits for that up to
    ///   [`ProcessorOptions::close_timeout`].
    /// - Then every partition is lost with [`LossReason::Shutdown`] and relinquished.
    ///
    /// # Errors
    /// The store's error when relinquishing (the processor is stopped either way).
    pub async fn close(&self) -> Result<()> {
        self.inner.closed.send_replace(true);
        // Not aborted: a cycle cut short after the store took its claims would leave stale
        // etags here, and relinquishing with them would fail. The loop stops between cycles.
        if let Some(task) = self.task.lock().await.take() {
            let _ = task.await;
        }
        {
            let mut ready = self.inner.ready_rx.lock().await;
            ready.close();
            while ready.try_recv().is_ok() {}
        }
        let leases: Vec<Arc<Lease>> = self.inner.state.lock().await.owned.values().cloned().collect();
        for lease in &leases {
            lease.closing.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        let deadline = Instant::now() + self.inner.options.close_timeout;
        while leases.iter().any(|l| l.in_use()) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Checkpoints queued in the background land before the partitions are given up; a
        // write can only land while the ownership holds, so that bounds the wait.
        for lease in &leases {
            let until = tokio::time::Instant::from_std(lease.expires());
            let _ = tokio::time::timeout_at(until, lease.writes.flush()).await;
        }
        let mut state = self.inner.state.lock().await;
        for (id, lease) in std::mem::take(&mut state.owned) {
            self.inner.lose(&id, &lease, LossReason::Shutdown);
        }
        // Relinquish what the store says is ours, with the etags it lists: the processor's own
        // copies may be stale after a claim whose answer was lost.
        let listed = self.inner.store.list_ownership(&self.inner.scope).await?;
        let claims: Vec<Ownership> = listed
            .iter()
            .filter(|o| o.owner_id == self.inner.owner_id)
            .map(relinquish)
            .collect();
        if claims.is_empty() {
            return Ok(());
        }
        self.inner
            .store
            .claim_ownership(&claims, &Default::default())
            .await?;
        tracing::debug!(owner = %self.inner.owner_id, partitions = claims.len(), "relinquished on close");
        Ok(())
    }
}

impl Processor {
    /// Stops at once without relinquishing anything: what a crash does (dropping the processor
    /// does the same). No event is reported. Its partitions move once their ownership expires; until another
    /// processor takes them, its partition clients keep reading. For tests and demos of
    /// failure; a process that shuts down calls [`Processor::close`].
    pub fn abort(&self) {
        self.inner.closed.send_replace(true);
        if let Ok(mut task) = self.task.try_lock()
            && let Some(task) = task.take()
        {
            task.abort();
        }
    }
}

impl Drop for Processor {
    /// Stops the background cycle without relinquishing anything: what a crash does.
    fn drop(&mut self) {
        self.abort();
    }
}

impl Inner {
    /// Reports an error to the application.
    pub(super) fn report(&self, partition_id: Option<&str>, error: &Error) {
        tracing::warn!(owner = %self.owner_id, partition = ?partition_id, error = %error, "processor error");
        let copy = Error::new(error.kind(), error.message());
        let _ = self.events.send(ProcessorEvent::Error {
            partition_id: partition_id.map(str::to_owned),
            error: Arc::new(copy),
        });
    }

    /// Marks `lease` lost for `reason` and tells the application, once.
    pub(super) fn lose(&self, partition_id: &str, lease: &Lease, reason: LossReason) {
        if lease.lose(reason) {
            crate::telemetry::lost(self.client.event_hub(), &self.consumer_group, &reason.to_string());
            tracing::info!(owner = %self.owner_id, partition = %partition_id, %reason, "partition lost");
            let _ = self.events.send(ProcessorEvent::PartitionLost {
                partition_id: partition_id.to_owned(),
                reason,
            });
            self.wake.notify_one();
        }
    }
}

/// A claim giving `record`'s partition up (C8).
fn relinquish(record: &Ownership) -> Ownership {
    Ownership::new(record.scope.clone(), record.partition_id.clone(), "").with_etag(record.etag.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> PartitionScope {
        PartitionScope::new("ns.servicebus.windows.net", "hub", "$default").unwrap()
    }

    #[test]
    fn relinquishing_keeps_the_etag_and_empties_the_owner() {
        let record =
            Ownership::new(scope(), "3", "me").with_etag(Some(eventhubs_store_core::ETag::new("e1")));
        let claim = relinquish(&record);
        assert_eq!(claim.owner_id, "");
        assert_eq!(claim.etag, record.etag);
    }
}
