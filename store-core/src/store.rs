//! The [`CheckpointStore`] trait: the contract every backend implements.

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::model::{Checkpoint, Ownership, PartitionScope};

/// What a store offers beyond the required operations. Callers and the conformance suite read it
/// to decide which cases apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Capabilities {
    /// [`SetCheckpointOptions::required_owner`] is honoured atomically (C13).
    pub fenced_checkpoints: bool,
    /// [`CheckpointStore::list_scopes`] is implemented.
    pub list_scopes: bool,
    /// [`CheckpointStore::delete_checkpoint`] is implemented.
    pub delete_checkpoint: bool,
    /// Data survives the end of the process (C12). False only for in-memory stores.
    pub durable: bool,
}

impl Capabilities {
    /// Everything offered (the usual set for a database-backed store).
    pub fn all() -> Self {
        Capabilities {
            fenced_checkpoints: true,
            list_scopes: true,
            delete_checkpoint: true,
            durable: true,
        }
    }

    /// Nothing beyond the required operations.
    pub fn none() -> Self {
        Capabilities::default()
    }

    /// Sets [`Capabilities::fenced_checkpoints`].
    pub fn with_fenced_checkpoints(mut self, on: bool) -> Self {
        self.fenced_checkpoints = on;
        self
    }

    /// Sets [`Capabilities::list_scopes`].
    pub fn with_list_scopes(mut self, on: bool) -> Self {
        self.list_scopes = on;
        self
    }

    /// Sets [`Capabilities::delete_checkpoint`].
    pub fn with_delete_checkpoint(mut self, on: bool) -> Self {
        self.delete_checkpoint = on;
        self
    }

    /// Sets [`Capabilities::durable`].
    pub fn with_durable(mut self, on: bool) -> Self {
        self.durable = on;
        self
    }
}

/// Options of [`CheckpointStore::claim_ownership`]. Empty today; a struct so options can be
/// added without breaking implementations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClaimOptions {}

/// Options of [`CheckpointStore::set_checkpoint`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SetCheckpointOptions {
    /// Fencing (C13): write only while this owner id holds the partition's ownership, atomically
    /// with the write; otherwise fail with [`crate::ErrorKind::OwnershipLost`] and write nothing.
    /// Stores without [`Capabilities::fenced_checkpoints`] fail with
    /// [`crate::ErrorKind::Unsupported`] and write nothing.
    pub required_owner: Option<String>,
}

impl SetCheckpointOptions {
    /// Unconditional upsert (C9), as the official SDKs do.
    pub fn new() -> Self {
        Self::default()
    }

    /// A fenced write (C13) for `owner_id`.
    pub fn fenced(owner_id: impl Into<String>) -> Self {
        SetCheckpointOptions {
            required_owner: Some(owner_id.into()),
        }
    }
}

/// A store of partition ownership and checkpoints for Event Hubs consumers.
///
/// Object safe, `Send + Sync`: processors and tools hold it as `Arc<dyn CheckpointStore>` and
/// pick the backend at run time.
///
/// # Contract
///
/// Every implementation promises all of the following; the `eventhubs-conformance` crate checks
/// each rule with a case named after it (`c7_linearizable_claims`, …).
///
/// - **C1 Scope.** Records are keyed by (namespace, event hub, consumer group, partition id), all
///   compared and returned lower-cased.
/// - **C2 Isolation.** Listing a scope returns exactly that scope's records, never those of a
///   scope whose names are prefixes of it (`a` vs `ab`).
/// - **C3 Create.** A claim without an etag wins only if no ownership record exists.
/// - **C4 Update.** A claim with an etag wins only if it equals the stored etag.
/// - **C5 Result.** A won claim returns a fresh etag (never equal to an earlier one of that
///   partition) and `last_modified_time` from the store's clock, non-decreasing per partition.
///   A lost claim is left out of the result; it is not an error.
/// - **C6 Batches.** Each claim of a batch wins or loses on its own; the call fails only when the
///   store fails or the input is invalid.
/// - **C7 Linearizable claims.** Of N concurrent claims of one partition with the same expected
///   etag, exactly one wins, and the stored record is the winner's.
/// - **C8 Relinquish.** A claim with owner id `""` releases the partition; it is listed with owner
///   id `""`.
/// - **C9 Checkpoints.** `set_checkpoint` is an unconditional upsert of an opaque offset string
///   and/or a sequence number; values round-trip exactly.
/// - **C10 Independence.** Checkpoints and ownerships are separate records.
/// - **C11 Bad input.** Invalid names or values fail with `InvalidInput`; nothing is written and
///   nothing outside the store is touched. [`crate::normalize_claims`] and
///   [`crate::normalize_checkpoint`] implement the shared rules; a backend may refuse more
///   (whatever it cannot store faithfully), never less.
/// - **C12 Durability.** After `Ok`, a write survives a restart of the process (and, for embedded
///   stores, a kill -9 at any moment).
/// - **C13 Fencing.** See [`SetCheckpointOptions::required_owner`].
#[async_trait]
pub trait CheckpointStore: Send + Sync + std::fmt::Debug {
    /// A short name of the backend (`"memory"`, `"sqlite"`, `"postgres"`, …) for messages.
    fn backend_name(&self) -> &'static str;

