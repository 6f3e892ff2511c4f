//! Interop with the official JavaScript SDK (`@azure/event-hubs` with
//! `@azure/eventhubs-checkpointstore-blob`, pinned by cli/tests/js/package-lock.json and
//! installed into .tools/js by scripts/setup-js.sh) on our emulator and Azurite:
//! - the hub's and partitions' properties read right (its management reads carry a
//!   `security_token`, which the emulator honours);
//! - its load-balancing `EventHubConsumerClient` over the blob checkpoint store processes every
//!   event of 4 partitions and checkpoints;
//! - `ehstore status` on that container then shows the checkpoints it wrote.
//!
//! With `CI=true` a missing Node.js, package install or Azurite fails; otherwise one loud skip.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use eventhubs_emulator::Emulator;
use serde_json::{Value, json};

const HUB: &str = "jshub";
const PER_PARTITION: usize = 10;

fn node_modules() -> Option<PathBuf> {
    let modules = match std::env::var("EVENTHUBS_TEST_JS_MODULES") {
        Ok(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/js/node_modules"),
    };
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if node && modules.join("@azure/event-hubs").is_dir() {
        return Some(modules);
    }
    common::skip_or_fail(
        "JavaScript SDK interop",
        &format!(
            "node, or the pinned packages in {}, are missing",
            modules.display()
        ),
        "run scripts/setup-js.sh",
    );
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_javascript_processor_checkpoints_every_partition_in_a_blob_container() {
    let Some(modules) = node_modules() else { return };
    let Some(storage) = common::azurite_connection_string() else {
        return;
    };
    let emulator = Emulator::builder().hub(HUB, 4).start().await.unwrap();
    let container = format!("js-{}", common::unique());
    let request = json!({
        "connectionString": emulator.connection_string(Some(HUB)),
        "hub": HUB,
        "storage": storage,
        "container": container,
        "perPartition": PER_PARTITION,
    });
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/js/interop.js");
    let out = tokio::task::spawn_blocking(move || {
        let mut child = Command::new("node")
            .arg(script)
            .env("NODE_PATH", modules)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(request.to_string().as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "the JavaScript SDK failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["hub"]["name"], HUB);
    assert_eq!(answer["hub"]["partitionIds"], json!(["0", "1", "2", "3"]));
    for p in 0..4 {
        let partition = &answer["partitions"][p.to_string()];
        assert_eq!(partition["beginningSequenceNumber"], 0, "{answer}");
        assert_eq!(
            partition["lastEnqueuedSequenceNumber"],
            PER_PARTITION - 1,
            "{answer}"
        );
        assert_eq!(partition["isEmpty"], false, "{answer}");
    }
    assert_eq!(answer["processed"], 4 * PER_PARTITION, "{answer}");
    println!(
        "JavaScript SDK on the emulator: {} events to 4 partitions; ms since start: {}",
        4 * PER_PARTITION,
        answer["timings"]
    );

    // Our CLI reads the container the JavaScript processor wrote. Like the official Rust crate,
    // the JavaScript SDK records the namespace without the endpoint's port.
    common::child_env("AZURE_STORAGE_CONNECTION_STRING", &storage);
    let status = common::ok(&["status", &format!("blob:{container}"), "--all"]);
    assert!(
        status.contains(&format!("localhost/{HUB}/$default: 4 partition(s)")),
        "{status}"
    );
    let rows: Vec<Vec<&str>> = status
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|cols| cols.first().is_some_and(|c| c.parse::<u32>().is_ok()))
        .collect();
    assert_eq!(rows.len(), 4, "{status}");
    for row in rows {
        // PARTITION OWNER AGE STATE SEQUENCE OFFSET: the last event of each partition.
        assert_eq!(row[row.len() - 2], (PER_PARTITION - 1).to_string(), "{status}");
    }
}
