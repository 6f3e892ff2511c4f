//! Chaos soak: several Processors over 16 partitions, on SQLite and on PostgreSQL, while a
//! producer sends throughout and a chaos task kills and restarts processors (abort: no
//! relinquish, its readers die), drops every emulator connection, and takes the store down.
//!
//! At the end every event sent was processed at least once; no partition client processed
//! an event twice (the client adds no duplicates) or read before its start (duplicates only
//! after the partition's last checkpoint); no partition was owned by two live processors for
//! longer than one cycle (sampled). It prints what it counted.
//!
//! Bounded: `EVENTHUBS_SOAK_SECONDS` of chaos (default 20 per store), then at most 60 s to
//! drain. Run longer with e.g. `EVENTHUBS_SOAK_SECONDS=600`.

// Test code: unwrap/panic report failures (clippy.toml allows them in #[test] fns only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Outage;
use eventhubs_client::{
    EventData, EventHubClient, PartitionClient, Processor, ProcessorOptions, RetryOptions, StartPosition,
};
use eventhubs_emulator::{Emulator, EmulatorHandle};
use eventhubs_store_core::{CheckpointStore, ErrorKind as StoreErrorKind};
use rand::Rng;
use tokio::task::JoinSet;

const HUB: &str = "soak";
const PARTITIONS: usize = 16;
const SLOTS: usize = 3;
const INTERVAL: Duration = Duration::from_millis(400);

