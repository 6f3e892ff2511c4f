//! Test support shared by this crate's integration tests: the server URL from the environment,
//! one fresh key prefix per test, clean-up, and the CI-aware skip rule.
#![allow(dead_code)]

pub mod cluster;

use std::time::Duration;

use eventhubs_store_core::{Error, ErrorKind};
use eventhubs_store_redis::{RedisOptions, RedisStore};

/// Where the tests find Redis unless `EVENTHUBS_TEST_REDIS_URL` says otherwise.
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379";
/// How to enable the tests when the server is missing.
pub const HOW_TO_ENABLE: &str = "start Redis on 127.0.0.1:6379 (redis-server --daemonize yes --bind 127.0.0.1 \
    --port 6379), or set EVENTHUBS_TEST_REDIS_URL=redis://host:port (or build with --features \
    testcontainers where Docker runs)";

/// The configured server URL.
pub fn configured_url() -> String {
    std::env::var("EVENTHUBS_TEST_REDIS_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A key prefix no other test run uses.
pub fn unique_prefix(tag: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("ehtest_{tag}_{}", &id[..12])
}

/// Why a test could not get a store.
#[derive(Debug)]
pub enum Unavailable {
    /// The server cannot be reached: skipped outside CI, a failure with CI=true.
    Unreachable(String),
    /// Anything else: always a failure.
    Failed(Error),
}

/// One test's store under its own key prefix, connected as its own ACL user so that
/// [`TestRedis::cut_connections`] cuts exactly this test's connections.
pub struct TestRedis {
    pub store: RedisStore,
    /// The server, as the admin (the configured URL).
    pub url: String,
    /// The server, as this test's user: what the store connects with.
    pub store_url: String,
    pub prefix: String,
    pub user: String,
}

impl TestRedis {
    /// A store on the configured server (or its container) under a fresh prefix for `tag`.
    pub async fn create(tag: &str) -> Result<TestRedis, Unavailable> {
        let url = server_url().await?;
        let prefix = unique_prefix(tag);
        let user = format!("{prefix}_user");
        let unreachable = |e: redis::RedisError| Unavailable::Unreachable(e.to_string());
        let mut admin = admin(&url).await.map_err(unreachable)?;
        let _: () = redis::cmd("ACL")
            .arg(&["SETUSER", &user, "on", "nopass", "~*", "&*", "+@all"][..])
            .query_async(&mut admin)
            .await
            .map_err(|e| Unavailable::Failed(Error::backend(format!("ACL SETUSER: {e}"))))?;
        let store_url = user_url(&url, &user).map_err(|e| Unavailable::Failed(Error::backend(e)))?;
        let store = RedisOptions::new(&store_url)
            .prefix(&prefix)
            .connect()
            .await
            .map_err(|e| {
                if e.kind() == ErrorKind::Unavailable {
                    Unavailable::Unreachable(e.to_string())
                } else {
                    Unavailable::Failed(e)
                }
            })?;
        Ok(TestRedis {
            store,
            url,
            store_url,
            prefix,
            user,
        })
    }

    /// A second, independent store (its own connection) on the same data.
    pub async fn reopen(&self) -> Result<RedisStore, Error> {
        RedisOptions::new(&self.store_url)
            .prefix(&self.prefix)
            .connect()
            .await
    }

    /// Kills every connection of this test's user from the server side (`CLIENT KILL USER`),
    /// as a server restart would, and answers how many there were.
    pub async fn cut_connections(&self) -> Result<u64, redis::RedisError> {
        let mut admin = admin(&self.url).await?;
        redis::cmd("CLIENT")
            .arg(&["KILL", "USER", &self.user][..])
            .query_async(&mut admin)
            .await
    }

    /// Deletes every key under the prefix and the test's user. (Tests may SCAN; the store never
    /// does.)
    pub async fn cleanup(self) -> Result<(), redis::RedisError> {
        let mut conn = admin(&self.url).await?;
        let _: i64 = redis::cmd("ACL")
            .arg(&["DELUSER", &self.user][..])
            .query_async(&mut conn)
            .await?;
        delete_prefixed_keys(&mut conn, &self.prefix).await
    }
}

/// Deletes every key under `prefix` on the server of `conn`, one key per `DEL` (a multi-key
/// `DEL` across hash slots is refused on a cluster node). Tests may `SCAN`; the store never does.
pub async fn delete_prefixed_keys(
    conn: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
) -> Result<(), redis::RedisError> {
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await?;
        for key in keys {
            let _: i64 = redis::cmd("DEL").arg(&key).query_async(conn).await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// A connection to the server as the configured (admin) user.
pub async fn admin(url: &str) -> Result<redis::aio::MultiplexedConnection, redis::RedisError> {
    redis::Client::open(url)?.get_multiplexed_async_connection().await
}

/// `url` with `user` as its user name. The user has `nopass`, so any password does; one is set
/// because a user name alone is not sent.
pub fn user_url(url: &str, user: &str) -> Result<String, String> {
    let mut parsed = url::Url::parse(url).map_err(|e| format!("EVENTHUBS_TEST_REDIS_URL: {e}"))?;
    parsed
        .set_username(user)
        .and_then(|()| parsed.set_password(Some("unused")))
        .map_err(|()| format!("EVENTHUBS_TEST_REDIS_URL {url:?} cannot carry a user name"))?;
    Ok(parsed.into())
}

/// The URL of a reachable server: the configured one, or (feature `testcontainers`) a container
/// started for the tests when the configured one cannot be reached.
async fn server_url() -> Result<String, Unavailable> {
    // Probed once per test process: an unreachable server costs one probe, not one per case.
    static PROBE: tokio::sync::OnceCell<Result<String, (bool, String)>> = tokio::sync::OnceCell::const_new();
    PROBE
        .get_or_init(|| async {
            let url = configured_url();
            let probe = RedisOptions::new(&url)
                .connection_timeout(Duration::from_secs(3))
                .connect()
                .await;
            match probe {
                Ok(_) => Ok(url),
                Err(e) if e.kind() == ErrorKind::Unavailable => {
                    fallback_url(e).await.map_err(|why| (true, why))
                }
                Err(e) => Err((false, e.to_string())),
            }
        })
        .await
        .clone()
        .map_err(|(unreachable, why)| {
            if unreachable {
                Unavailable::Unreachable(why)
            } else {
                Unavailable::Failed(Error::backend(why))
            }
        })
}

#[cfg(not(feature = "testcontainers"))]
async fn fallback_url(e: Error) -> Result<String, String> {
    Err(e.to_string())
}

#[cfg(feature = "testcontainers")]
async fn fallback_url(e: Error) -> Result<String, String> {
    container::url()
        .await
        .map_err(|why| format!("{e}; no container either: {why}"))
}

#[cfg(feature = "testcontainers")]
mod container {
    use std::sync::OnceLock;

    use testcontainers::core::{ContainerPort, WaitFor};
    use testcontainers::runners::SyncRunner;
    use testcontainers::{GenericImage, ImageExt, ReuseDirective};

    static URL: OnceLock<Result<String, String>> = OnceLock::new();

    /// Starts (or reuses, across runs) one `redis:7` container named `eventhubs-test-redis`.
    /// Started from a plain thread: the blocking runner brings its own runtime.
    pub async fn url() -> Result<String, String> {
        if let Some(url) = URL.get() {
            return url.clone();
        }
        let started = std::thread::spawn(|| {
            GenericImage::new("redis", "7")
                .with_exposed_port(ContainerPort::Tcp(6379))
                .with_wait_for(WaitFor::message_on_stdout("Ready to accept connections"))
                .with_container_name("eventhubs-test-redis")
                .with_reuse(ReuseDirective::Always)
                .start()
                .map_err(|e| e.to_string())
                .and_then(|c| c.get_host_port_ipv4(6379).map_err(|e| e.to_string()))
                .map(|port| format!("redis://127.0.0.1:{port}"))
        })
        .join()
        .unwrap_or_else(|_| Err("the container thread panicked".to_owned()));
        URL.get_or_init(|| started).clone()
    }
}

/// The CI rule for this crate's own tests: with CI=true an unreachable server fails the test;
/// otherwise one loud line says why it was skipped and how to enable it.
pub async fn redis_or_skip(tag: &str) -> Option<TestRedis> {
    match TestRedis::create(tag).await {
        Ok(r) => Some(r),
        Err(Unavailable::Failed(e)) => panic!("redis test setup failed: {e}"),
        Err(Unavailable::Unreachable(why)) => {
            eventhubs_conformance::skip_unless_ci("redis", &why, HOW_TO_ENABLE);
            None
        }
    }
}
