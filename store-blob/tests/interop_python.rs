//! Interop with the official Python blob checkpoint store (`azure-eventhub-checkpointstoreblob`,
//! pinned in scripts/python-requirements.txt) on one Azurite container, with mixed-case names:
//! (a) checkpoints written by either side are listed by the other with identical values;
//! (b) an ownership claimed by one side is seen by the other with an owner and an etag usable
//!     for a conditional renewal, and the stale claim of either side then loses.
//!
//! Python is `.tools/venv/bin/python` (or `EVENTHUBS_TEST_PYTHON`). With `CI=true` a missing
//! Azurite or venv fails; otherwise one loud skip line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail by panicking

mod common;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use eventhubs_store_blob::BlobStore;
use eventhubs_store_core::{
    Checkpoint, CheckpointStore, ClaimOptions, ETag, Ownership, PartitionScope, SetCheckpointOptions,
};
use serde_json::{Value, json};

const NAMESPACE: &str = "Interop-NS.ServiceBus.Windows.NET";
const HUB: &str = "MixedCase-Hub";
const GROUP: &str = "$Default-Group";

fn python() -> Result<PathBuf, String> {
    let path = match std::env::var("EVENTHUBS_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => PathBuf::from(p),
        _ => common::store_blob_dir().join("../.tools/venv/bin/python"),
    };
    let ok = Command::new(&path)
        .args(["-c", "import azure.eventhub.extensions.checkpointstoreblob"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(path)
    } else {
        Err(format!(
            "{} cannot import azure.eventhub.extensions.checkpointstoreblob",
            path.display()
        ))
    }
}

/// Azurite and the venv's python, or a loud skip (a failure with CI=true).
fn setup(test: &str) -> Option<(String, PathBuf)> {
    let url = common::azurite_or_skip(test)?;
    match python() {
        Ok(py) => Some((url, py)),
        Err(why) => {
            eventhubs_conformance::skip_unless_ci(
                "blob interop (Python venv)",
                &format!("{why} (in {test})"),
                "run scripts/setup-python.sh",
            );
            None
        }
    }
}

struct Python {
    exe: PathBuf,
    connection_string: String,
    container: String,
}

impl Python {
    fn run(&self, command: &str, mut request: Value) -> Value {
        request["connection_string"] = json!(self.connection_string);
        request["container"] = json!(self.container);
        let script = common::store_blob_dir().join("tests/python/interop.py");
        let mut child = Command::new(&self.exe)
            .arg(&script)
            .arg(command)
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
    }

    fn scope_request() -> Value {
        json!({"namespace": NAMESPACE, "hub": HUB, "group": GROUP})
    }

    fn claim(&self, partition: &str, owner: &str, etag: Option<&str>) -> Vec<Value> {
        let ownership = json!({"namespace": NAMESPACE, "hub": HUB, "group": GROUP,
                               "partition": partition, "owner": owner, "etag": etag});
        self.run("claim", json!({"ownerships": [ownership]}))
            .as_array()
            .unwrap()
            .clone()
    }

    fn owner_of(&self, partition: &str) -> (String, String, f64) {
        let listed = self.run("list_ownership", Self::scope_request());
        let o = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["partition"] == partition)
            .unwrap_or_else(|| panic!("python does not list partition {partition}: {listed}"))
            .clone();
        (
            o["owner"].as_str().unwrap().to_string(),
            o["etag"].as_str().unwrap().to_string(),
            o["last_modified_time"].as_f64().unwrap(),
        )
    }
}

fn scope() -> PartitionScope {
    PartitionScope::new(NAMESPACE, HUB, GROUP).unwrap()
}

/// The etag without the quotes a response header carries.
fn bare(etag: &str) -> &str {
    etag.trim_matches('"')
}

async fn fixture(url: &str, py: PathBuf) -> (BlobStore, Python) {
    let store = common::fresh_store(url, |b| b).await;
    let python = Python {
        exe: py,
        connection_string: common::connection_string(url),
        container: store.container_name().to_string(),
    };
    (store, python)
}

