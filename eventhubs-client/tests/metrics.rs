//! The client's metrics through the `metrics` facade, read with a debugging recorder: a
//! Processor over SQLite and the emulator moves the documented counters as it claims, reads
//! and checkpoints, and the claim counters match the partitions it owns. (Its own test binary:
//! the recorder is process-wide.)

// Test code: unwrap/panic report failures (clippy.toml allows them in #[test] fns only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use eventhubs_client::telemetry;
use eventhubs_client::{
    EventData, EventHubClient, LoadBalancingStrategy, Processor, ProcessorOptions, StartPosition,
};
use eventhubs_emulator::Emulator;
use eventhubs_store_core::CheckpointStore;
use eventhubs_store_sqlite::SqliteStore;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

type Snapshot = Vec<(
    metrics_util::CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    DebugValue,
)>;

/// Everything recorded since the last snapshot (the debugging recorder hands out deltas).
fn snapshot(snapshotter: &Snapshotter) -> Snapshot {
    snapshotter.snapshot().into_vec()
}

/// The value of the metric `name` with every label in `labels`, summed over the others.
fn value(snapshot: &Snapshot, name: &str, labels: &[(&str, &str)]) -> f64 {
    snapshot
        .iter()
        .filter(|(key, _, _, _)| {
            key.key().name() == name
                && labels
                    .iter()
                    .all(|(k, v)| key.key().labels().any(|l| l.key() == *k && l.value() == *v))
        })
        .map(|(_, _, _, value)| match value {
            DebugValue::Counter(n) => *n as f64,
            DebugValue::Gauge(g) => g.into_inner(),
            DebugValue::Histogram(values) => values.len() as f64,
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_processor_s_metrics_follow_what_it_claims_reads_and_checkpoints() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();
    telemetry::describe();

    let emulator = Emulator::builder().hub("orders", 4).start().await.unwrap();
    let cs = emulator.connection_string(Some("orders"));
    let producer = EventHubClient::from_connection_string(&cs, None).await.unwrap();
    for p in 0..4 {
        let events = (0..5).map(|n| EventData::new(format!("{p}-{n}"))).collect();
        producer.send(Some(&p.to_string()), events).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn CheckpointStore> = Arc::new(SqliteStore::open(dir.path().join("m.db")).await.unwrap());
    let options = ProcessorOptions {
        strategy: LoadBalancingStrategy::Greedy,
        update_interval: Duration::from_millis(100),
        partition_expiration: Duration::from_secs(10),
        start: StartPosition::Earliest,
        owner_id: Some("metered".into()),
        close_timeout: Duration::from_millis(200),
        ..ProcessorOptions::default()
    };
    let processor = Processor::new(
        EventHubClient::from_connection_string(&cs, None).await.unwrap(),
        "$Default",
        Arc::clone(&store),
        options,
    )
    .unwrap();
    processor.start().await.unwrap();
    let mut read = 0;
    let mut checkpoints = 0;
    let mut clients = Vec::new();
    for _ in 0..4 {
        let mut client = tokio::time::timeout(Duration::from_secs(15), processor.next_partition_client())
            .await
            .unwrap()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut got = 0;
        while got < 5 {
            assert!(Instant::now() < deadline, "only {got} events");
            let events = client
                .receive_events(5 - got, Duration::from_millis(500))
                .await
                .unwrap();
            got += events.len();
            if let Some(last) = events.last() {
                client.update_checkpoint(last).await.unwrap();
                checkpoints += 1;
            }
        }
        read += got;
        // Caught up with the partition: nothing enqueued after the last event read.
        let latest = client.last_enqueued_event_properties().unwrap().sequence_number;
        assert_eq!(latest, 4, "partition {}", client.partition_id());
        clients.push(client); // kept: no hand-out again
    }
    let snap = snapshot(&snapshotter);
    let hub = [(telemetry::HUB, "orders"), (telemetry::GROUP, "$Default")];
    assert_eq!(value(&snap, telemetry::EVENTS_RECEIVED, &hub), read as f64);
    for p in ["0", "1", "2", "3"] {
        let labels = [hub[0], hub[1], (telemetry::PARTITION, p)];
        assert_eq!(
            value(&snap, telemetry::EVENTS_RECEIVED, &labels),
            5.0,
            "partition {p}"
        );
    }
    let ok = [hub[0], hub[1], ("outcome", "ok")];
    assert_eq!(value(&snap, telemetry::CHECKPOINTS, &ok), checkpoints as f64);
    assert_eq!(
        value(&snap, telemetry::CHECKPOINT_DURATION, &hub),
        checkpoints as f64,
        "one duration per checkpoint"
    );
    let owned = processor.owned_partitions().await.len();
    assert_eq!(owned, 4);
    let won = [hub[0], hub[1], ("outcome", "won")];
    assert_eq!(
        value(&snap, telemetry::CLAIMS, &won),
        owned as f64,
        "claims won = partitions owned"
    );
    for p in ["0", "1", "2", "3"] {
        let labels = [hub[0], hub[1], (telemetry::PARTITION, p)];
        let recorded = snap.iter().any(|(key, _, _, _)| {
            key.key().name() == telemetry::RECEIVE_LAG
                && key
                    .key()
                    .labels()
                    .any(|l| l.key() == telemetry::PARTITION && l.value() == p)
        });
        assert!(recorded, "no receive lag recorded for partition {p}");
        assert_eq!(
            value(&snap, telemetry::RECEIVE_LAG, &labels),
            0.0,
            "partition {p} is caught up"
        );
    }
    let gauge = [hub[0], hub[1], ("owner", "metered")];
    assert_eq!(value(&snap, telemetry::PARTITIONS_OWNED, &gauge), 4.0);

    drop(clients);
    processor.close().await.unwrap();
    let snap = snapshot(&snapshotter);
    let shutdown = [hub[0], hub[1], ("reason", "shutdown")];
    assert_eq!(value(&snap, telemetry::PARTITIONS_LOST, &shutdown), 4.0);

    // A dropped connection is a reconnect once the client is used again.
    let _ = snapshot(&snapshotter);
    emulator.faults().drop_connections();
    let deadline = Instant::now() + Duration::from_secs(15);
    while producer.properties().await.is_err() {
        assert!(Instant::now() < deadline, "the producer never reconnected");
    }
    let reconnects = value(
        &snapshot(&snapshotter),
        telemetry::RECONNECTS,
        &[(telemetry::HUB, "orders")],
    );
    assert!(
        reconnects >= 1.0,
        "the dropped connection was opened again: {reconnects}"
    );
    producer.close().await.unwrap();
}
