//! One ScaledObject's background collection: the hub's side of every partition, sampled every
//! `--collect-every`, so a KEDA poll reads the last sample and never waits on the hub or the
//! store (only the first poll of a ScaledObject waits for its first sample).
//!
//! The metric is KEDA's `azure-eventhub` scaler's: per partition the last enqueued sequence
//! number minus the checkpoint's (every retained event without a checkpoint), summed.
//! Partitions lost to retention or stalled are logged and recorded as metrics.

use std::time::{Duration, Instant};

use eventhubs_client::EventHubClient;
use eventhubs_store_core::{CheckpointStore, ErrorKind, PartitionScope};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::Status;

use super::metadata::ScalerConfig;
use crate::commands::lag::LagState;
use crate::commands::status::{LagError, collect_with_lag};
use crate::commands::watch::Watch;
use crate::open::{OpenOptions, open_store_with};
use crate::redact::redact_text;

/// Ownership older than this counts as expired (the Processor's default).
const EXPIRY: Duration = Duration::from_secs(60);

/// One collection: what KEDA's metric and activity are computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Unprocessed events over all partitions, as KEDA's scaler counts them.
    pub total: i64,
    /// The hub's partitions.
    pub partitions: i64,
}

/// A running collection; stops when dropped.
#[derive(Debug)]
pub struct Collector {
    latest: watch::Receiver<Sample>,
    task: JoinHandle<()>,
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn store_status(e: &eventhubs_store_core::Error) -> Status {
    let message = redact_text(&format!("storeUrlFromEnv: the checkpoint store: {e}"));
    match e.kind() {
        ErrorKind::Unavailable => Status::unavailable(message),
        _ => Status::invalid_argument(message),
    }
}

fn hub_status(e: &eventhubs_client::Error) -> Status {
    let message = redact_text(&format!("connectionFromEnv: the event hub: {e}"));
    match e.kind() {
        eventhubs_client::ErrorKind::Unauthorized => Status::permission_denied(message),
        _ if e.is_retryable() => Status::unavailable(message),
        _ => Status::invalid_argument(message),
    }
}

impl Collector {
    /// Opens the store and the hub of `config`, takes the first sample, then samples every
    /// `every` in the background.
    ///
    /// # Errors
    /// A status naming the metadata field whose store or hub could not be used.
    pub async fn start(
        config: &ScalerConfig,
        every: Duration,
        stall_after: Duration,
    ) -> Result<Self, Status> {
        let store = open_store_with(&config.store_url, &OpenOptions::read_only())
            .await
            .map_err(|e| store_status(&e))?;
        let client =
            EventHubClient::from_connection_string(&config.connection_string, config.event_hub.as_deref())
                .await
                .map_err(|e| hub_status(&e))?;
        let scope = PartitionScope::new(
            client.fully_qualified_namespace(),
            client.event_hub(),
            &config.consumer_group,
        )
        .map_err(|e| Status::invalid_argument(format!("consumerGroup/eventHubName: {e}")))?;
        let mut watch = Watch::new(5, stall_after);
        let first = collect(store.as_ref(), &client, &scope, &mut watch).await?;
        let (tx, latest) = watch::channel(first);
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match collect(store.as_ref(), &client, &scope, &mut watch).await {
                    Ok(sample) => {
                        tx.send_replace(sample);
                    }
                    Err(e) => {
                        tracing::warn!(scope = %scope, error = %e.message(), "lag collection failed; serving the last sample")
                    }
                }
            }
        });
        Ok(Collector { latest, task })
    }

    /// The last sample.
    pub fn latest(&self) -> Sample {
        *self.latest.borrow()
    }

    /// A receiver of every new sample.
    pub fn subscribe(&self) -> watch::Receiver<Sample> {
        self.latest.clone()
    }
}

/// One sample: the status with the hub's side, judged over the window; logs and records lost
/// and stalled partitions.
async fn collect(
    store: &dyn CheckpointStore,
    client: &EventHubClient,
    scope: &PartitionScope,
    watch: &mut Watch,
) -> Result<Sample, Status> {
    let mut status = collect_with_lag(store, client, scope, EXPIRY)
        .await
        .map_err(|e| match e {
            LagError::Store(e) => store_status(&e),
            LagError::Hub(e) => hub_status(&e),
        })?;
    let judged = watch.sample(&mut status, Instant::now());
    crate::commands::prometheus::record(&status, &judged);
    let mut sample = Sample {
        total: 0,
        partitions: 0,
    };
    for p in &status.partitions {
        let Some(lag) = &p.lag else { continue };
        // KEDA's count: last enqueued − checkpoint (lost events included), or every retained
        // event without a checkpoint.
        sample.partitions += 1;
        sample.total += lag.lag_events + lag.lost_to_retention;
        if lag.lost_to_retention > 0 {
            tracing::warn!(scope = %scope, partition = %p.partition_id, lost = lag.lost_to_retention, "events lost to retention");
        }
        if judged
            .get(&p.partition_id)
            .is_some_and(|j| j.verdict == LagState::Stalled)
        {
            tracing::warn!(scope = %scope, partition = %p.partition_id, lag = lag.lag_events, "partition stalled");
        }
    }
    Ok(sample)
}
