//! End to end on our emulator: the official crate's `ProducerClient` sends to 4 partitions;
//! two official `EventProcessor`s over the adapter (SQLite, then PostgreSQL) split the
//! partitions, process every event and checkpoint; a restarted processor resumes after the
//! checkpoints; hub and partition properties read through the official crate match what was
//! sent. Prints what it counted.
//!
//! Every call into the official crate is bounded in time: its fe2o3-amqp 0.16.2 sender can miss
//! a disposition that arrives while it is still recording the delivery (fixed in fe2o3-amqp
//! 0.18), and the call then never returns. A send that times out is sent again (its events may
//! then be stored twice: the counts below tell).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use azure_messaging_eventhubs::models::{EventData, StartPositions};
use azure_messaging_eventhubs::{
    ConsumerClient, EventDataBatchOptions, EventProcessor, ProcessorStrategy, ProducerClient, StartLocation,
    StartPosition,
};
use eventhubs_emulator::{Emulator, EmulatorHandle};
use eventhubs_store_azure_sdk::SdkCheckpointStore;
use eventhubs_store_core::{CheckpointStore, PartitionScope};
use futures::StreamExt;

const HUB: &str = "sdkhub";
const PARTITIONS: usize = 4;
const FIRST: usize = 25;
const SECOND: usize = 5;
const CALL: Duration = Duration::from_secs(20);
const WAIT: Duration = Duration::from_secs(90);

/// One official call, bounded; a call that never returns fails the test with its name.
async fn bounded<T>(what: &str, call: impl Future<Output = T>) -> T {
    tokio::time::timeout(CALL, call)
        .await
        .unwrap_or_else(|_| panic!("{what} did not return within {CALL:?}"))
}

fn endpoint(emulator: &EmulatorHandle) -> String {
    format!("amqp://127.0.0.1:{}", emulator.local_addr().port())
}

async fn producer(emulator: &EmulatorHandle) -> ProducerClient {
    bounded(
        "open producer",
        ProducerClient::builder()
            .with_custom_endpoint(endpoint(emulator))
            .open_with_connection_string(&emulator.connection_string(Some(HUB)), None),
    )
    .await
    .unwrap()
}

/// Sends `bodies` to `partition` in one batch; a send that does not return is sent again.
/// Answers the number of tries.
async fn send(producer: &ProducerClient, partition: &str, bodies: &[String]) -> usize {
    for attempt in 1..=3 {
        let batch = bounded(
            "create_batch",
            producer.create_batch(Some(EventDataBatchOptions {
                partition_id: Some(partition.to_owned()),
                ..Default::default()
            })),
        )
        .await
        .unwrap();
        for body in bodies {
            let event = EventData::builder().with_body(body.as_bytes().to_vec()).build();
            assert!(batch.try_add_event_data(event, None).unwrap());
        }
        match tokio::time::timeout(CALL, producer.send_batch(batch, None)).await {
            Ok(result) => {
                result.unwrap();
                return attempt;
            }
            Err(_) => {
                eprintln!("send_batch to partition {partition} did not return (try {attempt}); sending again")
            }
        }
    }
    panic!("send_batch to partition {partition} never returned");
}

/// What the processors saw: (partition, body) → (times processed, sequence number).
type Seen = Arc<Mutex<BTreeMap<(String, String), (usize, i64)>>>;

