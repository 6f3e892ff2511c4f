//! [`BlobStoreBuilder`]: where the container is, how to authenticate, and the client's
//! retry, paging and concurrency settings.

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_core::http::policies::Policy;
use azure_core::http::{ClientOptions, ExponentialRetryOptions, RetryOptions};
use azure_core::time::Duration;
use azure_storage_blob::{BlobContainerClient, BlobContainerClientOptions};
use eventhubs_store_core::{Error, ErrorKind, Result};

use crate::BACKEND;
use crate::config::{Auth, Target, parse_connection_string, parse_container_url};
use crate::redact::{RedactedError, redact_url};
use crate::shared_key::SharedKeyPolicy;
use crate::store::{BlobStore, Settings};

/// Azure's largest listing page.
pub const MAX_LIST_PAGE_SIZE: u32 = 5000;

/// Builds a [`BlobStore`]. Start from a connection string or a container URL, adjust, then
/// [`build`](BlobStoreBuilder::build).
///
/// ```
/// use eventhubs_store_blob::BlobStoreBuilder;
///
/// let store = BlobStoreBuilder::from_connection_string("UseDevelopmentStorage=true", "checkpoints")?
///     .list_page_size(1000)
///     .claim_concurrency(16)
///     .build()?;
/// assert_eq!(store.container_name(), "checkpoints");
/// # Ok::<(), eventhubs_store_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct BlobStoreBuilder {
    target: Target,
    retry: Option<RetryOptions>,
    list_page_size: Option<u32>,
    claim_concurrency: usize,
}

impl BlobStoreBuilder {
    fn new(target: Target) -> Self {
        BlobStoreBuilder {
            target,
            retry: None,
            list_page_size: None,
            claim_concurrency: 32,
        }
    }

    /// A container in the account of a storage connection string: `AccountName` + `AccountKey`
    /// (signed with Shared Key), `SharedAccessSignature`, `BlobEndpoint`, or
    /// `UseDevelopmentStorage=true` (Azurite on 127.0.0.1:10000 with its well-known account).
    ///
    /// Fails with `InvalidInput` naming the field (never echoing a secret) when the string is
    /// malformed or `container` breaks Azure's container naming rules.
    pub fn from_connection_string(connection_string: &str, container: &str) -> Result<Self> {
        parse_connection_string(connection_string, container).map(Self::new)
    }

    /// A container URL carrying a SAS token in its query
    /// (`https://acct.blob.core.windows.net/container?sv=…&sig=…`).
    pub fn from_container_url(container_url: &str) -> Result<Self> {
        parse_container_url(container_url, None).map(Self::new)
    }

    /// A container URL (https, no SAS) authorised by an Entra ID credential, for example
    /// `azure_identity::DeveloperToolsCredential` or `ManagedIdentityCredential`. The identity
    /// needs the "Storage Blob Data Contributor" role on the container.
    pub fn from_container_url_with_credential(
        container_url: &str,
        credential: Arc<dyn TokenCredential>,
    ) -> Result<Self> {
        parse_container_url(container_url, Some(credential)).map(Self::new)
    }

