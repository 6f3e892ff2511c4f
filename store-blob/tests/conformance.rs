//! The shared conformance suite (C1–C13) against Azurite, each case in its own container,
//! deleted afterwards, and through its own [`CutProxy`], which cuts the case's connections when
//! the suite asks (`Instance::interrupt`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail by panicking

mod common;

use std::sync::Arc;

use common::cut_proxy::CutProxy;
use eventhubs_conformance::{Harness, Instance, SetupError, conformance_tests};
use eventhubs_store_blob::BlobStore;
use eventhubs_store_core::{BoxError, CheckpointStore};

struct BlobHarness;

struct BlobInstance {
    store: Arc<BlobStore>,
    connection_string: String,
    proxy: CutProxy,
}

#[async_trait::async_trait]
impl Harness for BlobHarness {
    fn name(&self) -> &str {
        "blob"
    }

    async fn setup(&self) -> Result<Box<dyn Instance>, SetupError> {
        let url = common::azurite_url().map_err(|why| SetupError::unreachable(why, common::HOW_TO_ENABLE))?;
        let proxy = CutProxy::start(&url).await.map_err(SetupError::failed)?;
        let connection_string = common::connection_string(&proxy.url);
        let store = BlobStore::from_connection_string(&connection_string, &common::unique_container("c"))?;
        match store.create_container_if_missing().await {
            Ok(_) => {}
            Err(e) if e.kind() == eventhubs_store_core::ErrorKind::Unavailable => {
                return Err(SetupError::unreachable(
                    format!("Azurite at {url} does not answer: {e}"),
                    common::HOW_TO_ENABLE,
                ));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(Box::new(BlobInstance {
            store: Arc::new(store),
            connection_string,
            proxy,
        }))
    }
}

#[async_trait::async_trait]
impl Instance for BlobInstance {
    fn store(&self) -> Arc<dyn CheckpointStore> {
        self.store.clone()
    }

    /// A new client (own HTTP connection pool) on the same container.
    async fn reopen(&self) -> Result<Option<Arc<dyn CheckpointStore>>, BoxError> {
        let store = BlobStore::from_connection_string(&self.connection_string, self.store.container_name())?;
        Ok(Some(Arc::new(store)))
    }

    /// Closes every connection through the case's proxy, mid-request or idle.
    async fn interrupt(&self) -> Result<Option<u64>, BoxError> {
        Ok(Some(self.proxy.cut()))
    }

    async fn cleanup(self: Box<Self>) -> Result<(), BoxError> {
        self.store.delete_container().await?;
        Ok(())
    }
}

conformance_tests!(BlobHarness);
