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
    let zombie: Arc<dyn CheckpointStore> = Arc::new(db.reopen().await.unwrap());
    let taker: Arc<dyn CheckpointStore> = Arc::new(db.store.clone());
    let seen = zombie_against_take_over(zombie, taker, a.etag.clone())
        .await
        .unwrap_or_else(|violation| panic!("{violation}"));
    assert!(seen.refused_after > 0, "{seen:?}");

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

/// What the zombie of [`zombie_against_take_over`] saw.
#[derive(Debug)]
struct ZombieRun {
    /// Writes that landed before the take-over was acknowledged.
    landed_before: usize,
    /// Writes started after the take-over was acknowledged and refused (all of them must be).
    refused_after: usize,
}

/// A zombie (owner "a", its own handle) writes fenced checkpoints with rising sequence numbers
/// while `taker` takes partition 0 over as "b" with `etag`. Err describes the violation (C13):
/// a write started after the take-over was acknowledged that landed, or a stored checkpoint
/// that no write started before the take-over explains. Bounded: never hangs, whatever the
/// store does.
async fn zombie_against_take_over(
    zombie: Arc<dyn CheckpointStore>,
    taker: Arc<dyn CheckpointStore>,
    etag: Option<eventhubs_store_core::ETag>,
) -> Result<ZombieRun, String> {
    let cp = |seq: i64| Checkpoint::new(scope(), "0", Some(format!("{seq}")), Some(seq));
    let taken = Arc::new(AtomicBool::new(false));
    let landed = Arc::new(tokio::sync::Notify::new());
    // (sequence number, started after the take-over was acknowledged, outcome). The zombie
    // stops by itself after 20 attempts started after the take-over, or after 20,000 in all.
    let writes = {
        let (taken, landed) = (Arc::clone(&taken), Arc::clone(&landed));
        tokio::spawn(async move {
            let mut log: Vec<(i64, bool, Result<(), ErrorKind>)> = Vec::new();
            for seq in 2..20_000 {
                let after = taken.load(Ordering::SeqCst);
                if log.iter().filter(|(_, a, _)| *a).count() >= 20 {
                    break;
                }
                let outcome = zombie
                    .set_checkpoint(&cp(seq), &SetCheckpointOptions::fenced("a"))
                    .await
                    .map_err(|e| e.kind());
                if outcome.is_ok() {
                    landed.notify_one();
                }
                log.push((seq, after, outcome));
            }
            log
        })
    };
    // Take over once the zombie's writes are landing: no sleep.
    tokio::time::timeout(Duration::from_secs(10), landed.notified())
        .await
        .map_err(|_| "the zombie never landed a write before the take-over".to_owned())?;
    let won = taker
        .claim_ownership(&[Ownership::new(scope(), "0", "b").with_etag(etag)], &opts())
        .await
        .map_err(|e| format!("take-over: {e}"))?;
    if won.len() != 1 {
        return Err(format!("the take-over should win, got {won:?}"));
    }
    taken.store(true, Ordering::SeqCst);
    let log = tokio::time::timeout(Duration::from_secs(20), writes)
        .await
        .map_err(|_| "the zombie did not stop".to_owned())?
        .map_err(|e| e.to_string())?;

    let mut run = ZombieRun {
        landed_before: 0,
        refused_after: 0,
    };
    let mut last_started_before = 0;
    for (seq, after, outcome) in &log {
        match (after, outcome) {
            (false, Ok(())) => {
                run.landed_before += 1;
                last_started_before = *seq;
            }
            (false, Err(_)) => last_started_before = *seq,
            (true, Ok(())) => {
                return Err(format!(
                    "C13 broken: the zombie's checkpoint {seq}, started after the take-over was \
                     acknowledged, landed"
                ));
            }
            (true, Err(ErrorKind::OwnershipLost)) => run.refused_after += 1,
            (true, Err(kind)) => return Err(format!("checkpoint {seq} after the take-over: {kind:?}")),
        }
    }
    if run.refused_after == 0 {
        return Err(format!("the zombie made no write after the take-over: {run:?}"));
    }
    let stored = taker
        .list_checkpoints(&scope())
        .await
        .map_err(|e| e.to_string())?;
    let stored_seq = stored.first().and_then(|c| c.sequence_number).unwrap_or(0);
    if stored_seq > last_started_before {
        return Err(format!(
            "C13 broken: the stored checkpoint {stored_seq} was written after the take-over (the \
             last write started before it was {last_started_before})"
        ));
    }
    Ok(run)
}

