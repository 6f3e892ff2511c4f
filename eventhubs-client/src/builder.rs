//! [`EventHubClientBuilder`]: a client from a namespace, a hub and a [`Credential`], or from a
//! connection string, with the transport options the official SDKs offer (custom endpoint,
//! trusted roots, plain AMQP for emulators).

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::client::EventHubClient;
use crate::connection_string::ConnectionString;
use crate::credential::Credential;
use crate::error::{Error, ErrorKind, Result};
use crate::retry::RetryOptions;
use crate::transport::{AMQP_PORT, AMQPS_PORT, Endpoint, tls_config};

/// Builds an [`EventHubClient`].
///
/// ```no_run
/// # async fn run(
/// #     token_credential: std::sync::Arc<dyn azure_core::credentials::TokenCredential>,
/// # ) -> eventhubs_client::Result<()> {
/// use eventhubs_client::{Credential, EventHubClient};
/// // Entra ID: any azure_core TokenCredential, e.g. azure_identity::DeveloperToolsCredential.
/// let client = EventHubClient::builder(
///     "my-namespace.servicebus.windows.net",
///     "orders",
///     Credential::token_credential(token_credential),
/// )
/// .custom_endpoint("amqps://my-gateway.example.com:443")
/// .open()
/// .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct EventHubClientBuilder {
    namespace: String,
    event_hub: String,
    credential: Credential,
    retry: RetryOptions,
    custom_endpoint: Option<String>,
    roots_pem: Vec<String>,
    plain_amqp: bool,
    websockets: bool,
}

impl EventHubClientBuilder {
    pub(crate) fn new(namespace: &str, event_hub: &str, credential: Credential) -> Self {
        EventHubClientBuilder {
            namespace: namespace.trim().trim_end_matches('/').to_owned(),
            event_hub: event_hub.to_owned(),
            credential,
            retry: RetryOptions::default(),
            custom_endpoint: None,
            roots_pem: Vec::new(),
            plain_amqp: false,
            websockets: false,
        }
    }

    /// A builder from a connection string (see [`ConnectionString`]): its endpoint, its key or
    /// signature, its `EntityPath` unless `event_hub` is given, and `UseDevelopmentEmulator`.
    ///
    /// # Errors
    /// `InvalidInput` naming the field of the string that is wrong, or when no hub is named.
    pub fn from_connection_string(connection_string: &str, event_hub: Option<&str>) -> Result<Self> {
        let parsed = ConnectionString::parse(connection_string)?;
        let hub = event_hub
            .or(parsed.event_hub())
            .filter(|h| !h.is_empty())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidInput,
                    "no event hub: pass one or put EntityPath in the connection string",
                )
            })?
            .to_owned();
        let mut builder = Self::new(&parsed.fully_qualified_namespace(), &hub, parsed.credential()?);
        builder.plain_amqp = parsed.use_development_emulator();
        Ok(builder)
    }

    /// Retry options for every operation (default [`RetryOptions::default`]).
    pub fn retry_options(mut self, retry: RetryOptions) -> Self {
        self.retry = retry;
        self
    }

    /// Connect to this address instead of the namespace's (a proxy, an application gateway,
    /// a private link host) while still naming the namespace in AMQP and in tokens.
    /// `amqps://`, `sb://`, `https://` speak TLS (ports 5671, 5671, 443 by default; the
    /// certificate is checked against this host); `amqp://` speaks plain AMQP (port 5672).
    pub fn custom_endpoint(mut self, url: impl Into<String>) -> Self {
        self.custom_endpoint = Some(url.into());
        self
    }

    /// Trust these PEM certificates as roots, besides the public web roots (a gateway's or a
    /// test server's own certificate authority).
    pub fn tls_root_certificates_pem(mut self, pem: impl Into<String>) -> Self {
        self.roots_pem.push(pem.into());
        self
    }

    /// Speak plain AMQP on port 5672 (or the namespace's port) instead of TLS, as
    /// `UseDevelopmentEmulator=true` does: for emulators only.
    pub fn use_development_emulator(mut self, plain: bool) -> Self {
        self.plain_amqp = plain;
        self
    }

    /// Speak AMQP over WebSockets (`wss://<namespace>:443/$servicebus/websocket`), for
    /// networks that let only HTTPS out, as the official SDKs' `AmqpWebSockets` transport. With
    /// a custom endpoint, the upgrade goes to it; with `use_development_emulator`, `ws://` to
    /// the namespace's port.
    pub fn websockets(mut self, on: bool) -> Self {
        self.websockets = on;
        self
    }

    /// Connects, begins a session and puts a token for the hub right away (retrying as the
    /// retry options say), so a bad credential or certificate fails here.
    ///
    /// # Errors
    /// `InvalidInput` for bad options, naming the option; `Unauthorized` for a refused
    /// credential or an untrusted certificate; `Unavailable` when the namespace cannot be
    /// reached within the retries.
    pub async fn open(self) -> Result<EventHubClient> {
        self.retry.validate()?;
        if self.event_hub.is_empty() {
            return Err(Error::new(ErrorKind::InvalidInput, "event_hub must not be empty"));
        }
        let (host, port) = split_namespace(&self.namespace)?;
        let mut roots = Vec::new();
        for pem in &self.roots_pem {
            let parsed = CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidInput,
                        format!("tls_root_certificates_pem: not PEM: {e}"),
                    )
                })?;
            if parsed.is_empty() {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    "tls_root_certificates_pem: holds no CERTIFICATE block",
                ));
            }
            roots.extend(parsed);
        }
        let tls = tls_config(&roots)?;
        let mut endpoint = match &self.custom_endpoint {
            Some(url) => Endpoint::parse_custom(url, &tls)?,
            None if self.plain_amqp => Endpoint {
                host: host.clone(),
                port: port.unwrap_or(if self.websockets { 80 } else { AMQP_PORT }),
                tls: None,
                websockets: false,
            },
            None => Endpoint {
                host: host.clone(),
                port: port.unwrap_or(if self.websockets { 443 } else { AMQPS_PORT }),
                tls: Some(tls),
                websockets: false,
            },
        };
        endpoint.websockets = self.websockets;
        EventHubClient::open(
            self.namespace,
            host,
            self.event_hub,
            self.credential,
            self.retry,
            endpoint,
        )
        .await
    }
}

