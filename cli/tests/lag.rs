//! `ehstore status --connection-string`: the hub's side of every partition against the
//! in-process emulator, with checkpoints at known sequence numbers (one partition without a
//! checkpoint, one whose checkpoint fell out of the emulator's retention bound), on SQLite and
//! PostgreSQL; and one clear line for each kind of bad input, the store untouched.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::process::Output;

use common::*;
use eventhubs_client::{EventData, EventHubClient, ReceiverOptions, StartPosition};
use eventhubs_emulator::{Emulator, EmulatorHandle, Retention};
use eventhubs_store_core::{Checkpoint, ClaimOptions, Ownership, PartitionScope, SetCheckpointOptions};
use time::OffsetDateTime;

/// Each partition keeps its newest 10 events.
async fn emulator() -> EmulatorHandle {
    Emulator::builder()
        .hub("orders", 4)
        .retention(Retention {
            max_events: 10,
            max_bytes: 1 << 20,
        })
        .start()
        .await
        .unwrap()
}

async fn client(emulator: &EmulatorHandle) -> EventHubClient {
    EventHubClient::from_connection_string(&emulator.connection_string(Some("orders")), None)
        .await
        .unwrap()
}

/// The enqueued time of the event with `sequence_number` in `partition`.
async fn enqueued_time(client: &EventHubClient, partition: &str, sequence_number: i64) -> OffsetDateTime {
    let options = ReceiverOptions {
        start: StartPosition::SequenceNumber {
            sequence_number,
            inclusive: true,
        },
        ..ReceiverOptions::default()
    };
    let mut receiver = client
        .open_receiver("$default", partition, options)
        .await
        .unwrap();
    let events = receiver
        .receive(1, std::time::Duration::from_secs(5))
        .await
        .unwrap();
    receiver.close().await.unwrap();
    assert_eq!(events[0].sequence_number, sequence_number);
    events[0].enqueued_time
}

async fn status(args: Vec<String>, connection_string: Option<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut cmd = ehstore();
        if let Some(cs) = connection_string {
            cmd.env("EVENTHUBS_CONNECTION_STRING", cs);
        }
        cmd.arg("status").args(&args).output().unwrap()
    })
    .await
    .unwrap()
}

