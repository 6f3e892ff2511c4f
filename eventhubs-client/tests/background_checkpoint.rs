//! Checkpoints written in the background (`PartitionClient::checkpoint_in_background`) over a
//! store whose writes are slow: queued checkpoints coalesce, and every path that gives a
//! partition to the next reader (closing the client, closing the processor, dropping the
//! client) waits for the last queued checkpoint first, so the next reader never starts before
//! it. Relinquishing is rule C8; fenced writes after a loss are rule C13.

// Test code: unwrap/panic report failures (clippy.toml allows them in #[test] fns only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use eventhubs_client::{
    EventData, EventHubClient, LoadBalancingStrategy, PartitionClient, Processor, ProcessorOptions,
    ReceivedEvent, StartPosition,
};
use eventhubs_emulator::{Emulator, EmulatorHandle};
use eventhubs_store_core::{
    Capabilities, Checkpoint, CheckpointStore, ClaimOptions, Error as StoreError, Ownership, PartitionScope,
    SetCheckpointOptions,
};
use eventhubs_store_sqlite::SqliteStore;

const HUB: &str = "orders";
const WAIT: Duration = Duration::from_secs(15);

/// What reached the store, in order.
#[derive(Debug, Clone, PartialEq)]
enum Logged {
    Checkpoint(i64),
    Relinquish,
}

/// A real store whose checkpoint writes take `delay`, logging what it was asked to do.
#[derive(Debug)]
struct SlowWrites {
    store: Arc<dyn CheckpointStore>,
    delay: Duration,
    log: Mutex<Vec<Logged>>,
}

impl SlowWrites {
    fn log(&self) -> Vec<Logged> {
        self.log.lock().unwrap().clone()
    }
    fn checkpoints_written(&self) -> usize {
        self.log()
            .iter()
            .filter(|l| matches!(l, Logged::Checkpoint(_)))
            .count()
    }
}

#[async_trait]
impl CheckpointStore for SlowWrites {
    async fn list_ownership(&self, scope: &PartitionScope) -> Result<Vec<Ownership>, StoreError> {
        self.store.list_ownership(scope).await
    }
    async fn claim_ownership(
        &self,
        claims: &[Ownership],
        options: &ClaimOptions,
    ) -> Result<Vec<Ownership>, StoreError> {
        let won = self.store.claim_ownership(claims, options).await?;
        if won.iter().any(|o| o.owner_id.is_empty()) {
            self.log.lock().unwrap().push(Logged::Relinquish);
        }
        Ok(won)
    }
    async fn list_checkpoints(&self, scope: &PartitionScope) -> Result<Vec<Checkpoint>, StoreError> {
        self.store.list_checkpoints(scope).await
    }
    async fn set_checkpoint(
        &self,
        checkpoint: &Checkpoint,
        options: &SetCheckpointOptions,
    ) -> Result<(), StoreError> {
        tokio::time::sleep(self.delay).await;
        self.store.set_checkpoint(checkpoint, options).await?;
        let n = checkpoint.sequence_number.unwrap_or(-1);
        self.log.lock().unwrap().push(Logged::Checkpoint(n));
        Ok(())
    }
    fn backend_name(&self) -> &'static str {
        "slow-writes"
    }
    fn capabilities(&self) -> Capabilities {
        self.store.capabilities()
    }
}

struct Setup {
    emulator: EmulatorHandle,
    store: Arc<SlowWrites>,
    _dir: tempfile::TempDir,
}

/// A one-partition hub holding `events` events, and a SQLite store whose writes take 100 ms.
async fn setup(events: usize) -> Setup {
    let emulator = Emulator::builder().hub(HUB, 1).start().await.unwrap();
    let client = client(&emulator).await;
    let batch = (0..events).map(|n| EventData::new(format!("e{n}"))).collect();
    client.send(Some("0"), batch).await.unwrap();
    client.close().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(dir.path().join("c.db")).await.unwrap();
    let store = Arc::new(SlowWrites {
        store: Arc::new(sqlite),
        delay: Duration::from_millis(100),
        log: Mutex::new(Vec::new()),
    });
    Setup {
        emulator,
        store,
        _dir: dir,
    }
}

async fn client(emulator: &EmulatorHandle) -> EventHubClient {
    EventHubClient::from_connection_string(&emulator.connection_string(Some(HUB)), None)
        .await
        .unwrap()
}

