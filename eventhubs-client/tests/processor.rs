//! The load-balancing Processor over a real store (SQLite) and our emulator: ownership spreads
//! evenly, checkpoints resume, a crashed processor's partitions move once they expire, a closed
//! one's move at once, and a processor that lost a partition can neither read nor checkpoint it.

// Test code: unwrap/panic report failures (clippy.toml allows them in #[test] fns only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventhubs_client::{
    ErrorKind, EventData, EventHubClient, LoadBalancingStrategy, PartitionClient, Processor,
    ProcessorOptions, ReceivedEvent, StartPosition,
};
use eventhubs_emulator::{Emulator, EmulatorHandle};
use eventhubs_store_core::{CheckpointStore, PartitionScope};
use eventhubs_store_sqlite::SqliteStore;

const HUB: &str = "orders";
const WAIT: Duration = Duration::from_secs(15);

async fn emulator(partitions: usize) -> EmulatorHandle {
    Emulator::builder().hub(HUB, partitions).start().await.unwrap()
}

async fn client(emulator: &EmulatorHandle) -> EventHubClient {
    EventHubClient::from_connection_string(&emulator.connection_string(Some(HUB)), None)
        .await
        .unwrap()
}

async fn store(dir: &tempfile::TempDir) -> Arc<dyn CheckpointStore> {
    Arc::new(
        SqliteStore::open(dir.path().join("checkpoints.db"))
            .await
            .unwrap(),
    )
}

/// Quick cycles, so a test sees many of them: 100 ms between cycles, expiry after `expiry`.
fn options(owner: &str, strategy: LoadBalancingStrategy, expiry: Duration) -> ProcessorOptions {
    ProcessorOptions {
        strategy,
        update_interval: Duration::from_millis(100),
        partition_expiration: expiry,
        start: StartPosition::Earliest,
        owner_id: Some(owner.to_owned()),
        // The tests keep their partition clients: close need not wait for them.
        close_timeout: Duration::from_millis(200),
        ..ProcessorOptions::default()
    }
}

async fn processor(
    emulator: &EmulatorHandle,
    store: &Arc<dyn CheckpointStore>,
    owner: &str,
    strategy: LoadBalancingStrategy,
    expiry: Duration,
) -> Processor {
    let p = Processor::new(
        client(emulator).await,
        "$Default",
        Arc::clone(store),
        options(owner, strategy, expiry),
    )
    .unwrap();
    p.start().await.unwrap();
    p
}

/// The next `n` partition clients the processor hands out.
async fn take_clients(p: &Processor, n: usize) -> Vec<PartitionClient> {
    let mut clients = Vec::new();
    while clients.len() < n {
        let next = tokio::time::timeout(WAIT, p.next_partition_client())
            .await
            .expect("a partition client in time")
            .expect("the processor is open");
        clients.push(next);
    }
    clients.sort_by(|a, b| a.partition_id().cmp(b.partition_id()));
    clients
}

/// Reads until `n` events arrived.
async fn read(client: &mut PartitionClient, n: usize) -> Vec<ReceivedEvent> {
    let mut events = Vec::new();
    let deadline = Instant::now() + WAIT;
    while events.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} events arrived",
            events.len()
        );
        events.extend(
            client
                .receive_events(n - events.len(), Duration::from_millis(500))
                .await
                .unwrap(),
        );
    }
    events
}

async fn send_to_each(emulator: &EmulatorHandle, partitions: usize, bodies: &[&str]) {
    let c = client(emulator).await;
    for p in 0..partitions {
        let events = bodies
            .iter()
            .map(|b| EventData::new(format!("{b}-{p}")))
            .collect();
        c.send(Some(&p.to_string()), events).await.unwrap();
    }
    c.close().await.unwrap();
}

