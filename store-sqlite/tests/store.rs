//! Behaviour specific to the SQLite store, beyond the shared suite: opening files (missing,
//! damaged, foreign, locked), exact round trips, microsecond times, etags across reopen.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail by panicking

use std::collections::HashSet;
use std::time::Duration;

use eventhubs_store_core::{
    Checkpoint, CheckpointStore, ClaimOptions, ErrorKind, Ownership, PartitionScope, SetCheckpointOptions,
};
use eventhubs_store_sqlite::{SqliteOptions, SqliteStore, Synchronous};

fn scope() -> PartitionScope {
    PartitionScope::new("ns.servicebus.windows.net", "hub", "$default").unwrap()
}

fn claim(partition: &str, owner: &str, etag: Option<&Ownership>) -> Ownership {
    Ownership::new(scope(), partition, owner).with_etag(etag.and_then(|o| o.etag.clone()))
}

#[tokio::test]
async fn open_in_a_missing_directory_is_not_found_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing").join("checkpoints.db");
    let e = SqliteStore::open(&path).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(
        e.to_string().contains("checkpoints.db"),
        "the error names the file: {e}"
    );
    assert!(!dir.path().join("missing").exists());
}

#[tokio::test]
async fn open_of_a_file_that_is_not_a_database_is_a_backend_error_and_leaves_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    let garbage = "these are not the pages you are looking for\n".repeat(200);
    std::fs::write(&path, &garbage).unwrap();
    let e = SqliteStore::open(&path).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Backend, "{e}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), garbage);
}

#[tokio::test]
async fn open_of_another_applications_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
        .unwrap();
    let e = SqliteStore::open(&path).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let tables: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tables, 1, "no table added to the foreign database");
}

#[tokio::test]
async fn c12_writes_survive_dropping_every_handle() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let won = store
        .claim_ownership(&[claim("0", "a", None)], &ClaimOptions::default())
        .await
        .unwrap();
    let cp = Checkpoint::new(scope(), "0", Some("17".into()), Some(17));
    store
        .set_checkpoint(&cp, &SetCheckpointOptions::new())
        .await
        .unwrap();
    drop(store);

    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.list_ownership(&scope()).await.unwrap(), won);
    assert_eq!(store.list_checkpoints(&scope()).await.unwrap(), vec![cp]);
}

#[tokio::test]
async fn c9_extreme_values_round_trip_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("c.db")).await.unwrap();
    let cases = [
        (Some("0".to_string()), Some(i64::MIN)),
        (Some("00042".to_string()), Some(i64::MAX)),
        (Some("geo:3:7ff;\"quoted\" 'x' ä 日本 🦀".to_string()), None),
        (Some("x".repeat(256)), Some(-1)),
        (None, Some(0)),
    ];
    for (i, (offset, seq)) in cases.into_iter().enumerate() {
        let cp = Checkpoint::new(scope(), i.to_string(), offset, seq);
        store
            .set_checkpoint(&cp, &SetCheckpointOptions::new())
            .await
            .unwrap();
        let stored = store.list_checkpoints(&scope()).await.unwrap();
        assert_eq!(
            stored.iter().find(|c| c.partition_id == cp.partition_id),
            Some(&cp)
        );
    }
}

#[tokio::test]
async fn c5_times_have_microsecond_precision_and_never_go_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("c.db")).await.unwrap();
    let mut current = store
        .claim_ownership(&[claim("0", "a", None)], &ClaimOptions::default())
        .await
        .unwrap()
        .remove(0);
    let mut times = vec![current.last_modified_time.unwrap()];
    let mut etags = HashSet::from([current.etag.clone().unwrap()]);
    for _ in 0..50 {
        current = store
            .claim_ownership(&[claim("0", "a", Some(&current))], &ClaimOptions::default())
            .await
            .unwrap()
            .remove(0);
        let listed = store.list_ownership(&scope()).await.unwrap();
        assert_eq!(
            listed,
            vec![current.clone()],
            "a claim returns exactly what is stored"
        );
        times.push(current.last_modified_time.unwrap());
        assert!(etags.insert(current.etag.clone().unwrap()), "C5: etag repeated");
    }
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "C5: time went back: {times:?}"
    );
    assert!(
        times.iter().all(|t| t.nanosecond() % 1000 == 0),
        "stored as whole microseconds"
    );
    let distinct: HashSet<_> = times.iter().collect();
    assert!(
        distinct.len() > 1,
        "51 claims in a row should not all share one microsecond"
    );
}