async fn processor(setup: &Setup, close_timeout: Duration) -> Processor {
    let options = ProcessorOptions {
        strategy: LoadBalancingStrategy::Greedy,
        update_interval: Duration::from_millis(100),
        partition_expiration: Duration::from_secs(10),
        start: StartPosition::Earliest,
        owner_id: Some("only".to_owned()),
        close_timeout,
        ..ProcessorOptions::default()
    };
    let store: Arc<dyn CheckpointStore> = setup.store.clone();
    let p = Processor::new(client(&setup.emulator).await, "$Default", store, options).unwrap();
    p.start().await.unwrap();
    p
}

async fn next_client(p: &Processor) -> PartitionClient {
    tokio::time::timeout(WAIT, p.next_partition_client())
        .await
        .expect("a partition client in time")
        .expect("the processor is open")
}

/// Reads `n` events one at a time, queueing a background checkpoint after each.
async fn read_and_checkpoint(client: &mut PartitionClient, n: usize) -> Vec<ReceivedEvent> {
    let mut events = Vec::new();
    let deadline = Instant::now() + WAIT;
    while events.len() < n {
        assert!(Instant::now() < deadline, "only {} of {n} events", events.len());
        for event in client
            .receive_events(1, Duration::from_millis(500))
            .await
            .unwrap()
        {
            client.checkpoint_in_background(&event).unwrap();
            events.push(event);
        }
    }
    events
}

async fn stored_sequence_number(setup: &Setup) -> Option<i64> {
    let scope = PartitionScope::new(
        format!("localhost:{}", setup.emulator.local_addr().port()),
        HUB,
        "$Default",
    )
    .unwrap();
    let checkpoints = setup.store.list_checkpoints(&scope).await.unwrap();
    checkpoints.first().and_then(|c| c.sequence_number)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn background_checkpoints_coalesce_and_closing_the_client_lands_the_last_before_relinquishing_c8() {
    let setup = setup(30).await;
    let p = processor(&setup, Duration::from_secs(5)).await;
    let mut client = next_client(&p).await;
    let events = read_and_checkpoint(&mut client, 30).await;
    let last = events.last().unwrap().sequence_number;
    client.close().await.unwrap();

    let written = setup.store.checkpoints_written();
    assert!(
        (1..30).contains(&written),
        "30 checkpoints queued during 100 ms writes must coalesce, {written} were written"
    );
    assert_eq!(
        stored_sequence_number(&setup).await,
        Some(last),
        "the newest one landed"
    );
    // The cycle relinquishes the closed client's partition; the last write came before it.
    let deadline = Instant::now() + WAIT;
    while !setup.store.log().contains(&Logged::Relinquish) {
        assert!(
            Instant::now() < deadline,
            "the closed partition was never relinquished"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = setup.store.log();
    let relinquished = log.iter().position(|l| *l == Logged::Relinquish).unwrap();
    let last_write = log.iter().rposition(|l| *l == Logged::Checkpoint(last)).unwrap();
    assert!(
        last_write < relinquished,
        "relinquished before the last checkpoint: {log:?}"
    );
    p.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn closing_the_processor_lands_queued_checkpoints_before_relinquishing_c8() {
    let setup = setup(10).await;
    // The application keeps its client, and close does not wait for it: the queued writes
    // are still in flight when close relinquishes.
    let p = processor(&setup, Duration::from_millis(1)).await;
    let mut client = next_client(&p).await;
    let events = read_and_checkpoint(&mut client, 10).await;
    let last = events.last().unwrap().sequence_number;
    p.close().await.unwrap();
    let log = setup.store.log();
    let relinquished = log
        .iter()
        .position(|l| *l == Logged::Relinquish)
        .expect("relinquished");
    let last_write = log.iter().rposition(|l| *l == Logged::Checkpoint(last));
    assert!(
        last_write.is_some_and(|w| w < relinquished),
        "the last queued checkpoint must land before the relinquish: {log:?}"
    );
    // Lost on close: a checkpoint queued now is refused at once.
    let e = client.checkpoint_in_background(&events[0]).unwrap_err();
    assert_eq!(e.kind(), eventhubs_client::ErrorKind::OwnerLevelConflict);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dropped_client_s_partition_is_handed_out_again_after_its_last_queued_checkpoint() {
    let setup = setup(12).await;
    let p = processor(&setup, Duration::from_secs(5)).await;
    let mut client = next_client(&p).await;
    let events = read_and_checkpoint(&mut client, 12).await;
    let last = events.last().unwrap().sequence_number;
    // Dropped with a write still in flight: the processor must wait for it.
    drop(client);
    let again = next_client(&p).await;
    assert_eq!(
        again.start_position(),
        &StartPosition::Offset {
            offset: events.last().unwrap().offset.clone(),
            inclusive: false
        },
        "the new client must start after the last queued checkpoint (sequence number {last})"
    );
    again.flush_checkpoints().await.unwrap();
    drop(again);
    p.close().await.unwrap();
}