fn chaos_seconds() -> u64 {
    std::env::var("EVENTHUBS_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

/// One processing of an event: by which partition client (a global counter), at which
/// sequence number, with which body.
#[derive(Debug, Default)]
struct Ledger {
    /// (partition, body id) → number of times processed.
    processed: HashMap<(String, u64), u32>,
    /// (client id, partition, sequence number) seen, to find client-made duplicates.
    per_client: BTreeSet<(u64, String, i64)>,
    client_duplicates: u64,
    /// Events read at or before the client's start (a read going back past the checkpoint).
    before_start: u64,
    checkpoints: u64,
}

#[derive(Debug, Default)]
struct Counters {
    kills: AtomicU64,
    drops: AtomicU64,
    outages: AtomicU64,
}

fn options(owner: String) -> ProcessorOptions {
    ProcessorOptions {
        update_interval: INTERVAL,
        partition_expiration: Duration::from_secs(3),
        start: StartPosition::Earliest,
        owner_id: Some(owner),
        prefetch: 50,
        close_timeout: Duration::from_secs(2),
        ..ProcessorOptions::default()
    }
}

fn retries() -> RetryOptions {
    RetryOptions {
        max_retries: 8,
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_secs(1),
        try_timeout: Duration::from_secs(5),
    }
}

/// Reads one partition until it is lost or the processor closes; checkpoints each batch.
async fn consume(mut partition: PartitionClient, client_id: u64, ledger: Arc<Mutex<Ledger>>) {
    // Exclusive starts: after the checkpoint's offset, or after a sequence number.
    let (after_offset, after_seq) = match partition.start_position() {
        StartPosition::SequenceNumber { sequence_number, .. } => (None, Some(*sequence_number)),
        StartPosition::Offset { offset, .. } => (offset.parse::<i64>().ok(), None),
        _ => (None, None),
    };
    loop {
        let events = match partition.receive_events(50, Duration::from_millis(200)).await {
            Ok(events) => events,
            Err(_) => break,
        };
        if events.is_empty() {
            continue;
        }
        {
            let mut ledger = ledger.lock().unwrap();
            for e in &events {
                let id: u64 = String::from_utf8_lossy(&e.body).parse().unwrap();
                *ledger.processed.entry((e.partition_id.clone(), id)).or_default() += 1;
                if !ledger
                    .per_client
                    .insert((client_id, e.partition_id.clone(), e.sequence_number))
                {
                    ledger.client_duplicates += 1;
                }
                let offset = e.offset.parse::<i64>().ok();
                if after_seq.is_some_and(|s| e.sequence_number <= s)
                    || after_offset.zip(offset).is_some_and(|(start, at)| at <= start)
                {
                    ledger.before_start += 1;
                }
            }
        }
        if let Some(last) = events.last()
            && partition.update_checkpoint(last).await.is_ok()
        {
            ledger.lock().unwrap().checkpoints += 1;
        }
    }
    let _ = partition.close().await;
}

/// A live processor and the tasks reading its partitions.
struct Slot {
    processor: Arc<Processor>,
    readers: JoinSet<()>,
}

async fn start_slot(
    emulator: &EmulatorHandle,
    store: &Arc<dyn CheckpointStore>,
    name: String,
    ledger: &Arc<Mutex<Ledger>>,
    clients: &Arc<AtomicU64>,
) -> Slot {
    let client = EventHubClient::with_options(&emulator.connection_string(Some(HUB)), None, retries())
        .await
        .unwrap();
    let processor = Arc::new(Processor::new(client, "$default", Arc::clone(store), options(name)).unwrap());
    // The first cycle may meet the chaos (store down): try until it starts.
    while processor.start().await.is_err() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut readers = JoinSet::new();
    let (p, l, c) = (Arc::clone(&processor), Arc::clone(ledger), Arc::clone(clients));
    readers.spawn(async move {
        let mut inner = JoinSet::new();
        while let Some(partition) = p.next_partition_client().await {
            let id = c.fetch_add(1, Ordering::SeqCst);
            inner.spawn(consume(partition, id, Arc::clone(&l)));
        }
        while inner.join_next().await.is_some() {}
    });
    Slot { processor, readers }
}

async fn soak(name: &str, real: Arc<dyn CheckpointStore>) {
    let mut emulator = Emulator::builder().hub(HUB, PARTITIONS).start().await.unwrap();
    let outage = Arc::new(Outage::new(real));
    let store: Arc<dyn CheckpointStore> = outage.clone();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let clients = Arc::new(AtomicU64::new(0));
    let counters = Counters::default();

    // The producer: batches to random partitions, throughout.
    let sent: Arc<Mutex<BTreeMap<String, Vec<u64>>>> = Arc::default();
    let producing = Arc::new(AtomicBool::new(true));
    let producer = {
        let client = EventHubClient::with_options(&emulator.connection_string(Some(HUB)), None, retries())
            .await
            .unwrap();
        let (sent, producing) = (Arc::clone(&sent), Arc::clone(&producing));
        tokio::spawn(async move {
            let mut next = 0u64;
            while producing.load(Ordering::SeqCst) {
                let partition = rand::rng().random_range(0..PARTITIONS).to_string();
                let ids: Vec<u64> = (next..next + 5).collect();
                next += 5;
                let events: Vec<EventData> = ids.iter().map(|i| EventData::new(i.to_string())).collect();
                // Sends are retried inside the client; one that still fails is sent again here
                // (at least once), and counted once it is acknowledged.
                while client.send(Some(&partition), events.clone()).await.is_err() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                sent.lock().unwrap().entry(partition).or_default().extend(ids);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };

    let mut slots = Vec::new();
    for i in 0..SLOTS {
        slots.push(start_slot(&emulator, &store, format!("{name}-p{i}"), &ledger, &clients).await);
    }

    // Double ownership sampler.
    let sampling = Arc::new(AtomicBool::new(true));
    let live: Arc<Mutex<Vec<Arc<Processor>>>> = Arc::new(Mutex::new(
        slots.iter().map(|s| Arc::clone(&s.processor)).collect(),
    ));
    // While the store is down (and for one cycle after), a processor cannot learn that another
    // took a partition over: it keeps reading until its ownership would expire, as it must.
    // Double ownership is judged outside those windows; the longest inside them is printed.
    let outage_ended: Arc<Mutex<Option<Instant>>> = Arc::default();
    let sampler = {
        let (sampling, live) = (Arc::clone(&sampling), Arc::clone(&live));
        let (outage, outage_ended) = (Arc::clone(&outage), Arc::clone(&outage_ended));
        tokio::spawn(async move {
            let mut since: HashMap<String, Instant> = HashMap::new();
            let mut longest = Duration::ZERO;
            let mut longest_in_outage = Duration::ZERO;
            while sampling.load(Ordering::SeqCst) {
                let in_outage = outage.down.load(Ordering::SeqCst)
                    || outage_ended
                        .lock()
                        .unwrap()
                        .is_some_and(|t| t.elapsed() < INTERVAL * 2);
                let processors: Vec<Arc<Processor>> = live.lock().unwrap().clone();
                let mut owners: HashMap<String, usize> = HashMap::new();
                for p in &processors {
                    for id in p.owned_partitions().await {
                        *owners.entry(id).or_default() += 1;
                    }
                }
                let now = Instant::now();
                since.retain(|id, _| owners.get(id).is_some_and(|n| *n > 1));
                for (id, n) in owners {
                    if n > 1 {
                        let start = *since.entry(id).or_insert(now);
                        if in_outage {
                            longest_in_outage = longest_in_outage.max(now - start);
                        } else {
                            longest = longest.max(now - start);
                        }
                    }
                }
                if in_outage {
                    // A window starts afresh once the store is back and a cycle has passed.
                    since.clear();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (longest, longest_in_outage)
        })
    };

    // Chaos.
    let started = Instant::now();
    let chaos_until = started + Duration::from_secs(chaos_seconds());
    let mut generation = SLOTS;
    let mut round = 0;
    while Instant::now() < chaos_until {
        tokio::time::sleep(Duration::from_millis(rand::rng().random_range(1000..2500))).await;
        round += 1;
        match round % 3 {
            0 => {
                let victim = rand::rng().random_range(0..slots.len());
                let mut slot = slots.swap_remove(victim);
                slot.processor.abort();
                slot.readers.abort_all();
                live.lock().unwrap().retain(|p| !Arc::ptr_eq(p, &slot.processor));
                counters.kills.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(300)).await;
                let fresh = start_slot(
                    &emulator,
                    &store,
                    format!("{name}-p{generation}"),
                    &ledger,
                    &clients,
                )
                .await;
                generation += 1;
                live.lock().unwrap().push(Arc::clone(&fresh.processor));
                slots.push(fresh);
            }
            1 => {
                emulator.faults().drop_connections();
                counters.drops.fetch_add(1, Ordering::SeqCst);
            }
            _ => {
                outage.down.store(true, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1000)).await;
                outage.down.store(false, Ordering::SeqCst);
                *outage_ended.lock().unwrap() = Some(Instant::now());
                counters.outages.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    // One restart of the emulator itself on the same port.
    emulator.restart(Duration::from_millis(200)).await.unwrap();
    producing.store(false, Ordering::SeqCst);
    producer.await.unwrap();

    // Drain: everything sent must be processed.
    let sent: BTreeMap<String, Vec<u64>> = sent.lock().unwrap().clone();
    let total: usize = sent.values().map(Vec::len).sum();
    let drain_until = Instant::now() + Duration::from_secs(60);
    let missing = loop {
        let missing: Vec<(String, u64)> = {
            let ledger = ledger.lock().unwrap();
            sent.iter()
                .flat_map(|(p, ids)| ids.iter().map(move |id| (p.clone(), *id)))
                .filter(|key| !ledger.processed.contains_key(key))
                .collect()
        };
        if missing.is_empty() || Instant::now() > drain_until {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    sampling.store(false, Ordering::SeqCst);
    let (longest_double, longest_double_in_outage) = sampler.await.unwrap();
    for slot in &slots {
        slot.processor.close().await.unwrap();
    }
    let ledger = ledger.lock().unwrap();
    let duplicated: u64 = ledger.processed.values().map(|n| u64::from(n - 1)).sum();
    println!(
        "soak[{name}]: {:.0?} of chaos; sent {total}, processed {} distinct, duplicated {duplicated} \
         (re-reads after a checkpoint, by a new owner), lost {}, client-made duplicates {}, reads before \
         the start {}, checkpoints {}; kills {}, connection drops {} (emulator counted {}), store outages {}, \
         emulator restarts 1; partition clients handed out {}; longest double ownership seen {:?} (during a store outage or \
         the cycle after it: {:?})",
        chaos_until - started,
        ledger.processed.len(),
        missing.len(),
        ledger.client_duplicates,
        ledger.before_start,
        ledger.checkpoints,
        counters.kills.load(Ordering::SeqCst),
        counters.drops.load(Ordering::SeqCst),
        emulator.faults().dropped(),
        counters.outages.load(Ordering::SeqCst),
        clients.load(Ordering::SeqCst),
        longest_double,
        longest_double_in_outage,
    );
    assert!(total > 0, "{name}: the producer sent nothing");
    assert!(
        missing.is_empty(),
        "{name}: {} events never processed, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert_eq!(
        ledger.client_duplicates, 0,
        "{name}: a partition client delivered an event twice"
    );
    assert_eq!(
        ledger.before_start, 0,
        "{name}: a partition client read before its checkpoint"
    );
    // One cycle, plus one for the sampler and a loaded machine's slack.
    assert!(
        longest_double <= INTERVAL * 3,
        "{name}: a partition was owned by two live processors for {longest_double:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn soak_chaos_over_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = eventhubs_store_sqlite::SqliteStore::open(dir.path().join("soak.db"))
        .await
        .unwrap();
    soak("sqlite", Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn soak_chaos_over_postgres() {
    let url = std::env::var("EVENTHUBS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!("ehsoak_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let store = match eventhubs_store_postgres::PostgresOptions::new(&url)
        .schema(&schema)
        .acquire_timeout(Duration::from_secs(3))
        .connect()
        .await
    {
        Ok(store) => store,
        Err(e) if e.kind() == StoreErrorKind::Unavailable => {
            eventhubs_conformance::skip_unless_ci(
                "postgres",
                &e.to_string(),
                "start PostgreSQL or set EVENTHUBS_TEST_POSTGRES_URL",
            );
            return;
        }
        Err(e) => panic!("{e}"),
    };
    store.migrate().await.unwrap();
    soak("postgres", Arc::new(store.clone())).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE")))
        .execute(store.pool())
        .await
        .unwrap();
}