#[tokio::test]
async fn c5_etags_never_repeat_across_reopen_or_a_recreated_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let mut seen = HashSet::new();
    for _ in 0..3 {
        let store = SqliteStore::open(&path).await.unwrap();
        for p in 0..10 {
            let current = store.list_ownership(&scope()).await.unwrap();
            let previous = current.iter().find(|o| o.partition_id == p.to_string());
            let won = store
                .claim_ownership(&[claim(&p.to_string(), "a", previous)], &ClaimOptions::default())
                .await
                .unwrap();
            assert!(seen.insert(won[0].etag.clone().unwrap()), "C5: etag repeated");
        }
        drop(store);
        std::fs::remove_file(&path).unwrap();
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
    assert_eq!(seen.len(), 30);
}

#[tokio::test]
async fn a_write_lock_held_past_the_busy_timeout_is_unavailable_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let options = SqliteOptions::new().busy_timeout(Duration::from_millis(100));
    let store = SqliteStore::open_with(&path, options).await.unwrap();
    let blocker = rusqlite::Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();

    let e = store
        .claim_ownership(&[claim("0", "a", None)], &ClaimOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable());
    let cp = Checkpoint::new(scope(), "0", Some("1".into()), None);
    let e = store
        .set_checkpoint(&cp, &SetCheckpointOptions::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    // Reads are not blocked by a writer in WAL mode.
    assert!(store.list_ownership(&scope()).await.unwrap().is_empty());

    blocker.execute_batch("ROLLBACK").unwrap();
    assert!(
        store.list_checkpoints(&scope()).await.unwrap().is_empty(),
        "nothing was written"
    );
    let won = store
        .claim_ownership(&[claim("0", "a", None)], &ClaimOptions::default())
        .await
        .unwrap();
    assert_eq!(won.len(), 1, "the retry succeeds once the lock is free");
}

#[tokio::test]
async fn a_record_that_does_not_parse_is_a_backend_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store
        .claim_ownership(&[claim("0", "a", None)], &ClaimOptions::default())
        .await
        .unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("UPDATE ownership SET last_modified_us = ?1", [i64::MAX])
        .unwrap();
    let e = store.list_ownership(&scope()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Backend, "{e}");
    assert!(e.to_string().contains("corrupt record"), "{e}");
}

#[tokio::test]
async fn c13_fenced_checkpoint_of_a_relinquished_partition_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("c.db")).await.unwrap();
    let won = store
        .claim_ownership(&[claim("0", "a", None)], &ClaimOptions::default())
        .await
        .unwrap();
    store
        .claim_ownership(&[claim("0", "", Some(&won[0]))], &ClaimOptions::default())
        .await
        .unwrap();
    let cp = Checkpoint::new(scope(), "0", Some("5".into()), Some(5));
    for owner in ["a", ""] {
        let e = store
            .set_checkpoint(&cp, &SetCheckpointOptions::fenced(owner))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::OwnershipLost, "owner {owner:?}: {e}");
        assert!(e.to_string().contains("C13"), "{e}");
    }
    assert!(store.list_checkpoints(&scope()).await.unwrap().is_empty());
}

#[tokio::test]
async fn clones_share_data_and_debug_shows_path_and_options() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let options = SqliteOptions::new()
        .synchronous(Synchronous::Normal)
        .max_idle_readers(0);
    let store = SqliteStore::open_with(&path, options.clone()).await.unwrap();
    let clone = store.clone();
    clone
        .claim_ownership(&[claim("0", "a", None)], &ClaimOptions::default())
        .await
        .unwrap();
    assert_eq!(store.list_ownership(&scope()).await.unwrap().len(), 1);
    assert_eq!(store.options(), &options);
    let debug = format!("{store:?}");
    assert!(debug.contains("c.db") && debug.contains("Normal"), "{debug}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_opens_of_a_new_file_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let opens: Vec<_> = (0..8)
        .map(|_| {
            let path = path.clone();
            tokio::spawn(async move { SqliteStore::open(path).await })
        })
        .collect();
    for open in opens {
        let store = open.await.unwrap().unwrap();
        assert!(store.list_scopes().await.unwrap().is_empty());
    }
}

#[test]
fn works_without_a_tokio_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let store = block_on_without_tokio(Box::pin(SqliteStore::open(&path))).unwrap();
    let cp = Checkpoint::new(scope(), "0", Some("1".into()), Some(1));
    block_on_without_tokio(Box::pin(store.set_checkpoint(&cp, &SetCheckpointOptions::new()))).unwrap();
    let listed = block_on_without_tokio(Box::pin(store.list_checkpoints(&scope()))).unwrap();
    assert_eq!(listed, vec![cp]);
}

/// A minimal executor for futures that complete without waking (no tokio runtime present).
fn block_on_without_tokio<F: std::future::Future + Unpin>(mut future: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = std::pin::Pin::new(&mut future).poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}
