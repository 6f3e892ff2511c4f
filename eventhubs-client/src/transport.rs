//! Where a client connects and how: plain AMQP (emulators) or AMQP over TLS (`amqps`, the
//! service), to the namespace or to a custom endpoint (a proxy or private link host) that
//! forwards to it.

use std::fmt;
use std::sync::Arc;

use fe2o3_amqp::Connection;
use fe2o3_amqp::Session;
use fe2o3_amqp::connection::ConnectionHandle;
use fe2o3_amqp::sasl_profile::SaslProfile;
use fe2o3_amqp::session::SessionHandle;
use rustls::ClientConfig;
use rustls::pki_types::{CertificateDer, ServerName};
use tracing::Instrument;

use crate::amqp::errors::amqp_error;
use crate::error::{Error, ErrorKind, Result};

/// The port of AMQP over TLS.
pub(crate) const AMQPS_PORT: u16 = 5671;
/// The port of plain AMQP.
pub(crate) const AMQP_PORT: u16 = 5672;

/// The path of the service's WebSocket endpoint.
pub(crate) const WEBSOCKET_PATH: &str = "/$servicebus/websocket";

/// Where the TCP connection goes and whether TLS runs on it.
#[derive(Clone)]
pub(crate) struct Endpoint {
    /// The host to connect to (and to check the TLS certificate against).
    pub host: String,
    /// Its port.
    pub port: u16,
    /// TLS settings; `None` for plain AMQP.
    pub tls: Option<Arc<ClientConfig>>,
    /// AMQP over WebSockets (`wss://<host>:<port>/$servicebus/websocket`, or `ws://` without
    /// TLS), for networks that only let HTTPS out.
    pub websockets: bool,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match (self.tls.is_some(), self.websockets) {
            (true, false) => "amqps",
            (false, false) => "amqp",
            (true, true) => "wss",
            (false, true) => "ws",
        };
        write!(f, "{scheme}://{}:{}", self.host, self.port)?;
        if self.websockets {
            f.write_str(WEBSOCKET_PATH)?;
        }
        Ok(())
    }
}

impl Endpoint {
    /// A custom endpoint URL: `amqps://`, `sb://` or `https://` (TLS; port 5671, 5671, 443 by
    /// default) or `amqp://` (plain; port 5672).
    ///
    /// # Errors
    /// `InvalidInput` naming `custom_endpoint` when the URL has another scheme or no host.
    pub fn parse_custom(url: &str, tls: &Arc<ClientConfig>) -> Result<Self> {
        let invalid =
            |why: String| Error::new(ErrorKind::InvalidInput, format!("custom_endpoint {url:?}: {why}"));
        let parsed = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
        let (secure, default_port) = match parsed.scheme() {
            "amqps" | "sb" => (true, AMQPS_PORT),
            "https" => (true, 443),
            "amqp" => (false, AMQP_PORT),
            other => {
                return Err(invalid(format!(
                    "scheme {other:?} is not one of amqps, sb, https, amqp"
                )));
            }
        };
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid("no host".into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        Ok(Endpoint {
            host,
            port: parsed.port().unwrap_or(default_port),
            tls: secure.then(|| Arc::clone(tls)),
            websockets: false,
        })
    }
}

/// TLS settings that trust the public web roots (as the service's certificates chain to), and
/// `extra_roots` besides.
///
/// # Errors
/// `InvalidInput` naming `tls_root_certificates` when a root cannot be used.
pub(crate) fn tls_config(extra_roots: &[CertificateDer<'static>]) -> Result<Arc<ClientConfig>> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for root in extra_roots {
        roots.add(root.clone()).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("tls_root_certificates: a certificate cannot be a trust root: {e}"),
            )
        })?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("TLS settings: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Opens the connection on a socket of our own with `TCP_NODELAY` (fe2o3 leaves Nagle's
/// algorithm on, which holds each small credit refill back for tens of milliseconds and caps a
/// receiver near 7k events/s), TLS on top when the endpoint asks for it (the certificate
/// checked against the endpoint's host), then begins the session. The AMQP `open` names
/// `hostname`: the namespace, also through a custom endpoint.
pub(crate) async fn connect(
    endpoint: &Endpoint,
    hostname: &str,
) -> Result<(ConnectionHandle<()>, SessionHandle<()>)> {
    let span = tracing::debug_span!("eventhubs.connect", endpoint = %endpoint, hostname = %hostname);
    async {
        let unreachable = |e: std::io::Error| {
            Error::new(ErrorKind::Unavailable, format!("connect to {endpoint}: {e}"))
                .with_source(e)
                .connection_failure()
        };
        let stream = tokio::net::TcpStream::connect((endpoint.host.as_str(), endpoint.port))
            .await
            .map_err(unreachable)?;
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY could not be set");
        }
        let builder = || {
            Connection::builder()
                .container_id(format!("eventhubs-client-{}", uuid::Uuid::new_v4()))
                .scheme("amqp")
                .hostname(hostname)
                .sasl_profile(SaslProfile::Anonymous)
        };
        let websocket_url = endpoint.to_string();
        let mut connection = match &endpoint.tls {
            None if endpoint.websockets => {
                let ws = websocket(&websocket_url, stream).await?;
                builder().open_with_stream(ws).await
            }
            None => builder().open_with_stream(stream).await,
            Some(config) => {
                let name = ServerName::try_from(endpoint.host.clone()).map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidInput,
                        format!("endpoint host {:?} is not a TLS server name: {e}", endpoint.host),
                    )
                })?;
                let tls = tokio_rustls::TlsConnector::from(Arc::clone(config))
                    .connect(name, stream)
                    .await
                    .map_err(|e| tls_failure(endpoint, e))?;
                if endpoint.websockets {
                    let ws = websocket(&websocket_url, tls).await?;
                    builder().open_with_stream(ws).await
                } else {
                    builder().open_with_stream(tls).await
                }
            }
        }
        .map_err(|e| amqp_error(&format!("connect to {endpoint}"), e).connection_failure())?;
        let session = Session::begin(&mut connection)
            .await
            .map_err(|e| amqp_error("begin session", e).connection_failure())?;
        Ok((connection, session))
    }
    .instrument(span)
    .await
}

/// The WebSocket upgrade on an open stream (TLS already done when the URL is `wss://`).
async fn websocket<S>(
    url: &str,
    stream: S,
) -> Result<fe2o3_amqp_ws::WebSocketStream<fe2o3_amqp_ws::native::TokioWebSocketStream<S>>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    fe2o3_amqp_ws::WebSocketStream::connect_with_stream(url, stream)
        .await
        .map_err(|e| {
            Error::new(ErrorKind::Unavailable, format!("WebSocket upgrade at {url}: {e}"))
                .with_source(e)
                .connection_failure()
        })
}

/// A failed TLS handshake: a certificate the client does not trust is not worth retrying
/// (`Unauthorized`); anything else (the peer hung up) is.
fn tls_failure(endpoint: &Endpoint, e: std::io::Error) -> Error {
    let certificate = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|tls| {
            matches!(
                tls,
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            )
        });
    if certificate {
        Error::new(
            ErrorKind::Unauthorized,
            format!("TLS to {endpoint}: the server's certificate is not trusted: {e}"),
        )
        .with_source(e)
    } else {
        Error::new(ErrorKind::Unavailable, format!("TLS to {endpoint}: {e}"))
            .with_source(e)
            .connection_failure()
    }
}
