//! `ehstore migrate` end to end: a chain through every backend of this build and back, values
//! identical; idempotent re-runs; newer targets kept unless --overwrite-newer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use common::*;

#[test]
fn migrate_chain_through_every_backend_and_back_keeps_values_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let export = write(tmp.path(), "seed.jsonl", &sample_export());
    let origin = sqlite_url(tmp.path(), "origin.db");
    ok(&["import", &origin, "--input", &export]);
    let expected = export_all(&origin);
    assert_eq!(expected.len(), 5, "header + 4 checkpoints: {expected:?}");

    // memory: is empty in every new process: migrating from it copies nothing.
    let out = ok(&[
        "migrate",
        "--from",
        "memory:",
        "--to",
        &sqlite_url(tmp.path(), "empty.db"),
    ]);
    assert!(
        out.contains("0 copied, 0 unchanged, 0 skipped, 0 failed"),
        "{out}"
    );

    let mut chain = vec![
        origin.clone(),
        format!("file:{}", tmp.path().join("files").display()),
    ];
    let mut cleanup = Cleanup::default();
    if let Some(pg) = postgres_url() {
        let schema = format!("ehcli_{}", unique());
        let sep = if pg.contains('?') { '&' } else { '?' };
        chain.push(format!("{pg}{sep}schema={schema}"));
        cleanup.push(move || drop_postgres_schema(&pg, &schema));
    }
    if let Some(redis) = redis_url() {
        let prefix = format!("ehcli-{}", unique());
        let sep = if redis.contains('?') { '&' } else { '?' };
        chain.push(format!("{redis}{sep}prefix={prefix}"));
        cleanup.push(move || drop_redis_prefix(&redis, &prefix));
    }
    #[cfg(feature = "blob")]
    if let Some(cs) = azurite_connection_string() {
        // The connection string stays in the environment, off the command line.
        let var = format!("EHSTORE_TEST_CS_{}", unique().to_uppercase());
        child_env(&var, &cs);
        chain.push(format!("blob:ehcli-{}?connection-string-env={var}", unique()));
    }
    chain.push(sqlite_url(tmp.path(), "back.db"));

    for pair in chain.windows(2) {
        let out = ok(&["migrate", "--from", &pair[0], "--to", &pair[1], "--all"]);
        assert!(
            out.contains("4 copied, 0 unchanged, 0 skipped, 0 failed"),
            "{} -> {}: {out}",
            pair[0],
            pair[1]
        );
        assert_eq!(export_all(&pair[1]), expected, "{} -> {}", pair[0], pair[1]);
        // Idempotent: the second run changes nothing.
        let again = ok(&["migrate", "--from", &pair[0], "--to", &pair[1]]);
        assert!(
            again.contains("0 copied, 4 unchanged, 0 skipped, 0 failed"),
            "{again}"
        );
    }
}

#[test]
fn migrate_keeps_newer_target_checkpoints_unless_told() {
    let tmp = tempfile::tempdir().unwrap();
    let export = write(tmp.path(), "seed.jsonl", &sample_export());
    let from = sqlite_url(tmp.path(), "from.db");
    let to = format!("file:{}", tmp.path().join("to").display());
    ok(&["import", &from, "--input", &export]);
    ok(&["migrate", "--from", &from, "--to", &to]);
    // A processor on the target moved partition 0 further.
    ok(&[
        "reset",
        &to,
        "--namespace",
        NS,
        "--hub",
        HUB,
        "--partition",
        "0",
        "--offset",
        "9999",
        "--sequence-number",
        "99",
    ]);
    let out = run(&[
        "migrate",
        "--from",
        &from,
        "--to",
        &to,
        "--namespace",
        NS,
        "--hub",
        HUB,
    ]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("0 copied, 2 unchanged, 1 skipped, 0 failed"),
        "{stdout}"
    );
    assert!(
        stderr.contains("newer") && stderr.contains("--overwrite-newer"),
        "{stderr}"
    );
    let status = ok(&["status", &to, "--namespace", NS, "--hub", HUB, "--json"]);
    assert!(status.contains("\"sequence_number\": 99"), "{status}");

    let dry = ok(&[
        "migrate",
        "--from",
        &from,
        "--to",
        &to,
        "--overwrite-newer",
        "--dry-run",
    ]);
    assert!(dry.contains("dry run: 1 to copy"), "{dry}");
    let status = ok(&["status", &to, "--namespace", NS, "--hub", HUB, "--json"]);
    assert!(
        status.contains("\"sequence_number\": 99"),
        "a dry run wrote: {status}"
    );

    let forced = ok(&["migrate", "--from", &from, "--to", &to, "--overwrite-newer"]);
    assert!(
        forced.contains("1 copied, 3 unchanged, 0 skipped, 0 failed"),
        "{forced}"
    );
    assert_eq!(export_all(&to), export_all(&from));
}

#[test]
fn migrate_from_a_missing_store_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("target.db");
    let err = fails(&[
        "migrate",
        "--from",
        &sqlite_url(tmp.path(), "typo.db"),
        "--to",
        &format!("sqlite:{}", target.display()),
    ]);
    assert!(err.contains("does not exist"), "{err}");
    assert!(!target.exists(), "the target was created for a failed migration");
    assert!(!tmp.path().join("typo.db").exists());
}
