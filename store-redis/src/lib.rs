//! A Redis [`CheckpointStore`](eventhubs_store_core::CheckpointStore) for Azure Event Hubs
//! consumers, built on redis-rs (tokio), for a single server or a Redis Cluster.
//!
//! - **Strict compare-and-set.** Claims run in a Lua script: a whole claim batch of one scope is
//!   one `EVALSHA` (loaded once, re-loaded automatically after `NOSCRIPT`), each claim compared
//!   against the stored etag (C3, C4) atomically, so exactly one of N racing claims wins (C7).
//!   Unlike the Java SDK's Redis store, the etag is never ignored.
//! - **Fresh etags, server time.** An etag names one write: a random 128-bit store id and a
//!   counter, never repeated (C5). The won claims of one script call (one scope, one owner) share
//!   it, as rows written by one PostgreSQL transaction share its `xmin`. Their
//!   `last_modified_time` is the server's `TIME` in µs, never going backwards within a scope.
//! - **Checkpoints** are a script too: for a fenced one (C13), owner check and write in one
//!   atomic step.
//! - **Resends are harmless.** redis-rs resends a call after a cut connection (on a cluster, on
//!   its own). Both scripts are idempotent, so no write is applied twice:
//!   - a claim call finds the records its first run wrote (its etag names it) and answers as
//!     that run did, so a claim that won is never reported lost (C4, C7);
//!   - a checkpoint write's id is remembered for a minute, and a resend is not applied again:
//!     it could land after a newer checkpoint (C9), and a fenced write already applied could
//!     be refused on its resend (C13).
//!
//!   The conformance suite's concurrent histories found both anomalies on the cluster before
//!   the fix. There, a claim that won came back as lost in 6 runs of 8.
//! - **Cluster-ready key layout.** Every key of a (namespace, hub, group) shares one hash tag;
//!   listing reads one hash per scope, never `KEYS`/`SCAN`:
//!
//!   ```text
//!   {prefix}:{<ns>/<hub>/<group>}:ownership    hash  partition id -> "<etag>\n<µs>\n<owner>"
//!                                                    ""           -> latest µs (the scope clock)
//!   {prefix}:{<ns>/<hub>/<group>}:checkpoint   hash  partition id -> "<seq>\n<offset>"
//!   {prefix}:{<ns>/<hub>/<group>}:applied      zset  checkpoint write id -> ms (last minute; expires)
//!   {prefix}:scopes                            set   "<ns>/<hub>/<group>" (for list_scopes)
//!   ```
//!
//!   `%`, `{` and `}` in names are percent-encoded inside the tag, so no name can break it.
//!   Sequence numbers stay decimal strings (Lua numbers are doubles). The whole conformance
//!   suite runs against a live three-node cluster too (`tests/conformance_cluster.rs`).
//! - **Reconnects.** A single server is reached through a `ConnectionManager`: after a server
//!   restart or a killed connection, the failing call returns the retryable `Unavailable` kind and
//!   the next call reconnects, on the same store object.
//! - **Durability** (C12) is the server's: run Redis with AOF (`appendfsync always` for the strict
//!   reading) if a server restart must not lose acknowledged writes.
//! - **Secrets.** `Debug` of the store and of [`RedisOptions`] shows host, port and database only.
//!
//! # Example
//!
//! Compiled, not run (it needs a Redis server; the tests run the same calls):
//!
//! ```no_run
//! use eventhubs_store_core::{Checkpoint, CheckpointStore, ClaimOptions, Ownership, PartitionScope,
//!     SetCheckpointOptions};
//! use eventhubs_store_redis::RedisStore;
//!
//! # async fn demo() -> eventhubs_store_core::Result<()> {
//! let store = RedisStore::connect("redis://127.0.0.1:6379").await?;
//! let scope = PartitionScope::new("myns.servicebus.windows.net", "orders", "$Default")?;
//! let claims: Vec<Ownership> = (0..32)
//!     .map(|p| Ownership::new(scope.clone(), p.to_string(), "processor-1"))
//!     .collect();
//! let won = store.claim_ownership(&claims, &ClaimOptions::default()).await?; // one script call
//!
//! let cp = Checkpoint::new(scope.clone(), &won[0].partition_id, Some("1024".into()), Some(7));
//! store.set_checkpoint(&cp, &SetCheckpointOptions::fenced("processor-1")).await?;
//! # Ok(()) }
//! ```

mod checkpoint_store;
mod codec;
mod connection;
mod error;
mod keys;
mod options;
mod scripts;
mod store;

pub use keys::{DEFAULT_PREFIX, validate_prefix};
pub use options::RedisOptions;
pub use store::RedisStore;

/// The README's examples, compiled as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
