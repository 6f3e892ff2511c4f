//! Event Hubs connection strings:
//! `Endpoint=sb://<host>[:port]/;SharedAccessKeyName=…;SharedAccessKey=…[;EntityPath=…][;UseDevelopmentEmulator=true]`,
//! or with `SharedAccessSignature=SharedAccessSignature sr=…&sig=…&se=…&skn=…` in place of the
//! key name and key.

use std::fmt;

use crate::error::{Error, ErrorKind, Result};

/// A parsed connection string. `Debug` and `Display` never show the shared access key or
/// signature.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionString {
    host: String,
    port: Option<u16>,
    auth: Auth,
    entity_path: Option<String>,
    use_development_emulator: bool,
}

/// How the connection string authenticates.
#[derive(Clone, PartialEq, Eq)]
enum Auth {
    Key { name: String, key: String },
    Signature(String),
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!("connection string: {}", message.into()),
    )
}

impl ConnectionString {
    /// Parses a connection string. Field names are case-insensitive; unknown fields are
    /// ignored. Fails with [`ErrorKind::InvalidInput`] naming the missing or malformed field
    /// (never echoing the key).
    pub fn parse(s: &str) -> Result<Self> {
        let (mut endpoint, mut key_name, mut key, mut entity_path) = (None, None, None, None);
        let mut signature = None;
        let mut use_development_emulator = false;
        for segment in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((name, value)) = segment.split_once('=') else {
                // The segment may be (part of) the key: do not echo it.
                return Err(invalid("every field must look like Name=value"));
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "endpoint" => endpoint = Some(value),
                "sharedaccesskeyname" => key_name = Some(value),
                "sharedaccesskey" => key = Some(value),
                "sharedaccesssignature" => signature = Some(value),
                "entitypath" => entity_path = Some(value),
                "usedevelopmentemulator" => {
                    use_development_emulator = match value.to_ascii_lowercase().as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(invalid("UseDevelopmentEmulator must be true or false")),
                    }
                }
                _ => {}
            }
        }
        let endpoint = endpoint
            .filter(|e| !e.is_empty())
            .ok_or_else(|| invalid("Endpoint is missing"))?;
        let url = url::Url::parse(endpoint)
            .map_err(|e| invalid(format!("Endpoint {endpoint:?} is not a URL: {e}")))?;
        if !matches!(url.scheme(), "sb" | "amqps" | "amqp") {
            return Err(invalid(format!("Endpoint {endpoint:?} must start with sb://")));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid(format!("Endpoint {endpoint:?} has no host")))?
            .to_owned();
        let auth = match (signature, key_name, key) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(invalid(
                    "SharedAccessSignature and SharedAccessKeyName/SharedAccessKey: give one or the other",
                ));
            }
            (Some(signature), None, None) => {
                // Checked (shape and expiry field) without echoing it.
                crate::credential::Credential::shared_access_signature(signature)
                    .map_err(|e| invalid(format!("SharedAccessSignature: {}", e.message())))?;
                Auth::Signature(signature.to_owned())
            }
            (None, key_name, key) => {
                let key_name = key_name.filter(|k| !k.is_empty()).ok_or_else(|| {
                    invalid("SharedAccessKeyName is missing (or give SharedAccessSignature)")
                })?;
                let key = key
                    .filter(|k| !k.is_empty())
                    .ok_or_else(|| invalid("SharedAccessKey is missing (or give SharedAccessSignature)"))?;
                Auth::Key {
                    name: key_name.to_owned(),
                    key: key.to_owned(),
                }
            }
        };
        Ok(ConnectionString {
            host,
            port: url.port(),
            auth,
            entity_path: entity_path.filter(|p| !p.is_empty()).map(str::to_owned),
            use_development_emulator,
        })
    }

    /// The fully qualified namespace as the official SDKs derive it from the endpoint: the host
    /// with `:port` when the endpoint carries one (`ns.servicebus.windows.net`,
    /// `localhost:5672`); no scheme, no path, no trailing slash. Processors of every SDK record
    /// ownership and checkpoints under this name, so it must match theirs exactly.
    pub fn fully_qualified_namespace(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }

    /// The host alone, e.g. `localhost`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `EntityPath`, the event hub, when present.
    pub fn event_hub(&self) -> Option<&str> {
        self.entity_path.as_deref()
    }

    /// The port in the endpoint, if any.
    #[cfg(test)]
    pub(crate) fn port(&self) -> Option<u16> {
        self.port
    }

    /// `UseDevelopmentEmulator=true`: plain AMQP instead of TLS.
    pub(crate) fn use_development_emulator(&self) -> bool {
        self.use_development_emulator
    }

    /// The credential the string carries: its key, or its shared access signature.
    ///
    /// # Errors
    /// `Unauthorized` when the signature has expired since the string was parsed.
    pub(crate) fn credential(&self) -> Result<crate::credential::Credential> {
        match &self.auth {
            Auth::Key { name, key } => Ok(crate::credential::Credential::shared_access_key(name, key)),
            Auth::Signature(signature) => {
                crate::credential::Credential::shared_access_signature(signature.as_str())
            }
        }
    }

    fn key_name(&self) -> Option<&str> {
        match &self.auth {
            Auth::Key { name, .. } => Some(name),
            Auth::Signature(_) => None,
        }
    }
}

