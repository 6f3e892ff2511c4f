//! A PostgreSQL [`CheckpointStore`](eventhubs_store_core::CheckpointStore) for Azure Event Hubs
//! consumers, built on sqlx (tokio, rustls).
//!
//! - **Schema.** Two tables, `ownership` and `checkpoint`, in a schema of your choice (default
//!   `eventhubs`), created by versioned migrations embedded in the crate. Migrations run only
//!   when you call [`PostgresStore::migrate`]; a store call on an unmigrated schema fails with
//!   `NotFound` and says so.
//! - **Claims in one round trip.** A claim batch of any size is one SQL statement: `unnest` of the
//!   batch, `INSERT … ON CONFLICT DO NOTHING` for claims without etag (C3), `UPDATE … WHERE etag =
//!   …` for claims with one (C4), rows locked in key order so concurrent batches cannot deadlock,
//!   and exactly one of N racing claims wins (C7). Etags are fresh UUIDs
//!   (`gen_random_uuid()`), `last_modified_time` is the server's `clock_timestamp()`, never going
//!   backwards for a partition (C5).
//! - **Checkpoints.** An upsert (C9); a fenced checkpoint (C13) checks the owner and writes in
//!   one statement.
//! - **Errors.** SQLSTATE codes and driver errors map to [`ErrorKind`]s in one place: serialization
//!   failures, deadlocks, dropped connections and pool time-outs are retryable `Unavailable`;
//!   missing tables are `NotFound`.
//! - **Secrets.** `Debug` of the store and of [`PostgresOptions`] never shows the password.
//!
//! # Example
//!
//! Compiled, not run (it needs a PostgreSQL server; the tests run the same calls):
//!
//! ```no_run
//! use eventhubs_store_core::{Checkpoint, CheckpointStore, ClaimOptions, Ownership, PartitionScope,
//!     SetCheckpointOptions};
//! use eventhubs_store_postgres::PostgresStore;
//!
//! # async fn demo() -> eventhubs_store_core::Result<()> {
//! let store = PostgresStore::connect("postgres://postgres@127.0.0.1:5432/test").await?;
//! store.migrate().await?; // once per schema
//!
//! let scope = PartitionScope::new("myns.servicebus.windows.net", "orders", "$Default")?;
//! let claims: Vec<Ownership> = (0..32)
//!     .map(|p| Ownership::new(scope.clone(), p.to_string(), "processor-1"))
//!     .collect();
//! let won = store.claim_ownership(&claims, &ClaimOptions::default()).await?; // one round trip
//!
//! // Only the owner may move the checkpoint (C13).
//! let cp = Checkpoint::new(scope.clone(), &won[0].partition_id, Some("1024".into()), Some(7));
//! store.set_checkpoint(&cp, &SetCheckpointOptions::fenced("processor-1")).await?;
//! # Ok(()) }
//! ```
//!
//! [`ErrorKind`]: eventhubs_store_core::ErrorKind

mod checkpoint_store;
mod error;
mod options;
mod sql;
mod store;

pub use options::{DEFAULT_SCHEMA, PostgresOptions, redact_url, validate_schema};
pub use store::PostgresStore;

/// The README's examples, compiled as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
