//! Shared access signatures: the key and the tokens signed with it.

use std::fmt;

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{Error, ErrorKind, Result};

/// A shared access key and its name. `Debug` shows the name only.
#[derive(Clone)]
pub(crate) struct SasCredential {
    key_name: String,
    key: String,
}

impl fmt::Debug for SasCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SasCredential")
            .field("key_name", &self.key_name)
            .field("key", &"<redacted>")
            .finish()
    }
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl SasCredential {
    /// A credential for key `key_name` with secret `key`.
    pub fn new(key_name: impl Into<String>, key: impl Into<String>) -> Self {
        SasCredential {
            key_name: key_name.into(),
            key: key.into(),
        }
    }

    /// The key's name.
    pub fn key_name(&self) -> &str {
        &self.key_name
    }

    /// `SharedAccessSignature sr=…&sig=…&se=…&skn=…` for `resource`, valid until `expiry`
    /// (seconds since the epoch). The result is a secret.
    pub fn token(&self, resource: &str, expiry: i64) -> Result<String> {
        let resource = encode(resource);
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.as_bytes())
            .map_err(|_| Error::new(ErrorKind::InvalidInput, "the shared access key is unusable"))?;
        mac.update(format!("{resource}\n{expiry}").as_bytes());
        let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        Ok(format!(
            "SharedAccessSignature sr={resource}&sig={}&se={expiry}&skn={}",
            encode(&signature),
            encode(&self.key_name)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shape_and_no_key_in_debug() {
        let credential = SasCredential::new("RootManageSharedAccessKey", "c2VjcmV0LWtleQ==");
        let token = credential.token("sb://localhost/orders", 1_700_000_000).unwrap();
        assert!(
            token.starts_with("SharedAccessSignature sr=sb%3A%2F%2Flocalhost%2Forders&sig="),
            "{token}"
        );
        assert!(token.ends_with("&se=1700000000&skn=RootManageSharedAccessKey"));
        let debug = format!("{credential:?}");
        assert!(!debug.contains("c2VjcmV0LWtleQ"), "{debug}");
        assert_eq!(credential.key_name(), "RootManageSharedAccessKey");
    }

    #[test]
    fn the_emulator_accepts_the_signature() {
        let key = eventhubs_emulator::SasKey {
            name: "k".into(),
            key: "secret".into(),
        };
        let ours = SasCredential::new("k", "secret")
            .token("sb://localhost/orders", 4_000_000_000)
            .unwrap();
        let sas = ours.strip_prefix("SharedAccessSignature ").unwrap();
        let signed = eventhubs_emulator::cbs::verify_sas(sas, &key, 0).unwrap();
        assert_eq!(signed.resource, "sb://localhost/orders");
    }
}
