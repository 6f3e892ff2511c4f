//! Hostile URLs, missing servers and bad arguments: one clear line on stderr, a non-zero exit,
//! and never a secret.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use common::*;

/// Asserts `ehstore args` fails with exactly one line, starting `ehstore: error:`, containing
/// `expect` and none of `secrets`.
fn one_line_error(args: &[&str], expect: &str, secrets: &[&str]) {
    let err = fails(args);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "ehstore {args:?}: expected one line, got {err:?}");
    assert!(lines[0].starts_with("ehstore: error: "), "{err}");
    assert!(err.contains(expect), "ehstore {args:?}: {err:?} lacks {expect:?}");
    for s in secrets {
        assert!(!err.contains(s), "ehstore {args:?} leaked {s:?}: {err}");
    }
}

#[test]
fn hostile_urls_are_refused_in_one_line_without_secrets() {
    one_line_error(
        &["status", "mysql://root:hunter2@db/x", "--all"],
        "store URL mysql://root:***@db/x",
        &["hunter2"],
    );
    one_line_error(&["status", "", "--all"], "must not be empty", &[]);
    one_line_error(&["status", "sqlite:", "--all"], "needs a path", &[]);
    one_line_error(&["status", "memory:\u{7}", "--all"], "control characters", &[]);
    one_line_error(
        &[
            "status",
            "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=S3cr3tK3y==",
            "--all",
        ],
        "--container",
        &["S3cr3tK3y"],
    );
    one_line_error(
        &[
            "status",
            "blob:c?connection-string-env=EHSTORE_SURELY_UNSET_VAR",
            "--all",
        ],
        "EHSTORE_SURELY_UNSET_VAR",
        &[],
    );
    one_line_error(
        &[
            "status",
            "https://acct.blob.core.windows.net/?sv=1&sig=T0pS3cret",
            "--all",
        ],
        "must name the container",
        &["T0pS3cret"],
    );
    one_line_error(
        &["status", "memory:", "--namespace", "ns", "--hub", "a/../b"],
        "rule C11",
        &[],
    );
}

#[test]
fn missing_servers_and_stores_fail_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    one_line_error(
        &["status", "postgres://postgres:pgS3cret@127.0.0.1:1/test", "--all"],
        "unavailable",
        &["pgS3cret"],
    );
    one_line_error(
        &["status", &sqlite_url(tmp.path(), "absent.db"), "--all"],
        "does not exist",
        &[],
    );
    one_line_error(
        &[
            "status",
            &format!("file:{}", tmp.path().join("absent").display()),
            "--all",
        ],
        "does not exist",
        &[],
    );
    #[cfg(feature = "blob")]
    one_line_error(
        &[
            "status",
            "http://127.0.0.1:1/devstoreaccount1/cont?sv=2022-11-02&sig=BlobS3cret",
            "--namespace",
            NS,
            "--hub",
            HUB,
        ],
        "error",
        &["BlobS3cret"],
    );
}

#[test]
fn status_of_all_scopes_and_of_one() {
    let tmp = tempfile::tempdir().unwrap();
    let store = sqlite_url(tmp.path(), "s.db");
    let seed = write(tmp.path(), "seed.jsonl", &sample_export());
    ok(&["import", &store, "--input", &seed]);
    let all = ok(&["list", &store, "--all"]);
    assert!(
        all.contains("myns.servicebus.windows.net/orders/$default: 3 partition(s)"),
        "{all}"
    );
    assert!(
        all.contains("myns.servicebus.windows.net/orders/analytics: 1 partition(s)"),
        "{all}"
    );
    let one = ok(&[
        "status",
        &store,
        "-n",
        "MyNs.ServiceBus.Windows.Net",
        "--hub",
        "Orders",
    ]);
    let row = one.lines().find(|l| l.trim_start().starts_with("1 ")).unwrap();
    assert!(
        row.contains("unowned") && row.contains("9223372036854775807") && row.contains("geo:7:a1b2c3"),
        "{one}"
    );
    let json: serde_json::Value = serde_json::from_str(&ok(&["status", &store, "--all", "--json"])).unwrap();
    assert_eq!(json["scopes"].as_array().unwrap().len(), 2);
    assert_eq!(json["scopes"][0]["partitions"][2]["offset"], "4096");
    let err = fails(&["status", &store]);
    assert!(err.contains("--all"), "{err}");
}
