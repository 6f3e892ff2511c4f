//! Where the container is and how to authenticate: connection strings (account key, SAS,
//! `UseDevelopmentStorage=true`), container URLs with a SAS, and Entra ID credentials.
//!
//! Errors here never quote a connection string, a key or a SAS: they name the field only.

use std::fmt;
use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use eventhubs_store_core::{Error, ErrorKind, Result};
use url::Url;

use crate::BACKEND;
use crate::redact::{AccountKey, redact_url};

/// Azurite's and the legacy emulator's well-known development account.
pub const DEV_ACCOUNT_NAME: &str = "devstoreaccount1";
/// The well-known, public key of [`DEV_ACCOUNT_NAME`] (documented by Microsoft for Azurite).
pub const DEV_ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const DEV_BLOB_ENDPOINT: &str = "http://127.0.0.1:10000/devstoreaccount1";

/// How requests are authorised.
#[derive(Clone)]
pub(crate) enum Auth {
    /// Storage Shared Key (connection string with `AccountKey`, Azurite).
    SharedKey { account: String, key: AccountKey },
    /// A SAS token in the URL's query.
    Sas,
    /// An Entra ID credential (bearer tokens, https only).
    Token(Arc<dyn TokenCredential>),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::SharedKey { account, .. } => write!(f, "SharedKey(account={account:?}, key=<redacted>)"),
            Auth::Sas => f.write_str("Sas(<redacted>)"),
            Auth::Token(_) => f.write_str("EntraId"),
        }
    }
}

/// A container and the way to reach it.
#[derive(Clone)]
pub(crate) struct Target {
    /// The container URL, SAS query included when authenticating with a SAS.
    pub(crate) container_url: Url,
    /// The container name (last path segment).
    pub(crate) container: String,
    pub(crate) auth: Auth,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("container_url", &redact_url(&self.container_url))
            .field("auth", &self.auth)
            .finish()
    }
}

fn invalid(field: &str, why: impl fmt::Display) -> Error {
    Error::new(ErrorKind::InvalidInput, format!("{field}: {why}")).with_backend(BACKEND)
}

/// Checks an Azure container name: 3–63 characters, lower-case letters, digits and single
/// hyphens, starting and ending with a letter or digit.
pub(crate) fn validate_container_name(name: &str) -> Result<()> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let ok = (3..=63).contains(&name.len())
        && ok_chars
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--");
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_input(
            "container",
            name,
            "must be 3-63 characters of lower-case letters, digits and single hyphens, \
             starting and ending with a letter or digit (Azure container naming rules)",
        )
        .with_backend(BACKEND))
    }
}

/// Parses a storage connection string and names the container.
///
/// Accepted keys (case-insensitive): `UseDevelopmentStorage=true`,
/// `DevelopmentStorageProxyUri`, `DefaultEndpointsProtocol`, `AccountName`, `AccountKey`,
/// `EndpointSuffix`, `BlobEndpoint`, `SharedAccessSignature`; others are ignored (queue, table,
/// file endpoints).
pub(crate) fn parse_connection_string(connection_string: &str, container: &str) -> Result<Target> {
    validate_container_name(container)?;
    let mut fields: Vec<(String, String)> = Vec::new();
    for (i, part) in connection_string.split(';').enumerate() {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((key, value)) = part.split_once('=') else {
            return Err(invalid(
                "connection_string",
                format!(
                    "segment {} is not KEY=VALUE (value not shown: it may hold a secret)",
                    i + 1
                ),
            ));
        };
        fields.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());

    if get("usedevelopmentstorage").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        let endpoint = match get("developmentstorageproxyuri") {
            Some(proxy) => format!("{}:10000/{DEV_ACCOUNT_NAME}", proxy.trim_end_matches('/')),
            None => DEV_BLOB_ENDPOINT.to_string(),
        };
        return Ok(Target {
            container_url: container_url(&endpoint, container, None)?,
            container: container.to_string(),
            auth: Auth::SharedKey {
                account: DEV_ACCOUNT_NAME.to_string(),
                key: decode_key(DEV_ACCOUNT_KEY)?,
            },
        });
    }

    let account = get("accountname");
    let endpoint = match (get("blobendpoint"), account) {
        (Some(endpoint), _) => endpoint.to_string(),
        (None, Some(account)) => {
            let protocol = get("defaultendpointsprotocol").unwrap_or("https");
            let suffix = get("endpointsuffix").unwrap_or("core.windows.net");
            format!("{protocol}://{account}.blob.{suffix}")
        }
        (None, None) => {
            return Err(invalid(
                "connection_string",
                "needs AccountName (with AccountKey or SharedAccessSignature), BlobEndpoint, \
                 or UseDevelopmentStorage=true",
            ));
        }
    };

    if let Some(sas) = get("sharedaccesssignature") {
        return Ok(Target {
            container_url: container_url(&endpoint, container, Some(sas))?,
            container: container.to_string(),
            auth: Auth::Sas,
        });
    }
    match (account, get("accountkey")) {
        (Some(account), Some(key)) => Ok(Target {
            container_url: container_url(&endpoint, container, None)?,
            container: container.to_string(),
            auth: Auth::SharedKey {
                account: account.to_string(),
                key: decode_key(key)?,
            },
        }),
        (None, Some(_)) => Err(invalid("connection_string", "AccountKey needs AccountName")),
        _ => Err(invalid(
            "connection_string",
            "needs AccountKey (with AccountName) or SharedAccessSignature; for an Entra ID \
             credential use BlobStore::from_container_url_with_credential",
        )),
    }
}

