//! `ehstore import-legacy` end to end, from sample files in the documented legacy formats
//! (written here): Event Processor Host leases of .NET, Java and Go, and Go FilePersister files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use common::*;

fn checkpoints(store: &str, group: &str) -> Vec<(String, serde_json::Value, serde_json::Value)> {
    let text = ok(&[
        "status",
        store,
        "--namespace",
        NS,
        "--hub",
        HUB,
        "--group",
        group,
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["scopes"][0]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["partition_id"].as_str().unwrap().to_owned(),
                p["offset"].clone(),
                p["sequence_number"].clone(),
            )
        })
        .collect()
}

/// `ehstore import-legacy STORE -n NS --hub HUB --from DIR extra…`.
fn import_legacy(store: &str, dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "import-legacy",
        store,
        "-n",
        NS,
        "--hub",
        HUB,
        "--from",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn event_processor_host_leases_of_every_sdk_are_imported() {
    let tmp = tempfile::tempdir().unwrap();
    let leases = tmp.path().join("leases");
    for (name, body) in [
        // .NET v4 (PascalCase, under the consumer group), Java v4 (camelCase), Go eph (nested).
        (
            "$Default/0",
            r#"{"PartitionId":"0","Owner":"host-a","Token":"7d1c","Epoch":3,"Offset":"1024","SequenceNumber":17}"#,
        ),
        (
            "$Default/1",
            r#"{"offset":"2048","sequenceNumber":42,"partitionId":"1","owner":"host-b","token":"x","epoch":1}"#,
        ),
        (
            "go/2",
            r#"{"partitionID":"2","epoch":5,"owner":"host-c","checkpoint":{"offset":"4096","sequenceNumber":99,"enqueueTime":"2021-03-04T05:06:07Z"},"state":"leased","token":"t"}"#,
        ),
        // A lease whose partition never got a checkpoint.
        (
            "$Default/3",
            r#"{"PartitionId":"3","Owner":"","Token":null,"Epoch":0,"Offset":null,"SequenceNumber":0}"#,
        ),
    ] {
        write(&leases, name, body);
    }

    let store = sqlite_url(tmp.path(), "s.db");
    let out = import_legacy(&store, &leases, &["--format", "eph"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("3 copied, 0 unchanged, 0 skipped, 0 failed"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no checkpoint in it"));
    assert_eq!(
        checkpoints(&store, "$Default"),
        vec![
            ("0".into(), "1024".into(), 17.into()),
            ("1".into(), "2048".into(), 42.into()),
            ("2".into(), "4096".into(), 99.into()),
        ]
    );
    // Owners and epochs of blob leases are not imported as ownership.
    let status = ok(&["status", &store, "--namespace", NS, "--hub", HUB]);
    assert!(
        !status.contains("host-a") && status.contains("unowned"),
        "{status}"
    );
}

#[test]
fn go_file_persister_files_are_imported_for_their_scope_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("persist");
    // persist.FilePersister: {namespace}_{hub}_{group}_{partition}, '$' removed.
    let body = |offset: &str, seq: i64| {
        format!(r#"{{"offset":"{offset}","sequenceNumber":{seq},"enqueueTime":"2021-03-04T05:06:07.123Z"}}"#)
    };
    write(&dir, "myns_orders_Default_0", &body("512", 5));
    write(&dir, "myns_orders_Default_1", &body("768", 7));
    write(&dir, "myns_orders_Default_2", &body("-1", 0)); // created by Read: start of stream
    write(&dir, "myns_payments_Default_0", &body("1", 1)); // another hub
    write(&dir, "myns_orders_audit_0", &body("3", 3)); // another group

    let store = sqlite_url(tmp.path(), "s.db");
    let out = import_legacy(&store, &dir, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("ignored").count(), 3, "{stderr}");
    assert_eq!(
        checkpoints(&store, "$Default"),
        vec![
            ("0".into(), "512".into(), 5.into()),
            ("1".into(), "768".into(), 7.into())
        ]
    );
    let again = import_legacy(&store, &dir, &[]);
    let again = String::from_utf8_lossy(&again.stdout);
    assert!(again.contains("0 copied, 2 unchanged"), "{again}");

    // The audit group's file belongs to --group audit.
    assert!(import_legacy(&store, &dir, &["-g", "audit"]).status.success());
    assert_eq!(
        checkpoints(&store, "audit"),
        vec![("0".into(), "3".into(), 3.into())]
    );
}

#[test]
fn a_malformed_legacy_file_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("leases");
    for (name, body) in [
        ("0", r#"{"offset":"1","sequenceNumber":1,"partitionId":"0"}"#),
        ("1", r#"{"offset":"1","sequenceNumber":"many","partitionId":"1"}"#),
    ] {
        write(&dir, name, body);
    }
    write(&dir, "2", "<xml/>");
    let store = sqlite_url(tmp.path(), "s.db");
    let out = import_legacy(&store, &dir, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("2 malformed file(s)") && err.contains("nothing was written"),
        "{err}"
    );
    assert!(err.contains("sequenceNumber"), "{err}");
    assert!(
        !tmp.path().join("s.db").exists(),
        "the store was created for a refused import"
    );
}
