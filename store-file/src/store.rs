//! [`FileStore`], its [`FileStoreOptions`] and its [`CheckpointStore`] implementation. All file
//! I/O runs in `tokio::task::spawn_blocking`, never on the async runtime's workers.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use eventhubs_store_core::{
    Capabilities, Checkpoint, CheckpointStore, ClaimOptions, Ownership, PartitionScope, Result,
    SetCheckpointOptions, normalize_checkpoint, normalize_claims, normalize_name,
};

use crate::error::{BACKEND, task_failed};
use crate::layout::Layout;
use crate::{read, root, write};

/// How to open a [`FileStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStoreOptions {
    create_root: bool,
}

impl Default for FileStoreOptions {
    fn default() -> Self {
        FileStoreOptions { create_root: true }
    }
}

impl FileStoreOptions {
    /// The defaults: create the root directory if it is missing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a missing root directory is created (default) or is a `NotFound` error (for
    /// deployments where the directory is a mounted volume that must already be there).
    pub fn create_root(mut self, create: bool) -> Self {
        self.create_root = create;
        self
    }

    /// Opens the store rooted at `dir`.
    ///
    /// # Errors
    /// - `NotFound`: `dir` is missing and [`FileStoreOptions::create_root`] is off.
    /// - `InvalidInput`: `dir` is a file, or a non-empty directory without the store's marker
    ///   (so a mistyped path never fills your home directory with store folders).
    /// - `Unsupported`: the marker names a layout version this crate does not know.
    /// - `Unauthorized`, `Unavailable`, `Backend`: file-system errors, see the crate docs.
    #[tracing::instrument(level = "debug", skip_all, fields(backend = BACKEND, root = %dir.as_ref().display()))]
    pub async fn open(self, dir: impl AsRef<Path>) -> Result<FileStore> {
        let root = dir.as_ref().to_path_buf();
        let create = self.create_root;
        let check = root.clone();
        tokio::task::spawn_blocking(move || root::open_root(&check, create))
            .await
            .map_err(task_failed)??;
        Ok(FileStore {
            layout: Arc::new(Layout::new(root)),
        })
    }
}

/// A checkpoint store keeping one small file per record under a root directory; see the crate
/// docs for the layout, the write protocol and the guarantees.
///
/// Clones share one handle. Any number of handles, in any number of processes on one machine,
/// may use one root at the same time (C7).
#[derive(Clone)]
pub struct FileStore {
    layout: Arc<Layout>,
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("root", &self.layout.root())
            .finish()
    }
}

impl FileStore {
    /// Opens the store rooted at `dir`, creating the directory if missing. Same as
    /// `FileStoreOptions::new().open(dir)`; see [`FileStoreOptions::open`] for the errors.
    pub async fn open(dir: impl AsRef<Path>) -> Result<FileStore> {
        FileStoreOptions::new().open(dir).await
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        self.layout.root()
    }

    /// Runs blocking file work off the async runtime.
    async fn blocking<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Layout) -> Result<T> + Send + 'static,
    {
        let layout = self.layout.clone();
        tokio::task::spawn_blocking(move || work(&layout))
            .await
            .map_err(task_failed)?
    }
}

#[async_trait]
impl CheckpointStore for FileStore {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    /// Everything: fenced checkpoints (C13), `list_scopes`, `delete_checkpoint`, durable (C12).
    fn capabilities(&self) -> Capabilities {
        Capabilities::all()
    }

    #[tracing::instrument(level = "debug", skip(self), fields(backend = BACKEND, %scope))]
    async fn list_ownership(&self, scope: &PartitionScope) -> Result<Vec<Ownership>> {
        let scope = scope.clone();
        self.blocking(move |layout| read::list_ownership(layout, &scope))
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = BACKEND, claims = claims.len()))]
    async fn claim_ownership(&self, claims: &[Ownership], _options: &ClaimOptions) -> Result<Vec<Ownership>> {
        let claims = normalize_claims(claims).map_err(|e| e.with_backend(BACKEND))?;
        let won = self
            .blocking(move |layout| write::claim_batch(layout, claims))
            .await?;
        tracing::debug!(won = won.len(), "claimed");
        Ok(won)
    }

    #[tracing::instrument(level = "debug", skip(self), fields(backend = BACKEND, %scope))]
    async fn list_checkpoints(&self, scope: &PartitionScope) -> Result<Vec<Checkpoint>> {
        let scope = scope.clone();
        self.blocking(move |layout| read::list_checkpoints(layout, &scope))
            .await
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(backend = BACKEND, scope = %checkpoint.scope, partition = %checkpoint.partition_id,
               fenced = options.required_owner.is_some())
    )]
    async fn set_checkpoint(&self, checkpoint: &Checkpoint, options: &SetCheckpointOptions) -> Result<()> {
        let checkpoint = normalize_checkpoint(checkpoint).map_err(|e| e.with_backend(BACKEND))?;
        let owner = options.required_owner.clone();
        self.blocking(move |layout| write::set_checkpoint(layout, &checkpoint, owner.as_deref()))
            .await
    }

    #[tracing::instrument(level = "debug", skip(self), fields(backend = BACKEND, %scope))]
    async fn delete_checkpoint(&self, scope: &PartitionScope, partition_id: &str) -> Result<bool> {
        let partition_id =
            normalize_name("partition_id", partition_id).map_err(|e| e.with_backend(BACKEND))?;
        let scope = scope.clone();
        self.blocking(move |layout| write::delete_checkpoint(layout, &scope, &partition_id))
            .await
    }

    #[tracing::instrument(level = "debug", skip(self), fields(backend = BACKEND))]
    async fn list_scopes(&self) -> Result<Vec<PartitionScope>> {
        self.blocking(read::list_scopes).await
    }
}
