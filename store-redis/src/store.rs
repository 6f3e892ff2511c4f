//! [`RedisStore`]: the store type, its constructors and the scope registry.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use eventhubs_store_core::{PartitionScope, Result};
use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue};

use crate::connection::Connection;
use crate::error::map_redis;
use crate::keys::{KeyLayout, registry_member, validate_prefix};
use crate::options::RedisOptions;
use crate::scripts::Scripts;

/// A [`CheckpointStore`](eventhubs_store_core::CheckpointStore) in Redis (single server or
/// cluster).
///
/// Per scope, one hash of ownership records and one of checkpoints, sharing a hash tag (see the
/// key layout in the crate docs). Claims and fenced checkpoints are Lua scripts, so each is one
/// atomic round trip. Cloning is cheap and shares the connection.
#[derive(Clone)]
pub struct RedisStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) connection: Connection,
    pub(crate) keys: KeyLayout,
    pub(crate) scripts: Scripts,
    servers: String,
    /// Etags are `<random id of this store>-<counter>`: unique per write without a random
    /// number (a system call) per claim (C5).
    etag_base: String,
    etag_counter: AtomicU64,
    /// Scopes this store already added to the registry: `SADD` once per scope and store, not on
    /// every write.
    registered: Mutex<HashSet<String>>,
}

impl RedisStore {
    /// Connects to one server at `url` with default [`RedisOptions`] (prefix [`crate::DEFAULT_PREFIX`]).
    ///
    /// # Errors
    /// As [`RedisOptions::connect`].
    pub async fn connect(url: &str) -> Result<Self> {
        RedisOptions::new(url).connect().await
    }

    /// Connects to a Redis Cluster through any of `urls` with default options.
    ///
    /// # Errors
    /// As [`RedisOptions::connect`].
    pub async fn connect_cluster<I, S>(urls: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RedisOptions::cluster(urls).connect().await
    }

    /// A store over an existing connection manager, with key prefix `prefix`.
    ///
    /// # Errors
    /// `InvalidInput` if the prefix breaks [`crate::validate_prefix`].
    pub fn from_connection_manager(manager: ConnectionManager, prefix: &str) -> Result<Self> {
        Ok(Self::new_validated(
            Connection::Single(manager),
            validate_prefix(prefix)?,
            "<connection manager>".to_owned(),
        ))
    }

    /// A store over an existing cluster connection, with key prefix `prefix`.
    ///
    /// # Errors
    /// `InvalidInput` if the prefix breaks [`crate::validate_prefix`].
    pub fn from_cluster_connection(connection: ClusterConnection, prefix: &str) -> Result<Self> {
        Ok(Self::new_validated(
            Connection::Cluster(connection),
            validate_prefix(prefix)?,
            "<cluster connection>".to_owned(),
        ))
    }

    pub(crate) fn new_validated(connection: Connection, prefix: String, servers: String) -> Self {
        RedisStore {
            inner: Arc::new(Inner {
                connection,
                keys: KeyLayout::new(prefix),
                scripts: Scripts::new(),
                servers,
                etag_base: uuid::Uuid::new_v4().simple().to_string(),
                etag_counter: AtomicU64::new(0),
                registered: Mutex::new(HashSet::new()),
            }),
        }
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        self.inner.keys.prefix()
    }

    /// A fresh etag: never issued before by any store (a random 128-bit store id and a counter).
    pub(crate) fn next_etag(&self) -> String {
        let n = self.inner.etag_counter.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.inner.etag_base)
    }

    pub(crate) fn connection(&self) -> Connection {
        self.inner.connection.clone()
    }

    /// Runs an idempotent command (a read, `HSET` of a whole value, `SADD`), once more if the
    /// connection turned out to be dead (killed while idle, server restarted): the connection
    /// manager has reconnected by then, so a caller sees an error only if the server is really
    /// away. Claims, fenced writes and deletes are never repeated: their answer would change.
    pub(crate) async fn query_idempotent<T: FromRedisValue>(&self, cmd: &Cmd, operation: &str) -> Result<T> {
        match cmd.query_async(&mut self.connection()).await {
            Err(e) if e.is_connection_dropped() || e.is_io_error() => {
                tracing::debug!(error = %e, operation, "connection lost; retrying once on a new one");
                cmd.query_async(&mut self.connection())
                    .await
                    .map_err(|e| map_redis(e, operation))
            }
            result => result.map_err(|e| map_redis(e, operation)),
        }
    }

    /// Adds `scope` to the registry read by `list_scopes`, before the first write of this store
    /// to it (a crash after the write can then not leave an unlisted scope; a registered scope
    /// without records is filtered out when listing).
    pub(crate) async fn register(&self, scope: &PartitionScope) -> Result<()> {
        let member = registry_member(scope);
        if self.is_registered(&member) {
            return Ok(());
        }
        let mut sadd = redis::cmd("SADD");
        sadd.arg(self.inner.keys.scopes_key()).arg(&member);
        let _: i64 = self.query_idempotent(&sadd, "registering the scope").await?;
        if let Ok(mut set) = self.inner.registered.lock() {
            set.insert(member);
        }
        Ok(())
    }

    fn is_registered(&self, member: &str) -> bool {
        self.inner.registered.lock().is_ok_and(|set| set.contains(member))
    }
}

impl fmt::Debug for RedisStore {
    /// Shows host, port and database and the prefix; never user names or passwords.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("servers", &self.inner.servers)
            .field(
                "cluster",
                &matches!(self.inner.connection, Connection::Cluster(_)),
            )
            .field("prefix", &self.prefix())
            .finish()
    }
}