    /// What the store offers beyond the required operations.
    fn capabilities(&self) -> Capabilities;

    /// Lists the ownership records of one scope.
    ///
    /// # Behavior
    /// - Returns every ownership record of `scope` and no other (C2), relinquished ones included
    ///   with owner id `""` (C8), each with its current etag and `last_modified_time` (C5).
    /// - Names in the result are lower-cased (C1). Order is unspecified.
    async fn list_ownership(&self, scope: &PartitionScope) -> Result<Vec<Ownership>>;

    /// Claims, renews or relinquishes ownership of a batch of partitions.
    ///
    /// # Behavior
    /// - The whole batch is validated first ([`crate::normalize_claims`]); invalid input fails
    ///   the call with `InvalidInput` and nothing is written (C11).
    /// - A claim without etag wins only if no record exists (C3); with an etag only if it equals
    ///   the stored one (C4). Of concurrent claims with one expected etag exactly one wins (C7).
    /// - Returns the won claims, each with a fresh etag and the store's `last_modified_time`
    ///   (C5). Lost claims are left out; losing is not an error (C6).
    /// - Owner id `""` relinquishes (C8).
    /// - Fails only when the store fails (`Unavailable`, `Backend`, …) (C6).
    async fn claim_ownership(&self, claims: &[Ownership], options: &ClaimOptions) -> Result<Vec<Ownership>>;

    /// Lists the checkpoints of one scope.
    ///
    /// # Behavior
    /// - Returns every checkpoint of `scope` and no other (C2), values exactly as written (C9).
    /// - Names in the result are lower-cased (C1). Order is unspecified.
    async fn list_checkpoints(&self, scope: &PartitionScope) -> Result<Vec<Checkpoint>>;

    /// Writes a checkpoint.
    ///
    /// # Behavior
    /// - Validated first ([`crate::normalize_checkpoint`]): at least one of offset and sequence
    ///   number, names per C11; invalid input writes nothing.
    /// - Without options: an unconditional upsert (C9) that never touches ownership (C10).
    /// - With [`SetCheckpointOptions::required_owner`]: written only while that owner holds the
    ///   partition, atomically; otherwise `OwnershipLost` (C13), or `Unsupported` if the store
    ///   does not declare [`Capabilities::fenced_checkpoints`].
    /// - After `Ok` the checkpoint is durable (C12).
    async fn set_checkpoint(&self, checkpoint: &Checkpoint, options: &SetCheckpointOptions) -> Result<()>;

    /// Deletes one partition's checkpoint; `Ok(true)` if one existed. Used by tools
    /// (`ehstore reset --delete`), never by processors.
    ///
    /// # Behavior
    /// - Stores without [`Capabilities::delete_checkpoint`] fail with `Unsupported`.
    /// - Never touches ownership (C10).
    async fn delete_checkpoint(&self, scope: &PartitionScope, partition_id: &str) -> Result<bool> {
        let _ = (scope, partition_id);
        Err(Error::unsupported("delete_checkpoint").with_backend(self.backend_name()))
    }

    /// Lists every scope holding at least one record. Used by tools (`ehstore list --all`,
    /// `migrate` of everything).
    ///
    /// # Behavior
    /// - Stores without [`Capabilities::list_scopes`] fail with `Unsupported`.
    async fn list_scopes(&self) -> Result<Vec<PartitionScope>> {
        Err(Error::unsupported("list_scopes").with_backend(self.backend_name()))
    }
}
