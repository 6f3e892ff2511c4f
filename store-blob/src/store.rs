//! [`BlobStore`]: the container handle, its constructors and container management.

use std::fmt;
use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_storage_blob::BlobContainerClient;
use eventhubs_store_core::{Error, ErrorKind, Result};

use crate::BACKEND;
use crate::builder::BlobStoreBuilder;
use crate::config::Auth;
use crate::status::{self, Call};

/// Settings fixed at build time.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) container: String,
    /// The container URL with any SAS redacted: what messages and `Debug` show.
    pub(crate) container_url: String,
    pub(crate) auth: Auth,
    pub(crate) list_page_size: Option<u32>,
    pub(crate) claim_concurrency: usize,
}

/// A checkpoint store in one Azure Blob Storage container, sharing the layout of the Go,
/// Python, Java and .NET SDKs (see the crate docs).
///
/// Cheap to clone: clones share one HTTP client and connection pool. `Debug` shows the
/// container URL and the kind of credential, never a key or a SAS signature.
#[derive(Clone)]
pub struct BlobStore {
    pub(crate) client: Arc<BlobContainerClient>,
    /// The same container without retries, for writes (see the builder).
    pub(crate) writer: Arc<BlobContainerClient>,
    pub(crate) settings: Arc<Settings>,
}

impl fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobStore")
            .field("container_url", &self.settings.container_url)
            .field("auth", &self.settings.auth)
            .field("list_page_size", &self.settings.list_page_size)
            .field("claim_concurrency", &self.settings.claim_concurrency)
            .finish()
    }
}

impl BlobStore {
    pub(crate) fn from_parts(
        client: BlobContainerClient,
        writer: BlobContainerClient,
        settings: Settings,
    ) -> Self {
        BlobStore {
            client: Arc::new(client),
            writer: Arc::new(writer),
            settings: Arc::new(settings),
        }
    }

    /// A store in `container` of the account a storage connection string names (account key,
    /// SAS, or `UseDevelopmentStorage=true` for Azurite). See
    /// [`BlobStoreBuilder::from_connection_string`].
    ///
    /// ```
    /// use eventhubs_store_blob::BlobStore;
    ///
    /// let store = BlobStore::from_connection_string("UseDevelopmentStorage=true", "checkpoints")?;
    /// assert!(format!("{store:?}").contains("devstoreaccount1"));
    /// assert!(!format!("{store:?}").contains("Eby8vdM02x")); // the key never shows
    /// # Ok::<(), eventhubs_store_core::Error>(())
    /// ```
    pub fn from_connection_string(connection_string: &str, container: &str) -> Result<Self> {
        BlobStoreBuilder::from_connection_string(connection_string, container)?.build()
    }

    /// A store in the container of a container URL with a SAS token in its query. See
    /// [`BlobStoreBuilder::from_container_url`].
    pub fn from_container_url(container_url: &str) -> Result<Self> {
        BlobStoreBuilder::from_container_url(container_url)?.build()
    }

    /// A store in the container of an https container URL, authorised by an Entra ID
    /// credential. See [`BlobStoreBuilder::from_container_url_with_credential`].
    ///
    /// Compiled, not run (it needs Azure and a signed-in developer):
    ///
    /// ```no_run
    /// use eventhubs_store_blob::BlobStore;
    ///
    /// let credential = azure_identity::DeveloperToolsCredential::new(None)?;
    /// let store = BlobStore::from_container_url_with_credential(
    ///     "https://myaccount.blob.core.windows.net/checkpoints",
    ///     credential,
    /// )?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_container_url_with_credential(
        container_url: &str,
        credential: Arc<dyn TokenCredential>,
    ) -> Result<Self> {
        BlobStoreBuilder::from_container_url_with_credential(container_url, credential)?.build()
    }

    /// The container's name.
    pub fn container_name(&self) -> &str {
        &self.settings.container
    }

    /// The underlying `azure_storage_blob` container client, authenticated as this store is
    /// (Shared Key signing included), for blob operations the store does not wrap.
    pub fn container_client(&self) -> &BlobContainerClient {
        &self.client
    }

    /// The container's URL with any SAS redacted.
    pub fn container_url(&self) -> &str {
        &self.settings.container_url
    }

    pub(crate) fn call<'a>(&'a self, operation: &'a str, blob: Option<&'a str>) -> Call<'a> {
        Call {
            operation,
            container: &self.settings.container,
            container_url: &self.settings.container_url,
            blob,
        }
    }

    /// Creates the container unless it exists; `Ok(true)` if this call created it.
    ///
    /// Needs a credential allowed to create containers (an account key, an account SAS, or an
    /// Entra ID role); a container SAS cannot.
    #[tracing::instrument(level = "debug", skip(self), fields(backend = BACKEND, container = %self.settings.container))]
    pub async fn create_container_if_missing(&self) -> Result<bool> {
        match self.client.create(None).await {
            Ok(_) => Ok(true),
            Err(e) if status::Failure::of(&e).is_status(409, "ContainerAlreadyExists") => Ok(false),
            Err(e) => Err(status::to_error(
                &e,
                self.call("create_container_if_missing", None),
            )),
        }
    }

    /// Deletes the whole container and every blob in it; `Ok(false)` if it did not exist.
    /// For tests and tools: nothing in the checkpoint-store contract calls it.
    #[tracing::instrument(level = "debug", skip(self), fields(backend = BACKEND, container = %self.settings.container))]
    pub async fn delete_container(&self) -> Result<bool> {
        match self.client.delete(None).await {
            Ok(_) => Ok(true),
            Err(e) if status::Failure::of(&e).is_status(404, "ContainerNotFound") => Ok(false),
            Err(e) => Err(status::to_error(&e, self.call("delete_container", None))),
        }
    }

    /// A clear error for a response that lacks a header (or listed property) the service always
    /// sends.
    pub(crate) fn missing_header(&self, operation: &str, blob: &str, header: &str) -> Error {
        Error::new(
            ErrorKind::Backend,
            format!(
                "{operation} on blob {blob:?} in container {:?}: the service's answer has no {header}",
                self.settings.container
            ),
        )
        .with_backend(BACKEND)
    }
}
