//! [`Connection`]: one Redis server through a [`ConnectionManager`] (reconnects by itself after a
//! server restart or a killed connection) or a Redis Cluster through a [`ClusterConnection`].
//! Both multiplex many concurrent calls over few sockets and are cheap to clone.

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// The connection a [`crate::RedisStore`] talks through.
#[derive(Clone)]
pub(crate) enum Connection {
    /// A single server (or a primary behind a fixed address).
    Single(ConnectionManager),
    /// A Redis Cluster; every call touches one hash tag, so one slot.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}
