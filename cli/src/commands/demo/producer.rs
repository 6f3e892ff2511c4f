//! The demo's producer: recreates the partitions as the last run left them (the in-process
//! emulator keeps events in memory only), then sends new events to every partition until
//! stopped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use eventhubs_client::{EventData, EventHubClient};
use eventhubs_store_core::Result;
use tokio::task::JoinHandle;

use crate::commands::client_error;

/// The body of event `i` of partition `p`: fixed width, so a replay gives every event the
/// offset it had in the first run.
pub fn body(partition: usize, i: u64) -> String {
    format!("order {partition}-{i:08}")
}

/// A running producer.
pub struct Producer {
    running: Arc<AtomicBool>,
    /// Events sent by this run (history replays not counted).
    pub sent: Arc<AtomicU64>,
    task: JoinHandle<Vec<u64>>,
}

/// Sends `history[p]` events (numbered from 0) to each partition p, as the last run had them.
pub async fn replay(client: &EventHubClient, history: &BTreeMap<usize, u64>) -> Result<()> {
    for (&partition, &count) in history {
        let mut i = 0;
        while i < count {
            let end = (i + 100).min(count);
            let events = (i..end).map(|n| EventData::new(body(partition, n))).collect();
            client
                .send(Some(&partition.to_string()), events)
                .await
                .map_err(|e| client_error(&e))?;
            i = end;
        }
    }
    Ok(())
}

impl Producer {
    /// Starts sending `batch` events to each of `partitions` partitions every `every`,
    /// numbering each partition's events after its `history`.
    pub fn start(
        client: EventHubClient,
        partitions: usize,
        history: &BTreeMap<usize, u64>,
        batch: u64,
        every: Duration,
    ) -> Self {
        let running = Arc::new(AtomicBool::new(true));
        let sent = Arc::new(AtomicU64::new(0));
        let mut next: Vec<u64> = (0..partitions)
            .map(|p| history.get(&p).copied().unwrap_or(0))
            .collect();
        let (r, s) = (Arc::clone(&running), Arc::clone(&sent));
        let task = tokio::spawn(async move {
            while r.load(Ordering::SeqCst) {
                for (partition, n) in next.iter_mut().enumerate() {
                    let events = (*n..*n + batch)
                        .map(|i| EventData::new(body(partition, i)))
                        .collect();
                    // The client retries by itself; a send that still fails is skipped (the
                    // demo counts only what was acknowledged).
                    if client.send(Some(&partition.to_string()), events).await.is_ok() {
                        *n += batch;
                        s.fetch_add(batch, Ordering::SeqCst);
                    }
                }
                tokio::time::sleep(every).await;
            }
            let _ = client.close().await;
            next
        });
        Producer { running, sent, task }
    }

    /// Stops and returns how many events each partition now holds.
    pub async fn stop(self) -> Vec<u64> {
        self.running.store(false, Ordering::SeqCst);
        self.task.await.unwrap_or_default()
    }
}
