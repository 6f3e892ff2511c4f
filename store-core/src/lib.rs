//! The contract of an Azure Event Hubs checkpoint store.
//!
//! Event Hubs consumers read partitions in parallel. A *checkpoint store* records, per
//! (namespace, event hub, consumer group, partition):
//!
//! - **ownership**: which processor owns the partition now, claimed with optimistic concurrency
//!   (an etag per record, C3–C8), so processors can spread partitions between them;
//! - **checkpoint**: how far the partition has been processed (an opaque offset string and/or a
//!   sequence number, C9), so a restarted processor resumes where the last one stopped.
//!
//! This crate holds the types ([`Ownership`], [`Checkpoint`], [`ETag`], [`PartitionScope`]), the
//! [`CheckpointStore`] trait whose docs spell out the contract (rules C1–C13, see its
//! `# Contract` section), the [`Error`] type with its [`ErrorKind`]s, the shared input rules
//! ([`normalize_name`], [`normalize_claims`], [`normalize_checkpoint`]) and [`InMemoryStore`],
//! the strict reference implementation.
//!
//! Backends live in their own crates (`eventhubs-store-sqlite`, `-file`, `-postgres`, `-redis`,
//! `-blob`); the `eventhubs-conformance` crate checks any store against the contract.

mod error;
mod memory;
mod model;
mod store;

pub use error::{BoxError, Error, ErrorKind, Result, quote_shortened};
pub use memory::{InMemoryStore, fence_refused};
pub use model::{
    Checkpoint, ETag, MAX_NAME_BYTES, MAX_VALUE_BYTES, Ownership, PartitionScope, normalize_checkpoint,
    normalize_claims, normalize_name, validate_value,
};
pub use store::{Capabilities, CheckpointStore, ClaimOptions, SetCheckpointOptions};
