//! AMQP over TLS (`amqps`), as the service serves it on port 5671: the emulator's listener
//! can speak TLS only, with a certificate it is given or one it generates for `localhost`, so
//! a client's TLS path (certificate checks, SNI, the handshake under the AMQP header) is
//! exercised end to end.

use std::fmt;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::error::Error;

/// The certificate chain and private key the TLS listener presents. `Debug` never shows the
/// key.
#[derive(Clone)]
pub struct TlsIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
    certificate_pem: String,
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("certificates", &self.chain.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

impl TlsIdentity {
    /// A self-signed certificate for `names` (DNS names or IP addresses, e.g. `localhost`,
    /// `127.0.0.1`), made now. Clients trust it through
    /// [`TlsIdentity::certificate_pem`].
    ///
    /// # Errors
    /// `InvalidConfig` naming `tls names` when a name cannot be put in a certificate.
    pub fn self_signed(names: &[&str]) -> Result<Self, Error> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let generated = rcgen::generate_simple_self_signed(names)
            .map_err(|e| Error::invalid_config("tls names", format!("cannot make a certificate: {e}")))?;
        let certificate_pem = generated.cert.pem();
        let chain = vec![generated.cert.der().clone()];
        let key = PrivateKeyDer::try_from(generated.signing_key.serialize_der())
            .map_err(|e| Error::invalid_config("tls names", format!("cannot use the generated key: {e}")))?;
        Ok(TlsIdentity {
            chain,
            key: Arc::new(key),
            certificate_pem,
        })
    }

    /// A certificate chain and its private key, both PEM.
    ///
    /// # Errors
    /// `InvalidConfig` naming `tls certificate` or `tls key` when it holds no usable PEM
    /// item.
    pub fn from_pem(certificate_pem: &str, key_pem: &str) -> Result<Self, Error> {
        let chain = CertificateDer::pem_slice_iter(certificate_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::invalid_config("tls certificate", format!("not PEM: {e}")))?;
        if chain.is_empty() {
            return Err(Error::invalid_config(
                "tls certificate",
                "holds no CERTIFICATE block",
            ));
        }
        // The key's PEM is never quoted: the error names the field only.
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|_| Error::invalid_config("tls key", "holds no usable PRIVATE KEY block"))?;
        Ok(TlsIdentity {
            chain,
            key: Arc::new(key),
            certificate_pem: certificate_pem.to_owned(),
        })
    }

    /// The certificate chain, PEM: what a client adds to its trusted roots.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// The acceptor the listener wraps each connection in (TLS 1.2 and 1.3).
    pub(crate) fn acceptor(&self) -> Result<TlsAcceptor, Error> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| {
                b.with_no_client_auth()
                    .with_single_cert(self.chain.clone(), self.key.clone_key())
            })
            .map_err(|e| Error::invalid_config("tls key", format!("does not match the certificate: {e}")))?;
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_identity_round_trips_through_pem_and_hides_its_key() {
        let identity = TlsIdentity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
        assert!(
            identity
                .certificate_pem()
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        assert!(identity.acceptor().is_ok());
        assert!(!format!("{identity:?}").contains("BEGIN"));
        let e = TlsIdentity::from_pem(identity.certificate_pem(), "not a key").unwrap_err();
        assert!(e.to_string().contains("tls key"), "{e}");
        let e = TlsIdentity::from_pem("nothing", "nothing").unwrap_err();
        assert!(e.to_string().contains("tls certificate"), "{e}");
    }
}