/// A store that declares fencing but writes fenced checkpoints unconditionally.
#[derive(Debug)]
struct IgnoresFence(Arc<dyn CheckpointStore>);

#[async_trait::async_trait]
impl CheckpointStore for IgnoresFence {
    async fn list_ownership(&self, scope: &PartitionScope) -> eventhubs_store_core::Result<Vec<Ownership>> {
        self.0.list_ownership(scope).await
    }
    async fn claim_ownership(
        &self,
        claims: &[Ownership],
        options: &ClaimOptions,
    ) -> eventhubs_store_core::Result<Vec<Ownership>> {
        self.0.claim_ownership(claims, options).await
    }
    async fn list_checkpoints(
        &self,
        scope: &PartitionScope,
    ) -> eventhubs_store_core::Result<Vec<Checkpoint>> {
        self.0.list_checkpoints(scope).await
    }
    async fn set_checkpoint(
        &self,
        checkpoint: &Checkpoint,
        _options: &SetCheckpointOptions,
    ) -> eventhubs_store_core::Result<()> {
        self.0
            .set_checkpoint(checkpoint, &SetCheckpointOptions::default())
            .await
    }
    fn backend_name(&self) -> &'static str {
        "ignores-fence"
    }
    fn capabilities(&self) -> eventhubs_store_core::Capabilities {
        self.0.capabilities()
    }
}

/// The zombie check fails, quickly, against a store that ignores the fence: it can fail.
#[tokio::test]
async fn c13_the_zombie_check_catches_a_store_that_ignores_the_fence() {
    let Some(db) = db_or_skip("fence_broken").await else {
        return;
    };
    let a = db
        .store
        .claim_ownership(&[Ownership::new(scope(), "0", "a")], &opts())
        .await
        .unwrap()
        .remove(0);
    let zombie: Arc<dyn CheckpointStore> = Arc::new(IgnoresFence(Arc::new(db.reopen().await.unwrap())));
    let taker: Arc<dyn CheckpointStore> = Arc::new(db.store.clone());
    let started = std::time::Instant::now();
    let violation = zombie_against_take_over(zombie, taker, a.etag.clone())
        .await
        .expect_err("a store that ignores the fence must be caught");
    assert!(violation.contains("C13 broken"), "{violation}");
    assert!(started.elapsed() < Duration::from_secs(30), "caught, but slowly");
    db.cleanup().await.unwrap();
}

#[tokio::test]
async fn debug_and_errors_never_show_the_password() {
    let Some(db) = db_or_skip("secrets").await else {
        return;
    };
    // Trust authentication ignores the password, so this connects and we can look at Debug.
    let mut url = url::Url::parse(&configured_url()).unwrap();
    if url.port().is_none() {
        url.set_port(Some(5432)).unwrap();
    }
    if url.host_str().is_none_or(str::is_empty) {
        // A socket-directory URL cannot carry a password: this check cannot run here.
        db.cleanup().await.unwrap();
        eventhubs_conformance::skip_unless_ci(
            "postgres (password redaction)",
            "EVENTHUBS_TEST_POSTGRES_URL names no host, so it cannot carry a password",
            "set EVENTHUBS_TEST_POSTGRES_URL=postgres://user@host:port/db",
        );
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