#[tokio::test]
async fn a_checkpoints_written_by_either_side_are_read_identically_by_the_other() {
    let Some((url, py)) = setup("a_checkpoints_written_by_either_side_are_read_identically_by_the_other")
    else {
        return;
    };
    let (store, python) = fixture(&url, py).await;

    // Python writes; ours reads.
    let from_python = json!({"checkpoints": [
        {"namespace": NAMESPACE, "hub": HUB, "group": GROUP, "partition": "0", "offset": "12884901888", "sequence_number": 7},
        {"namespace": NAMESPACE, "hub": HUB, "group": GROUP, "partition": "1", "offset": "geo:1:ab-CD", "sequence_number": 0},
    ]});
    python.run("set_checkpoints", from_python);
    let mut ours = store.list_checkpoints(&scope()).await.unwrap();
    ours.sort_by(|a, b| a.partition_id.cmp(&b.partition_id));
    assert_eq!(
        ours,
        vec![
            Checkpoint::new(scope(), "0", Some("12884901888".into()), Some(7)),
            Checkpoint::new(scope(), "1", Some("geo:1:ab-CD".into()), Some(0)),
        ]
    );

    // Ours writes (a new partition and an overwrite of Python's); Python reads.
    for cp in [
        Checkpoint::new(scope(), "2", Some("999".into()), Some(i64::MAX)),
        Checkpoint::new(scope(), "1", Some("geo:2:ef".into()), Some(5)),
    ] {
        store
            .set_checkpoint(&cp, &SetCheckpointOptions::new())
            .await
            .unwrap();
    }
    let mut listed: Vec<Value> = python
        .run("list_checkpoints", Python::scope_request())
        .as_array()
        .unwrap()
        .clone();
    listed.sort_by_key(|c| c["partition"].as_str().unwrap().to_string());
    assert_eq!(
        Value::Array(listed),
        json!([
            {"partition": "0", "offset": "12884901888", "sequence_number": 7},
            {"partition": "1", "offset": "geo:2:ef", "sequence_number": 5},
            {"partition": "2", "offset": "999", "sequence_number": i64::MAX},
        ])
    );
    store.delete_container().await.unwrap();
}

#[tokio::test]
async fn b_ownership_claimed_by_python_is_renewed_by_ours_and_pythons_stale_claim_loses() {
    let Some((url, py)) =
        setup("b_ownership_claimed_by_python_is_renewed_by_ours_and_pythons_stale_claim_loses")
    else {
        return;
    };
    let (store, python) = fixture(&url, py).await;

    let won = python.claim("0", "python-owner", None);
    assert_eq!(won.len(), 1, "{won:?}");
    let python_etag = won[0]["etag"].as_str().unwrap().to_string();

    // Ours sees Python's owner and etag (same etag, bar the quotes) and the same time.
    let listed = store.list_ownership(&scope()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].partition_id, "0");
    assert_eq!(listed[0].owner_id, "python-owner");
    assert_eq!(listed[0].etag.as_ref().unwrap().as_str(), bare(&python_etag));
    let python_time = won[0]["last_modified_time"].as_f64().unwrap();
    let our_time = listed[0].last_modified_time.unwrap().unix_timestamp() as f64;
    assert!(
        (our_time - python_time).abs() < 1.0,
        "{our_time} vs {python_time}"
    );

    // Ours renews with the listed etag (a takeover: the contract's conditional update).
    let renewed = store
        .claim_ownership(
            &[Ownership {
                owner_id: "rust-owner".into(),
                ..listed[0].clone()
            }],
            &ClaimOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(renewed.len(), 1);
    let rust_etag = renewed[0].etag.clone().unwrap();

    // Python's claim with its now stale etag loses.
    assert!(python.claim("0", "python-owner", Some(&python_etag)).is_empty());

    // Python sees ours, and can renew with the etag it lists.
    let (owner, etag, _) = python.owner_of("0");
    assert_eq!(owner, "rust-owner");
    assert_eq!(bare(&etag), rust_etag.as_str());
    let back = python.claim("0", "python-owner", Some(&etag));
    assert_eq!(back.len(), 1, "python renews with its listed etag");
    store.delete_container().await.unwrap();
}

