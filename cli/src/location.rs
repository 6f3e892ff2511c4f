//! Store URLs parsed offline into a [`StoreLocation`] (no I/O): the grammar of the table in
//! [`crate::open`].

use std::path::PathBuf;

use eventhubs_store_core::{Error, ErrorKind, Result};

use crate::open::{DEFAULT_CONNECTION_STRING_ENV, OpenOptions};
use crate::redact::redact_url;

/// Where a store URL points, parsed offline (no I/O). Its `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreLocation {
    /// `memory:`.
    Memory,
    /// `sqlite:PATH`.
    Sqlite(PathBuf),
    /// `file:DIR`.
    File(PathBuf),
    /// `postgres://…` without the `schema` parameter, and the schema.
    Postgres {
        /// The server URL as sqlx takes it.
        url: String,
        /// The schema, if given.
        schema: Option<String>,
    },
    /// Redis: one server, or the seed nodes of a cluster.
    Redis {
        /// `redis://…` / `rediss://…` URL per node (one unless `cluster`).
        urls: Vec<String>,
        /// A Redis Cluster.
        cluster: bool,
        /// The key prefix, if given.
        prefix: Option<String>,
    },
    /// A blob container URL with a SAS token.
    BlobSas(String),
    /// A blob container URL without SAS: Entra ID.
    BlobEntra {
        /// The container URL.
        url: String,
        /// `true` for a managed identity, `false` for the developer tools (Azure CLI, azd).
        managed_identity: bool,
    },
    /// A blob container by storage connection string.
    BlobConnectionString {
        /// The connection string (secret).
        connection_string: String,
        /// The container.
        container: String,
    },
}

impl std::fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::Memory => write!(f, "Memory"),
            StoreLocation::Sqlite(p) => write!(f, "Sqlite({})", p.display()),
            StoreLocation::File(p) => write!(f, "File({})", p.display()),
            StoreLocation::Postgres { url, schema } => {
                write!(f, "Postgres({}, schema {schema:?})", redact_url(url))
            }
            StoreLocation::Redis {
                urls,
                cluster,
                prefix,
            } => {
                let urls: Vec<String> = urls.iter().map(|u| redact_url(u)).collect();
                write!(f, "Redis({urls:?}, cluster {cluster}, prefix {prefix:?})")
            }
            StoreLocation::BlobSas(url) => write!(f, "BlobSas({})", redact_url(url)),
            StoreLocation::BlobEntra {
                url,
                managed_identity,
            } => {
                write!(f, "BlobEntra({url}, managed_identity {managed_identity})")
            }
            StoreLocation::BlobConnectionString { container, .. } => {
                write!(f, "BlobConnectionString(<redacted>, container {container:?})")
            }
        }
    }
}

fn bad_url(url: &str, why: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!("store URL {}: {why}", redact_url(url)),
    )
}

const SUPPORTED: &str = "expected memory:, sqlite:PATH, file:DIR, postgres://…, a blob container \
                         URL (https://ACCOUNT.blob.core.windows.net/CONTAINER), blob:CONTAINER or a \
                         storage connection string";

/// Parses a store URL (see the module docs) without touching anything.
///
/// # Errors
/// `InvalidInput` naming the URL (redacted) and what is wrong with it.
pub fn parse_store_url(url: &str, options: &OpenOptions) -> Result<StoreLocation> {
    if url.is_empty() || url.trim() != url || url.chars().any(char::is_control) {
        return Err(bad_url(
            url,
            "must not be empty or hold white space at its ends or control characters",
        ));
    }
    let lower = url.to_ascii_lowercase();
    if lower == "memory:" || lower == "memory://" {
        return Ok(StoreLocation::Memory);
    }
    if let Some(path) = strip_scheme(url, "sqlite") {
        return Ok(StoreLocation::Sqlite(non_empty_path(url, path)?));
    }
    if let Some(path) = strip_scheme(url, "file") {
        return Ok(StoreLocation::File(non_empty_path(url, path)?));
    }
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        return parse_postgres(url);
    }
    if ["redis://", "rediss://", "redis+cluster://", "rediss+cluster://"]
        .iter()
        .any(|s| lower.starts_with(s))
    {
        return parse_redis(url);
    }
    if lower.starts_with("https://") || lower.starts_with("http://") {
        return parse_blob_url(url);
    }
    if let Some(rest) = strip_scheme(url, "blob") {
        return parse_blob_env(url, rest);
    }
    if lower.contains("defaultendpointsprotocol=")
        || lower.contains("usedevelopmentstorage=")
        || lower.contains("blobendpoint=")
        || lower.contains("accountname=")
    {
        let Some(container) = options.container.clone() else {
            return Err(bad_url(
                url,
                "a storage connection string needs the container too (--container NAME), or use \
                 blob:NAME with the connection string in $AZURE_STORAGE_CONNECTION_STRING",
            ));
        };
        return Ok(StoreLocation::BlobConnectionString {
            connection_string: url.to_owned(),
            container,
        });
    }
    Err(bad_url(url, SUPPORTED))
}