    /// Retry policy of reads (default: exponential, 3 retries from 200 ms, at most 10 s in all;
    /// the processor's load-balancing loop retries on its own). Writes (claims, checkpoints)
    /// are never retried inside a call: a retry after a cut connection could apply a write
    /// twice; they fail with the retryable `Unavailable` kind and the caller writes again.
    pub fn retry(mut self, retry: RetryOptions) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Blobs per listing page (`maxresults`, 1–5000; default: the service's 5000). Listings
    /// always page through every result; a small page only costs more round trips.
    pub fn list_page_size(mut self, page_size: u32) -> Self {
        self.list_page_size = Some(page_size);
        self
    }

    /// How many requests of one claim batch run at once (default 32; at least 1).
    pub fn claim_concurrency(mut self, concurrency: usize) -> Self {
        self.claim_concurrency = concurrency;
        self
    }

    /// A new `azure_storage_blob` container client for this container, authenticated and
    /// configured as [`build`](Self::build) would configure the store's own (Shared Key signing
    /// included): for blob operations the store does not wrap, or for other code that takes a
    /// `BlobContainerClient`.
    pub fn build_container_client(&self) -> Result<BlobContainerClient> {
        let retry = self.retry.clone().unwrap_or_else(|| {
            RetryOptions::exponential(ExponentialRetryOptions {
                initial_delay: Duration::milliseconds(200),
                max_retries: 3,
                max_total_elapsed: Duration::seconds(10),
                max_delay: Duration::seconds(2),
            })
        });
        self.client_with(retry)
    }

    /// A container client with `retry`.
    fn client_with(&self, retry: RetryOptions) -> Result<BlobContainerClient> {
        // Shared Key signs as a per-try policy (fresh x-ms-date per try); a token credential is
        // handed to the client, which adds its bearer-token policy; a SAS rides in the URL.
        let mut per_try_policies: Vec<Arc<dyn Policy>> = Vec::new();
        let mut credential: Option<Arc<dyn TokenCredential>> = None;
        match &self.target.auth {
            Auth::SharedKey { account, key } => {
                per_try_policies.push(Arc::new(SharedKeyPolicy::new(account.clone(), key.clone())));
            }
            Auth::Sas => {}
            Auth::Token(token) => credential = Some(token.clone()),
        }
        let options = BlobContainerClientOptions {
            client_options: ClientOptions {
                per_try_policies,
                retry,
                ..Default::default()
            },
            ..Default::default()
        };
        let url_shown = redact_url(&self.target.container_url);
        BlobContainerClient::new(self.target.container_url.clone(), credential, Some(options)).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("container_url {url_shown}: the blob client refused it"),
            )
            .with_backend(BACKEND)
            .with_source(RedactedError::from_error(&e))
        })
    }

    /// Builds the store. Sends nothing: a missing container shows on the first call as
    /// `NotFound` (or use [`BlobStore::create_container_if_missing`]).
    pub fn build(self) -> Result<BlobStore> {
        if let Some(size) = self.list_page_size
            && !(1..=MAX_LIST_PAGE_SIZE).contains(&size)
        {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("list_page_size {size}: must be 1..={MAX_LIST_PAGE_SIZE}"),
            )
            .with_backend(BACKEND));
        }
        if self.claim_concurrency == 0 {
            return Err(
                Error::new(ErrorKind::InvalidInput, "claim_concurrency 0: must be at least 1")
                    .with_backend(BACKEND),
            );
        }
        let client = self.build_container_client()?;
        // Writes are never retried by the client: a try cut off after the service applied it
        // would be sent again, and a checkpoint could land twice, overwriting a newer one (C9),
        // or a claim that won come back as lost (C4, C7). A cut write fails with the retryable
        // `Unavailable` instead; its outcome is unknown and the caller writes again.
        let writer = self.client_with(RetryOptions::none())?;
        Ok(BlobStore::from_parts(
            client,
            writer,
            Settings {
                container: self.target.container,
                container_url: redact_url(&self.target.container_url),
                auth: self.target.auth,
                list_page_size: self.list_page_size,
                claim_concurrency: self.claim_concurrency,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_core::credentials::{AccessToken, TokenRequestOptions};

    /// A credential that is never asked for a token in these offline tests.
    #[derive(Debug)]
    struct NoToken;

    #[async_trait::async_trait]
    impl TokenCredential for NoToken {
        async fn get_token(
            &self,
            _scopes: &[&str],
            _options: Option<TokenRequestOptions<'_>>,
        ) -> azure_core::Result<AccessToken> {
            Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Credential,
                "offline",
            ))
        }
    }

    #[test]
    fn entra_id_needs_https_and_no_sas() {
        let cred: Arc<dyn TokenCredential> = Arc::new(NoToken);
        let store = BlobStoreBuilder::from_container_url_with_credential(
            "https://acct.blob.core.windows.net/checkpoints",
            cred.clone(),
        )
        .unwrap()
        .build()
        .unwrap();
        assert_eq!(store.container_name(), "checkpoints");
        assert!(format!("{store:?}").contains("EntraId"), "{store:?}");
        let e = BlobStoreBuilder::from_container_url_with_credential(
            "http://127.0.0.1:10000/devstoreaccount1/checkpoints",
            cred.clone(),
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("https"), "{e}");
        let e = BlobStoreBuilder::from_container_url_with_credential(
            "https://acct.blob.core.windows.net/checkpoints?sv=1&sig=SECRET",
            cred,
        )
        .unwrap_err();
        assert!(!e.to_string().contains("SECRET"), "{e}");
    }

    #[test]
    fn options_out_of_range_are_refused() {
        let base = BlobStoreBuilder::from_connection_string("UseDevelopmentStorage=true", "cps").unwrap();
        for size in [0, MAX_LIST_PAGE_SIZE + 1] {
            let e = base.clone().list_page_size(size).build().unwrap_err();
            assert!(e.to_string().contains("list_page_size"), "{e}");
        }
        let e = base.clone().claim_concurrency(0).build().unwrap_err();
        assert!(e.to_string().contains("claim_concurrency"), "{e}");
        base.list_page_size(1).claim_concurrency(1).build().unwrap();
    }

    #[test]
    fn debug_shows_the_container_and_never_a_secret() {
        let sas =
            BlobStore::from_container_url("https://acct.blob.core.windows.net/cps?sv=2022-11-02&sig=S3CRET")
                .unwrap();
        let shown = format!("{sas:?}");
        assert!(
            shown.contains("https://acct.blob.core.windows.net/cps?sv=<redacted>&sig=<redacted>"),
            "{shown}"
        );
        assert!(!shown.contains("S3CRET"), "{shown}");
        assert_eq!(
            sas.container_url(),
            "https://acct.blob.core.windows.net/cps?sv=<redacted>&sig=<redacted>"
        );
        let key = BlobStore::from_connection_string(
            "AccountName=acct;AccountKey=U0VDUkVUS0VZ;EndpointSuffix=core.windows.net",
            "cps",
        )
        .unwrap();
        let shown = format!("{key:?}");
        assert!(
            shown.contains("SharedKey(account=\"acct\", key=<redacted>)"),
            "{shown}"
        );
        assert!(!shown.contains("U0VDUkVUS0VZ"), "{shown}");
    }
}
