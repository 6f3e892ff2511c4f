//! The shared conformance suite (C1–C13) against the file store, exactly as a third party runs
//! it: each case gets its own temp directory; `reopen` opens a second `FileStore` on it, as a
//! restarted process would.

use std::sync::Arc;

use eventhubs_conformance::{Harness, Instance, SetupError, conformance_tests};
use eventhubs_store_core::{BoxError, CheckpointStore};
use eventhubs_store_file::FileStore;

struct FileHarness;

struct FileInstance {
    store: Arc<FileStore>,
    dir: tempfile::TempDir,
}

#[async_trait::async_trait]
impl Harness for FileHarness {
    fn name(&self) -> &str {
        "file"
    }

    async fn setup(&self) -> Result<Box<dyn Instance>, SetupError> {
        let dir = tempfile::tempdir().map_err(SetupError::failed)?;
        let store = FileStore::open(dir.path().join("store")).await?;
        Ok(Box::new(FileInstance {
            store: Arc::new(store),
            dir,
        }))
    }
}

#[async_trait::async_trait]
impl Instance for FileInstance {
    fn store(&self) -> Arc<dyn CheckpointStore> {
        self.store.clone()
    }

    async fn reopen(&self) -> Result<Option<Arc<dyn CheckpointStore>>, BoxError> {
        Ok(Some(Arc::new(FileStore::open(self.store.root()).await?)))
    }

    async fn cleanup(self: Box<Self>) -> Result<(), BoxError> {
        Ok(self.dir.close()?)
    }
}

// Left out: files have no connection to cut (C12 across a real kill -9 is in tests/file_store.rs).
conformance_tests!(FileHarness, except: [c12_acknowledged_writes_survive_cut_connections]);
