//! Listing blobs: every page of one prefix, with metadata, reduced to what the records need.

use std::collections::HashMap;

use azure_storage_blob::models::{BlobContainerClientListBlobsOptions, BlobItem, ListBlobsIncludeItem};
use eventhubs_store_core::Result;
use futures::TryStreamExt as _;
use time::OffsetDateTime;

use crate::layout::normalize_etag;
use crate::status;
use crate::store::BlobStore;

/// One listed blob.
#[derive(Debug, Clone)]
pub(crate) struct ListedBlob {
    pub(crate) name: String,
    /// Unquoted (see [`normalize_etag`]).
    pub(crate) etag: Option<String>,
    pub(crate) last_modified: Option<OffsetDateTime>,
    pub(crate) metadata: HashMap<String, String>,
}

impl ListedBlob {
    fn from_item(item: BlobItem) -> Option<Self> {
        let name = item.name?;
        let (etag, last_modified) = match item.properties {
            Some(p) => (p.etag.map(|e| normalize_etag(e.as_ref())), p.last_modified),
            None => (None, None),
        };
        Some(ListedBlob {
            name,
            etag,
            last_modified,
            metadata: item.metadata.and_then(|m| m.values).unwrap_or_default(),
        })
    }
}

impl BlobStore {
    /// Every blob whose name starts with `prefix` (the whole container for `None`), following
    /// the continuation marker through every page; with their metadata if `with_metadata`.
    pub(crate) async fn list_all(
        &self,
        operation: &str,
        prefix: Option<&str>,
        with_metadata: bool,
    ) -> Result<Vec<ListedBlob>> {
        let options = BlobContainerClientListBlobsOptions {
            include: with_metadata.then(|| vec![ListBlobsIncludeItem::Metadata]),
            prefix: prefix.map(str::to_string),
            maxresults: self.settings.list_page_size.and_then(|n| i32::try_from(n).ok()),
            ..Default::default()
        };
        let call = self.call(operation, None);
        let mut pages = self
            .client
            .list_blobs(Some(options))
            .map_err(|e| status::to_error(&e, call))?
            .into_pages();
        let mut blobs = Vec::new();
        let mut page_count = 0usize;
        while let Some(page) = pages.try_next().await.map_err(|e| status::to_error(&e, call))? {
            page_count += 1;
            let page = page.into_model().map_err(|e| status::to_error(&e, call))?;
            blobs.extend(page.blob_items.into_iter().filter_map(ListedBlob::from_item));
        }
        tracing::trace!(pages = page_count, blobs = blobs.len(), "listed");
        Ok(blobs)
    }
}
