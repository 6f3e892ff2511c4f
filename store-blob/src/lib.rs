//! An Azure Blob Storage checkpoint store for Event Hubs consumers that shares a container with
//! the official Go, Python, Java and .NET SDKs.
//!
//! # Layout (shared with the other SDKs; never varied)
//!
//! ```text
//! {namespace}/{eventhub}/{consumergroup}/ownership/{partitionid}    metadata ownerid
//! {namespace}/{eventhub}/{consumergroup}/checkpoint/{partitionid}   metadata sequencenumber, offset
//! ```
//!
//! The whole blob name is lower-cased (C1; the official Rust store does not, so it cannot share
//! a container with the others), content is empty, metadata keys are read case-insensitively,
//! offsets are opaque strings (C9).
//!
//! # Behaviour
//! - **Claims** (C3–C7): a claim without etag is a Put Blob with `If-None-Match: *`; with an etag
//!   a Set Blob Metadata with `If-Match`. 412, 409 and a vanished blob lose (left out of the
//!   result). All requests of a batch are sent concurrently: a 32-partition claim costs about one
//!   round trip, not 32. Etags are returned unquoted and accepted quoted or unquoted, so an
//!   etag from a listing, a claim or another SDK works in the next claim.
//! - **Checkpoints** (C9, C10): unconditional, as the other SDKs write them: Set Blob Metadata,
//!   falling back to an empty Put Blob with the metadata when the blob does not exist yet.
//! - **Fencing** (C13) is not offered ([`Capabilities`](eventhubs_store_core::Capabilities)):
//!   two blobs cannot be written atomically.
//! - **Input** (C11): besides the shared rules, refuses what metadata or a blob name cannot carry
//!   faithfully (non-ASCII or space-padded owner ids and offsets, names ending in `.`, blob
//!   names over 1024 bytes) before sending anything.
//! - **Errors**: status codes are mapped in one place ([`status`](crate) module docs); a
//!   missing container is `NotFound` naming the container and how to create it.
//! - **Secrets**: account keys and SAS signatures never reach `Debug`, logs or errors.
//!
//! # Authentication
//! A storage connection string (account key, signed here with Storage Shared Key since
//! `azure_storage_blob` has no shared-key option; SAS; `UseDevelopmentStorage=true` for
//! Azurite), a container URL with a SAS, or an Entra ID credential
//! (`Arc<dyn azure_core::credentials::TokenCredential>`, e.g. from `azure_identity`).
//!
//! Compiled, not run (it needs a storage account or Azurite):
//!
//! ```no_run
//! use eventhubs_store_blob::BlobStore;
//! use eventhubs_store_core::{CheckpointStore, ClaimOptions, Ownership, PartitionScope};
//!
//! # async fn run() -> Result<(), eventhubs_store_core::Error> {
//! let store = BlobStore::from_connection_string("UseDevelopmentStorage=true", "checkpoints")?;
//! store.create_container_if_missing().await?;
//! let scope = PartitionScope::new("myns.servicebus.windows.net", "orders", "$Default")?;
//! let won = store
//!     .claim_ownership(&[Ownership::new(scope.clone(), "0", "me")], &ClaimOptions::default())
//!     .await?;
//! println!("won {} partitions; etag {:?}", won.len(), won[0].etag);
//! # Ok(())
//! # }
//! ```

mod builder;
mod claim;
mod config;
mod layout;
mod listing;
mod records;
mod redact;
mod shared_key;
mod status;
mod store;

pub use builder::{BlobStoreBuilder, MAX_LIST_PAGE_SIZE};
pub use config::{DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME};
pub use store::BlobStore;

/// The backend name stamped on every error.
pub(crate) const BACKEND: &str = "blob";
