//! The shared conformance suite (C1–C13) against Redis, exactly as a third party runs it.
//!
//! Server: `EVENTHUBS_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`). Every case gets its
//! own key prefix; its keys are deleted afterwards.

// Test code: unwrap/panic report failures (clippy.toml allows them in #[test] fns only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use eventhubs_conformance::{Harness, Instance, SetupError, conformance_tests};
use eventhubs_store_core::{BoxError, CheckpointStore};
use eventhubs_store_redis::RedisStore;
use support::{HOW_TO_ENABLE, TestRedis, Unavailable};

struct RedisHarness;

struct RedisInstance {
    db: TestRedis,
    store: Arc<RedisStore>,
}

#[async_trait::async_trait]
impl Harness for RedisHarness {
    fn name(&self) -> &str {
        "redis"
    }

    async fn setup(&self) -> Result<Box<dyn Instance>, SetupError> {
        match TestRedis::create("conf").await {
            Ok(db) => Ok(Box::new(RedisInstance {
                store: Arc::new(db.store.clone()),
                db,
            })),
            Err(Unavailable::Unreachable(why)) => Err(SetupError::unreachable(why, HOW_TO_ENABLE)),
            Err(Unavailable::Failed(e)) => Err(SetupError::failed(e)),
        }
    }
}

#[async_trait::async_trait]
impl Instance for RedisInstance {
    fn store(&self) -> Arc<dyn CheckpointStore> {
        self.store.clone()
    }

    /// A new connection on the same prefix: what a restarted process would open.
    async fn reopen(&self) -> Result<Option<Arc<dyn CheckpointStore>>, BoxError> {
        Ok(Some(Arc::new(self.db.reopen().await?)))
    }

    /// `CLIENT KILL USER` of the case's own ACL user: only this case's connections.
    async fn interrupt(&self) -> Result<Option<u64>, BoxError> {
        Ok(Some(self.db.cut_connections().await?))
    }

    async fn cleanup(self: Box<Self>) -> Result<(), BoxError> {
        Ok(self.db.cleanup().await?)
    }
}

conformance_tests!(RedisHarness);