/// `scheme:rest` or `scheme://rest` (case-insensitive scheme) → `rest`.
fn strip_scheme<'a>(url: &'a str, scheme: &str) -> Option<&'a str> {
    let head = url.get(..scheme.len() + 1)?;
    if !head.eq_ignore_ascii_case(&format!("{scheme}:")) {
        return None;
    }
    let rest = &url[scheme.len() + 1..];
    Some(rest.strip_prefix("//").unwrap_or(rest))
}

fn non_empty_path(url: &str, path: &str) -> Result<PathBuf> {
    if path.is_empty() {
        return Err(bad_url(
            url,
            "needs a path after the scheme, e.g. sqlite:./checkpoints.db",
        ));
    }
    Ok(PathBuf::from(path))
}

fn parse_postgres(url: &str) -> Result<StoreLocation> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok(StoreLocation::Postgres {
            url: url.to_owned(),
            schema: None,
        });
    };
    let mut schema = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some((k, v)) if k.eq_ignore_ascii_case("schema") => {
                if v.is_empty() {
                    return Err(bad_url(url, "schema= must name a schema"));
                }
                schema = Some(v.to_owned());
            }
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok(StoreLocation::Postgres { url, schema })
}

/// `redis[s][+cluster]://[userinfo@]host[:port][,host[:port]…][/db][?prefix=P]`.
fn parse_redis(url: &str) -> Result<StoreLocation> {
    let (scheme, rest) = url.split_once("://").unwrap_or((url, ""));
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut prefix = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some((k, v)) if k.eq_ignore_ascii_case("prefix") && !v.is_empty() => prefix = Some(v.to_owned()),
            _ => return Err(bad_url(url, "the only option is ?prefix=P")),
        }
    }
    let base_scheme = scheme.to_ascii_lowercase().replace("+cluster", "");
    let cluster = scheme.to_ascii_lowercase().ends_with("+cluster");
    let (user_info, hosts) = match rest.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), rest),
    };
    if hosts.is_empty() || hosts.starts_with('/') {
        return Err(bad_url(url, "needs a host: redis://HOST[:PORT]"));
    }
    if !cluster {
        let single = format!("{base_scheme}://{user_info}{hosts}");
        return Ok(StoreLocation::Redis {
            urls: vec![single],
            cluster,
            prefix,
        });
    }
    if hosts.contains('/') {
        return Err(bad_url(url, "a cluster has no database number: drop the /DB"));
    }
    let urls = hosts
        .split(',')
        .map(|h| {
            if h.is_empty() {
                Err(bad_url(url, "empty host in the cluster's node list"))
            } else {
                Ok(format!("{base_scheme}://{user_info}{h}"))
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(StoreLocation::Redis {
        urls,
        cluster,
        prefix,
    })
}

fn parse_blob_url(url: &str) -> Result<StoreLocation> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let path = base.split_once("://").map_or("", |(_, rest)| rest);
    if !path.contains('/') || path.ends_with('/') {
        return Err(bad_url(
            url,
            "a blob URL must name the container: https://ACCOUNT.blob.core.windows.net/CONTAINER",
        ));
    }
    let has_sig = query
        .split('&')
        .any(|p| p.len() > 4 && p[..4].eq_ignore_ascii_case("sig="));
    if has_sig {
        return Ok(StoreLocation::BlobSas(url.to_owned()));
    }
    let mut managed_identity = false;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some((k, v)) if k.eq_ignore_ascii_case("credential") => match v {
                "managed-identity" => managed_identity = true,
                "cli" | "developer-tools" => managed_identity = false,
                other => {
                    return Err(bad_url(
                        url,
                        format!("credential={other}: expected managed-identity or developer-tools"),
                    ));
                }
            },
            _ => {
                return Err(bad_url(
                    url,
                    "a container URL takes a SAS token (with sig=) or only ?credential=…",
                ));
            }
        }
    }
    Ok(StoreLocation::BlobEntra {
        url: base.to_owned(),
        managed_identity,
    })
}

