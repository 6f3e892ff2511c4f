//! One function from a store URL to a store: [`open_store`]. Tools, tests and demos pick the
//! backend at run time with it.
//!
//! # URLs
//!
//! | URL | store | feature |
//! |---|---|---|
//! | `memory:` | a fresh [`InMemoryStore`] (gone when the process ends) | always |
//! | `sqlite:PATH` | the SQLite file `PATH` (relative or absolute) | `sqlite` |
//! | `file:DIR` | the file store rooted at `DIR` | `file` |
//! | `postgres://…` / `postgresql://…` | PostgreSQL; `?schema=NAME` picks the schema (default `eventhubs`) | `postgres` |
//! | `redis://[:PASSWORD@]HOST[:PORT][/DB]` / `rediss://…` (TLS) | Redis; `?prefix=P` sets the key prefix (default the store's) | `redis` |
//! | `redis+cluster://[:PASSWORD@]HOST1:PORT1,HOST2:PORT2` / `rediss+cluster://…` | a Redis Cluster through its seed nodes; `?prefix=P` too | `redis` |
//! | `https://ACCT.blob.core.windows.net/CONTAINER?sv=…&sig=…` | Azure Blob container by SAS URL | `blob` |
//! | `https://ACCT.blob.core.windows.net/CONTAINER` | the same, signed in with Entra ID (Azure CLI / azd login; `?credential=managed-identity` for a managed identity) | `blob` |
//! | `blob:CONTAINER` | Azure Blob by connection string, read from `$AZURE_STORAGE_CONNECTION_STRING`, or from the variable `?connection-string-env=VAR` names | `blob` |
//! | `DefaultEndpointsProtocol=…;…` or `UseDevelopmentStorage=true` | Azure Blob by a connection string given inline; the container comes from [`OpenOptions::container`] (`--container`) | `blob` |
//!
//! Connection strings are best kept in an environment variable (`blob:CONTAINER`): a command
//! line is visible to every user of the machine.
//!
//! # Preparing a store
//!
//! With [`OpenOptions::prepare`] (what commands that write use), the store is made ready first:
//! the SQLite file and the file-store directory are created, a PostgreSQL schema is created and
//! migrated (idempotent, safe while processors run), a blob container is created if missing.
//! Without it (commands that only read), nothing is created: a missing file, directory, schema or
//! container is a clear `NotFound` error, so a typo never creates an empty store.
//!
//! Every URL in an error is redacted ([`crate::redact`]).

use std::sync::Arc;

use eventhubs_store_core::{CheckpointStore, InMemoryStore, Result};

pub use crate::location::{StoreLocation, parse_store_url};
use crate::redact::redact_url;

/// The environment variable `blob:CONTAINER` reads the connection string from by default.
pub const DEFAULT_CONNECTION_STRING_ENV: &str = "AZURE_STORAGE_CONNECTION_STRING";

/// How [`open_store_with`] opens a store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenOptions {
    /// Create what the store needs (file, directory, schema, container) and migrate it.
    pub prepare: bool,
    /// The blob container of an inline connection string.
    pub container: Option<String>,
}

impl OpenOptions {
    /// Opens without creating anything (for reading).
    pub fn read_only() -> Self {
        Self::default()
    }

    /// Creates and migrates what the store needs (for writing).
    pub fn prepared() -> Self {
        OpenOptions {
            prepare: true,
            container: None,
        }
    }

    /// Sets [`OpenOptions::container`].
    pub fn with_container(mut self, container: Option<String>) -> Self {
        self.container = container;
        self
    }
}

/// Opens the store `url` names, for reading (nothing is created). See the module docs.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = eventhubs_store_cli::open::open_store("memory:").await?;
/// assert_eq!(store.backend_name(), "memory");
/// # Ok::<(), eventhubs_store_core::Error>(())
/// # }).unwrap();
/// ```
///
/// # Errors
/// `InvalidInput` for a URL that does not parse, `Unsupported` for a backend left out of this
/// build, and whatever the backend reports on opening (`NotFound`, `Unavailable`, …).
pub async fn open_store(url: &str) -> Result<Arc<dyn CheckpointStore>> {
    open_store_with(url, &OpenOptions::read_only()).await
}

/// Opens the store `url` names with `options` (see [`OpenOptions::prepare`]).
///
/// # Errors
/// As [`open_store`].
#[tracing::instrument(level = "debug", skip_all, fields(url = %redact_url(url), prepare = options.prepare))]
pub async fn open_store_with(url: &str, options: &OpenOptions) -> Result<Arc<dyn CheckpointStore>> {
    let location = parse_store_url(url, options)?;
    open_location(location, options).await
}

async fn open_location(location: StoreLocation, options: &OpenOptions) -> Result<Arc<dyn CheckpointStore>> {
    match location {
        StoreLocation::Memory => Ok(Arc::new(InMemoryStore::new())),
        StoreLocation::Sqlite(path) => crate::backends::open_sqlite(path, options.prepare).await,
        StoreLocation::File(dir) => crate::backends::open_file(dir, options.prepare).await,
        StoreLocation::Postgres { url, schema } => {
            crate::backends::open_postgres(&url, schema.as_deref(), options.prepare).await
        }
        StoreLocation::Redis {
            urls,
            cluster,
            prefix,
        } => crate::backends::open_redis(urls, cluster, prefix.as_deref()).await,
        StoreLocation::BlobSas(url) => crate::backends::open_blob_sas(&url, options.prepare).await,
        StoreLocation::BlobEntra {
            url,
            managed_identity,
        } => crate::backends::open_blob_entra(&url, managed_identity, options.prepare).await,
        StoreLocation::BlobConnectionString {
            connection_string,
            container,
        } => {
            crate::backends::open_blob_connection_string(&connection_string, &container, options.prepare)
                .await
        }
    }
}
