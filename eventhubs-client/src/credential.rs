//! [`Credential`]: how a client proves it may use the hub. Every kind ends as a token put on
//! `$cbs` (claims-based security) for the hub's audience, before the first link and again
//! before the token expires.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use azure_core::credentials::TokenCredential;
use tracing::Instrument;

use crate::error::{Error, ErrorKind, Result};
use crate::sas::SasCredential;

/// The scope an Entra ID token for Event Hubs is requested for.
pub const EVENT_HUBS_SCOPE: &str = "https://eventhubs.azure.net/.default";

/// How long a token signed with a shared access key is valid.
const SIGNED_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// A credential for a namespace or hub. `Debug` shows the kind (and a key's name), never a
/// key, signature or token.
///
/// - [`Credential::shared_access_key`]: a key name and key (what connection strings carry);
///   the client signs a token for one hour and signs a new one before it expires.
/// - [`Credential::shared_access_signature`]: a token someone else signed
///   (`SharedAccessSignature sr=…&sig=…&se=…&skn=…`); used until its `se` expiry, after which
///   the service refuses the client ([`ErrorKind::Unauthorized`]): make a new client with a
///   new signature.
/// - [`Credential::token_credential`]: Entra ID, through any `azure_core` `TokenCredential`
///   (those of `azure_identity`: `DeveloperToolsCredential`, `ManagedIdentityCredential`,
///   `ClientSecretCredential`, …). Tokens are asked for the scope
///   `https://eventhubs.azure.net/.default`, put as `jwt`, and asked for again when four
///   fifths of their lifetime have passed.
#[derive(Clone)]
pub struct Credential {
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Key(SasCredential),
    Signature { token: String, expires: i64 },
    Entra(Arc<dyn TokenCredential>),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Key(key) => f
                .debug_struct("Credential::SharedAccessKey")
                .field("key_name", &key.key_name())
                .field("key", &"<redacted>")
                .finish(),
            Kind::Signature { expires, .. } => f
                .debug_struct("Credential::SharedAccessSignature")
                .field("expires", expires)
                .field("token", &"<redacted>")
                .finish(),
            Kind::Entra(_) => f
                .debug_struct("Credential::TokenCredential")
                .finish_non_exhaustive(),
        }
    }
}

/// A token to put on `$cbs`.
pub(crate) struct CbsToken {
    /// The token (a secret).
    pub value: String,
    /// The put-token `type`: `servicebus.windows.net:sastoken` or `jwt`.
    pub token_type: &'static str,
    /// When it expires.
    pub expires: SystemTime,
}

