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

/// How long a client may take over its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections until `shutdown` flips, then waits (briefly) for them to close. With
/// `tls`, every connection speaks TLS first (as the service's port 5671 does).
pub async fn run(
    listener: TcpListener,
    broker: Arc<Broker>,
    tls: Option<TlsAcceptor>,
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
                let tls = tls.clone();
                tasks.spawn(async move {
                    let delay = broker.faults.connect_delay();
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    match tls {
                        None => connection::serve(stream, broker, shutdown, id).await,
                        Some(acceptor) => {
                            let _ = stream.set_nodelay(true);
                            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                                Ok(Ok(stream)) => {
                                    connection::serve_tls(stream, peer.to_string(), broker, shutdown, id).await;
                                }
                                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
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
