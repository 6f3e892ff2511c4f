//! The per-backend openers behind [`crate::open`], one cargo feature each. A backend left out of
//! the build answers `Unsupported` naming the feature to turn on.

use std::path::PathBuf;
use std::sync::Arc;

use eventhubs_store_core::{CheckpointStore, Error, ErrorKind, Result};

#[allow(dead_code)] // used only when a backend's feature is off
fn not_built(feature: &str) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        format!("this ehstore was built without the `{feature}` feature; rebuild with --features {feature}"),
    )
}

/// `sqlite:PATH`. Without `prepare`, a missing file is `NotFound` rather than a new empty store.
#[cfg(feature = "sqlite")]
pub(crate) async fn open_sqlite(path: PathBuf, prepare: bool) -> Result<Arc<dyn CheckpointStore>> {
    if !prepare && !path.exists() {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("SQLite file {} does not exist", path.display()),
        )
        .with_backend("sqlite"));
    }
    if prepare
        && let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.exists()
    {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "directory {} (of the SQLite file) does not exist",
                parent.display()
            ),
        )
        .with_backend("sqlite"));
    }
    Ok(Arc::new(eventhubs_store_sqlite::SqliteStore::open(path).await?))
}

#[cfg(not(feature = "sqlite"))]
pub(crate) async fn open_sqlite(_path: PathBuf, _prepare: bool) -> Result<Arc<dyn CheckpointStore>> {
    Err(not_built("sqlite"))
}

/// `file:DIR`: the directory is created only when preparing.
#[cfg(feature = "file")]
pub(crate) async fn open_file(dir: PathBuf, prepare: bool) -> Result<Arc<dyn CheckpointStore>> {
    let store = eventhubs_store_file::FileStoreOptions::new()
        .create_root(prepare)
        .open(dir)
        .await?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "file"))]
pub(crate) async fn open_file(_dir: PathBuf, _prepare: bool) -> Result<Arc<dyn CheckpointStore>> {
    Err(not_built("file"))
}

/// `postgres://…`: connects (failing fast when the server is down) and, when preparing,
/// creates and migrates the schema (idempotent, under an advisory lock).
#[cfg(feature = "postgres")]
pub(crate) async fn open_postgres(
    url: &str,
    schema: Option<&str>,
    prepare: bool,
) -> Result<Arc<dyn CheckpointStore>> {
    use std::time::Duration;
    let mut options = eventhubs_store_postgres::PostgresOptions::new(url)
        .acquire_timeout(Duration::from_secs(5))
        .application_name("ehstore");
    if let Some(schema) = schema {
        options = options.schema(schema);
    }
    let store = options.connect().await?;
    if prepare {
        store.migrate().await?;
    }
    Ok(Arc::new(store))
}

#[cfg(not(feature = "postgres"))]
pub(crate) async fn open_postgres(
    _url: &str,
    _schema: Option<&str>,
    _prepare: bool,
) -> Result<Arc<dyn CheckpointStore>> {
    Err(not_built("postgres"))
}

/// Redis: connects eagerly (a stopped server fails here), one server or a cluster.
#[cfg(feature = "redis")]
pub(crate) async fn open_redis(
    urls: Vec<String>,
    cluster: bool,
    prefix: Option<&str>,
) -> Result<Arc<dyn CheckpointStore>> {
    use std::time::Duration;
    let mut options = if cluster {
        eventhubs_store_redis::RedisOptions::cluster(urls)
    } else {
        eventhubs_store_redis::RedisOptions::new(urls.into_iter().next().unwrap_or_default())
    };
    options = options.connection_timeout(Duration::from_secs(5));
    if let Some(prefix) = prefix {
        options = options.prefix(prefix);
    }
    Ok(Arc::new(options.connect().await?))
}

#[cfg(not(feature = "redis"))]
pub(crate) async fn open_redis(
    _urls: Vec<String>,
    _cluster: bool,
    _prefix: Option<&str>,
) -> Result<Arc<dyn CheckpointStore>> {
    Err(not_built("redis"))
}

#[cfg(feature = "blob")]
async fn finish_blob(
    store: eventhubs_store_blob::BlobStore,
    prepare: bool,
) -> Result<Arc<dyn CheckpointStore>> {
    if prepare {
        store.create_container_if_missing().await?;
    }
    Ok(Arc::new(store))
}

/// A container URL with a SAS token.
#[cfg(feature = "blob")]
pub(crate) async fn open_blob_sas(url: &str, prepare: bool) -> Result<Arc<dyn CheckpointStore>> {
    finish_blob(eventhubs_store_blob::BlobStore::from_container_url(url)?, prepare).await
}

/// A container URL signed in with Entra ID.
#[cfg(feature = "blob")]
pub(crate) async fn open_blob_entra(
    url: &str,
    managed_identity: bool,
    prepare: bool,
) -> Result<Arc<dyn CheckpointStore>> {
    let credential_error = |e: azure_core::Error| {
        Error::new(ErrorKind::Unauthorized, "cannot set up the Entra ID credential")
            .with_backend("blob")
            .with_source(e)
    };
    let credential: Arc<dyn azure_core::credentials::TokenCredential> = if managed_identity {
        azure_identity::ManagedIdentityCredential::new(None).map_err(credential_error)?
    } else {
        azure_identity::DeveloperToolsCredential::new(None).map_err(credential_error)?
    };
    let store = eventhubs_store_blob::BlobStore::from_container_url_with_credential(url, credential)?;
    finish_blob(store, prepare).await
}

/// A container in the account of a storage connection string.
#[cfg(feature = "blob")]
pub(crate) async fn open_blob_connection_string(
    connection_string: &str,
    container: &str,
    prepare: bool,
) -> Result<Arc<dyn CheckpointStore>> {
    let store = eventhubs_store_blob::BlobStore::from_connection_string(connection_string, container)?;
    finish_blob(store, prepare).await
}

#[cfg(not(feature = "blob"))]
pub(crate) async fn open_blob_sas(_url: &str, _prepare: bool) -> Result<Arc<dyn CheckpointStore>> {
    Err(not_built("blob"))
}

#[cfg(not(feature = "blob"))]
pub(crate) async fn open_blob_entra(
    _url: &str,
    _managed_identity: bool,
    _prepare: bool,
) -> Result<Arc<dyn CheckpointStore>> {
    Err(not_built("blob"))
}

#[cfg(not(feature = "blob"))]
pub(crate) async fn open_blob_connection_string(
    _connection_string: &str,
    _container: &str,
    _prepare: bool,
) -> Result<Arc<dyn CheckpointStore>> {
    Err(not_built("blob"))
}
