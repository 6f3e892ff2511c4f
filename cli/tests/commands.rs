//! `ehstore demo`, `reset`, `conformance` and `bench` end to end.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use common::*;

const DEMO_NS: &str = "demo.servicebus.windows.net";

#[test]
fn demo_runs_and_leaves_a_recognisable_store() {
    let tmp = tempfile::tempdir().unwrap();
    let store = sqlite_url(tmp.path(), "demo.db");
    let out = ok(&["demo", "--store", &store]);
    for expected in [
        "alpha holds every partition",
        "(stolen from alpha)",
        "lost",
        "balanced: alpha 3, bravo 3, charlie 2",
        "(expired)",
        "refused: it no longer owns it (fencing, rule C13)",
        "relinquished",
        "alpha took over at once: alpha 8",
    ] {
        assert!(out.contains(expected), "demo output lacks {expected:?}:\n{out}");
    }
    let table: Vec<&str> = out
        .lines()
        .filter(|l| l.contains(" alpha ") && l.contains("owned"))
        .collect();
    assert_eq!(table.len(), 8, "{out}");
    // The records are in the store for status to show.
    let status = ok(&["status", &store, "--namespace", DEMO_NS, "--hub", "orders"]);
    assert!(status.contains("8 partition(s)"), "{status}");
}

#[test]
fn reset_refuses_owned_partitions_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let store = demo_store(tmp.path());
    let reset = |extra: &[&str]| {
        let mut args = vec![
            "reset",
            store.as_str(),
            "--namespace",
            DEMO_NS,
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
    let status = ok(&["status", &store, "-n", DEMO_NS, "--hub", "orders", "--json"]);
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
    let status = ok(&["status", &store, "-n", DEMO_NS, "--hub", "orders"]);
    let row = status.lines().find(|l| l.trim_start().starts_with("3 ")).unwrap();
    assert!(
        row.trim_end().ends_with('-'),
        "partition 3 still has a checkpoint: {status}"
    );

    let err = fails(&[
        "reset", &store, "-n", DEMO_NS, "--hub", "orders", "-p", "1", "--offset", "",
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
    child.kill().unwrap();
    child.wait().unwrap();
    let connection = connection.unwrap_or_else(|| panic!("no connection string in {seen:?}"));
    assert!(alive, "the emulator exited early: {seen:?}");
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