fn parse_blob_env(url: &str, rest: &str) -> Result<StoreLocation> {
    let (container, query) = rest.split_once('?').unwrap_or((rest, ""));
    if container.is_empty() {
        return Err(bad_url(url, "needs a container: blob:CONTAINER"));
    }
    let mut var = DEFAULT_CONNECTION_STRING_ENV.to_owned();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some((k, v)) if k.eq_ignore_ascii_case("connection-string-env") && !v.is_empty() => {
                var = v.to_owned();
            }
            _ => return Err(bad_url(url, "the only option is ?connection-string-env=VAR")),
        }
    }
    let connection_string = std::env::var(&var).map_err(|_| {
        bad_url(
            url,
            format!("the environment variable {var} (the storage connection string) is not set"),
        )
    })?;
    Ok(StoreLocation::BlobConnectionString {
        connection_string,
        container: container.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<StoreLocation> {
        parse_store_url(url, &OpenOptions::default())
    }

    #[test]
    fn simple_schemes_parse() {
        assert_eq!(parse("memory:").unwrap(), StoreLocation::Memory);
        assert_eq!(
            parse("sqlite:./a.db").unwrap(),
            StoreLocation::Sqlite("./a.db".into())
        );
        assert_eq!(
            parse("SQLITE:///tmp/a.db").unwrap(),
            StoreLocation::Sqlite("/tmp/a.db".into())
        );
        assert_eq!(parse("file:dir").unwrap(), StoreLocation::File("dir".into()));
        assert!(parse("sqlite:").is_err());
    }

    #[test]
    fn postgres_schema_option_is_taken_out_of_the_url() {
        let loc = parse("postgres://u:pw@h/db?sslmode=disable&schema=ckp").unwrap();
        assert_eq!(
            loc,
            StoreLocation::Postgres {
                url: "postgres://u:pw@h/db?sslmode=disable".into(),
                schema: Some("ckp".into())
            }
        );
        assert!(!format!("{loc:?}").contains("pw"));
    }

    #[test]
    fn redis_urls_single_and_cluster() {
        assert_eq!(
            parse("redis://:pw@127.0.0.1:6379/2?prefix=app").unwrap(),
            StoreLocation::Redis {
                urls: vec!["redis://:pw@127.0.0.1:6379/2".into()],
                cluster: false,
                prefix: Some("app".into())
            }
        );
        let loc = parse("rediss+cluster://u:pw@h1:7000,h2:7001").unwrap();
        assert_eq!(
            loc,
            StoreLocation::Redis {
                urls: vec!["rediss://u:pw@h1:7000".into(), "rediss://u:pw@h2:7001".into()],
                cluster: true,
                prefix: None
            }
        );
        assert!(!format!("{loc:?}").contains("pw@"), "{loc:?}");
        assert!(parse("redis+cluster://h1,,h2").is_err());
        assert!(parse("redis://").is_err());
        assert!(parse("redis://h?db=1").is_err());
    }

    #[test]
    fn blob_urls_pick_sas_or_entra() {
        let sas = "https://a.blob.core.windows.net/c?sv=1&sig=secret";
        assert_eq!(parse(sas).unwrap(), StoreLocation::BlobSas(sas.into()));
        assert_eq!(
            parse("https://a.blob.core.windows.net/c?credential=managed-identity").unwrap(),
            StoreLocation::BlobEntra {
                url: "https://a.blob.core.windows.net/c".into(),
                managed_identity: true
            }
        );
        assert!(parse("https://a.blob.core.windows.net/").is_err());
        assert!(parse("https://a.blob.core.windows.net/c?foo=bar").is_err());
    }

    #[test]
    fn connection_strings_need_a_container_and_never_show() {
        let cs = "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=c2VjcmV0;EndpointSuffix=x";
        let e = parse(cs).unwrap_err();
        assert!(!e.to_string().contains("c2VjcmV0"), "{e}");
        assert!(e.to_string().contains("--container"), "{e}");
        let loc = parse_store_url(cs, &OpenOptions::default().with_container(Some("cp".into()))).unwrap();
        assert!(!format!("{loc:?}").contains("c2VjcmV0"));
        let e = parse("blob:cp?connection-string-env=EHSTORE_TEST_SURELY_UNSET_VAR").unwrap_err();
        assert!(e.to_string().contains("EHSTORE_TEST_SURELY_UNSET_VAR"), "{e}");
    }

    #[test]
    fn hostile_urls_are_refused_with_the_url_redacted() {
        for bad in [
            "",
            " memory:",
            "ftp://x",
            "nonsense",
            "memory:\n",
            "mysql://u:topsecret@h/db",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}");
            assert!(!e.to_string().contains("topsecret"), "{e}");
        }
    }
}