/// Polls `check` until it holds or `WAIT` passes.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The scope every SDK's processor records for the emulator: `localhost:PORT`.
fn scope(emulator: &EmulatorHandle) -> PartitionScope {
    let namespace = format!("localhost:{}", emulator.local_addr().port());
    PartitionScope::new(&namespace, HUB, "$Default").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_processor_owns_every_partition_and_a_restart_resumes_after_the_checkpoints() {
    let emulator = emulator(4).await;
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    send_to_each(&emulator, 4, &["a", "b", "c"]).await;

    let first = processor(
        &emulator,
        &store,
        "first",
        LoadBalancingStrategy::Greedy,
        Duration::from_secs(5),
    )
    .await;
    let mut clients = take_clients(&first, 4).await;
    for (p, client) in clients.iter_mut().enumerate() {
        let events = read(client, 3).await;
        let bodies: Vec<String> = events
            .iter()
            .map(|e| String::from_utf8(e.body.clone()).unwrap())
            .collect();
        assert_eq!(bodies, vec![format!("a-{p}"), format!("b-{p}"), format!("c-{p}")]);
        // Processed up to "b": checkpoint there.
        client.update_checkpoint(&events[1]).await.unwrap();
    }
    assert_eq!(first.owned_partitions().await.len(), 4);
    first.close().await.unwrap();
    let owners: Vec<String> = store
        .list_ownership(&scope(&emulator))
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.owner_id)
        .collect();
    assert_eq!(
        owners,
        vec![String::new(); 4],
        "close relinquishes every partition (C8)"
    );
    assert!(
        clients[0]
            .receive_events(1, Duration::from_millis(10))
            .await
            .is_err(),
        "a closed processor's clients stop"
    );

    // A new processor starts after each checkpoint: "c" again (never checkpointed), then "d".
    send_to_each(&emulator, 4, &["d"]).await;
    let second = processor(
        &emulator,
        &store,
        "second",
        LoadBalancingStrategy::Greedy,
        Duration::from_secs(5),
    )
    .await;
    for (p, mut client) in take_clients(&second, 4).await.into_iter().enumerate() {
        let bodies: Vec<String> = read(&mut client, 2)
            .await
            .iter()
            .map(|e| String::from_utf8(e.body.clone()).unwrap())
            .collect();
        assert_eq!(bodies, vec![format!("c-{p}"), format!("d-{p}")]);
    }
    second.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_balanced_processors_split_eight_partitions_four_and_four() {
    let emulator = emulator(8).await;
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let a = processor(
        &emulator,
        &store,
        "a",
        LoadBalancingStrategy::Balanced,
        Duration::from_secs(5),
    )
    .await;
    let b = processor(
        &emulator,
        &store,
        "b",
        LoadBalancingStrategy::Balanced,
        Duration::from_secs(5),
    )
    .await;
    eventually("a 4/4 split", async || {
        a.owned_partitions().await.len() == 4 && b.owned_partitions().await.len() == 4
    })
    .await;
    let mine: BTreeSet<String> = a.owned_partitions().await.into_iter().collect();
    let theirs: BTreeSet<String> = b.owned_partitions().await.into_iter().collect();
    assert!(mine.is_disjoint(&theirs), "{mine:?} / {theirs:?}");
    assert_eq!(mine.union(&theirs).count(), 8);
    // The store agrees with both processors.
    let records = store.list_ownership(&scope(&emulator)).await.unwrap();
    for r in &records {
        let expected = if mine.contains(&r.partition_id) { "a" } else { "b" };
        assert_eq!(r.owner_id, expected, "{r:?}");
    }
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crashed_processor_loses_its_partitions_once_they_expire_and_cannot_read_or_checkpoint() {
    let emulator = emulator(2).await;
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    send_to_each(&emulator, 2, &["a", "b"]).await;
    let expiry = Duration::from_secs(1);
    let crashed = processor(
        &emulator,
        &store,
        "crashed",
        LoadBalancingStrategy::Greedy,
        expiry,
    )
    .await;
    let mut zombies = take_clients(&crashed, 2).await;
    let seen = read(&mut zombies[0], 1).await;
    // The crash: the processor stops renewing, nothing is relinquished.
    drop(crashed);
    let crashed_records = store.list_ownership(&scope(&emulator)).await.unwrap();
    let heir = processor(&emulator, &store, "heir", LoadBalancingStrategy::Greedy, expiry).await;
    let mut heirs = take_clients(&heir, 2).await;
    // Judged on the store's clock (last_modified_time, C5): the heir claimed each record only
    // once it had expired.
    let heir_records = store.list_ownership(&scope(&emulator)).await.unwrap();
    for crashed in &crashed_records {
        let heir = heir_records
            .iter()
            .find(|o| o.partition_id == crashed.partition_id)
            .unwrap();
        assert_eq!(heir.owner_id, "heir");
        let waited = heir.last_modified_time.unwrap() - crashed.last_modified_time.unwrap();
        assert!(
            waited >= expiry,
            "partition {}: the heir took it {waited} after the crashed owner's last renewal, \
             before it expired ({expiry:?})",
            crashed.partition_id
        );
    }
    // The heir reads from the start (no checkpoint yet).
    let bodies: Vec<String> = read(&mut heirs[0], 2)
        .await
        .iter()
        .map(|e| String::from_utf8(e.body.clone()).unwrap())
        .collect();
    assert_eq!(bodies, vec!["a-0", "b-0"]);
    // The zombie: its link was stolen by the heir's owner-level link, its fenced checkpoint is
    // refused (C13).
    // It may still hand out what it had prefetched, then fails.
    let deadline = Instant::now() + WAIT;
    let stolen = loop {
        assert!(Instant::now() < deadline, "the zombie's link was never stolen");
        match zombies[0].receive_events(10, Duration::from_millis(200)).await {
            Ok(prefetched) => assert!(
                prefetched.iter().all(|e| e.sequence_number <= 1),
                "{prefetched:?}"
            ),
            Err(e) => break e,
        }
    };
    assert_eq!(stolen.kind(), ErrorKind::OwnerLevelConflict, "{stolen}");
    let checkpoint = zombies[0].update_checkpoint(&seen[0]).await.unwrap_err();
    assert_eq!(checkpoint.kind(), ErrorKind::OwnerLevelConflict, "{checkpoint}");
    assert!(
        store
            .list_checkpoints(&scope(&emulator))
            .await
            .unwrap()
            .is_empty()
    );
    heir.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_closed_processor_s_partitions_move_at_once_not_after_expiry() {
    let emulator = emulator(4).await;
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    // Far longer than the WAIT of `eventually`: the move cannot be the expiry.
    let expiry = Duration::from_secs(120);
    let leaving = processor(
        &emulator,
        &store,
        "leaving",
        LoadBalancingStrategy::Greedy,
        expiry,
    )
    .await;
    let _clients = take_clients(&leaving, 4).await;
    let staying = processor(
        &emulator,
        &store,
        "staying",
        LoadBalancingStrategy::Greedy,
        expiry,
    )
    .await;
    // Greedy "staying" takes its share from the owner above max: 2 of 4.
    eventually("staying gets its share", async || {
        staying.owned_partitions().await.len() == 2
    })
    .await;
    leaving.close().await.unwrap();
    eventually("staying owns everything", async || {
        staying.owned_partitions().await.len() == 4
    })
    .await;
    staying.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn options_that_would_let_ownership_expire_between_renewals_are_refused() {
    let emulator = emulator(1).await;
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let mut bad = options("x", LoadBalancingStrategy::Balanced, Duration::from_secs(1));
    bad.update_interval = Duration::from_secs(2);
    let err = Processor::new(client(&emulator).await, "$Default", Arc::clone(&store), bad).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("update_interval"), "{err}");
    let mut empty = options("", LoadBalancingStrategy::Balanced, Duration::from_secs(1));
    empty.owner_id = Some(String::new());
    let err = Processor::new(client(&emulator).await, "$Default", store, empty).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

/// Per-partition start positions, as the official SDKs offer them: a partition named in
/// `partition_start` starts there, the others at `start`, and a checkpoint beats both. A bad
/// position is refused naming the partition. Prefetch 0 reads the same events.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partitions_start_where_partition_start_says_unless_a_checkpoint_exists() {
    let emulator = emulator(3).await;
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    send_to_each(&emulator, 3, &["a", "b", "c", "d"]).await;
    // Partition 2 has a checkpoint after its first event ("a-2", sequence number 0).
    let scope = scope(&emulator);
    let checkpoint = eventhubs_store_core::Checkpoint::new(scope, "2", Some("0".into()), Some(0));
    store
        .set_checkpoint(
            &checkpoint,
            &eventhubs_store_core::SetCheckpointOptions::default(),
        )
        .await
        .unwrap();

    let mut opts = options("p1", LoadBalancingStrategy::Greedy, Duration::from_secs(30));
    opts.prefetch = 0;
    opts.partition_start.insert(
        "1".into(),
        StartPosition::SequenceNumber {
            sequence_number: 2,
            inclusive: true,
        },
    );
    opts.partition_start.insert("2".into(), StartPosition::Latest);
    let mut bad = opts.clone();
    bad.partition_start.insert(
        "0".into(),
        StartPosition::Offset {
            offset: "1' or '1".into(),
            inclusive: true,
        },
    );
    let e = Processor::new(client(&emulator).await, "$Default", Arc::clone(&store), bad).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("partition_start[\"0\"]"), "{e}");

    let p = Processor::new(client(&emulator).await, "$Default", Arc::clone(&store), opts).unwrap();
    p.start().await.unwrap();
    let mut clients = take_clients(&p, 3).await;
    clients.sort_by(|a, b| a.partition_id().cmp(b.partition_id()));
    let firsts: Vec<Vec<String>> = [
        read(&mut clients[0], 4).await,
        read(&mut clients[1], 2).await,
        read(&mut clients[2], 3).await,
    ]
    .iter()
    .map(|events| {
        events
            .iter()
            .map(|e| String::from_utf8(e.body.clone()).unwrap())
            .collect()
    })
    .collect();
    assert_eq!(
        firsts,
        vec![
            vec!["a-0", "b-0", "c-0", "d-0"],
            vec!["c-1", "d-1"],
            vec!["b-2", "c-2", "d-2"],
        ]
    );
    for c in clients {
        c.close().await.unwrap();
    }
    p.close().await.unwrap();
}
