//! The listener: accepts connections, caps how many run at once, shuts down cleanly.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::broker::Broker;
use crate::connection;
use crate::websocket;

/// How long a client may take over its TLS or WebSocket handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What runs under AMQP on every connection of a listener.
#[derive(Clone, Default)]
pub struct Transport {
    /// TLS first (as the service's port 5671, and 443 for WebSockets).
    pub tls: Option<TlsAcceptor>,
    /// An HTTP upgrade to a WebSocket, then AMQP in binary messages.
    pub websockets: bool,
}

/// Runs a TLS or WebSocket handshake, bounded in time; `None` (logged) when it fails.
async fn handshake<T, E: std::fmt::Display>(
    what: &'static str,
    peer: &str,
    step: impl std::future::Future<Output = Result<T, E>>,
) -> Option<T> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, step).await {
        Ok(Ok(done)) => Some(done),
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "{what} handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "{what} handshake timed out");
            None
        }
    }
}

/// Accepts connections until `shutdown` flips, then waits (briefly) for them to close.
pub async fn run(
    listener: TcpListener,
    broker: Arc<Broker>,
    transport: Transport,
    mut shutdown: watch::Receiver<bool>,
) {
    let active = Arc::new(AtomicUsize::new(0));
    let mut tasks = JoinSet::new();
    let max = broker.config.max_connections.max(1);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if broker.faults.refuse_now() {
                    tracing::debug!(%peer, "refusing a connection (fault injection)");
                    drop(stream);
                    continue;
                }
                if active.load(Ordering::Relaxed) >= max {
                    tracing::warn!(%peer, max, "connection limit reached; closing the new connection");
                    drop(stream);
                    continue;
                }
                active.fetch_add(1, Ordering::Relaxed);
                let id = broker.next_id();
                let (broker, shutdown, active) = (Arc::clone(&broker), shutdown.clone(), Arc::clone(&active));
                let transport = transport.clone();
                tasks.spawn(async move {
                    let delay = broker.faults.connect_delay();
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    let peer = peer.to_string();
                    let _ = stream.set_nodelay(true);
                    match (transport.tls, transport.websockets) {
                        (None, false) => connection::serve(stream, broker, shutdown, id).await,
                        (None, true) => {
                            if let Some(ws) = handshake("WebSocket", &peer, websocket::accept(stream)).await {
                                connection::serve_io(ws, peer, broker, shutdown, id).await;
                            }
                        }
                        (Some(acceptor), false) => {
                            if let Some(tls) = handshake("TLS", &peer, acceptor.accept(stream)).await {
                                connection::serve_io(tls, peer, broker, shutdown, id).await;
                            }
                        }
                        (Some(acceptor), true) => {
                            if let Some(tls) = handshake("TLS", &peer, acceptor.accept(stream)).await
                                && let Some(ws) = handshake("WebSocket", &peer, websocket::accept(tls)).await
                            {
                                connection::serve_io(ws, peer, broker, shutdown, id).await;
                            }
                        }
                    }
                    active.fetch_sub(1, Ordering::Relaxed);
                });
            }
            // Reap finished connection tasks so the set does not grow with the run's history.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(5), drain).await.is_err() {
        tasks.abort_all();
    }
}