fn decode_key(key: &str) -> Result<AccountKey> {
    BASE64.decode(key).map(AccountKey::new).map_err(|_| {
        invalid(
            "connection_string",
            "AccountKey is not valid base64 (value not shown)",
        )
    })
}

/// `{endpoint}/{container}` with an optional SAS query.
fn container_url(endpoint: &str, container: &str, sas: Option<&str>) -> Result<Url> {
    let mut url = Url::parse(endpoint)
        .map_err(|e| invalid("connection_string", format!("BlobEndpoint is not a URL ({e})")))?;
    if url.cannot_be_a_base() || !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(
            "connection_string",
            "BlobEndpoint must be an http(s) URL",
        ));
    }
    url.set_query(None);
    url.path_segments_mut()
        .map_err(|_| invalid("connection_string", "BlobEndpoint cannot take a path"))?
        .pop_if_empty()
        .push(container);
    if let Some(sas) = sas {
        url.set_query(Some(sas.trim_start_matches('?')));
    }
    Ok(url)
}

/// A container URL as a user hands it over: `https://acct.blob.core.windows.net/container`
/// (Azurite: `http://127.0.0.1:10000/devstoreaccount1/container`), with a SAS in the query
/// unless a credential is given.
pub(crate) fn parse_container_url(url: &str, credential: Option<Arc<dyn TokenCredential>>) -> Result<Target> {
    let parsed = Url::parse(url).map_err(|e| {
        // The URL may carry a SAS: show only the parse error, not the value.
        invalid("container_url", format!("is not a URL ({e})"))
    })?;
    if parsed.cannot_be_a_base() || !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("container_url", "must be an http(s) URL"));
    }
    let container = parsed
        .path_segments()
        .and_then(|mut s| s.rfind(|seg| !seg.is_empty()))
        .map(str::to_string)
        .ok_or_else(|| invalid("container_url", "has no container in its path"))?;
    validate_container_name(&container)?;
    let mut container_url = parsed.clone();
    container_url.set_fragment(None);
    if let Ok(mut segments) = container_url.path_segments_mut() {
        segments.pop_if_empty();
    }
    let has_sas = parsed.query_pairs().any(|(k, _)| k.eq_ignore_ascii_case("sig"));
    let auth = match credential {
        Some(credential) => {
            if parsed.scheme() != "https" {
                return Err(invalid(
                    "container_url",
                    format!(
                        "{} must use https with an Entra ID credential (bearer tokens are never sent in clear text)",
                        redact_url(&parsed)
                    ),
                ));
            }
            if has_sas {
                return Err(invalid(
                    "container_url",
                    "carries a SAS (sig=…) and a credential was given too; pass one or the other",
                ));
            }
            Auth::Token(credential)
        }
        None if has_sas => Auth::Sas,
        None => {
            return Err(invalid(
                "container_url",
                format!(
                    "{} has no SAS token (…?sv=…&sig=…); append a container SAS, or use \
                     BlobStore::from_container_url_with_credential or from_connection_string",
                    redact_url(&parsed)
                ),
            ));
        }
    };
    Ok(Target {
        container_url,
        container,
        auth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "a2V5LWJ5dGVz"; // base64("key-bytes")

    #[test]
    fn development_storage_uses_the_well_known_account() {
        let t = parse_connection_string("UseDevelopmentStorage=true", "checkpoints").unwrap();
        assert_eq!(
            t.container_url.as_str(),
            "http://127.0.0.1:10000/devstoreaccount1/checkpoints"
        );
        assert!(matches!(&t.auth, Auth::SharedKey { account, .. } if account == DEV_ACCOUNT_NAME));
    }

    #[test]
    fn account_key_connection_string_builds_the_endpoint() {
        let cs = format!(
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={KEY};EndpointSuffix=core.windows.net"
        );
        let t = parse_connection_string(&cs, "c1").unwrap_err();
        assert_eq!(t.kind(), ErrorKind::InvalidInput, "container too short: {t}");
        let t = parse_connection_string(&cs, "cps").unwrap();
        assert_eq!(t.container_url.as_str(), "https://acct.blob.core.windows.net/cps");
        match &t.auth {
            Auth::SharedKey { account, key } => {
                assert_eq!(account, "acct");
                assert_eq!(key.bytes(), b"key-bytes");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn blob_endpoint_wins_and_keeps_its_path() {
        let cs = format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={KEY};\
             BlobEndpoint=http://127.0.0.1:41000/devstoreaccount1/;QueueEndpoint=http://x"
        );
        let t = parse_connection_string(&cs, "cps").unwrap();
        assert_eq!(
            t.container_url.as_str(),
            "http://127.0.0.1:41000/devstoreaccount1/cps"
        );
    }

    #[test]
    fn sas_connection_string_puts_the_token_in_the_query() {
        let cs =
            "BlobEndpoint=https://acct.blob.core.windows.net;SharedAccessSignature=sv=2022-11-02&sig=SECRET";
        let t = parse_connection_string(cs, "cps").unwrap();
        assert!(matches!(t.auth, Auth::Sas));
        assert_eq!(t.container_url.query(), Some("sv=2022-11-02&sig=SECRET"));
        assert!(!format!("{t:?}").contains("SECRET"), "{t:?}");
    }

    #[test]
    fn errors_name_the_field_and_never_the_secret() {
        for cs in [
            "AccountName=acct;AccountKey=!!notbase64SECRET",
            "AccountKey=SECRETKEY",
            "garbageSECRET",
            "AccountName=acct",
        ] {
            let e = parse_connection_string(cs, "cps").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            assert!(e.to_string().contains("connection_string"), "{e}");
            assert!(!e.to_string().contains("SECRET"), "{e}");
            assert!(!format!("{e:?}").contains("SECRET"), "{e:?}");
        }
    }

    #[test]
    fn container_urls_need_a_sas_or_a_credential() {
        let t = parse_container_url("https://acct.blob.core.windows.net/cps/?sv=1&sig=SECRET", None).unwrap();
        assert_eq!(t.container, "cps");
        assert!(matches!(t.auth, Auth::Sas));
        assert_eq!(t.container_url.path(), "/cps");
        let e = parse_container_url("https://acct.blob.core.windows.net/cps", None).unwrap_err();
        assert!(e.to_string().contains("no SAS token"), "{e}");
        let e =
            parse_container_url("http://127.0.0.1:1/devstoreaccount1/Bad_Name?sig=SECRET", None).unwrap_err();
        assert!(e.to_string().contains("container"), "{e}");
        assert!(!e.to_string().contains("SECRET"), "{e}");
    }

    #[test]
    fn container_names_follow_azure_rules() {
        for ok in ["abc", "a-b-c", "0cps", &"a".repeat(63)] {
            validate_container_name(ok).unwrap();
        }
        for bad in ["ab", "ABC", "a--b", "-ab", "ab-", "a_b", "a/b", &"a".repeat(64)] {
            assert!(validate_container_name(bad).is_err(), "{bad}");
        }
    }
}
