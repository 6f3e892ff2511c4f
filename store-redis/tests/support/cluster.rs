//! A Redis Cluster for the tests: the nodes in `EVENTHUBS_TEST_REDIS_CLUSTER_URLS` (comma
//! separated), or else a fresh three-node cluster that `scripts/start-redis-cluster.sh` starts
//! for this test process (and stops when it exits) where `redis-server` is on PATH. Each test
//! gets its own key prefix and its own ACL user on every node.

use std::process::Command;
use std::sync::OnceLock;

use eventhubs_store_core::{Error, ErrorKind};
use eventhubs_store_redis::{RedisOptions, RedisStore};

use super::{Unavailable, admin, delete_prefixed_keys, unique_prefix, user_url};

/// The env var naming the nodes of an existing cluster.
pub const URLS_VAR: &str = "EVENTHUBS_TEST_REDIS_CLUSTER_URLS";
/// How to enable the cluster tests.
pub const HOW_TO_ENABLE: &str = "put redis-server and redis-cli (Redis 7) on PATH, the tests then \
    start a three-node cluster themselves, or set EVENTHUBS_TEST_REDIS_CLUSTER_URLS=redis://h:p,redis://h:p,...";

/// One test's store on the cluster, under its own prefix and ACL user.
pub struct TestCluster {
    pub store: RedisStore,
    /// Every node, as the admin.
    pub nodes: Vec<String>,
    /// Every node, as this test's user: what the store connects with.
    pub store_urls: Vec<String>,
    pub prefix: String,
    pub user: String,
}

impl TestCluster {
    /// A store on the cluster under a fresh prefix for `tag`.
    pub async fn create(tag: &str) -> Result<TestCluster, Unavailable> {
        let nodes = node_urls().map_err(Unavailable::Unreachable)?;
        let prefix = unique_prefix(tag);
        let user = format!("{prefix}_user");
        // ACL users are per node: the user is created on each one.
        for node in &nodes {
            let mut conn = admin(node)
                .await
                .map_err(|e| Unavailable::Unreachable(format!("{node}: {e}")))?;
            let _: () = redis::cmd("ACL")
                .arg(&["SETUSER", &user, "on", "nopass", "~*", "&*", "+@all"][..])
                .query_async(&mut conn)
                .await
                .map_err(|e| Unavailable::Failed(Error::backend(format!("ACL SETUSER on {node}: {e}"))))?;
        }
        let store_urls = nodes
            .iter()
            .map(|n| user_url(n, &user))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Unavailable::Failed(Error::backend(e)))?;
        let store = connect(&store_urls, &prefix).await.map_err(|e| {
            if e.kind() == ErrorKind::Unavailable {
                Unavailable::Unreachable(e.to_string())
            } else {
                Unavailable::Failed(e)
            }
        })?;
        Ok(TestCluster {
            store,
            nodes,
            store_urls,
            prefix,
            user,
        })
    }

    /// A second, independent store (its own cluster connection) on the same data.
    pub async fn reopen(&self) -> Result<RedisStore, Error> {
        connect(&self.store_urls, &self.prefix).await
    }

    /// Kills this test's connections on every node (`CLIENT KILL USER`); answers how many.
    pub async fn cut_connections(&self) -> Result<u64, redis::RedisError> {
        let mut cut = 0;
        for node in &self.nodes {
            let n: u64 = redis::cmd("CLIENT")
                .arg(&["KILL", "USER", &self.user][..])
                .query_async(&mut admin(node).await?)
                .await?;
            cut += n;
        }
        Ok(cut)
    }

    /// Deletes the prefix's keys and the user on every node.
    pub async fn cleanup(self) -> Result<(), redis::RedisError> {
        for node in &self.nodes {
            let mut conn = admin(node).await?;
            delete_prefixed_keys(&mut conn, &self.prefix).await?;
            let _: i64 = redis::cmd("ACL")
                .arg(&["DELUSER", &self.user][..])
                .query_async(&mut conn)
                .await?;
        }
        Ok(())
    }
}

async fn connect(urls: &[String], prefix: &str) -> Result<RedisStore, Error> {
    RedisOptions::cluster(urls.iter().map(String::as_str))
        .prefix(prefix)
        .connect()
        .await
}

/// The cluster's node URLs (admin), found or started once per test process.
fn node_urls() -> Result<Vec<String>, String> {
    static URLS: OnceLock<Result<Vec<String>, String>> = OnceLock::new();
    URLS.get_or_init(|| {
        let list = match std::env::var(URLS_VAR) {
            Ok(list) if !list.trim().is_empty() => list,
            _ => start_cluster()?,
        };
        Ok(list
            .split(',')
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty())
            .collect())
    })
    .clone()
}

/// Runs `scripts/start-redis-cluster.sh --watch-pid <this process>` and answers its URL list.
fn start_cluster() -> Result<String, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/start-redis-cluster.sh");
    let output = Command::new("bash")
        .arg(script)
        .arg("--watch-pid")
        .arg(std::process::id().to_string())
        .output()
        .map_err(|e| format!("{URLS_VAR} is unset and {script} could not run: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{URLS_VAR} is unset and start-redis-cluster.sh failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("export {URLS_VAR}=")).map(str::to_owned))
        .ok_or_else(|| "start-redis-cluster.sh printed no URL list".to_owned())
}
