//! The shared conformance suite (C1–C13) against [`SqliteStore`], one temporary database file
//! per case. `reopen` opens the same file with new connections, as a restarted process would.

use std::sync::Arc;

use eventhubs_conformance::{Harness, Instance, SetupError, conformance_tests};
use eventhubs_store_core::{BoxError, CheckpointStore};
use eventhubs_store_sqlite::SqliteStore;

struct SqliteHarness;

struct SqliteInstance {
    dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
}

#[async_trait::async_trait]
impl Harness for SqliteHarness {
    fn name(&self) -> &str {
        "sqlite"
    }

    async fn setup(&self) -> Result<Box<dyn Instance>, SetupError> {
        let dir = tempfile::tempdir().map_err(SetupError::failed)?;
        let store = SqliteStore::open(dir.path().join("checkpoints.db")).await?;
        Ok(Box::new(SqliteInstance {
            dir,
            store: Arc::new(store),
        }))
    }
}

#[async_trait::async_trait]
impl Instance for SqliteInstance {
    fn store(&self) -> Arc<dyn CheckpointStore> {
        self.store.clone()
    }

    async fn reopen(&self) -> Result<Option<Arc<dyn CheckpointStore>>, BoxError> {
        let store = SqliteStore::open(self.store.path()).await?;
        Ok(Some(Arc::new(store)))
    }

    async fn cleanup(self: Box<Self>) -> Result<(), BoxError> {
        let SqliteInstance { dir, store } = *self;
        drop(store);
        dir.close()?;
        Ok(())
    }
}

// Left out: an embedded database has no connection to cut (C12 across a real kill -9 is in
// tests/crash.rs).
conformance_tests!(SqliteHarness, except: [c12_acknowledged_writes_survive_cut_connections]);