/// A running official processor and the readers of its partition clients.
struct Running {
    processor: Arc<EventProcessor>,
    dispatcher: tokio::task::JoinHandle<()>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Running {
    /// Stops the processor and every reader: nothing it holds is processed afterwards.
    async fn stop(self) {
        self.processor.shutdown().await.unwrap();
        let _ = self.stop.send(true);
        self.dispatcher.abort();
    }
}

/// Starts an official processor over `store` (through the adapter) that processes every event
/// it is handed and checkpoints after each.
async fn start_processor(
    emulator: &EmulatorHandle,
    store: &Arc<dyn CheckpointStore>,
    seen: &Seen,
) -> Running {
    let consumer = bounded(
        "open consumer",
        ConsumerClient::builder()
            .with_custom_endpoint(endpoint(emulator))
            .open_with_connection_string(&emulator.connection_string(Some(HUB)), None),
    )
    .await
    .unwrap();
    let processor = bounded(
        "build processor",
        EventProcessor::builder()
            // Balanced: one claim per cycle, so two processors started together split the
            // partitions without stealing (a steal is where fe2o3-amqp 0.16 can fail to attach
            // the next receiver: "Link name is not unique").
            .with_load_balancing_strategy(ProcessorStrategy::Balanced)
            .with_update_interval(azure_core::time::Duration::milliseconds(500))
            .with_partition_expiration_duration(azure_core::time::Duration::seconds(10))
            .with_start_positions(StartPositions {
                default: StartPosition {
                    location: StartLocation::Earliest,
                    inclusive: false,
                },
                ..Default::default()
            })
            .build(consumer, Arc::new(SdkCheckpointStore::new(Arc::clone(store)))),
    )
    .await
    .unwrap();
    let runner = Arc::clone(&processor);
    tokio::spawn(async move {
        let _ = runner.run().await;
    });
    let dispatcher = Arc::clone(&processor);
    let seen = Arc::clone(seen);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        while let Ok(client) = dispatcher.next_partition_client().await {
            let seen = Arc::clone(&seen);
            let mut stopped = stopped.clone();
            let runtime = tokio::runtime::Handle::current();
            // The official event stream is not `Send`: each partition is read on a thread of
            // its own, driven by this runtime.
            tokio::task::spawn_blocking(move || {
                runtime.block_on(async move {
                    let partition = client.get_partition_id().to_owned();
                    let mut events = client.stream_events();
                    loop {
                        let event = tokio::select! {
                            next = tokio::time::timeout(WAIT, events.next()) => match next {
                                Ok(Some(Ok(event))) => event,
                                _ => break,
                            },
                            _ = stopped.changed() => break,
                        };
                        let body = String::from_utf8(event.event_data().body().unwrap_or_default().to_vec())
                            .unwrap();
                        let sequence = event.sequence_number().unwrap_or(-1);
                        seen.lock()
                            .unwrap()
                            .entry((partition.clone(), body))
                            .or_insert((0, sequence))
                            .0 += 1;
                        if tokio::time::timeout(CALL, client.update_checkpoint(&event))
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                })
            });
        }
    });
    Running {
        processor,
        dispatcher: task,
        stop,
    }
}