/// `host[:port]` of a fully qualified namespace.
fn split_namespace(namespace: &str) -> Result<(String, Option<u16>)> {
    let invalid = |why: &str| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("fully_qualified_namespace {namespace:?}: {why}"),
        )
    };
    if namespace.is_empty() || namespace.contains("://") || namespace.contains('/') {
        return Err(invalid(
            "give the host (and :port), e.g. my-ns.servicebus.windows.net",
        ));
    }
    let url = url::Url::parse(&format!("sb://{namespace}")).map_err(|e| invalid(&e.to_string()))?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| invalid("no host"))?
        .to_owned();
    Ok((host, url.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_split_into_host_and_port_and_bad_ones_are_named() {
        assert_eq!(
            split_namespace("ns.servicebus.windows.net").unwrap(),
            ("ns.servicebus.windows.net".to_owned(), None)
        );
        assert_eq!(
            split_namespace("localhost:5671").unwrap(),
            ("localhost".to_owned(), Some(5671))
        );
        for bad in ["", "sb://ns", "ns/hub", "ns:notaport"] {
            let e = split_namespace(bad).unwrap_err();
            assert!(e.to_string().contains("fully_qualified_namespace"), "{e}");
        }
    }

    #[tokio::test]
    async fn bad_options_are_refused_before_connecting_naming_the_option() {
        let credential = Credential::shared_access_key("k", "v");
        let base = EventHubClientBuilder::new("127.0.0.1:9", "orders", credential);
        for (builder, field) in [
            (base.clone().custom_endpoint("http://proxy"), "custom_endpoint"),
            (base.clone().custom_endpoint("amqps://"), "custom_endpoint"),
            (
                base.clone().tls_root_certificates_pem("nothing"),
                "tls_root_certificates_pem",
            ),
            (
                EventHubClientBuilder::new("127.0.0.1:9", "", Credential::shared_access_key("k", "v")),
                "event_hub",
            ),
        ] {
            let e = builder.open().await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            assert!(e.to_string().contains(field), "{e}");
        }
    }
}
