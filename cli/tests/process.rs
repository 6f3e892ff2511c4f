//! `ehstore process` against the in-process emulator: it consumes every event with a real
//! Processor, checkpoints into the store, resumes after those checkpoints on the next run, and
//! fails with one clear line on bad input (no hub, wrong key, unreachable hub).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::process::Output;

use common::*;
use eventhubs_client::{EventData, EventHubClient};
use eventhubs_emulator::{Emulator, EmulatorHandle};

async fn emulator_with_events(per_partition: usize) -> EmulatorHandle {
    let emulator = Emulator::builder().hub("orders", 4).start().await.unwrap();
    send(&emulator, 0, per_partition).await;
    emulator
}

async fn send(emulator: &EmulatorHandle, from: usize, to: usize) {
    let client = EventHubClient::from_connection_string(&emulator.connection_string(Some("orders")), None)
        .await
        .unwrap();
    for p in 0..4 {
        let events = (from..to).map(|i| EventData::new(format!("p{p}-e{i}"))).collect();
        client.send(Some(&p.to_string()), events).await.unwrap();
    }
    client.close().await.unwrap();
}

/// Runs `ehstore process` with the connection string in the environment, off the runtime.
async fn process(connection_string: &str, args: &[&str]) -> Output {
    let (cs, args): (String, Vec<String>) = (
        connection_string.to_owned(),
        args.iter().map(|a| (*a).to_owned()).collect(),
    );
    tokio::task::spawn_blocking(move || {
        ehstore()
            .env("EVENTHUBS_CONNECTION_STRING", cs)
            .arg("process")
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_consumes_checkpoints_and_resumes() {
    let emulator = emulator_with_events(10).await;
    let cs = emulator.connection_string(Some("orders"));
    let tmp = tempfile::tempdir().unwrap();
    let store = sqlite_url(tmp.path(), "process.db");
    let common = [
        "--store",
        store.as_str(),
        "--start",
        "earliest",
        "--interval",
        "100ms",
        "--json",
    ];
    let mut args = common.to_vec();
    args.extend(["--max-events", "40", "--owner", "first"]);
    let first = json(&process(&cs, &args).await);
    assert_eq!(first["events"], 40, "{first:#}");
    assert_eq!(
        first["namespace"],
        format!("localhost:{}", emulator.local_addr().port())
    );
    for p in 0..4 {
        assert_eq!(first["per_partition"][p.to_string()], 10, "{first:#}");
    }
    let status = ok(&[
        "status",
        &store,
        "-n",
        first["namespace"].as_str().unwrap(),
        "--hub",
        "orders",
        "--json",
    ]);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let rows = status["scopes"][0]["partitions"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "{status:#}");
    for row in rows {
        assert_eq!(
            row["sequence_number"], 9,
            "checkpointed at the last event: {status:#}"
        );
        assert_eq!(
            row["owner_id"], "",
            "closed cleanly: relinquished (C8): {status:#}"
        );
    }

    // Five more per partition: the next run starts after the checkpoints.
    send(&emulator, 10, 15).await;
    let mut args = common.to_vec();
    args.extend(["--max-events", "20", "--owner", "second"]);
    let second = json(&process(&cs, &args).await);
    assert_eq!(second["events"], 20, "{second:#}");
    for p in 0..4 {
        assert_eq!(
            second["per_partition"][p.to_string()],
            5,
            "only the new events: {second:#}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_one_clear_line_and_nothing_is_written() {
    let emulator = emulator_with_events(1).await;
    let tmp = tempfile::tempdir().unwrap();
    let store = sqlite_url(tmp.path(), "bad.db");
    let args = ["--store", store.as_str(), "--duration", "1s"];
    let stderr = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();

    let no_hub = process(&emulator.connection_string(None), &args).await;
    assert!(!no_hub.status.success());
    assert!(stderr(&no_hub).contains("EntityPath"), "{}", stderr(&no_hub));

    let wrong_key = emulator
        .connection_string(Some("orders"))
        .replace("SharedAccessKey=SAS_KEY_VALUE", "SharedAccessKey=not-the-key");
    let refused = process(&wrong_key, &args).await;
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("unauthorized"), "{}", stderr(&refused));
    assert!(
        !stderr(&refused).contains("not-the-key"),
        "the key never shows: {}",
        stderr(&refused)
    );

    let port = emulator.local_addr().port();
    // Shut down and awaited: nothing listens on the port any more.
    emulator.shutdown().await;
    let gone = process(
        &format!("Endpoint=sb://localhost:{port};SharedAccessKeyName=k;SharedAccessKey=v;UseDevelopmentEmulator=true;EntityPath=orders"),
        &args,
    )
    .await;
    assert!(!gone.status.success());
    assert!(stderr(&gone).contains("unavailable"), "{}", stderr(&gone));
    assert_eq!(
        stderr(&gone).lines().filter(|l| l.contains("error")).count(),
        1,
        "{}",
        stderr(&gone)
    );

    let listed = ok(&["status", &store, "--all"]);
    assert!(!listed.contains("orders"), "nothing written: {listed}");
}
