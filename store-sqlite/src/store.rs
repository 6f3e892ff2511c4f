//! [`CheckpointStore`] for [`SqliteStore`]: validation first, then one blocking call per
//! operation, each in its own tracing span.

use async_trait::async_trait;
use eventhubs_store_core::{
    Capabilities, Checkpoint, CheckpointStore, ClaimOptions, Error, Ownership, PartitionScope, Result,
    SetCheckpointOptions, fence_refused, normalize_checkpoint, normalize_claims, normalize_name,
    quote_shortened,
};

use crate::SqliteStore;
use crate::error::BACKEND;
use crate::pool::run_blocking;
use crate::queries::{self, checkpoint, ownership};

#[async_trait]
impl CheckpointStore for SqliteStore {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    /// Everything: fenced checkpoints (C13), `list_scopes`, `delete_checkpoint` and durability
    /// (C12).
    fn capabilities(&self) -> Capabilities {
        Capabilities::all()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = BACKEND, %scope))]
    async fn list_ownership(&self, scope: &PartitionScope) -> Result<Vec<Ownership>> {
        let scope = scope.clone();
        run_blocking(&self.connections, "list_ownership", move |c| {
            c.read(|conn| ownership::list_ownership(conn, &scope))
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = BACKEND, claims = claims.len(), won))]
    async fn claim_ownership(&self, claims: &[Ownership], _options: &ClaimOptions) -> Result<Vec<Ownership>> {
        let claims = normalize_claims(claims).map_err(|e| e.with_backend(BACKEND))?;
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        let won = run_blocking(&self.connections, "claim_ownership", move |c| {
            c.write("claim_ownership", |tx| ownership::claim_batch(tx, claims))
        })
        .await?;
        tracing::Span::current().record("won", won.len());
        Ok(won)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = BACKEND, %scope))]
    async fn list_checkpoints(&self, scope: &PartitionScope) -> Result<Vec<Checkpoint>> {
        let scope = scope.clone();
        run_blocking(&self.connections, "list_checkpoints", move |c| {
            c.read(|conn| checkpoint::list_checkpoints(conn, &scope))
        })
        .await
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(
            backend = BACKEND,
            scope = %checkpoint.scope,
            partition = %quote_shortened(&checkpoint.partition_id),
            fenced = options.required_owner.is_some(),
        )
    )]
    async fn set_checkpoint(&self, checkpoint: &Checkpoint, options: &SetCheckpointOptions) -> Result<()> {
        let checkpoint = normalize_checkpoint(checkpoint).map_err(|e| e.with_backend(BACKEND))?;
        let required_owner = options.required_owner.clone();
        run_blocking(&self.connections, "set_checkpoint", move |c| {
            c.write("set_checkpoint", |tx| {
                let written = checkpoint::upsert_checkpoint(tx, &checkpoint, required_owner.as_deref())?;
                match (written, required_owner) {
                    (true, _) => Ok(()),
                    (false, Some(owner)) => {
                        Err(fence_refused(&owner, &checkpoint.partition_id).with_backend(BACKEND))
                    }
                    (false, None) => {
                        Err(Error::backend("set_checkpoint: the upsert wrote no row").with_backend(BACKEND))
                    }
                }
            })
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = BACKEND, %scope, partition = %quote_shortened(partition_id)))]
    async fn delete_checkpoint(&self, scope: &PartitionScope, partition_id: &str) -> Result<bool> {
        let partition_id =
            normalize_name("partition_id", partition_id).map_err(|e| e.with_backend(BACKEND))?;
        let scope = scope.clone();
        run_blocking(&self.connections, "delete_checkpoint", move |c| {
            c.write("delete_checkpoint", |tx| {
                checkpoint::delete_checkpoint(tx, &scope, &partition_id)
            })
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = BACKEND))]
    async fn list_scopes(&self) -> Result<Vec<PartitionScope>> {
        run_blocking(&self.connections, "list_scopes", |c| c.read(queries::list_scopes)).await
    }
}
