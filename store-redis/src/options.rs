//! [`RedisOptions`]: where the server (or cluster) is, the key prefix and the time-outs.

use std::fmt;
use std::time::Duration;

use eventhubs_store_core::{Error, ErrorKind, Result};
use redis::IntoConnectionInfo;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;

use crate::connection::Connection;
use crate::error::{BACKEND, map_redis};
use crate::keys::{DEFAULT_PREFIX, validate_prefix};
use crate::store::RedisStore;

/// Settings for [`RedisStore`]: one server URL or the seed nodes of a cluster, the key prefix
/// (default [`DEFAULT_PREFIX`]) and time-outs.
///
/// `Debug` shows only host, port and database of each URL, never user names or passwords.
///
/// Compiled, not run (it needs a server):
///
/// ```no_run
/// # async fn demo() -> eventhubs_store_core::Result<()> {
/// use eventhubs_store_redis::RedisOptions;
///
/// let store = RedisOptions::cluster(["redis://:secret@10.0.0.1:7000", "redis://:secret@10.0.0.2:7000"])
///     .prefix("orders-app")
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisOptions {
    urls: Vec<String>,
    cluster: bool,
    prefix: String,
    connection_timeout: Duration,
    response_timeout: Duration,
}

impl RedisOptions {
    /// One server at `url` (`redis://[user][:password@]host[:port][/db]`, `rediss://` for TLS).
    pub fn new(url: impl Into<String>) -> Self {
        RedisOptions {
            urls: vec![url.into()],
            cluster: false,
            prefix: DEFAULT_PREFIX.to_owned(),
            connection_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
        }
    }

    /// A Redis Cluster reached through any of `urls` (seed nodes).
    pub fn cluster<I, S>(urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RedisOptions {
            urls: urls.into_iter().map(Into::into).collect(),
            cluster: true,
            ..RedisOptions::new(String::new())
        }
    }

    /// The prefix of every key (validated by [`crate::validate_prefix`] when connecting).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long one connection attempt may take.
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// How long a call waits for the server's answer before failing with `Unavailable`.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Connects (eagerly, so a wrong URL or a stopped server fails here) and returns the store.
    ///
    /// # Errors
    /// `InvalidInput` for a bad URL or prefix, `Unavailable` if the server cannot be reached,
    /// `Unauthorized` if the credentials are refused.
    pub async fn connect(self) -> Result<RedisStore> {
        let prefix = validate_prefix(&self.prefix)?;
        let bad_url = |e: redis::RedisError| {
            // The message never repeats the URL: it may hold a password.
            Error::new(
                ErrorKind::InvalidInput,
                "url: not a valid Redis URL (value hidden)",
            )
            .with_backend(BACKEND)
            .with_source(e)
        };
        let connection = if self.cluster {
            let client = ClusterClient::builder(self.urls.iter().map(String::as_str))
                .connection_timeout(self.connection_timeout)
                .response_timeout(self.response_timeout)
                .build()
                .map_err(bad_url)?;
            let conn = client
                .get_async_connection()
                .await
                .map_err(|e| map_redis(e, "connecting to the cluster"))?;
            Connection::Cluster(conn)
        } else {
            let url = self.urls.first().map(String::as_str).unwrap_or_default();
            let client = redis::Client::open(url).map_err(bad_url)?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(self.connection_timeout))
                .set_response_timeout(Some(self.response_timeout))
                .set_number_of_retries(3);
            let manager = ConnectionManager::new_with_config(client, config)
                .await
                .map_err(|e| map_redis(e, "connecting"))?;
            Connection::Single(manager)
        };
        Ok(RedisStore::new_validated(
            connection,
            prefix,
            describe(&self.urls),
        ))
    }
}

/// `host:port/db` of each URL; nothing else (user names and passwords stay out).
pub(crate) fn describe(urls: &[String]) -> String {
    let parts: Vec<String> = urls
        .iter()
        .map(|url| match url.as_str().into_connection_info() {
            Ok(info) => format!("{}/{}", info.addr(), info.redis_settings().db()),
            Err(_) => "<invalid url hidden>".to_owned(),
        })
        .collect();
    parts.join(",")
}

impl fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisOptions")
            .field("servers", &describe(&self.urls))
            .field("cluster", &self.cluster)
            .field("prefix", &self.prefix)
            .field("connection_timeout", &self.connection_timeout)
            .field("response_timeout", &self.response_timeout)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_user_and_password() {
        let o = RedisOptions::new("redis://alice:s3cret@cache.internal:6380/2");
        let d = format!("{o:?}");
        assert!(!d.contains("s3cret") && !d.contains("alice"), "{d}");
        assert!(d.contains("cache.internal:6380/2"), "{d}");
        let o = RedisOptions::cluster(["redis://:s3cret@a:7000", "nonsense s3cret"]);
        let d = format!("{o:?}");
        assert!(!d.contains("s3cret"), "{d}");
        assert!(
            d.contains("a:7000/0") && d.contains("<invalid url hidden>"),
            "{d}"
        );
    }

    #[tokio::test]
    async fn bad_url_and_prefix_are_invalid_input_without_secrets() {
        let e = RedisOptions::new("http://u:s3cret@x")
            .connect()
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(
            !e.to_string().contains("s3cret") && !format!("{e:?}").contains("s3cret"),
            "{e:?}"
        );
        let e = RedisOptions::new("redis://127.0.0.1:6379")
            .prefix("a{b")
            .connect()
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("prefix"), "{e}");
    }
}
