//! The [`CheckpointStore`] implementation: records as blobs (see [`crate::layout`]).

use async_trait::async_trait;
use azure_core::http::RequestContent;
use azure_storage_blob::models::BlobClientUploadOptions;
use eventhubs_store_core::{
    Capabilities, Checkpoint, CheckpointStore, ClaimOptions, ETag, Error, ErrorKind, Ownership,
    PartitionScope, Result, SetCheckpointOptions, normalize_checkpoint, normalize_claims, normalize_name,
};

use crate::BACKEND;
use crate::claim;
use crate::layout::{self, OFFSET, OWNER_ID, Record, metadata_value, partition_of, scope_prefix};
use crate::listing::ListedBlob;
use crate::status::{self, Failure};
use crate::store::BlobStore;

impl BlobStore {
    fn ownership_of(&self, scope: &PartitionScope, partition: &str, blob: ListedBlob) -> Result<Ownership> {
        let etag = blob
            .etag
            .ok_or_else(|| self.missing_header("list_ownership", &blob.name, "Etag property"))?;
        Ok(Ownership {
            scope: scope.clone(),
            partition_id: partition.to_string(),
            // No ownerid: relinquished, as the Go store reads it (C8).
            owner_id: metadata_value(&blob.metadata, OWNER_ID)
                .unwrap_or_default()
                .to_string(),
            etag: Some(ETag::new(etag)),
            last_modified_time: blob.last_modified,
        })
    }

    fn checkpoint_of(scope: &PartitionScope, partition: &str, blob: &ListedBlob) -> Result<Checkpoint> {
        Ok(Checkpoint {
            scope: scope.clone(),
            partition_id: partition.to_string(),
            offset: metadata_value(&blob.metadata, OFFSET).map(str::to_string),
            sequence_number: layout::parse_sequence_number(&blob.name, &blob.metadata)?,
        })
    }
}

#[async_trait]
impl CheckpointStore for BlobStore {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    /// Fencing (C13) is not offered: a checkpoint blob and an ownership blob cannot be written
    /// atomically together, and a check-then-write would let a zombie through between the two.
    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
            .with_durable(true)
            .with_list_scopes(true)
            .with_delete_checkpoint(true)
    }

    #[tracing::instrument(level = "debug", skip(self), fields(backend = BACKEND, %scope, container = %self.settings.container))]
    async fn list_ownership(&self, scope: &PartitionScope) -> Result<Vec<Ownership>> {
        let prefix = scope_prefix(scope, Record::Ownership);
        let blobs = self.list_all("list_ownership", Some(&prefix), true).await?;
        let mut out = Vec::with_capacity(blobs.len());
        for blob in blobs {
            if let Some(partition) = partition_of(&prefix, &blob.name).map(str::to_string) {
                out.push(self.ownership_of(scope, &partition, blob)?);
            }
        }
        Ok(out)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = BACKEND, claims = claims.len(), container = %self.settings.container))]
    async fn claim_ownership(&self, claims: &[Ownership], _options: &ClaimOptions) -> Result<Vec<Ownership>> {
        let claims = normalize_claims(claims).map_err(|e| e.with_backend(BACKEND))?;
        // Every claim is checked before the first request: a bad batch writes nothing (C11).
        let prepared = claims
            .into_iter()
            .enumerate()
            .map(|(i, c)| claim::prepare(i, c))
            .collect::<Result<Vec<_>>>()?;
        self.send_claims(prepared).await
    }

    #[tracing::instrument(level = "debug", skip(self), fields(backend = BACKEND, %scope, container = %self.settings.container))]
    async fn list_checkpoints(&self, scope: &PartitionScope) -> Result<Vec<Checkpoint>> {
        let prefix = scope_prefix(scope, Record::Checkpoint);
        let blobs = self.list_all("list_checkpoints", Some(&prefix), true).await?;
        let mut out = Vec::with_capacity(blobs.len());
        for blob in &blobs {
            if let Some(partition) = partition_of(&prefix, &blob.name) {
                out.push(Self::checkpoint_of(scope, partition, blob)?);
            }
        }
        Ok(out)
    }

    /// An unconditional write, as the Go, Python and official Rust stores do it: Set Blob
    /// Metadata (`offset`, `sequencenumber`), and on `BlobNotFound` an empty Put Blob with the
    /// metadata (C9). One round trip once the blob exists; Set Metadata is also the cheaper call
    /// on Azurite. Absent values are omitted, never written as `"None"`.
    #[tracing::instrument(level = "debug", skip_all, fields(backend = BACKEND, scope = %checkpoint.scope, partition = %checkpoint.partition_id, container = %self.settings.container))]
    async fn set_checkpoint(&self, checkpoint: &Checkpoint, options: &SetCheckpointOptions) -> Result<()> {
        let checkpoint = normalize_checkpoint(checkpoint).map_err(|e| e.with_backend(BACKEND))?;
        if let Some(owner) = &options.required_owner {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "fenced set_checkpoint (required owner {owner:?}) is not supported by the blob store: \
                     checkpoint and ownership are two blobs and cannot be written atomically (rule C13); \
                     nothing was written"
                ),
            )
            .with_backend(BACKEND));
        }
        if let Some(offset) = &checkpoint.offset {
            layout::validate_metadata_value("offset", offset)?;
        }
        let blob = layout::blob_name(&checkpoint.scope, Record::Checkpoint, &checkpoint.partition_id)?;
        let metadata = layout::checkpoint_metadata(checkpoint.offset.as_deref(), checkpoint.sequence_number);
        // The writer never retries: a retried try could land after a newer checkpoint (C9).
        let client = self.writer.blob_client(&blob);
        let call = self.call("set_checkpoint", Some(&blob));
        match client.set_metadata(&metadata, None).await {
            Ok(_) => return Ok(()),
            Err(e) if Failure::of(&e).is_status(404, "BlobNotFound") => {}
            Err(e) => return Err(status::to_error(&e, call)),
        }
        let upload = BlobClientUploadOptions {
            metadata: Some(metadata),
            ..Default::default()
        };
        client
            .upload(RequestContent::from(Vec::new()), Some(upload))
            .await
            .map_err(|e| status::to_error(&e, call))?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip(self), fields(backend = BACKEND, %scope, container = %self.settings.container))]
    async fn delete_checkpoint(&self, scope: &PartitionScope, partition_id: &str) -> Result<bool> {
        let partition_id =
            normalize_name("partition_id", partition_id).map_err(|e| e.with_backend(BACKEND))?;
        let blob = layout::blob_name(scope, Record::Checkpoint, &partition_id)?;
        match self.client.blob_client(&blob).delete(None).await {
            Ok(_) => Ok(true),
            Err(e) if Failure::of(&e).is_status(404, "BlobNotFound") => Ok(false),
            Err(e) => Err(status::to_error(&e, self.call("delete_checkpoint", Some(&blob)))),
        }
    }

    /// A full listing of the container (paged), keeping the scopes of blobs named as this
    /// layout names them.
    #[tracing::instrument(level = "debug", skip(self), fields(backend = BACKEND, container = %self.settings.container))]
    async fn list_scopes(&self) -> Result<Vec<PartitionScope>> {
        let blobs = self.list_all("list_scopes", None, false).await?;
        let mut scopes: Vec<PartitionScope> = blobs
            .iter()
            .filter_map(|b| layout::parse_blob_name(&b.name).map(|(scope, _, _)| scope))
            .collect();
        scopes.sort();
        scopes.dedup();
        Ok(scopes)
    }
}
