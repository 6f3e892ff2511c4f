//! The official Python processor (`azure-eventhub`'s `EventHubConsumerClient` with the official
//! `BlobCheckpointStore`, pinned in scripts/python-requirements.txt) and our `Processor` over
//! `BlobStore`, on one emulator hub and one Azurite container: both record the namespace as
//! `localhost:PORT`, so they see each other's ownership, split the 8 partitions without double
//! ownership once converged, and every event sent is processed at least once by one of them.
//!
//! With `CI=true` a missing Azurite or venv fails; otherwise one loud skip line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail by panicking

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eventhubs_client::{EventData, EventHubClient, Processor, ProcessorOptions, StartPosition};
use eventhubs_emulator::Emulator;
use eventhubs_store_blob::BlobStoreBuilder;
use eventhubs_store_core::{CheckpointStore, PartitionScope};
use serde_json::Value;

const HUB: &str = "shared";
const PARTITIONS: usize = 8;
const EVENTS: usize = 240;

fn python(test: &str) -> Option<PathBuf> {
    let path = match std::env::var("EVENTHUBS_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => PathBuf::from(p),
        _ => common::store_blob_dir().join("../.tools/venv/bin/python"),
    };
    let ok = Command::new(&path)
        .args([
            "-c",
            "import azure.eventhub, azure.eventhub.extensions.checkpointstoreblob",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eventhubs_conformance::skip_unless_ci(
            "processor interop (Python venv)",
            &format!("{} cannot import azure.eventhub (in {test})", path.display()),
            "run scripts/setup-python.sh",
        );
        return None;
    }
    Some(path)
}

/// What the Python processor reported, line by line.
#[derive(Debug, Default)]
struct PythonSide {
    owned: BTreeSet<String>,
    processed: BTreeSet<String>,
    errors: Vec<String>,
    done: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_official_python_processor_and_ours_split_one_hub_and_one_container() {
    let test = "the_official_python_processor_and_ours_split_one_hub_and_one_container";
    let Some(url) = common::azurite_or_skip(test) else {
        return;
    };
    let Some(py) = python(test) else { return };
    let emulator = Emulator::builder().hub(HUB, PARTITIONS).start().await.unwrap();
    let hub_connection = emulator.connection_string(Some(HUB));
    let blob_connection = common::connection_string(&url);
    let container = common::unique_container("procinterop");
    let store = BlobStoreBuilder::from_connection_string(&blob_connection, &container)
        .unwrap()
        .build()
        .unwrap();
    assert!(store.create_container_if_missing().await.unwrap());
    let store: Arc<dyn CheckpointStore> = Arc::new(store);

    // The Python processor, reporting on stdout.
    let seconds = 45;
    let mut child = Command::new(&py)
        .arg(common::store_blob_dir().join("tests/python/processor.py"))
        .args([
            &hub_connection,
            HUB,
            &blob_connection,
            &container,
            &seconds.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let python_side = Arc::new(Mutex::new(PythonSide::default()));
    let reader = {
        let stdout = child.stdout.take().unwrap();
        let side = Arc::clone(&python_side);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                let mut side = side.lock().unwrap();
                if let Some(p) = v["init"].as_str() {
                    side.owned.insert(p.to_owned());
                } else if let Some(p) = v["close"].as_str() {
                    side.owned.remove(p);
                } else if let Some(body) = v["body"].as_str() {
                    side.processed.insert(body.to_owned());
                } else if let Some(e) = v["error"].as_str() {
                    side.errors.push(e.to_owned());
                } else if v["done"].as_bool() == Some(true) {
                    side.done = true;
                }
            }
        })
    };

    // Ours, with the Python processor's timing: 1 s cycles, 6 s expiry.
    let client = EventHubClient::from_connection_string(&hub_connection, None)
        .await
        .unwrap();
    let namespace = client.fully_qualified_namespace().to_owned();
    assert_eq!(namespace, format!("localhost:{}", emulator.local_addr().port()));
    let ours = Arc::new(
        Processor::new(
            client,
            "$Default",
            Arc::clone(&store),
            ProcessorOptions {
                update_interval: Duration::from_secs(1),
                partition_expiration: Duration::from_secs(6),
                start: StartPosition::Earliest,
                owner_id: Some("rust-processor".into()),
                ..ProcessorOptions::default()
            },
        )
        .unwrap(),
    );
    ours.start().await.unwrap();
    let ours_processed: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let readers = {
        let (p, processed) = (Arc::clone(&ours), Arc::clone(&ours_processed));
        tokio::spawn(async move {
            while let Some(mut partition) = p.next_partition_client().await {
                let processed = Arc::clone(&processed);
                tokio::spawn(async move {
                    while let Ok(events) = partition.receive_events(50, Duration::from_millis(300)).await {
                        for e in &events {
                            processed
                                .lock()
                                .unwrap()
                                .insert(String::from_utf8_lossy(&e.body).into_owned());
                        }
                        if let Some(last) = events.last()
                            && partition.update_checkpoint(last).await.is_err()
                        {
                            break;
                        }
                    }
                    let _ = partition.close().await;
                });
            }
        })
    };

    // A producer over the first part of the run.
    let producer = EventHubClient::from_connection_string(&hub_connection, None)
        .await
        .unwrap();
    for i in 0..EVENTS {
        let partition = (i % PARTITIONS).to_string();
        producer
            .send(Some(&partition), vec![EventData::new(format!("event-{i}"))])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
    }

    // Convergence: the store lists 4 + 4 between the two owners, and each side's own view
    // agrees, for 3 s in a row.
    let scope = PartitionScope::new(&namespace, HUB, "$Default").unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut stable_since: Option<Instant> = None;
    let mut split = BTreeMap::new();
    loop {
        if Instant::now() >= deadline {
            let ours_now = ours.owned_partitions().await;
            panic!(
                "never converged: store {split:?}, python {:?}, ours {ours_now:?}",
                python_side.lock().unwrap()
            );
        }
        let records = store.list_ownership(&scope).await.unwrap();
        split = records.iter().fold(BTreeMap::<String, usize>::new(), |mut m, r| {
            *m.entry(r.owner_id.clone()).or_default() += 1;
            m
        });
        let mine: BTreeSet<String> = ours.owned_partitions().await.into_iter().collect();
        let theirs = python_side.lock().unwrap().owned.clone();
        let balanced = split.len() == 2 && split.values().all(|n| *n == PARTITIONS / 2);
        let disjoint = mine.is_disjoint(&theirs) && mine.len() + theirs.len() == PARTITIONS;
        if balanced && disjoint {
            let since = *stable_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= Duration::from_secs(3) {
                break;
            }
        } else {
            stable_since = None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(split.contains_key("rust-processor"), "{split:?}");

    // Every event processed at least once, by one side or the other.
    let all: BTreeSet<String> = (0..EVENTS).map(|i| format!("event-{i}")).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let (python_count, ours_count) = loop {
        let processed: BTreeSet<String> = ours_processed
            .lock()
            .unwrap()
            .union(&python_side.lock().unwrap().processed)
            .cloned()
            .collect();
        let missing: Vec<&String> = all.difference(&processed).collect();
        if missing.is_empty() {
            break (
                python_side.lock().unwrap().processed.len(),
                ours_processed.lock().unwrap().len(),
            );
        }
        assert!(
            Instant::now() < deadline,
            "{} of {EVENTS} events never processed, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!(
        "processor interop: split {split:?}; events processed by python {python_count}, by rust {ours_count} \
         (of {EVENTS}); python errors: {:?}",
        python_side.lock().unwrap().errors
    );
    ours.close().await.unwrap();
    readers.abort();
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
}
