//! `ehstore keda-scaler` over gRPC, as KEDA calls it: the values KEDA's own `azure-eventhub`
//! scaler would compute from known events and checkpoints (sqlite and postgres), the cap at
//! partitions × threshold, activity, `StreamIsActive` following events and checkpoints, the
//! health service, and one named error per kind of bad metadata with nothing written.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::collections::HashMap;
use std::io::BufRead;
use std::time::Duration;

use common::*;
use eventhubs_client::{EventData, EventHubClient};
use eventhubs_emulator::{Emulator, EmulatorHandle};
use eventhubs_store_cli::commands::keda::proto::external_scaler_client::ExternalScalerClient;
use eventhubs_store_cli::commands::keda::proto::{GetMetricsRequest, ScaledObjectRef};
use eventhubs_store_cli::open::{OpenOptions, open_store_with};
use eventhubs_store_core::{Checkpoint, PartitionScope, SetCheckpointOptions};
use tonic::transport::Channel;

/// The scaler, a child process with `env`, and the address it printed.
struct ScalerProcess {
    child: std::process::Child,
    addr: String,
}

impl Drop for ScalerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_scaler(env: &[(&str, String)]) -> ScalerProcess {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("ehstore"));
    cmd.args([
        "keda-scaler",
        "--listen",
        "127.0.0.1:0",
        "--collect-every",
        "200ms",
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("KEDA external scaler listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    ScalerProcess { child, addr }
}

async fn grpc(scaler: &ScalerProcess) -> ExternalScalerClient<Channel> {
    ExternalScalerClient::connect(format!("http://{}", scaler.addr))
        .await
        .unwrap()
}

fn object(name: &str, metadata: &[(&str, &str)]) -> ScaledObjectRef {
    ScaledObjectRef {
        name: name.to_owned(),
        namespace: "default".to_owned(),
        scaler_metadata: metadata
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<HashMap<_, _>>(),
    }
}

async fn emulator() -> EmulatorHandle {
    Emulator::builder().hub("orders", 4).start().await.unwrap()
}

async fn send(emulator: &EmulatorHandle, partition: &str, n: usize) {
    let client = EventHubClient::from_connection_string(&emulator.connection_string(Some("orders")), None)
        .await
        .unwrap();
    let events = (0..n).map(|i| EventData::new(format!("e{i}"))).collect();
    client.send(Some(partition), events).await.unwrap();
    client.close().await.unwrap();
}

fn scope(emulator: &EmulatorHandle) -> PartitionScope {
    PartitionScope::new(
        format!("localhost:{}", emulator.local_addr().port()),
        "orders",
        "$Default",
    )
    .unwrap()
}

/// p0: 10 events, checkpoint at 4 → 5; p1: 6 events, no checkpoint → 6; p2: 3 events,
/// checkpoint at 2 → 0; p3: nothing. KEDA's total: 11.
async fn values_are_keda_s_on(url: &str) {
    let emulator = emulator().await;
    for (p, n) in [("0", 10), ("1", 6), ("2", 3)] {
        send(&emulator, p, n).await;
    }
    let store = open_store_with(url, &OpenOptions::prepared()).await.unwrap();
    for (p, seq) in [("0", 4), ("2", 2)] {
        let cp = Checkpoint::new(scope(&emulator), p, None, Some(seq));
        store
            .set_checkpoint(&cp, &SetCheckpointOptions::new())
            .await
            .unwrap();
    }
    let scaler = start_scaler(&[
        ("STORE_URL", url.to_owned()),
        ("EH_CONNECTION", emulator.connection_string(Some("orders"))),
    ]);
    let mut client = grpc(&scaler).await;
    let base = [
        ("storeUrlFromEnv", "STORE_URL"),
        ("connectionFromEnv", "EH_CONNECTION"),
    ];

    let plain = object("orders-consumer", &base);
    let spec = client.get_metric_spec(plain.clone()).await.unwrap().into_inner();
    assert_eq!(spec.metric_specs.len(), 1);
    assert_eq!(spec.metric_specs[0].target_size, 64, "KEDA's default threshold");
    let name = spec.metric_specs[0].metric_name.clone();
    let metrics = |o: ScaledObjectRef, name: String| GetMetricsRequest {
        scaled_object_ref: Some(o),
        metric_name: name,
    };
    let got = client
        .get_metrics(metrics(plain.clone(), name.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.metric_values[0].metric_value, 11, "{got:?}");
    assert_eq!(got.metric_values[0].metric_name, name);
    assert!(
        client.is_active(plain).await.unwrap().into_inner().result,
        "11 > 0"
    );

    // Threshold 2 over 4 partitions: capped at 8, never more replicas than partitions.
    let capped = object(
        "capped",
        &[
            base[0],
            base[1],
            ("unprocessedEventThreshold", "2"),
            ("activationUnprocessedEventThreshold", "11"),
        ],
    );
    let got = client
        .get_metrics(metrics(capped.clone(), name.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.metric_values[0].metric_value, 8);
    assert!(
        !client.is_active(capped).await.unwrap().into_inner().result,
        "11 is not above 11"
    );

    // Kubernetes probes: the standard health service says SERVING.
    let channel = Channel::from_shared(format!("http://{}", scaler.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_match_keda_s_azure_eventhub_scaler_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    values_are_keda_s_on(&sqlite_url(dir.path(), "keda.db")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_match_keda_s_azure_eventhub_scaler_on_postgres() {
    let Some(pg) = postgres_url() else { return };
    let schema = format!("ehcli_{}", unique());
    let sep = if pg.contains('?') { '&' } else { '?' };
    values_are_keda_s_on(&format!("{pg}{sep}schema={schema}")).await;
    drop_postgres_schema(&pg, &schema);
}

/// `StreamIsActive` pushes `false` for an idle hub, `true` once events arrive, `false` again
/// once they are checkpointed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_is_active_follows_events_and_checkpoints() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path(), "stream.db");
    let store = open_store_with(&url, &OpenOptions::prepared()).await.unwrap();
    let scaler = start_scaler(&[
        ("STORE_URL", url.clone()),
        ("EH_CONNECTION", emulator.connection_string(Some("orders"))),
    ]);
    let mut client = grpc(&scaler).await;
    let o = object(
        "stream",
        &[
            ("storeUrlFromEnv", "STORE_URL"),
            ("connectionFromEnv", "EH_CONNECTION"),
        ],
    );
    let mut stream = client.stream_is_active(o).await.unwrap().into_inner();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(15), stream.message())
            .await
            .expect("an activity change within 15 s")
            .unwrap()
            .expect("the stream goes on")
            .result
    };
    assert!(!next().await, "idle hub");
    send(&emulator, "3", 4).await;
    assert!(next().await, "events arrived");
    let cp = Checkpoint::new(scope(&emulator), "3", None, Some(3));
    store
        .set_checkpoint(&cp, &SetCheckpointOptions::new())
        .await
        .unwrap();
    assert!(!next().await, "checkpointed");
}

/// Bad metadata: each gets a gRPC error naming the field and the problem; nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_metadata_is_named_and_writes_nothing() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path(), "bad.db");
    let store = open_store_with(&url, &OpenOptions::prepared()).await.unwrap();
    let before = export_all(&url);
    let scaler = start_scaler(&[
        ("STORE_URL", url.clone()),
        ("STORE_DOWN", "postgres://postgres@127.0.0.1:1/test".to_owned()),
        ("STORE_MISSING", sqlite_url(dir.path(), "missing.db")),
        ("EH_CONNECTION", emulator.connection_string(Some("orders"))),
        (
            "EH_WRONG_KEY",
            emulator
                .connection_string(Some("orders"))
                .replace("SAS_KEY_VALUE", "not-the-key"),
        ),
        ("EH_NO_HUB", emulator.connection_string(None)),
    ]);
    let mut client = grpc(&scaler).await;
    let cases: [(&[(&str, &str)], &str); 7] = [
        (
            &[("connectionFromEnv", "EH_CONNECTION")],
            "storeUrlFromEnv is missing",
        ),
        (
            &[
                ("storeUrlFromEnv", "UNSET_VAR"),
                ("connectionFromEnv", "EH_CONNECTION"),
            ],
            "UNSET_VAR is not set",
        ),
        (
            &[("storeUrlFromEnv", "STORE_URL")],
            "connectionFromEnv is missing",
        ),
        (
            &[
                ("storeUrlFromEnv", "STORE_URL"),
                ("connectionFromEnv", "EH_WRONG_KEY"),
            ],
            "connectionFromEnv",
        ),
        (
            &[
                ("storeUrlFromEnv", "STORE_DOWN"),
                ("connectionFromEnv", "EH_CONNECTION"),
            ],
            "storeUrlFromEnv",
        ),
        (
            &[
                ("storeUrlFromEnv", "STORE_MISSING"),
                ("connectionFromEnv", "EH_CONNECTION"),
            ],
            "storeUrlFromEnv",
        ),
        (
            &[
                ("storeUrlFromEnv", "STORE_URL"),
                ("connectionFromEnv", "EH_NO_HUB"),
            ],
            "connectionFromEnv",
        ),
    ];
    for (metadata, says) in cases {
        let e = client.is_active(object("bad", metadata)).await.unwrap_err();
        assert!(
            e.message().contains(says),
            "{says}: {} ({:?})",
            e.message(),
            e.code()
        );
        assert!(
            !e.message().contains("not-the-key") && !e.message().contains("SAS_KEY_VALUE"),
            "{}",
            e.message()
        );
    }
    let e = client
        .is_active(object(
            "bad",
            &[
                ("storeUrlFromEnv", "STORE_URL"),
                ("connectionFromEnv", "EH_CONNECTION"),
                ("unprocessedEventThreshold", "-3"),
            ],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(
        e.message().contains("unprocessedEventThreshold"),
        "{}",
        e.message()
    );
    assert_eq!(export_all(&url), before, "nothing was written");
    assert!(!dir.path().join("missing.db").exists(), "no store was created");
    drop(store);
}

/// Kubernetes stops pods with SIGTERM: the scaler stops serving and exits cleanly.
#[cfg(unix)]
#[test]
fn sigterm_stops_the_scaler_cleanly() {
    let mut scaler = start_scaler(&[]);
    let pid = scaler.child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = scaler.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running 15 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    assert!(
        std::net::TcpStream::connect(&scaler.addr).is_err(),
        "nothing listens any more"
    );
}
