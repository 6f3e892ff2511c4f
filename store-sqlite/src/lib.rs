//! An embedded SQLite checkpoint store for Azure Event Hubs consumers: one file, no server, the
//! project's default store.
//!
//! [`SqliteStore`] implements [`eventhubs_store_core::CheckpointStore`] with every capability:
//! strict etags (C3–C8), fenced checkpoints (C13), `list_scopes`, `delete_checkpoint`, and
//! durability (C12). SQLite is compiled in (rusqlite's `bundled` feature), so no system library
//! is needed.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! use eventhubs_store_core::{
//!     Checkpoint, CheckpointStore, ClaimOptions, Ownership, PartitionScope, SetCheckpointOptions,
//! };
//! use eventhubs_store_sqlite::SqliteStore;
//!
//! let dir = tempfile::tempdir()?;
//! let store = SqliteStore::open(dir.path().join("checkpoints.db")).await?;
//! let scope = PartitionScope::new("myns.servicebus.windows.net", "orders", "$Default")?;
//!
//! // Claim partition 0 (no etag: create, C3), then renew it with the etag we got back (C4).
//! let won = store
//!     .claim_ownership(&[Ownership::new(scope.clone(), "0", "processor-a")], &ClaimOptions::default())
//!     .await?;
//! let renew = Ownership::new(scope.clone(), "0", "processor-a").with_etag(won[0].etag.clone());
//! let renewed = store.claim_ownership(&[renew], &ClaimOptions::default()).await?;
//! assert_eq!(renewed.len(), 1);
//! assert_ne!(renewed[0].etag, won[0].etag); // a fresh etag on every win (C5)
//!
//! // Record progress, fenced: written only while processor-a still owns partition 0 (C13).
//! let checkpoint = Checkpoint::new(scope.clone(), "0", Some("1024".into()), Some(17));
//! store.set_checkpoint(&checkpoint, &SetCheckpointOptions::fenced("processor-a")).await?;
//! assert_eq!(store.list_checkpoints(&scope).await?, vec![checkpoint]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })
//! # }
//! ```
//!
//! # Durability (C12)
//!
//! The database runs in WAL mode. Every write is one `BEGIN IMMEDIATE` transaction, and `Ok`
//! is returned only after `COMMIT`. With the default [`Synchronous::Full`] the log is fsynced
//! on every commit, so an acknowledged write survives a kill -9 of the process *and* a power
//! loss. [`Synchronous::Normal`] skips that fsync: acknowledged writes still survive a killed
//! process (the commit is in the OS page cache), but the last ones may roll back if the machine
//! loses power. A kill -9 at any moment never leaves a torn record: SQLite replays or discards
//! the log on the next open. The crate's `crash` test kills a writer hundreds of times and checks
//! that no acknowledged write is lost (`CRASH_ROUNDS=5000` for a longer run).
//!
//! # Cross-process safety (C7)
//!
//! Several processes may open the same file (on a local file system; SQLite's locks are not
//! reliable over NFS or SMB). A claim batch, a checkpoint write and a deletion each run in one
//! `BEGIN IMMEDIATE` transaction, which takes the file's write lock before reading anything, so
//! the etag comparison and the update it guards are atomic across processes: of concurrent
//! claims with one expected etag exactly one wins. A fenced checkpoint is a single
//! `INSERT … SELECT … WHERE EXISTS (ownership held by the owner)` statement inside that
//! transaction. A process that finds the lock taken waits up to
//! [`SqliteOptions::busy_timeout`] (default 5 s), then fails with `Unavailable` (retryable).
//! Etags are random UUIDs, so they never repeat across processes, restarts or re-created files.
//!
//! Within one process all writes go through one connection behind a mutex and reads use a few
//! pooled read-only connections; all SQLite work runs on tokio's blocking pool (see the docs of
//! the `pool` module in the source for why).
//!
//! # Schema
//!
//! Two `STRICT` tables, `ownership` and `checkpoint`, keyed by (namespace, event hub, consumer
//! group, partition id), all stored lower-cased (C1). Migrations are keyed by
//! `PRAGMA user_version` and run in one transaction each; `PRAGMA application_id` marks the file,
//! so opening another application's database fails instead of modifying it. Times are stored as
//! microseconds since the Unix epoch.

mod clock;
mod error;
mod migrations;
mod options;
mod pool;
mod queries;
mod store;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use eventhubs_store_core::Result;

pub use options::{SqliteOptions, Synchronous};

use crate::pool::{Connections, in_blocking_pool};

/// A checkpoint store in one SQLite database file.
///
/// Cheap to clone: clones share the same connections. Open the same file from several
/// processes freely (see the crate docs on cross-process safety).
#[derive(Clone)]
pub struct SqliteStore {
    connections: Arc<Connections>,
}

impl SqliteStore {
    /// Opens the database at `path` with [`SqliteOptions::default`], creating the file if it
    /// does not exist and bringing its schema up to date.
    ///
    /// # Errors
    /// - `NotFound` if the file cannot be created or opened (missing directory);
    /// - `Unauthorized` if the file system refuses access;
    /// - `InvalidInput` if the file is another application's SQLite database;
    /// - `Backend` if it is not a SQLite database, is damaged, or has a newer schema;
    /// - `Unavailable` if other processes kept it locked past the busy timeout.
    pub async fn open(path: impl AsRef<Path>) -> Result<SqliteStore> {
        Self::open_with(path, SqliteOptions::default()).await
    }

    /// Opens the database at `path` with `options` (see [`SqliteStore::open`]).
    #[tracing::instrument(level = "debug", skip_all, fields(backend = error::BACKEND, path = %path.as_ref().display()))]
    pub async fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<SqliteStore> {
        let path: PathBuf = path.as_ref().to_path_buf();
        let connections = in_blocking_pool("open", move || Connections::open_blocking(path, options)).await?;
        Ok(SqliteStore {
            connections: Arc::new(connections),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        self.connections.path()
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &SqliteOptions {
        self.connections.options()
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path())
            .field("options", self.options())
            .finish()
    }
}

/// The repository README's example, run as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct RootReadmeDoctests;