impl CbsToken {
    /// When to put a fresh token: after four fifths of the time left, so a token is renewed
    /// well before it expires whatever its lifetime (48 minutes into an hour).
    pub fn refresh_after(&self) -> Duration {
        self.expires
            .duration_since(SystemTime::now())
            .unwrap_or_default()
            .mul_f64(0.8)
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn at(seconds: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
}

impl Credential {
    /// A shared access key and its name (a namespace's or a hub's policy).
    pub fn shared_access_key(key_name: impl Into<String>, key: impl Into<String>) -> Self {
        Credential {
            kind: Kind::Key(SasCredential::new(key_name, key)),
        }
    }

    /// A shared access signature, `SharedAccessSignature sr=…&sig=…&se=…&skn=…` (the prefix
    /// may be left out).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] naming the field that is missing or malformed (`sr`,
    /// `sig`, `se`), never quoting the signature; `Unauthorized` when it has expired.
    pub fn shared_access_signature(token: impl Into<String>) -> Result<Self> {
        let token = token.into();
        let body = token
            .strip_prefix("SharedAccessSignature ")
            .unwrap_or(&token)
            .trim();
        let field = |name: &str| {
            body.split('&')
                .find_map(|pair| pair.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
                .filter(|v| !v.is_empty())
        };
        for name in ["sr", "sig"] {
            if field(name).is_none() {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("shared access signature: its {name} field is missing"),
                ));
            }
        }
        let expires = field("se").and_then(|v| v.parse::<i64>().ok()).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                "shared access signature: its se field (expiry, seconds since the epoch) \
                     is missing or not a number",
            )
        })?;
        if expires <= unix_now() {
            return Err(Error::new(
                ErrorKind::Unauthorized,
                format!("shared access signature: it expired at {expires} (se)"),
            ));
        }
        Ok(Credential {
            kind: Kind::Signature {
                token: format!("SharedAccessSignature {body}"),
                expires,
            },
        })
    }

    /// Entra ID through an `azure_core` `TokenCredential` (e.g. one of `azure_identity`).
    pub fn token_credential(credential: Arc<dyn TokenCredential>) -> Self {
        Credential {
            kind: Kind::Entra(credential),
        }
    }

    /// The key name, for tracing (none for signatures and Entra ID).
    pub(crate) fn key_name(&self) -> Option<&str> {
        match &self.kind {
            Kind::Key(key) => Some(key.key_name()),
            _ => None,
        }
    }

    /// A token for `audience` (`sb://<namespace>/<hub>`).
    ///
    /// # Errors
    /// `Unauthorized` for an expired signature or a token the credential refused to give;
    /// `Unavailable` when the credential failed in a way worth retrying.
    pub(crate) async fn cbs_token(&self, audience: &str) -> Result<CbsToken> {
        match &self.kind {
            Kind::Key(key) => {
                let expires = unix_now().saturating_add(SIGNED_TOKEN_LIFETIME.as_secs() as i64);
                Ok(CbsToken {
                    value: key.token(audience, expires)?,
                    token_type: "servicebus.windows.net:sastoken",
                    expires: at(expires),
                })
            }
            Kind::Signature { token, expires } => {
                if *expires <= unix_now() {
                    return Err(Error::new(
                        ErrorKind::Unauthorized,
                        format!(
                            "the shared access signature expired at {expires} (se): make a client \
                             with a new one"
                        ),
                    ));
                }
                Ok(CbsToken {
                    value: token.clone(),
                    token_type: "servicebus.windows.net:sastoken",
                    expires: at(*expires),
                })
            }
            Kind::Entra(credential) => {
                let token = credential
                    .get_token(&[EVENT_HUBS_SCOPE], None)
                    .instrument(tracing::debug_span!(
                        "eventhubs.get_token",
                        scope = EVENT_HUBS_SCOPE
                    ))
                    .await
                    .map_err(|e| {
                        let kind = match e.kind() {
                            azure_core::error::ErrorKind::Credential => ErrorKind::Unauthorized,
                            _ => ErrorKind::Unavailable,
                        };
                        Error::new(kind, format!("getting an Entra ID token: {e}")).with_source(e)
                    })?;
                let expires = SystemTime::UNIX_EPOCH
                    + Duration::from_secs(u64::try_from(token.expires_on.unix_timestamp()).unwrap_or(0));
                Ok(CbsToken {
                    value: token.token.secret().to_owned(),
                    token_type: "jwt",
                    expires,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_checked_field_by_field_and_never_shown() {
        let token = SasCredential::new("k", "secret-key")
            .token("sb://h/hub", unix_now() + 600)
            .unwrap();
        let credential = Credential::shared_access_signature(token.clone()).unwrap();
        let sig = token.split("sig=").nth(1).unwrap().split('&').next().unwrap();
        assert!(!format!("{credential:?}").contains(sig));
        // Without the prefix too.
        let bare = token.strip_prefix("SharedAccessSignature ").unwrap();
        assert!(Credential::shared_access_signature(bare).is_ok());
        for (input, field) in [
            ("sr=a&se=1".to_owned(), "sig"),
            ("sig=abc&se=1".to_owned(), "sr"),
            ("sr=a&sig=abc".to_owned(), "se"),
            ("sr=a&sig=abc&se=tomorrow".to_owned(), "se"),
        ] {
            let e = Credential::shared_access_signature(input).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            assert!(e.to_string().contains(field), "{e}");
            assert!(!e.to_string().contains("abc"), "{e}");
        }
        let e = Credential::shared_access_signature("sr=a&sig=abc&se=1").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
    }

    #[tokio::test]
    async fn key_tokens_last_an_hour_and_are_renewed_after_four_fifths() {
        let token = Credential::shared_access_key("k", "v")
            .cbs_token("sb://h/hub")
            .await
            .unwrap();
        assert_eq!(token.token_type, "servicebus.windows.net:sastoken");
        let refresh = token.refresh_after().as_secs();
        assert!((2870..=2880).contains(&refresh), "{refresh}");
    }
}
