//! The shared conformance suite (C1–C13) against a live Redis Cluster of three masters: proof
//! that every call of the store touches one hash slot (keys of a scope share a hash tag) and
//! that scripts run where their keys live.
//!
//! Cluster: `EVENTHUBS_TEST_REDIS_CLUSTER_URLS` (comma separated), or else a three-node cluster
//! the test process starts itself (`scripts/start-redis-cluster.sh`) where `redis-server` is on
//! PATH. Every case gets its own key prefix and ACL user, deleted afterwards.

// Test code: unwrap/panic report failures (clippy.toml allows them in #[test] fns only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use eventhubs_conformance::{Harness, Instance, SetupError, conformance_tests};
use eventhubs_store_core::{BoxError, CheckpointStore};
use eventhubs_store_redis::RedisStore;
use support::Unavailable;
use support::cluster::{HOW_TO_ENABLE, TestCluster};

struct ClusterHarness;

struct ClusterInstance {
    cluster: TestCluster,
    store: Arc<RedisStore>,
}

#[async_trait::async_trait]
impl Harness for ClusterHarness {
    fn name(&self) -> &str {
        "redis-cluster"
    }

    async fn setup(&self) -> Result<Box<dyn Instance>, SetupError> {
        match TestCluster::create("cl").await {
            Ok(cluster) => Ok(Box::new(ClusterInstance {
                store: Arc::new(cluster.store.clone()),
                cluster,
            })),
            Err(Unavailable::Unreachable(why)) => Err(SetupError::unreachable(why, HOW_TO_ENABLE)),
            Err(Unavailable::Failed(e)) => Err(SetupError::failed(e)),
        }
    }
}

#[async_trait::async_trait]
impl Instance for ClusterInstance {
    fn store(&self) -> Arc<dyn CheckpointStore> {
        self.store.clone()
    }

    /// A new cluster connection on the same prefix: what a restarted process would open.
    async fn reopen(&self) -> Result<Option<Arc<dyn CheckpointStore>>, BoxError> {
        Ok(Some(Arc::new(self.cluster.reopen().await?)))
    }

    /// `CLIENT KILL USER` of the case's own ACL user on every node.
    async fn interrupt(&self) -> Result<Option<u64>, BoxError> {
        Ok(Some(self.cluster.cut_connections().await?))
    }

    async fn cleanup(self: Box<Self>) -> Result<(), BoxError> {
        Ok(self.cluster.cleanup().await?)
    }
}

conformance_tests!(ClusterHarness);