fn distinct(seen: &Seen) -> usize {
    seen.lock().unwrap().len()
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "never happened within {WAIT:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn end_to_end(name: &str, store: Arc<dyn CheckpointStore>) {
    if let Ok(filter) = std::env::var("RUST_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
    }
    let started = Instant::now();
    let emulator = Emulator::builder().hub(HUB, PARTITIONS).start().await.unwrap();
    // fe2o3-amqp 0.16, inside the official crate, loses replies that come back as fast as
    // loopback brings them (a disposition, a session's `end`): give them a network's latency.
    emulator.faults().set_reply_latency(Duration::from_millis(10));
    let producer = producer(&emulator).await;

    // Hub and partition properties through the official crate.
    let hub = bounded("get_eventhub_properties", producer.get_eventhub_properties())
        .await
        .unwrap();
    assert_eq!(hub.name, HUB);
    assert_eq!(hub.partition_ids, ["0", "1", "2", "3"]);

    let mut tries = 0;
    for p in 0..PARTITIONS {
        let bodies: Vec<String> = (0..FIRST).map(|i| format!("{p}-{i}")).collect();
        tries += send(&producer, &p.to_string(), &bodies).await;
    }
    for p in 0..PARTITIONS {
        let props = bounded(
            "get_partition_properties",
            producer.get_partition_properties(&p.to_string()),
        )
        .await
        .unwrap();
        assert_eq!(props.id, p.to_string());
        assert!(!props.is_empty);
        assert_eq!(props.beginning_sequence_number, 0);
        // A re-sent batch is stored twice: the last sequence number says how many arrived.
        assert!(
            props.last_enqueued_sequence_number >= (FIRST as i64) - 1,
            "{props:?}"
        );
        assert!(props.last_enqueued_time_utc.is_some());
    }

    // Two processors split the partitions and process every event.
    let seen: Seen = Arc::default();
    let a = start_processor(&emulator, &store, &seen).await;
    let b = start_processor(&emulator, &store, &seen).await;
    eventually("every event processed", async || {
        distinct(&seen) == PARTITIONS * FIRST
    })
    .await;
    // The official crate records the namespace without the port (it drops it from Endpoint).
    let scope = PartitionScope::new("localhost", HUB, "$Default").unwrap();
    eventually("the partitions split two and two", async || {
        let owned = store.list_ownership(&scope).await.unwrap();
        let mut per_owner: BTreeMap<String, usize> = BTreeMap::new();
        for o in owned.iter().filter(|o| !o.owner_id.is_empty()) {
            *per_owner.entry(o.owner_id.clone()).or_default() += 1;
        }
        per_owner.len() == 2 && per_owner.values().all(|n| *n == 2)
    })
    .await;
    eventually("a checkpoint in each partition", async || {
        store.list_checkpoints(&scope).await.unwrap().len() == PARTITIONS
    })
    .await;
    // Usually every partition is checkpointed at its last event. When the official crate
    // cannot attach a receiver again after a steal on the same connection (fe2o3-amqp 0.16:
    // "Link name is not unique"), a partition stays where its last reader checkpointed it; the
    // restart below must then resume from exactly there.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline
        && !store
            .list_checkpoints(&scope)
            .await
            .unwrap()
            .iter()
            .all(|c| c.sequence_number >= Some((FIRST as i64) - 1))
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let processed_first: usize = seen.lock().unwrap().values().map(|(n, _)| n).sum();
    eprintln!(
        "{name}: first phase done after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let balanced_after = started.elapsed();
    a.stop().await;
    b.stop().await;
    let checkpointed: BTreeMap<String, i64> = store
        .list_checkpoints(&scope)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.partition_id, c.sequence_number.unwrap()))
        .collect();

    // A restarted processor resumes after the checkpoints: only the new events come.
    for p in 0..PARTITIONS {
        let bodies: Vec<String> = (FIRST..FIRST + SECOND).map(|i| format!("{p}-{i}")).collect();
        tries += send(&producer, &p.to_string(), &bodies).await;
    }
    eprintln!(
        "{name}: second batches sent after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let resumed: Seen = Arc::default();
    let c = start_processor(&emulator, &store, &resumed).await;
    // Its first cycle may wait out the old owners' records (10 s expiry).
    let new_events = async || {
        let seen = resumed.lock().unwrap();
        (0..PARTITIONS)
            .all(|p| (FIRST..FIRST + SECOND).all(|i| seen.contains_key(&(p.to_string(), format!("{p}-{i}")))))
    };
    eventually("every new event processed after the restart", new_events).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Each partition resumed right after its checkpoint: nothing at or before it came again.
    let mut first_after_restart: BTreeMap<String, i64> = BTreeMap::new();
    for ((partition, _), (_, sequence)) in resumed.lock().unwrap().iter() {
        let first = first_after_restart.entry(partition.clone()).or_insert(*sequence);
        *first = (*first).min(*sequence);
    }
    for (partition, checkpoint) in &checkpointed {
        assert_eq!(
            first_after_restart.get(partition),
            Some(&(checkpoint + 1)),
            "{name}: partition {partition} checkpointed at {checkpoint}"
        );
    }
    let replayed: usize = checkpointed
        .values()
        .map(|c| usize::try_from((FIRST as i64) - 1 - c).unwrap_or(0))
        .sum();
    c.stop().await;

    let duplicated = processed_first - PARTITIONS * FIRST;
    println!(
        "official EventProcessor over the adapter ({name}): {} events sent to {PARTITIONS} partitions \
         in {tries} batches; two processors processed {} ({duplicated} twice) and split 2/2 in {:.1} s; \
         checkpoints at {checkpointed:?}; a restarted processor resumed right after each \
         ({} events, {replayed} of them before the second batch); {:.1} s in all",
        PARTITIONS * (FIRST + SECOND),
        processed_first,
        balanced_after.as_secs_f64(),
        distinct(&resumed),
        started.elapsed().as_secs_f64()
    );
    let _ = producer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn official_processors_over_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    end_to_end("sqlite", common::sqlite(&dir).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn official_processors_over_postgres() {
    let Some(store) = common::postgres().await else {
        return;
    };
    end_to_end("postgres", store).await;
}
