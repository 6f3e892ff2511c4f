//! Claiming ownership: one conditional write per partition, all of a batch in flight at once.
//!
//! - no etag (C3): Put Blob, empty, `If-None-Match: *`, metadata `ownerid`. (Not Set Blob
//!   Metadata: Azurite ignores `If-None-Match: *` there and would let a create take over an
//!   owned partition.)
//! - etag (C4): Set Blob Metadata with `If-Match: "<etag>"`.
//!
//! 412, 409 and a vanished blob are lost races, left out of the result (C5, C6); see
//! [`crate::status`]. Claims go through the store's writer, which never retries: a retry of a
//! try that was cut off after the service applied it would find the etag changed and report
//! the claim that won as lost (C4, C7). The service's etag and `Last-Modified` of the write
//! come back (C5).

use std::collections::HashMap;

use azure_core::http::RequestContent;
use azure_core::http::headers::{ETAG, LAST_MODIFIED};
use azure_storage_blob::models::{BlobClientSetMetadataOptions, BlobClientUploadOptions};
use eventhubs_store_core::{ETag, Ownership, Result};
use futures::StreamExt as _;
use time::OffsetDateTime;

use crate::layout::{self, OWNER_ID, Record, normalize_etag, quoted_etag};
use crate::status::{self, Failure};
use crate::store::BlobStore;

/// One claim, checked and ready to send.
pub(crate) struct PreparedClaim {
    pub(crate) claim: Ownership,
    pub(crate) blob: String,
}

impl BlobStore {
    /// Sends every claim concurrently (at most `claim_concurrency` at once), keeping the batch's
    /// order. Waits for all of them before failing, so no write is left in flight.
    pub(crate) async fn send_claims(&self, prepared: Vec<PreparedClaim>) -> Result<Vec<Ownership>> {
        let results: Vec<Result<Option<Ownership>>> = futures::stream::iter(prepared)
            .map(|p| self.claim_one(p))
            .buffered(self.settings.claim_concurrency)
            .collect()
            .await;
        let mut won = Vec::with_capacity(results.len());
        for result in results {
            if let Some(ownership) = result? {
                won.push(ownership);
            }
        }
        Ok(won)
    }

    async fn claim_one(&self, prepared: PreparedClaim) -> Result<Option<Ownership>> {
        let PreparedClaim { claim, blob } = prepared;
        let Some(expected) = claim.etag.as_ref().map(|e| normalize_etag(e.as_str())) else {
            return self.create_ownership(claim, blob).await;
        };
        // An etag that cannot travel in an If-Match header equals no stored etag: lost (C4).
        if !is_header_safe_etag(&expected) {
            return Ok(None);
        }
        let metadata = HashMap::from([(OWNER_ID.to_string(), claim.owner_id.clone())]);
        let options = BlobClientSetMetadataOptions {
            if_match: Some(quoted_etag(&expected).into()),
            ..Default::default()
        };
        let client = self.writer.blob_client(&blob);
        match client.set_metadata(&metadata, Some(options)).await {
            Ok(response) => {
                let headers = response.headers();
                let etag = headers.get_optional_str(&ETAG).map(normalize_etag);
                let last_modified = headers
                    .get_optional_str(&LAST_MODIFIED)
                    .and_then(|v| azure_core::time::parse_rfc7231(v).ok());
                self.won(claim, &blob, etag, last_modified).map(Some)
            }
            Err(e) if status::claim_lost(&Failure::of(&e), true) => {
                tracing::debug!(blob = %blob, "claim lost (etag no longer current)");
                Ok(None)
            }
            Err(e) => Err(status::to_error(&e, self.call("claim_ownership", Some(&blob)))),
        }
    }

    async fn create_ownership(&self, claim: Ownership, blob: String) -> Result<Option<Ownership>> {
        let options = BlobClientUploadOptions {
            if_none_match: Some("*".into()),
            metadata: Some(HashMap::from([(OWNER_ID.to_string(), claim.owner_id.clone())])),
            ..Default::default()
        };
        let client = self.writer.blob_client(&blob);
        match client
            .upload(RequestContent::from(Vec::new()), Some(options))
            .await
        {
            Ok(result) => {
                let etag = result.etag.map(|e| normalize_etag(e.as_ref()));
                self.won(claim, &blob, etag, result.last_modified).map(Some)
            }
            Err(e) if status::claim_lost(&Failure::of(&e), false) => {
                tracing::debug!(blob = %blob, "claim lost (ownership exists)");
                Ok(None)
            }
            Err(e) => Err(status::to_error(&e, self.call("claim_ownership", Some(&blob)))),
        }
    }

    fn won(
        &self,
        claim: Ownership,
        blob: &str,
        etag: Option<String>,
        last_modified: Option<OffsetDateTime>,
    ) -> Result<Ownership> {
        let etag = etag.ok_or_else(|| self.missing_header("claim_ownership", blob, "ETag header"))?;
        let last_modified = last_modified
            .ok_or_else(|| self.missing_header("claim_ownership", blob, "Last-Modified header"))?;
        Ok(Ownership {
            etag: Some(ETag::new(etag)),
            last_modified_time: Some(last_modified),
            ..claim
        })
    }
}

/// Prepares a normalised claim: its blob name and a metadata-safe owner id (C11).
pub(crate) fn prepare(index: usize, claim: Ownership) -> Result<PreparedClaim> {
    layout::validate_metadata_value(&format!("claims[{index}].owner_id"), &claim.owner_id)?;
    let blob = layout::blob_name(&claim.scope, Record::Ownership, &claim.partition_id)?;
    Ok(PreparedClaim { claim, blob })
}

fn is_header_safe_etag(etag: &str) -> bool {
    !etag.is_empty() && etag.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b'"')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_that_cannot_be_sent_are_recognised() {
        assert!(is_header_safe_etag("0x8DC0AB12"));
        assert!(!is_header_safe_etag("a\"b"));
        assert!(!is_header_safe_etag("ünï"));
        assert!(!is_header_safe_etag("a b"));
        assert!(!is_header_safe_etag(""));
    }
}