/// Sends, checkpoints and claims the known state into `url`, then checks what `status` reports.
async fn lag_is_exact_on(url: &str) {
    let emulator = emulator().await;
    let client = client(&emulator).await;
    // p0: 10 events, checkpoint at 4, owned: 5 behind. p1: 6 events, no checkpoint, unowned.
    // p2: 25 events (15..=24 retained), checkpoint at 2: 3..=14 lost, 10 behind, owned.
    // p3: 3 events, checkpoint at 2: caught up.
    for (partition, count) in [("0", 10), ("1", 6), ("2", 25), ("3", 3)] {
        for n in 0..count {
            client
                .send(Some(partition), vec![EventData::new(format!("{partition}-{n}"))])
                .await
                .unwrap();
        }
    }
    let namespace = format!("localhost:{}", emulator.local_addr().port());
    let scope = PartitionScope::new(&namespace, "orders", "$Default").unwrap();
    let store =
        eventhubs_store_cli::open::open_store_with(url, &eventhubs_store_cli::open::OpenOptions::prepared())
            .await
            .unwrap();
    for (partition, seq) in [("0", 4), ("2", 2), ("3", 2)] {
        let cp = Checkpoint::new(scope.clone(), partition, None, Some(seq));
        store
            .set_checkpoint(&cp, &SetCheckpointOptions::new())
            .await
            .unwrap();
    }
    let claims = [
        Ownership::new(scope.clone(), "0", "alpha"),
        Ownership::new(scope.clone(), "2", "alpha"),
    ];
    store
        .claim_ownership(&claims, &ClaimOptions::default())
        .await
        .unwrap();
    let t0 = enqueued_time(&client, "0", 5).await;
    let t1 = enqueued_time(&client, "1", 0).await;
    let t2 = enqueued_time(&client, "2", 15).await;

    let before = OffsetDateTime::now_utc();
    let out = status(
        vec![url.to_owned(), "--json".into()],
        Some(emulator.connection_string(Some("orders"))),
    )
    .await;
    let after = OffsetDateTime::now_utc();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let scope_json = &report["scopes"][0];
    assert_eq!(scope_json["namespace"], namespace.as_str(), "{report:#}");
    let partitions = scope_json["partitions"].as_array().unwrap();
    let row = |id: &str| {
        partitions
            .iter()
            .find(|p| p["partition_id"] == id)
            .unwrap()
            .clone()
    };
    let expect = [
        ("0", 0, 9, 5, 0, "behind", Some(t0)),
        ("1", 0, 5, 6, 0, "unowned_with_lag", Some(t1)),
        ("2", 15, 24, 10, 12, "lost_to_retention", Some(t2)),
        ("3", 0, 2, 0, 0, "caught_up", None),
    ];
    for (id, first, last, lag, lost, verdict, first_unprocessed) in expect {
        let p = row(id);
        assert_eq!(p["beginning_sequence_number"], first, "partition {id}: {p:#}");
        assert_eq!(p["last_enqueued_sequence_number"], last, "partition {id}: {p:#}");
        assert_eq!(p["lag_events"], lag, "partition {id}: {p:#}");
        assert_eq!(p["lost_to_retention"], lost, "partition {id}: {p:#}");
        assert_eq!(p["lag_state"], verdict, "partition {id}: {p:#}");
        let lag_ms = p["lag_ms"].as_i64().unwrap();
        match first_unprocessed {
            // Exact: the age of the first unprocessed event, on the emulator's clock, taken
            // between the command's start and end.
            Some(t) => {
                let low = (before - t).whole_milliseconds() as i64;
                let high = (after - t).whole_milliseconds() as i64;
                assert!(
                    (low..=high).contains(&lag_ms),
                    "partition {id}: lag {lag_ms} ms, the first unprocessed event is {low}..{high} ms old"
                );
            }
            None => assert_eq!(lag_ms, 0, "partition {id}"),
        }
    }
    // The table says the same.
    let out = status(
        vec![url.to_owned()],
        Some(emulator.connection_string(Some("orders"))),
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("hub side: 21 event(s) to process, 12 lost to retention"),
        "{text}"
    );
    assert!(
        text.contains("lost to retention") && text.contains("unowned with lag"),
        "{text}"
    );
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_is_exact_per_partition_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    lag_is_exact_on(&sqlite_url(dir.path(), "lag.db")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_is_exact_per_partition_on_postgres() {
    let Some(pg) = postgres_url() else { return };
    let schema = format!("ehcli_{}", unique());
    let sep = if pg.contains('?') { '&' } else { '?' };
    lag_is_exact_on(&format!("{pg}{sep}schema={schema}")).await;
    drop_postgres_schema(&pg, &schema);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_hub_input_gets_one_line_and_leaves_the_store_untouched() {
    let emulator = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path(), "untouched.db");
    let store =
        eventhubs_store_cli::open::open_store_with(&url, &eventhubs_store_cli::open::OpenOptions::prepared())
            .await
            .unwrap();
    let scope = PartitionScope::new("localhost:1", "orders", "$Default").unwrap();
    let cp = Checkpoint::new(scope.clone(), "0", None, Some(7));
    store
        .set_checkpoint(&cp, &SetCheckpointOptions::new())
        .await
        .unwrap();
    let before = export_all(&url);
    let port = emulator.local_addr().port();
    let cases = [
        (
            format!("Endpoint=sb://localhost:{port};SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true"),
            "event hub",
        ),
        (
            emulator
                .connection_string(Some("orders"))
                .replace("SAS_KEY_VALUE", "not-the-key"),
            "unauthorized",
        ),
        (
            "Endpoint=sb://localhost:1;SharedAccessKeyName=k;SharedAccessKey=v;UseDevelopmentEmulator=true;EntityPath=orders".to_owned(),
            "unavailable",
        ),
    ];
    for (cs, says) in cases {
        let out = status(vec![url.clone()], Some(cs.clone())).await;
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{cs}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(
            err.to_lowercase().contains(says),
            "{cs}: expected {says:?} in {err}"
        );
        assert!(
            !err.contains("not-the-key") && !err.contains("SAS_KEY_VALUE"),
            "{err}"
        );
    }
    assert_eq!(export_all(&url), before, "the store is untouched");
}

/// `--watch` over a bounded number of samples: a partition whose checkpoint keeps its value
/// while events arrive turns `stalled`, one set backwards between samples shows `rewound`, one
/// keeping pace stays caught up, and the rates follow what was sent and checkpointed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_judges_stalled_rewound_and_caught_up_over_samples() {
    use std::io::BufRead;
    let emulator = emulator().await;
    let client = client(&emulator).await;
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path(), "watch.db");
    let namespace = format!("localhost:{}", emulator.local_addr().port());
    let scope = PartitionScope::new(&namespace, "orders", "$Default").unwrap();
    let store =
        eventhubs_store_cli::open::open_store_with(&url, &eventhubs_store_cli::open::OpenOptions::prepared())
            .await
            .unwrap();
    for partition in ["0", "1", "2"] {
        let events = (0..6)
            .map(|n| EventData::new(format!("{partition}-{n}")))
            .collect();
        client.send(Some(partition), events).await.unwrap();
    }
    // p0 stalls at 2 while events arrive; p1 is at 5, then set back to 1; p2 keeps pace.
    for (partition, seq) in [("0", 2), ("1", 5), ("2", 5)] {
        let cp = Checkpoint::new(scope.clone(), partition, None, Some(seq));
        store
            .set_checkpoint(&cp, &SetCheckpointOptions::new())
            .await
            .unwrap();
    }
    let claims: Vec<Ownership> = ["0", "1", "2", "3"]
        .iter()
        .map(|p| Ownership::new(scope.clone(), *p, "alpha"))
        .collect();
    store
        .claim_ownership(&claims, &ClaimOptions::default())
        .await
        .unwrap();

    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("ehstore"))
        .env_remove("EHSTORE_NAMESPACE")
        .env_remove("EHSTORE_EVENT_HUB")
        .env(
            "EVENTHUBS_CONNECTION_STRING",
            emulator.connection_string(Some("orders")),
        )
        .args([
            "status",
            &url,
            "--watch",
            "400ms",
            "--samples",
            "4",
            "--stall-after",
            "700ms",
            "--json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut samples: Vec<serde_json::Value> = Vec::new();
    while let Some(line) = tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv())
        .await
        .expect("a sample within 30 s")
    {
        let sample: serde_json::Value = serde_json::from_str(&line).unwrap();
        let n = sample["sample"].as_u64().unwrap();
        samples.push(sample);
        // Between samples: p0 and p2 get an event; p2's checkpoint follows it; after the
        // first sample p1's checkpoint goes back to 1.
        for partition in ["0", "2"] {
            client
                .send(Some(partition), vec![EventData::new(format!("more-{n}"))])
                .await
                .unwrap();
        }
        let p2 = Checkpoint::new(scope.clone(), "2", None, Some(5 + n as i64));
        store
            .set_checkpoint(&p2, &SetCheckpointOptions::new())
            .await
            .unwrap();
        if n == 1 {
            let back = Checkpoint::new(scope.clone(), "1", None, Some(1));
            store
                .set_checkpoint(&back, &SetCheckpointOptions::new())
                .await
                .unwrap();
        }
    }
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success());
    assert_eq!(samples.len(), 4, "--samples 4");
    let verdict =
        |sample: &serde_json::Value, p: &str| sample["rates"][p]["verdict"].as_str().unwrap().to_owned();
    assert_eq!(verdict(&samples[1], "1"), "rewound", "{:#}", samples[1]["rates"]);
    assert_eq!(verdict(&samples[3], "0"), "stalled", "{:#}", samples[3]["rates"]);
    for sample in &samples {
        assert_eq!(verdict(sample, "2"), "caught_up", "{:#}", sample["rates"]);
        assert_eq!(
            verdict(sample, "3"),
            "caught_up",
            "nothing ever sent: {:#}",
            sample["rates"]
        );
    }
    // Rates: p0 ingests one event per sample interval and consumes nothing; p2 consumes what
    // it ingests.
    let rate = |p: &str, what: &str| samples[3]["rates"][p][what].as_f64().unwrap();
    assert!(rate("0", "ingest_per_s") > 0.0 && rate("0", "consume_per_s") == 0.0);
    assert!(rate("2", "consume_per_s") > 0.0);
    assert_eq!(
        samples[3]["scope"]["partitions"][0]["lag_events"], 6,
        "3..=8 wait"
    );
    client.close().await.unwrap();
}

