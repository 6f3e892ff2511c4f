//! Behaviour of the PostgreSQL store beyond the shared suite: migrations on request, races over
//! many partitions, fencing against a take-over, secrets. (Connections cut by the server: the
//! suite's `c12_acknowledged_writes_survive_cut_connections`.)

// Test code: unwrap/panic report failures (clippy.toml allows them in #[test] fns only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use eventhubs_store_core::{
    Checkpoint, CheckpointStore, ClaimOptions, ErrorKind, Ownership, PartitionScope, SetCheckpointOptions,
};
use eventhubs_store_postgres::{PostgresOptions, PostgresStore};
use support::{configured_url, db_or_skip, unique_name};

fn scope() -> PartitionScope {
    PartitionScope::new("ns.servicebus.windows.net", "hub", "$Default").unwrap()
}

fn opts() -> ClaimOptions {
    ClaimOptions::default()
}

#[tokio::test]
async fn migrate_runs_on_request_only_and_is_idempotent() {
    let Some(db) = db_or_skip("migrate").await else {
        return;
    };
    // A store on a schema nobody migrated: calls fail with NotFound and say what to do.
    let other = PostgresOptions::new(&db.url)
        .schema(unique_name("unmigrated"))
        .connect()
        .await
        .unwrap();
    let e = other.list_ownership(&scope()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("migrate()"), "{e}");
    let e = other
        .claim_ownership(&[Ownership::new(scope(), "0", "a")], &opts())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    // ...and still nothing was created behind our back.
    let e = other.list_checkpoints(&scope()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");

    // Migrating twice (and concurrently) is fine.
    let (a, b) = tokio::join!(db.store.migrate(), db.store.migrate());
    a.unwrap();
    b.unwrap();
    db.store.migrate().await.unwrap();
    assert!(db.store.list_ownership(&scope()).await.unwrap().is_empty());
    db.cleanup().await.unwrap();
}

#[tokio::test]
async fn c7_racing_batches_over_many_partitions_have_one_winner_each_and_never_deadlock() {
    let Some(db) = db_or_skip("race").await else {
        return;
    };
    const PARTITIONS: usize = 16;
    const RACERS: usize = 8;
    let base: Vec<Ownership> = (0..PARTITIONS)
        .map(|p| Ownership::new(scope(), p.to_string(), "seed"))
        .collect();
    let seeded = db.store.claim_ownership(&base, &opts()).await.unwrap();
    assert_eq!(seeded.len(), PARTITIONS);

    let mut handles: Vec<PostgresStore> = vec![db.store.clone()];
    for _ in 1..3 {
        handles.push(db.reopen().await.unwrap());
    }
    let mut tasks = Vec::new();
    for racer in 0..RACERS {
        let store = handles[racer % handles.len()].clone();
        // Each racer claims every partition, in its own order, with the seeded etags.
        let mut claims: Vec<Ownership> = seeded
            .iter()
            .map(|o| {
                Ownership::new(scope(), &o.partition_id, format!("racer-{racer}")).with_etag(o.etag.clone())
            })
            .collect();
        claims.rotate_left(racer * 3 % PARTITIONS);
        if racer % 2 == 1 {
            claims.reverse();
        }
        tasks.push(tokio::spawn(async move {
            store.claim_ownership(&claims, &ClaimOptions::default()).await
        }));
    }
    let mut winners: Vec<Ownership> = Vec::new();
    for t in tasks {
        winners.extend(t.await.unwrap().expect("a racing batch must not fail (C6)"));
    }
    assert_eq!(winners.len(), PARTITIONS, "exactly one winner per partition (C7)");
    let stored = db.store.list_ownership(&scope()).await.unwrap();
    for w in &winners {
        let s = stored.iter().find(|s| s.partition_id == w.partition_id).unwrap();
        assert_eq!(s, w, "the stored record is the winner's (C7)");
    }
    db.cleanup().await.unwrap();
}

#[tokio::test]
async fn c5_etags_are_fresh_and_times_never_go_back() {
    let Some(db) = db_or_skip("c5").await else { return };
    let mut last = db
        .store
        .claim_ownership(&[Ownership::new(scope(), "0", "a")], &opts())
        .await
        .unwrap()
        .remove(0);
    let mut seen = std::collections::HashSet::new();
    seen.insert(last.etag.clone().unwrap());
    for _ in 0..50 {
        let next = db
            .store
            .claim_ownership(
                &[Ownership::new(scope(), "0", "a").with_etag(last.etag.clone())],
                &opts(),
            )
            .await
            .unwrap()
            .remove(0);
        assert!(seen.insert(next.etag.clone().unwrap()), "etag repeated");
        assert!(next.last_modified_time >= last.last_modified_time);
        last = next;
    }
    assert_eq!(db.store.list_ownership(&scope()).await.unwrap(), vec![last]);
    db.cleanup().await.unwrap();
}

#[tokio::test]
async fn c6_one_batch_spanning_scopes_wins_and_loses_per_claim() {
    let Some(db) = db_or_skip("scopes").await else {
        return;
    };
    let other = PartitionScope::new("ns.servicebus.windows.net", "hub", "other").unwrap();
    db.store
        .claim_ownership(&[Ownership::new(other.clone(), "1", "x")], &opts())
        .await
        .unwrap();
    let won = db
        .store
        .claim_ownership(
            &[
                Ownership::new(scope(), "1", "me"),
                Ownership::new(other.clone(), "1", "me"), // exists: lost (C3)
                Ownership::new(other.clone(), "2", "me"),
            ],
            &opts(),
        )
        .await
        .unwrap();
    let got: Vec<(String, String)> = won
        .iter()
        .map(|o| (o.scope.consumer_group().to_owned(), o.partition_id.clone()))
        .collect();
    assert_eq!(
        got,
        vec![("$default".into(), "1".into()), ("other".into(), "2".into())]
    );
    assert_eq!(db.store.list_scopes().await.unwrap(), vec![scope(), other]);
    db.cleanup().await.unwrap();
}

#[tokio::test]
async fn c13_fenced_checkpoints_stop_at_the_take_over() {
    let Some(db) = db_or_skip("fence").await else {
        return;
    };
    let a = db
        .store
        .claim_ownership(&[Ownership::new(scope(), "0", "a")], &opts())
        .await
        .unwrap()
        .remove(0);
    let cp = |seq: i64| Checkpoint::new(scope(), "0", Some(format!("{seq}")), Some(seq));
    db.store
        .set_checkpoint(&cp(1), &SetCheckpointOptions::fenced("a"))
        .await
        .unwrap();

    // A zombie keeps writing while B takes the partition over; once B's claim is acknowledged,
    // no write of A may land.
    let stop = Arc::new(AtomicBool::new(false));
    let zombie = {
        let store = db.reopen().await.unwrap();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut seq = 2;
            let mut refused = 0;
            while !stop.load(Ordering::SeqCst) {
                match store
                    .set_checkpoint(&cp(seq), &SetCheckpointOptions::fenced("a"))
                    .await
                {
                    Ok(()) => seq += 1,
                    Err(e) => {
                        assert_eq!(e.kind(), ErrorKind::OwnershipLost, "{e}");
                        refused += 1;
                    }
                }
                if refused > 20 {
                    break;
                }
            }
            refused
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    db.store
        .claim_ownership(
            &[Ownership::new(scope(), "0", "b").with_etag(a.etag.clone())],
            &opts(),
        )
        .await
        .unwrap()
        .remove(0);
    let after_takeover = db.store.list_checkpoints(&scope()).await.unwrap();
    let refused = zombie.await.unwrap();
    stop.store(true, Ordering::SeqCst);
    assert!(refused > 0, "the zombie must have been refused");
    assert_eq!(db.store.list_checkpoints(&scope()).await.unwrap(), after_takeover);

    // Relinquished (owner "") holds nothing, and "" as required owner is refused.
    let e = db
        .store
        .set_checkpoint(&cp(99), &SetCheckpointOptions::fenced(""))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OwnershipLost);
    db.store
        .set_checkpoint(&cp(100), &SetCheckpointOptions::fenced("b"))
        .await
        .unwrap();
    db.cleanup().await.unwrap();
}

#[tokio::test]
async fn debug_and_errors_never_show_the_password() {
    let Some(db) = db_or_skip("secrets").await else {
        return;
    };
    // Trust authentication ignores the password, so this connects and we can look at Debug.
    let mut url = url::Url::parse(&configured_url()).unwrap();
    if url.port().is_none() || url.host_str().is_none() {
        db.cleanup().await.unwrap();
        return;
    }
    url.set_password(Some("hunter2-secret")).unwrap();
    match PostgresStore::connect(url.as_str()).await {
        Ok(store) => {
            let d = format!("{store:?}");
            assert!(!d.contains("hunter2"), "{d}");
            assert!(d.contains("PostgresStore"), "{d}");
        }
        Err(e) => {
            assert!(!e.to_string().contains("hunter2"), "{e}");
            assert!(!format!("{e:?}").contains("hunter2"), "{e:?}");
        }
    }
    // A server that is not there: retryable, and no password in the message.
    let e = PostgresOptions::new("postgres://u:hunter2-secret@127.0.0.1:1/x")
        .acquire_timeout(Duration::from_secs(1))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    assert!(!format!("{e:?}").contains("hunter2"), "{e:?}");
    db.cleanup().await.unwrap();
}
