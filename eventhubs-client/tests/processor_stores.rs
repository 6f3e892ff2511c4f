//! The Processor runs over any store: two processors split the partitions 2/2 and close
//! cleanly over the in-memory reference, files, SQLite, PostgreSQL and Redis (the last two when
//! their servers are reachable: with `CI=true` an unreachable one fails, otherwise one loud line
//! says it was skipped).

// Test code: unwrap/panic report failures (clippy.toml allows them in #[test] fns only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use eventhubs_client::{EventHubClient, LoadBalancingStrategy, Processor, ProcessorOptions, StartPosition};
use eventhubs_emulator::{Emulator, EmulatorHandle};
use eventhubs_store_core::{CheckpointStore, ErrorKind as StoreErrorKind, InMemoryStore, PartitionScope};

const HUB: &str = "orders";

async fn processor(emulator: &EmulatorHandle, store: &Arc<dyn CheckpointStore>, owner: &str) -> Processor {
    let client = EventHubClient::from_connection_string(&emulator.connection_string(Some(HUB)), None)
        .await
        .unwrap();
    let options = ProcessorOptions {
        strategy: LoadBalancingStrategy::Balanced,
        update_interval: Duration::from_millis(100),
        partition_expiration: Duration::from_secs(10),
        start: StartPosition::Earliest,
        owner_id: Some(owner.to_owned()),
        ..ProcessorOptions::default()
    };
    let p = Processor::new(client, "$Default", Arc::clone(store), options).unwrap();
    p.start().await.unwrap();
    p
}

/// Two processors over `store` settle at 2/2 of 4 partitions; closing both relinquishes all
/// (C8: every record listed with owner `""`).
async fn balance_over(name: &str, store: Arc<dyn CheckpointStore>) {
    let emulator = Emulator::builder().hub(HUB, 4).start().await.unwrap();
    let a = processor(&emulator, &store, "a").await;
    let b = processor(&emulator, &store, "b").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while a.owned_partitions().await.len() != 2 || b.owned_partitions().await.len() != 2 {
        assert!(Instant::now() < deadline, "{name}: never balanced");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.close().await.unwrap();
    b.close().await.unwrap();
    let namespace = format!("localhost:{}", emulator.local_addr().port());
    let scope = PartitionScope::new(&namespace, HUB, "$Default").unwrap();
    let records = store.list_ownership(&scope).await.unwrap();
    assert_eq!(records.len(), 4, "{name}");
    assert!(
        records.iter().all(|r| r.owner_id.is_empty()),
        "{name}: {records:?}"
    );
}

fn unique(tag: &str) -> String {
    format!(
        "ehclient_{tag}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_the_embedded_stores() {
    balance_over("memory", Arc::new(InMemoryStore::new())).await;
    let dir = tempfile::tempdir().unwrap();
    let file = eventhubs_store_file::FileStore::open(dir.path().join("files"))
        .await
        .unwrap();
    balance_over("file", Arc::new(file)).await;
    let sqlite = eventhubs_store_sqlite::SqliteStore::open(dir.path().join("c.db"))
        .await
        .unwrap();
    balance_over("sqlite", Arc::new(sqlite)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_postgres() {
    let url = std::env::var("EVENTHUBS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = unique("pg");
    let store = match eventhubs_store_postgres::PostgresOptions::new(&url)
        .schema(&schema)
        .acquire_timeout(Duration::from_secs(3))
        .connect()
        .await
    {
        Ok(store) => store,
        Err(e) if e.kind() == StoreErrorKind::Unavailable => {
            eventhubs_conformance::skip_unless_ci(
                "postgres",
                &e.to_string(),
                "start PostgreSQL or set EVENTHUBS_TEST_POSTGRES_URL",
            );
            return;
        }
        Err(e) => panic!("{e}"),
    };
    store.migrate().await.unwrap();
    balance_over("postgres", Arc::new(store.clone())).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE")))
        .execute(store.pool())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_redis() {
    let url =
        std::env::var("EVENTHUBS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let prefix = unique("redis");
    let store = match eventhubs_store_redis::RedisOptions::new(&url)
        .prefix(&prefix)
        .connection_timeout(Duration::from_secs(3))
        .connect()
        .await
    {
        Ok(store) => store,
        Err(e) if e.kind() == StoreErrorKind::Unavailable => {
            eventhubs_conformance::skip_unless_ci(
                "redis",
                &e.to_string(),
                "start Redis or set EVENTHUBS_TEST_REDIS_URL",
            );
            return;
        }
        Err(e) => panic!("{e}"),
    };
    balance_over("redis", Arc::new(store)).await;
    let mut conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    for key in keys {
        let _: i64 = redis::cmd("DEL").arg(&key).query_async(&mut conn).await.unwrap();
    }
}