#[tokio::test]
async fn b_ownership_claimed_by_ours_is_renewed_by_python_and_our_stale_claim_loses() {
    let Some((url, py)) = setup("b_ownership_claimed_by_ours_is_renewed_by_python_and_our_stale_claim_loses")
    else {
        return;
    };
    let (store, python) = fixture(&url, py).await;

    let won = store
        .claim_ownership(
            &[Ownership::new(scope(), "1", "rust-owner")],
            &ClaimOptions::default(),
        )
        .await
        .unwrap();
    let ours = won[0].clone();

    // Python sees our owner and etag, and renews with its listed etag.
    let (owner, etag, time) = python.owner_of("1");
    assert_eq!(owner, "rust-owner");
    assert_eq!(bare(&etag), ours.etag.as_ref().unwrap().as_str());
    assert!((ours.last_modified_time.unwrap().unix_timestamp() as f64 - time).abs() < 1.0);
    let taken = python.claim("1", "python-owner", Some(&etag));
    assert_eq!(taken.len(), 1, "{taken:?}");
    let python_etag = taken[0]["etag"].as_str().unwrap().to_string();

    // Our claim with the stale etag loses, in either etag form; ours still lists Python's owner.
    let stale = Ownership::new(scope(), "1", "rust-owner").with_etag(ours.etag.clone());
    assert!(
        store
            .claim_ownership(&[stale], &ClaimOptions::default())
            .await
            .unwrap()
            .is_empty()
    );
    let quoted_stale = Ownership::new(scope(), "1", "rust-owner").with_etag(Some(ETag::new(format!(
        "\"{}\"",
        ours.etag.as_ref().unwrap().as_str()
    ))));
    assert!(
        store
            .claim_ownership(&[quoted_stale], &ClaimOptions::default())
            .await
            .unwrap()
            .is_empty()
    );
    let listed = store.list_ownership(&scope()).await.unwrap();
    assert_eq!(listed[0].owner_id, "python-owner");
    assert_eq!(listed[0].etag.as_ref().unwrap().as_str(), bare(&python_etag));

    // Python's etag, quoted as Python returns it, works for our renewal.
    let again = Ownership::new(scope(), "1", "rust-owner").with_etag(Some(ETag::new(python_etag)));
    assert_eq!(
        store
            .claim_ownership(&[again], &ClaimOptions::default())
            .await
            .unwrap()
            .len(),
        1
    );
    store.delete_container().await.unwrap();
}

#[tokio::test]
async fn metadata_keys_written_in_another_case_are_read() {
    let Some((url, py)) = setup("metadata_keys_written_in_another_case_are_read") else {
        return;
    };
    let (store, python) = fixture(&url, py).await;
    let prefix = format!("{NAMESPACE}/{HUB}/{GROUP}").to_lowercase();
    python.run(
        "raw_blob",
        json!({"name": format!("{prefix}/ownership/3"), "metadata": {"OwnerId": "java-style"}}),
    );
    python.run(
        "raw_blob",
        json!({"name": format!("{prefix}/checkpoint/3"), "metadata": {"Offset": "77", "SequenceNumber": "9"}}),
    );
    let owners = store.list_ownership(&scope()).await.unwrap();
    assert_eq!(owners[0].owner_id, "java-style");
    let cps = store.list_checkpoints(&scope()).await.unwrap();
    assert_eq!(
        cps,
        vec![Checkpoint::new(scope(), "3", Some("77".into()), Some(9))]
    );
    store.delete_container().await.unwrap();
}

#[tokio::test]
async fn a_container_sas_url_from_the_python_sdk_authorises_every_operation() {
    let Some((url, py)) = setup("a_container_sas_url_from_the_python_sdk_authorises_every_operation") else {
        return;
    };
    let (store, python) = fixture(&url, py).await;
    let sas_url = python.run("container_sas", json!({}))["url"]
        .as_str()
        .unwrap()
        .to_string();
    let sas_store = BlobStore::from_container_url(&sas_url).unwrap();
    let signature = sas_url
        .split("sig=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    assert!(!format!("{sas_store:?}").contains(&signature), "{sas_store:?}");

    let won = sas_store
        .claim_ownership(
            &[Ownership::new(scope(), "0", "sas-owner")],
            &ClaimOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(won.len(), 1);
    let renewed = sas_store
        .claim_ownership(&won, &ClaimOptions::default())
        .await
        .unwrap();
    assert_eq!(renewed.len(), 1);
    let cp = Checkpoint::new(scope(), "0", Some("1".into()), Some(1));
    sas_store
        .set_checkpoint(&cp, &SetCheckpointOptions::new())
        .await
        .unwrap();
    assert_eq!(sas_store.list_checkpoints(&scope()).await.unwrap(), vec![cp]);
    assert_eq!(
        store.list_ownership(&scope()).await.unwrap()[0].owner_id,
        "sas-owner"
    );
    assert!(sas_store.delete_checkpoint(&scope(), "0").await.unwrap());
    assert_eq!(python.owner_of("0").0, "sas-owner");
    store.delete_container().await.unwrap();
}