/// `status --watch --metrics-addr`: during the run, `/metrics` answers with the documented
/// names, the lag of each partition among them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_serves_the_lag_as_prometheus_text() {
    use std::io::{BufRead, Read, Write};
    let emulator = emulator().await;
    let client = client(&emulator).await;
    let events = (0..7).map(|n| EventData::new(format!("e{n}"))).collect();
    client.send(Some("1"), events).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path(), "prom.db");
    eventhubs_store_cli::open::open_store_with(&url, &eventhubs_store_cli::open::OpenOptions::prepared())
        .await
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("ehstore"))
        .env_remove("EHSTORE_NAMESPACE")
        .env_remove("EHSTORE_EVENT_HUB")
        .env(
            "EVENTHUBS_CONNECTION_STRING",
            emulator.connection_string(Some("orders")),
        )
        .args([
            "status",
            &url,
            "--watch",
            "300ms",
            "--samples",
            "20",
            "--json",
            "--metrics-addr",
            &addr,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let body = tokio::task::spawn_blocking(move || {
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        // The first sample is recorded once its line is out.
        let first = lines.next().and_then(Result::ok);
        let mut body = String::new();
        if first.is_some() {
            let mut stream = std::net::TcpStream::connect(&addr).unwrap();
            write!(
                stream,
                "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            stream.read_to_string(&mut body).unwrap();
        }
        let _ = child.kill();
        let _ = child.wait();
        body
    })
    .await
    .unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    let line = |name: &str, partition: &str| {
        body.lines()
            .find(|l| {
                l.starts_with(name)
                    && l.contains(&format!("messaging_destination_partition_id=\"{partition}\""))
            })
            .unwrap_or_else(|| panic!("no {name} for partition {partition} in:\n{body}"))
            .to_owned()
    };
    assert!(
        line("messaging_eventhubs_consumer_lag{", "1").ends_with(" 7"),
        "{body}"
    );
    assert!(
        line("messaging_eventhubs_consumer_lag{", "0").ends_with(" 0"),
        "{body}"
    );
    assert!(line("messaging_eventhubs_consumer_lost_to_retention{", "1").ends_with(" 0"));
    assert!(
        line("messaging_eventhubs_consumer_lag_time_seconds{", "1")
            .contains("messaging_destination_name=\"orders\"")
    );
    let unowned = line("messaging_eventhubs_consumer_state{", "1");
    assert!(
        body.lines().any(|l| l.contains("verdict=\"unowned_with_lag\"")
            && l.contains("messaging_destination_partition_id=\"1\"")
            && l.ends_with(" 1")),
        "{unowned}\n{body}"
    );
    client.close().await.unwrap();
}