impl fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionString")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("key_name", &self.key_name())
            .field("secret", &"<redacted>")
            .field("entity_path", &self.entity_path)
            .field("use_development_emulator", &self.use_development_emulator)
            .finish()
    }
}

impl fmt::Display for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Endpoint=sb://{}", self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        match self.key_name() {
            Some(name) => write!(f, "/;SharedAccessKeyName={name};SharedAccessKey=<redacted>")?,
            None => f.write_str("/;SharedAccessSignature=<redacted>")?,
        }
        if self.use_development_emulator {
            f.write_str(";UseDevelopmentEmulator=true")?;
        }
        if let Some(path) = &self.entity_path {
            write!(f, ";EntityPath={path}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlLXNlY3JldC1rZXk=";

    #[test]
    fn parses_the_service_and_the_emulator_forms() {
        let cs = ConnectionString::parse(&format!(
            "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey={KEY};EntityPath=orders"
        ))
        .unwrap();
        assert_eq!(cs.fully_qualified_namespace(), "ns.servicebus.windows.net");
        assert_eq!(cs.event_hub(), Some("orders"));
        assert_eq!(cs.port(), None);
        assert!(!cs.use_development_emulator());
        let cs = ConnectionString::parse(&format!(
            "endpoint=sb://localhost:6000;sharedaccesskeyname=k;SharedAccessKey={KEY};UseDevelopmentEmulator=true;"
        ))
        .unwrap();
        assert_eq!(cs.fully_qualified_namespace(), "localhost:6000");
        assert_eq!(cs.host(), "localhost");
        assert_eq!(cs.port(), Some(6000));
        assert!(cs.use_development_emulator());
        assert_eq!(cs.event_hub(), None);
    }

    /// The namespace every official SDK records in a checkpoint store for these endpoints
    /// (Go `url.Host`, Python `urlparse(endpoint).netloc`, JS `url.host`): a trailing slash,
    /// a path or an `EntityPath` never change it; a port stays on it.
    #[test]
    fn the_namespace_is_derived_as_the_official_sdks_derive_it() {
        for (endpoint, namespace) in [
            ("sb://ns.servicebus.windows.net/", "ns.servicebus.windows.net"),
            ("sb://ns.servicebus.windows.net", "ns.servicebus.windows.net"),
            ("sb://localhost:5672", "localhost:5672"),
            ("sb://localhost:5672/", "localhost:5672"),
            (
                "amqps://ns.servicebus.windows.net:5671/",
                "ns.servicebus.windows.net:5671",
            ),
            ("sb://127.0.0.1:40123/", "127.0.0.1:40123"),
        ] {
            let cs = ConnectionString::parse(&format!(
                "Endpoint={endpoint};SharedAccessKeyName=k;SharedAccessKey={KEY};EntityPath=orders"
            ))
            .unwrap();
            assert_eq!(cs.fully_qualified_namespace(), namespace, "{endpoint}");
        }
    }

    #[test]
    fn errors_name_the_field_and_never_the_key() {
        for (input, field) in [
            (format!("SharedAccessKeyName=k;SharedAccessKey={KEY}"), "Endpoint"),
            (
                format!("Endpoint=sb://h;SharedAccessKey={KEY}"),
                "SharedAccessKeyName",
            ),
            (
                "Endpoint=sb://h;SharedAccessKeyName=k".to_owned(),
                "SharedAccessKey",
            ),
            (
                format!("Endpoint=not a url;SharedAccessKeyName=k;SharedAccessKey={KEY}"),
                "Endpoint",
            ),
            (
                format!("Endpoint=http://h;SharedAccessKeyName=k;SharedAccessKey={KEY}"),
                "Endpoint",
            ),
            (
                format!(
                    "Endpoint=sb://h;SharedAccessKeyName=k;SharedAccessKey={KEY};{}",
                    KEY.trim_end_matches('=')
                ),
                "Name=value",
            ),
            (
                format!(
                    "Endpoint=sb://h;SharedAccessKeyName=k;SharedAccessKey={KEY};UseDevelopmentEmulator=yes"
                ),
                "UseDevelopmentEmulator",
            ),
        ] {
            let e = ConnectionString::parse(&input).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            let text = format!("{e} {e:?}");
            assert!(text.contains(field), "{text}");
            assert!(!text.contains(KEY.trim_end_matches('=')), "{text}");
        }
    }

    #[test]
    fn a_shared_access_signature_stands_in_for_the_key_and_is_never_shown() {
        let token = crate::sas::SasCredential::new("send-only", KEY)
            .token("sb://ns.servicebus.windows.net/orders", 4_000_000_000)
            .unwrap();
        let cs = ConnectionString::parse(&format!(
            "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessSignature={token};EntityPath=orders"
        ))
        .unwrap();
        assert_eq!(cs.event_hub(), Some("orders"));
        let sig = token.split("sig=").nth(1).unwrap().split('&').next().unwrap();
        for text in [
            format!("{cs:?}"),
            cs.to_string(),
            format!("{:?}", cs.credential().unwrap()),
        ] {
            assert!(!text.contains(sig), "{text}");
        }
        assert!(cs.to_string().contains("SharedAccessSignature=<redacted>"));
        for (input, field) in [
            (
                format!("Endpoint=sb://h;SharedAccessSignature={token};SharedAccessKeyName=k;SharedAccessKey={KEY}"),
                "give one or the other",
            ),
            (
                "Endpoint=sb://h;SharedAccessSignature=sr=x&sig=secretsig".to_owned(),
                "SharedAccessSignature",
            ),
            (
                "Endpoint=sb://h;SharedAccessSignature=SharedAccessSignature sr=x&sig=secretsig&se=soon&skn=k"
                    .to_owned(),
                "se",
            ),
        ] {
            let e = ConnectionString::parse(&input).unwrap_err();
            let text = format!("{e} {e:?}");
            assert!(text.contains(field), "{text}");
            assert!(!text.contains("secretsig") && !text.contains(sig), "{text}");
        }
    }

    #[test]
    fn debug_and_display_hide_the_key() {
        let cs = ConnectionString::parse(&format!(
            "Endpoint=sb://localhost:5672;SharedAccessKeyName=k;SharedAccessKey={KEY};EntityPath=orders"
        ))
        .unwrap();
        for text in [format!("{cs:?}"), cs.to_string()] {
            assert!(!text.contains(KEY), "{text}");
            assert!(text.contains("localhost"), "{text}");
        }
        assert_eq!(
            ConnectionString::parse(&cs.to_string().replace("<redacted>", KEY)).unwrap(),
            cs,
            "Display round-trips once the key is put back"
        );
    }
}
