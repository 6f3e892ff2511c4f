//! Interop with the official Python client (`azure-eventhub`, pinned in
//! scripts/python-requirements.txt) on one emulator hub, both ways:
//! - what our producer sends with a partition key, typed properties, a message id, a content
//!   type and a correlation id, Python receives exactly as it receives the same event sent by
//!   Python itself, in the same partition (the service's hash of the key);
//! - what Python sends, we read exactly, each property in the AMQP type Python sent.
//!
//! Python is `.tools/venv/bin/python` (or `EVENTHUBS_TEST_PYTHON`), made by
//! scripts/setup-python.sh. With `CI=true` a missing venv fails; otherwise one loud skip line.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use eventhubs_client::{
    BatchOptions, EventData, EventHubClient, MessageId, PropertyValue, ReceivedEvent, ReceiverOptions,
    StartPosition,
};
use eventhubs_emulator::Emulator;
use serde_json::{Value, json};
use time::OffsetDateTime;

const HUB: &str = "orders";
const PARTITIONS: usize = 4;
const KEY: &str = "tenant-42";

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> Option<PathBuf> {
    let path = match std::env::var("EVENTHUBS_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => PathBuf::from(p),
        _ => crate_dir().join("../.tools/venv/bin/python"),
    };
    let ok = Command::new(&path)
        .args(["-c", "import azure.eventhub"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(path);
    }
    eventhubs_conformance::skip_unless_ci(
        "eventhubs-client interop (Python venv)",
        &format!("{} cannot import azure.eventhub", path.display()),
        "run scripts/setup-python.sh",
    );
    None
}

/// Runs `interop.py <command>` with `request` on stdin (off the async runtime), answers its
/// JSON.
async fn run_python(python: &std::path::Path, command: &str, request: Value) -> Value {
    let (python, command) = (python.to_path_buf(), command.to_owned());
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(&python)
            .arg(crate_dir().join("tests/python/interop.py"))
            .arg(&command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(request.to_string().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "python {command} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    })
    .await
    .unwrap()
}

/// The typed properties interop.py's TYPED holds, as we send them.
fn typed(event: EventData) -> EventData {
    let t = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_000_000).unwrap();
    event
        .with_property("string", "eu-west")
        .with_property("int", 42i32)
        .with_property("long", -9_000_000_000i64)
        .with_property("ulong", u64::MAX)
        .with_property("double", 2.5f64)
        .with_property("bool", true)
        .with_property("binary", vec![0u8, 1, 255])
        .with_property("uuid", uuid::Uuid::from_u128(7))
        .with_property("timestamp", t)
        .with_property("symbol", PropertyValue::Symbol("sym".into()))
}

async fn read_all(client: &EventHubClient, count: usize) -> Vec<ReceivedEvent> {
    let mut events = Vec::new();
    for partition in 0..PARTITIONS {
        let mut receiver = client
            .open_receiver(
                "$default",
                &partition.to_string(),
                ReceiverOptions {
                    start: StartPosition::Earliest,
                    ..ReceiverOptions::default()
                },
            )
            .await
            .unwrap();
        events.extend(receiver.receive(count, Duration::from_millis(500)).await.unwrap());
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_we_read_each_others_events_exactly() {
    let Some(python) = python() else { return };
    let emulator = Emulator::builder().hub(HUB, PARTITIONS).start().await.unwrap();
    let cs = emulator.connection_string(Some(HUB));
    let client = EventHubClient::from_connection_string(&cs, None).await.unwrap();

    // Ours, then Python's, with the same key and the same typed properties.
    let mut batch = client
        .create_batch(BatchOptions::partition_key(KEY))
        .await
        .unwrap();
    let ours = typed(EventData::new("from-rust"))
        .with_message_id("m-rust")
        .with_content_type("application/json")
        .with_correlation_id(uuid::Uuid::from_u128(0xfeed));
    assert!(batch.try_add(&ours).unwrap());
    client.send_batch(&batch).await.unwrap();
    run_python(
        &python,
        "send",
        json!({"connection_string": cs, "hub": HUB, "partition_key": KEY,
               "body": "from-python", "message_id": "m-python"}),
    )
    .await;

    // Python's view: the two events are alike in everything but body and message id.
    let seen = run_python(
        &python,
        "receive",
        json!({"connection_string": cs, "hub": HUB, "count": 2}),
    )
    .await;
    let seen = seen.as_array().unwrap();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let (python_sent, rust_sent) = (&seen[0], &seen[1]);
    assert_eq!(python_sent["body"], "from-python");
    assert_eq!(rust_sent["body"], "from-rust");
    let expected_partition = eventhubs_emulator::hash::partition_for_key(KEY, PARTITIONS).to_string();
    assert_eq!(rust_sent["partition"], expected_partition.as_str());
    assert_eq!(python_sent["partition"], expected_partition.as_str());
    for field in ["properties", "content_type", "correlation_id", "partition_key"] {
        assert_eq!(rust_sent[field], python_sent[field], "{field} as Python sees it");
    }
    assert_eq!(rust_sent["message_id"], json!(["str", "m-rust"]));
    assert_eq!(python_sent["message_id"], json!(["str", "m-python"]));
    assert_eq!(
        rust_sent["properties"]["ulong"],
        json!(["int", u64::MAX.to_string()])
    );
    assert_eq!(rust_sent["properties"]["long"], json!(["int", "-9000000000"]));
    assert_eq!(rust_sent["properties"].as_object().unwrap().len(), 10);

    // Our view of Python's event: every property in the AMQP type Python sent.
    let events = read_all(&client, 10).await;
    let theirs = events.iter().find(|e| e.body == b"from-python").unwrap();
    let ours_back = events.iter().find(|e| e.body == b"from-rust").unwrap();
    assert_eq!(theirs.partition_id, expected_partition);
    assert_eq!(theirs.partition_key.as_deref(), Some(KEY));
    assert_eq!(theirs.message_id, Some(MessageId::from("m-python")));
    assert_eq!(theirs.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        theirs.correlation_id,
        Some(MessageId::Uuid(uuid::Uuid::from_u128(0xfeed)))
    );
    let mut expected = typed(EventData::new("")).properties;
    // Python sends a small int as an AMQP int (smallint encoding) and a float as a double.
    assert_eq!(theirs.properties.get("int"), Some(&PropertyValue::Int(42)));
    assert_eq!(theirs.properties, std::mem::take(&mut expected));
    assert_eq!(ours_back.properties, theirs.properties);
}
