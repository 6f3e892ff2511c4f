//! The demo's processors: real `eventhubs-client` Processors over the chosen store, each with
//! a reader task per partition it is handed, counting what it processes and checkpointing each
//! batch, and narrating what happens to it (partitions claimed and lost, with the reason).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eventhubs_client::{
    EventHubClient, PartitionClient, Processor, ProcessorEvent, ProcessorOptions, ReceivedEvent,
    StartPosition,
};
use eventhubs_store_core::{CheckpointStore, Result};
use tokio::task::JoinSet;

use super::Narrator;
use crate::commands::{client_error, lock};

/// What one processor did, shared with its reader tasks.
#[derive(Debug, Default)]
pub struct Tally {
    /// Events processed.
    pub events: u64,
    /// The last event checkpointed per partition: (sequence number, offset).
    pub checkpoints: BTreeMap<String, (i64, String)>,
    /// The last event received per partition (kept by a crashed processor's zombie).
    pub last_received: BTreeMap<String, ReceivedEvent>,
}

/// One running demo processor.
pub struct DemoProcessor {
    /// Its name and owner id.
    pub name: String,
    /// The Processor.
    pub processor: Arc<Processor>,
    /// What it did.
    pub tally: Arc<Mutex<Tally>>,
    /// The reader tasks (one hands out, one per partition).
    tasks: JoinSet<()>,
    /// The task narrating the processor's events.
    narration: tokio::task::JoinHandle<()>,
    /// Tells the narration to stop once it has told every event already sent.
    caught_up: Option<tokio::sync::oneshot::Sender<()>>,
    /// Partition clients kept by a processor that crashed (the zombie's).
    kept: Arc<Mutex<Vec<PartitionClient>>>,
    crashed: Arc<std::sync::atomic::AtomicBool>,
}

impl DemoProcessor {
    /// Starts a processor named `name` and its readers.
    pub async fn start(
        name: &str,
        connection_string: &str,
        store: Arc<dyn CheckpointStore>,
        interval: Duration,
        expiry: Duration,
        narrator: Narrator,
    ) -> Result<Self> {
        let client = EventHubClient::from_connection_string(connection_string, None)
            .await
            .map_err(|e| client_error(&e))?;
        let options = ProcessorOptions {
            update_interval: interval,
            partition_expiration: expiry,
            start: StartPosition::Earliest,
            owner_id: Some(name.to_owned()),
            close_timeout: Duration::from_secs(5),
            ..ProcessorOptions::default()
        };
        let processor =
            Arc::new(Processor::new(client, "$Default", store, options).map_err(|e| client_error(&e))?);
        let tally = Arc::new(Mutex::new(Tally::default()));
        let kept = Arc::new(Mutex::new(Vec::new()));
        let crashed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut tasks = JoinSet::new();
        // Narrate the processor's own events.
        let mut events = processor.events();
        let (who, n) = (name.to_owned(), narrator.clone());
        let (caught_up, mut stop) = tokio::sync::oneshot::channel::<()>();
        let narration = tokio::spawn(async move {
            loop {
                // Events first: once told to stop, it still tells what was already sent.
                let event = tokio::select! {
                    biased;
                    event = events.recv() => match event {
                        Ok(event) => event,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    },
                    _ = &mut stop => break,
                };
                match event {
                    ProcessorEvent::PartitionLost { partition_id, reason } => {
                        n.say(&who, &format!("lost partition {partition_id} ({reason})"))
                    }
                    ProcessorEvent::Error { partition_id, error } => n.say(
                        &who,
                        &format!(
                            "error{}: {error} (retrying)",
                            partition_id
                                .map(|p| format!(" on partition {p}"))
                                .unwrap_or_default()
                        ),
                    ),
                    _ => {}
                }
            }
        });
        processor.start().await.map_err(|e| client_error(&e))?;
        narrator.say(name, "starts");
        // Hand each partition client to a reader.
        let (p, t, k, c, who, n) = (
            Arc::clone(&processor),
            Arc::clone(&tally),
            Arc::clone(&kept),
            Arc::clone(&crashed),
            name.to_owned(),
            narrator,
        );
        tasks.spawn(async move {
            let mut readers = JoinSet::new();
            while let Some(partition) = p.next_partition_client().await {
                let from = match partition.start_position() {
                    StartPosition::Offset { .. } | StartPosition::SequenceNumber { .. } => {
                        "after its checkpoint"
                    }
                    _ => "from the beginning (no checkpoint yet)",
                };
                n.say(
                    &who,
                    &format!("reads partition {} {from}", partition.partition_id()),
                );
                readers.spawn(read(partition, Arc::clone(&t), Arc::clone(&k), Arc::clone(&c)));
            }
            while readers.join_next().await.is_some() {}
        });
        Ok(DemoProcessor {
            name: name.to_owned(),
            processor,
            tally,
            tasks,
            narration,
            caught_up: Some(caught_up),
            kept,
            crashed,
        })
    }

    /// How many partitions it owns now.
    pub async fn owned(&self) -> usize {
        self.processor.owned_partitions().await.len()
    }

    /// Crashes: stops balancing and renewing at once, relinquishes nothing. Its readers stop
    /// where they are and keep their `expected` partition clients: the zombie's, returned.
    pub async fn crash(&mut self, expected: usize) -> Vec<PartitionClient> {
        self.crashed.store(true, std::sync::atomic::Ordering::SeqCst);
        self.processor.abort();
        let deadline = Instant::now() + Duration::from_secs(5);
        while lock(&self.kept).len() < expected && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.narration.abort();
        std::mem::take(&mut *lock(&self.kept))
    }

    /// Closes cleanly: readers make their last checkpoint, then it relinquishes (C8).
    pub async fn close(mut self) -> Result<Arc<Mutex<Tally>>> {
        self.processor.close().await.map_err(|e| client_error(&e))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.tasks.is_empty() && Instant::now() < deadline {
            if tokio::time::timeout(Duration::from_millis(100), self.tasks.join_next())
                .await
                .is_err()
            {
                continue;
            }
        }
        self.tasks.abort_all();
        // The losses on shutdown were sent before close returned: let them be told.
        if let Some(caught_up) = self.caught_up.take() {
            let _ = caught_up.send(());
        }
        if tokio::time::timeout(Duration::from_secs(2), &mut self.narration)
            .await
            .is_err()
        {
            self.narration.abort();
        }
        Ok(self.tally)
    }
}

/// Reads one partition until it is lost or the processor closes; checkpoints every batch. A
/// crashed processor's reader keeps its client instead of closing it.
async fn read(
    mut partition: PartitionClient,
    tally: Arc<Mutex<Tally>>,
    kept: Arc<Mutex<Vec<PartitionClient>>>,
    crashed: Arc<std::sync::atomic::AtomicBool>,
) {
    loop {
        if crashed.load(std::sync::atomic::Ordering::SeqCst) {
            lock(&kept).push(partition);
            return;
        }
        let events = match partition.receive_events(100, Duration::from_millis(100)).await {
            Ok(events) => events,
            Err(_) => break,
        };
        let Some(last) = events.last() else { continue };
        {
            let mut t = lock(&tally);
            t.events += events.len() as u64;
            t.last_received.insert(last.partition_id.clone(), last.clone());
        }
        if crashed.load(std::sync::atomic::Ordering::SeqCst) {
            lock(&kept).push(partition);
            return;
        }
        if partition.update_checkpoint(last).await.is_ok() {
            lock(&tally).checkpoints.insert(
                last.partition_id.clone(),
                (last.sequence_number, last.offset.clone()),
            );
        }
    }
    let _ = partition.close().await;
}
