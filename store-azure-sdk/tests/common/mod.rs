//! The stores the adapter's tests run over: in memory, SQLite (a temp dir), PostgreSQL (its own
//! schema on `EVENTHUBS_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`).
//! With `CI=true` an unreachable PostgreSQL fails the test; otherwise one loud line says why it
//! was skipped.

#![allow(dead_code)]

use std::sync::Arc;

use eventhubs_store_core::{CheckpointStore, InMemoryStore};

pub const POSTGRES_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/test";

pub fn in_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true" | "1"))
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

pub async fn sqlite(dir: &tempfile::TempDir) -> Arc<dyn CheckpointStore> {
    Arc::new(
        eventhubs_store_sqlite::SqliteStore::open(dir.path().join("checkpoints.db"))
            .await
            .expect("sqlite opens"),
    )
}

/// A migrated store in a schema of its own, or `None` (skipped loudly) outside CI.
pub async fn postgres() -> Option<Arc<dyn CheckpointStore>> {
    let url = std::env::var("EVENTHUBS_TEST_POSTGRES_URL").unwrap_or_else(|_| POSTGRES_DEFAULT.to_owned());
    let connected = eventhubs_store_postgres::PostgresOptions::new(&url)
        .schema(unique("sdk_adapter"))
        .connect()
        .await;
    let store = match connected {
        Ok(store) => store,
        Err(e) => {
            assert!(!in_ci(), "PostgreSQL could not be reached with CI=true: {e}");
            eprintln!(
                "!!!!!!!! SKIPPING the PostgreSQL adapter tests: {e}; set EVENTHUBS_TEST_POSTGRES_URL \
                 or start PostgreSQL (with CI=true this is a failure) !!!!!!!!"
            );
            return None;
        }
    };
    store.migrate().await.expect("the schema migrates");
    Some(Arc::new(store))
}

pub fn memory() -> Arc<dyn CheckpointStore> {
    Arc::new(InMemoryStore::new())
}
