//! The shared conformance suite (C1–C13) against PostgreSQL, exactly as a third party runs it.
//!
//! Server: `EVENTHUBS_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//! Every case gets its own migrated schema, dropped afterwards.

// Test code: unwrap/panic report failures (clippy.toml allows them in #[test] fns only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use eventhubs_conformance::{Harness, Instance, SetupError, conformance_tests};
use eventhubs_store_core::{BoxError, CheckpointStore};
use eventhubs_store_postgres::PostgresStore;
use support::{HOW_TO_ENABLE, TestDb, Unavailable};

struct PostgresHarness;

struct PostgresInstance {
    db: TestDb,
    store: Arc<PostgresStore>,
}

#[async_trait::async_trait]
impl Harness for PostgresHarness {
    fn name(&self) -> &str {
        "postgres"
    }

    async fn setup(&self) -> Result<Box<dyn Instance>, SetupError> {
        match TestDb::create("conf").await {
            Ok(db) => Ok(Box::new(PostgresInstance {
                store: Arc::new(db.store.clone()),
                db,
            })),
            Err(Unavailable::Unreachable(why)) => Err(SetupError::unreachable(why, HOW_TO_ENABLE)),
            Err(Unavailable::Failed(e)) => Err(SetupError::failed(e)),
        }
    }
}

#[async_trait::async_trait]
impl Instance for PostgresInstance {
    fn store(&self) -> Arc<dyn CheckpointStore> {
        self.store.clone()
    }

    /// A new pool on the same schema: what a restarted process would open.
    async fn reopen(&self) -> Result<Option<Arc<dyn CheckpointStore>>, BoxError> {
        Ok(Some(Arc::new(self.db.reopen().await?)))
    }

    /// `pg_terminate_backend` of every server process with the case's own `application_name`.
    async fn interrupt(&self) -> Result<Option<u64>, BoxError> {
        Ok(Some(self.db.cut_connections().await?))
    }

    async fn cleanup(self: Box<Self>) -> Result<(), BoxError> {
        Ok(self.db.cleanup().await?)
    }
}

conformance_tests!(PostgresHarness);
