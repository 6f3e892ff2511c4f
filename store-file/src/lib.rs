//! A file-system [`CheckpointStore`](eventhubs_store_core::CheckpointStore) for Azure Event
//! Hubs consumers: one small file per record under a root directory, safe for any number of
//! processes on one machine, surviving `kill -9` at any moment.
//!
//! # Layout
//!
//! ```text
//! <root>/.eventhubs-store-file                  marker: "eventhubs-store-file layout 1"
//! <root>/<ns>/<hub>/<group>/ownership/<pid>     one ownership record
//! <root>/<ns>/<hub>/<group>/checkpoint/<pid>    one checkpoint record
//! <root>/<ns>/<hub>/<group>/locks/<pid>         empty; locked while the partition is written
//! <dir>/.<pid>.tmp                              a record being written (or left by a crash)
//! ```
//!
//! Every component is the lower-cased name (C1) made safe for any file system (C11):
//! `[a-z0-9_-]` stay, `.` stays unless first or last, every other byte is escaped as `%xx`
//! (lower-case hex), a Windows device name (`con`, `aux.txt`, `com1`) gets its first byte
//! escaped, and a name whose escaped form exceeds 250 bytes becomes
//! `+<readable prefix>+<sha-256 of the name>`. So `myns.servicebus.windows.net/orders/$Default`
//! partition `0` lives at `myns.servicebus.windows.net/orders/%24default/ownership/0`, names like
//! `..`, `a/b` (refused anyway by the core rules), `%2e%2e` or `日本` can never leave the root,
//! never collide, and long names are never truncated into one another.
//!
//! # Records
//!
//! A header line naming the format version and the SHA-256 of the body, then one line of JSON
//! with every field, names included:
//!
//! ```text
//! eventhubs-store-file v1 sha256:9f86d081…
//! {"kind":"ownership","key":{"namespace":"myns.servicebus.windows.net","event_hub":"orders","consumer_group":"$default","partition_id":"0"},"owner_id":"p-1","etag":"5f0c…","last_modified_time":"2026-11-22T10:00:00.123456789Z"}
//! ```
//!
//! Parsing is strict (unknown or missing fields, a wrong kind, an un-normalised name, a
//! checksum mismatch, a record filed under another partition's path): a listing that meets such
//! a file fails with a `Backend` error naming the file; it never drops it silently.
//!
//! # Writes
//!
//! - Every write takes the partition's lock (`locks/<pid>`, [`std::fs::File::lock`]: `flock` on
//!   Unix), so compare-and-set is linearizable across threads, handles and processes (C7), and
//!   a fenced checkpoint checks the owner and writes with no claim in between (C13). The OS
//!   drops the lock of a killed process.
//! - A record is written to `.<pid>.tmp` in its directory, fsynced, renamed over the record,
//!   and the directory is fsynced before the call returns `Ok` (C12): a reader or a crash sees
//!   the old record or the new one, never a torn one. Directories leading to a scope are
//!   fsynced once per handle and scope.
//! - Etags are random UUIDs (unique across processes and restarts); `last_modified_time` is the
//!   machine's clock, never going backwards for a partition (C5). Each claim of a batch wins or
//!   loses on its own (C6).
//! - Reads take no lock.
//!
//! The store is meant for one machine's local file system. Network file systems differ in how
//! they honour `flock`, `fsync` and `rename`; use a database-backed store across machines.
//!
//! # Errors
//!
//! File-system errors map to [`ErrorKind`](eventhubs_store_core::ErrorKind)s in one place: a
//! missing root is `NotFound`, permission denied or a read-only file system is
//! `Unauthorized`, a full disk or quota is the retryable `Unavailable`, a corrupt record is
//! `Backend`.
//!
//! # Example
//!
//! ```
//! use eventhubs_store_core::{Checkpoint, CheckpointStore, ClaimOptions, Ownership, PartitionScope,
//!     SetCheckpointOptions};
//! use eventhubs_store_file::FileStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let tmp = tempfile::tempdir()?;
//! # let dir = tmp.path().join("checkpoints");
//! let store = FileStore::open(&dir).await?; // creates the directory if missing
//! let scope = PartitionScope::new("myns.servicebus.windows.net", "orders", "$Default")?;
//!
//! let claims: Vec<Ownership> = (0..4).map(|p| Ownership::new(scope.clone(), p.to_string(), "p-1")).collect();
//! let won = store.claim_ownership(&claims, &ClaimOptions::default()).await?;
//! assert_eq!(won.len(), 4);
//!
//! // Only the owner may move the checkpoint (C13).
//! let cp = Checkpoint::new(scope.clone(), "0", Some("1024".into()), Some(7));
//! store.set_checkpoint(&cp, &SetCheckpointOptions::fenced("p-1")).await?;
//!
//! // A restarted process sees it all (C12).
//! let reopened = FileStore::open(&dir).await?;
//! assert_eq!(reopened.list_checkpoints(&scope).await?, vec![cp]);
//! assert!(dir.join("myns.servicebus.windows.net/orders/%24default/checkpoint/0").is_file());
//! # Ok(()) }
//! ```

mod error;
mod fsio;
mod layout;
mod names;
mod read;
mod record;
mod root;
mod store;
mod write;

pub use names::MAX_COMPONENT_BYTES;
pub use store::{FileStore, FileStoreOptions};
