//! `ehstore demo`, `reset`, `conformance` and `bench` end to end.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use common::*;

/// The demo's own test: what it prints is true. Every partition ends owned, the checkpoints in
/// the store are the last ones its processors reported, the crashed processor's zombie write
/// was refused by its client and by the store (C13), and a second run on the same port (same
/// namespace) resumes after the first run's checkpoints.
#[test]
fn demo_runs_real_processors_and_what_it_reports_is_in_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let (store, first) = demo_json(tmp.path(), "demo.db", &port);
    let namespace = first["namespace"].as_str().unwrap();
    assert_eq!(namespace, format!("localhost:{port}"));
    assert_eq!(first["phases"]["caught_up"], true, "{first:#}");
    assert_eq!(first["resumed_from_earlier_run"], false);
    let shares = |phase: &str| -> Vec<u64> {
        first["phases"][phase]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["partitions"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(shares("alone"), vec![8], "{first:#}");
    let mut balanced = shares("balanced");
    balanced.sort_unstable();
    assert_eq!(balanced, vec![2, 3, 3], "{first:#}");
    assert_eq!(shares("after_crash").iter().sum::<u64>(), 8, "{first:#}");
    assert_eq!(
        shares("after_close"),
        vec![8],
        "alpha took bravo's at once: {first:#}"
    );
    let zombie = &first["zombie_checkpoint"];
    assert_eq!(zombie["refused_by_client"], true, "{first:#}");
    assert_eq!(zombie["refused_by_store"], true, "C13: {first:#}");

    let status = ok(&[
        "status",
        &store,
        "--namespace",
        namespace,
        "--hub",
        "orders",
        "--json",
    ]);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let rows = status["scopes"][0]["partitions"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 8, "{status:#}");
    for (row, reported) in rows.iter().zip(first["partitions"].as_array().unwrap()) {
        assert_eq!(row["owner_id"], "alpha", "every partition ends owned: {status:#}");
        assert_eq!(row["state"], "owned", "{status:#}");
        assert_eq!(
            row["sequence_number"], reported["reported_sequence_number"],
            "the store holds the last checkpoint the processors reported: {status:#}"
        );
        assert_eq!(
            reported["sequence_number"].as_i64().unwrap() + 1,
            reported["events"].as_i64().unwrap(),
            "checkpointed at the partition's last event: {first:#}"
        );
    }
    let zombie_partition = zombie["partition"].as_str().unwrap();
    let zombie_row = rows
        .iter()
        .find(|r| r["partition_id"] == zombie_partition)
        .unwrap();
    assert!(
        zombie_row["sequence_number"].as_i64() > zombie["sequence_number"].as_i64(),
        "the zombie's checkpoint did not land (later ones did): {zombie_row} vs {zombie}"
    );

    let (_, second) = demo_json(tmp.path(), "demo.db", &port);
    assert_eq!(second["resumed_from_earlier_run"], true, "{second:#}");
    assert_eq!(second["phases"]["caught_up"], true, "{second:#}");
    let processed: u64 = second["processed"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    let history: u64 = first["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["events"].as_u64().unwrap())
        .sum();
    assert!(
        processed < history + second["events_sent"].as_u64().unwrap(),
        "the second run starts after the checkpoints, not at the beginning: {second:#}"
    );
}

/// The text output tells the story.
#[test]
fn demo_prints_the_story_and_the_table() {
    let tmp = tempfile::tempdir().unwrap();
    let store = sqlite_url(tmp.path(), "story.db");
    let out = ok(&[
        "demo",
        "--store",
        &store,
        "--port",
        "0",
        "--interval",
        "50ms",
        "--expiry",
        "600ms",
    ]);
    for expected in [
        "3 real Processors",
        "alpha holds every partition: alpha 8",
        "(stolen)",
        "balanced: ",
        "crashes: stops renewing",
        "refused, it no longer owns the partition (fencing, rule C13)",
        "(shutdown)",
        "alpha took over at once: alpha 8",
        "every partition checkpointed at its last event",
    ] {
        assert!(out.contains(expected), "demo output lacks {expected:?}:\n{out}");
    }
    let table = out
        .lines()
        .filter(|l| l.contains(" alpha ") && l.contains("owned"))
        .count();
    assert_eq!(table, 8, "{out}");
}

/// A port free right now (the demo binds it; a race with another process only falls back to a
/// free port, which the namespace assertion would catch).
fn free_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port().to_string()
}

#[test]
fn reset_refuses_owned_partitions_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, namespace) = demo_store(tmp.path());
    let ns = namespace.as_str();
    let reset = |extra: &[&str]| {
        let mut args = vec![
            "reset",
            store.as_str(),
            "--namespace",
            ns,
            "--hub",
            "orders",
            "--partition",
            "3",
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    let stdout = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();

    // alpha renewed it moments ago: owned under the default 60 s expiry.
    let refused = reset(&["--sequence-number", "5", "--offset", "640"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("owned by \"alpha\"") && stderr(&refused).contains("--force"),
        "{}",
        stderr(&refused)
    );

    let dry = reset(&[
        "--sequence-number",
        "5",
        "--offset",
        "640",
        "--force",
        "--dry-run",
    ]);
    assert!(
        stdout(&dry).starts_with("dry run: would change partition 3"),
        "{}",
        stdout(&dry)
    );
    let status = ok(&["status", &store, "-n", ns, "--hub", "orders", "--json"]);
    assert!(
        !status.contains("\"offset\": \"640\""),
        "a dry run wrote: {status}"
    );

    let forced = reset(&["--sequence-number", "5", "--offset", "640", "--force"]);
    assert!(
        stdout(&forced).contains("-> sequence number 5, offset 640"),
        "{}",
        stderr(&forced)
    );
    // With a short expiry the demo's ownership has expired: no --force needed.
    let deleted = reset(&["--delete", "--expiry", "1ms"]);
    assert!(
        stdout(&deleted).contains("-> no checkpoint"),
        "{}",
        stderr(&deleted)
    );
    let status = ok(&["status", &store, "-n", ns, "--hub", "orders"]);
    let row = status.lines().find(|l| l.trim_start().starts_with("3 ")).unwrap();
    assert!(
        row.trim_end().ends_with('-'),
        "partition 3 still has a checkpoint: {status}"
    );

    let err = fails(&[
        "reset", &store, "-n", ns, "--hub", "orders", "-p", "1", "--offset", "",
    ]);
    assert!(err.contains("C9"), "{err}");
}

#[test]
fn conformance_passes_on_memory_and_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    for url in ["memory:".to_owned(), sqlite_url(tmp.path(), "conf.db")] {
        let out = ok(&["conformance", &url]);
        assert!(out.contains(" 0 failed, 0 skipped"), "{url}:\n{out}");
        assert!(out.contains("PASS  C7") && out.contains("per rule:"), "{out}");
        assert!(!out.contains("FAILED"), "{out}");
        // This command never cuts a live store's connections: that case says so, it does not pass.
        assert!(
            out.contains("N/A   C12      c12_acknowledged_writes_survive_cut_connections"),
            "{out}"
        );
    }
    let out = ok(&["conformance", "memory:", "--filter", "c13"]);
    assert!(out.contains("1 passed, 0 failed"), "{out}");
    // The concurrent histories, with their knobs, written out as JSON and an HTML timeline.
    let history = tmp.path().join("hist");
    let out = ok(&[
        "conformance",
        &sqlite_url(tmp.path(), "conf.db"),
        "--filter",
        "concurrent_histories",
        "--history-clients",
        "3",
        "--history-ops",
        "20",
        "--histories",
        "2",
        "--history-out",
        history.to_str().unwrap(),
    ]);
    assert!(out.contains("1 passed, 0 failed"), "{out}");
    for n in 0..2 {
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(tmp.path().join(format!("hist-{n}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(
            json["calls"].as_array().unwrap().len(),
            60,
            "3 clients x 20 operations"
        );
        assert_eq!(json["backend"], "sqlite");
        let html = std::fs::read_to_string(tmp.path().join(format!("hist-{n}.html"))).unwrap();
        assert!(html.contains("<svg") && html.contains("client 2"), "{html}");
    }
    // The cases' checkpoints are cleaned up: the sqlite store holds no checkpoint afterwards.
    let left = ok(&["export", &sqlite_url(tmp.path(), "conf.db"), "--all"]);
    assert_eq!(left.lines().count(), 1, "checkpoints left behind:\n{left}");
}

#[test]
fn bench_reports_every_workload() {
    let out = ok(&["bench", "memory:", "--ops", "40", "--concurrency", "4", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let results = json["results"].as_array().unwrap();
    let names: Vec<&str> = results.iter().map(|r| r["workload"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["set_checkpoint", "claim x1", "claim x32"]);
    for r in results {
        assert_eq!(r["ops"], 40, "{r}");
        assert_eq!(r["errors"], 0, "{r}");
        assert!(
            r["p99_ms"].as_f64().unwrap() >= r["p50_ms"].as_f64().unwrap(),
            "{r}"
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let table = ok(&["bench", &sqlite_url(tmp.path(), "b.db"), "--ops", "10"]);
    assert!(
        table.contains("WORKLOAD") && table.contains("claim x32"),
        "{table}"
    );
    // Bench cleans up after itself: no checkpoints left.
    let left = ok(&["export", &sqlite_url(tmp.path(), "b.db"), "--all"]);
    assert_eq!(left.lines().count(), 1, "{left}");
}

#[cfg(feature = "emulator")]
#[test]
fn emulator_prints_its_connection_string_and_serves() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("ehstore"))
        .args(["emulator", "--port", "0", "--hub", "orders:4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let connection = loop {
        let Some(Ok(line)) = lines.next() else { break None };
        seen.push(line.clone());
        if let Some(cs) = line.strip_prefix("connection string: ") {
            break Some(cs.to_owned());
        }
    };
    let listening = seen
        .iter()
        .find_map(|l| l.strip_prefix("Event Hubs emulator listening on "))
        .map(str::to_owned);
    let alive = child.try_wait().unwrap().is_none();
    let connection = connection.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("no connection string in {seen:?}")
    });
    // It serves: a client with the printed connection string sees the hub's 4 partitions and
    // reads back what it sent.
    let served = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let client = eventhubs_client::EventHubClient::from_connection_string(&connection, None).await?;
        let partitions = client.properties().await?.partition_ids;
        client
            .send(Some("2"), vec![eventhubs_client::EventData::new("over the wire")])
            .await?;
        let options = eventhubs_client::ReceiverOptions {
            start: eventhubs_client::StartPosition::Earliest,
            ..Default::default()
        };
        let mut receiver = client.open_receiver("$default", "2", options).await?;
        let events = receiver.receive(1, std::time::Duration::from_secs(10)).await?;
        client.close().await?;
        Ok::<_, eventhubs_client::Error>((partitions, events))
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(alive, "the emulator exited early: {seen:?}");
    let (partitions, events) = served.unwrap();
    assert_eq!(partitions, ["0", "1", "2", "3"]);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].body, b"over the wire");
    assert!(
        connection.starts_with("Endpoint=sb://localhost:") && connection.contains("EntityPath=orders"),
        "{connection}"
    );
    let addr: std::net::SocketAddr = listening.unwrap().parse().unwrap();
    assert_ne!(addr.port(), 0);
    assert!(connection.contains(&format!(":{};", addr.port())), "{connection}");
}

#[cfg(feature = "emulator")]
#[test]
fn emulator_refuses_a_bad_hub_in_one_line() {
    let err = fails(&["emulator", "--port", "0", "--hub", "orders:lots"]);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("not a number"), "{err}");
}

/// `bench-processor` runs real Processors and reports what it measured: the adaptive strategy
/// balances, nothing moves after, the crash fails over, events flow with and without
/// checkpoints. Timings are printed, not asserted.
#[test]
fn bench_processor_reports_balance_failover_and_receive_speed() {
    let out = ok(&[
        "bench-processor",
        "memory:",
        "--processors",
        "2",
        "--partitions",
        "4",
        "--interval",
        "100ms",
        "--expiry",
        "600ms",
        "--events",
        "500",
        "--strategy",
        "adaptive",
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let balance = &report["balance"][0];
    assert_eq!(balance["strategy"], "adaptive", "{report:#}");
    assert!(balance["cycles_to_balanced"].is_number(), "{report:#}");
    assert_eq!(balance["moves_after_balance"], 0, "{report:#}");
    assert!(
        balance["failover_ms"].as_u64().is_some_and(|ms| ms > 0),
        "{report:#}"
    );
    assert_eq!(report["receive"]["events"], 500, "{report:#}");
    assert_eq!(report["receive"]["rounds"], 3, "{report:#}");
    for ratio in ["ratio", "background_ratio"] {
        assert!(
            report["receive"][ratio].as_f64().is_some_and(|r| r > 0.0),
            "{ratio}: {report:#}"
        );
    }
    let err = fails(&["bench-processor", "memory:", "--partitions", "0"]);
    assert!(err.contains("--partitions 0 must be 1 to 1024"), "{err}");
}
