//! A TCP proxy in front of Azurite that can cut every connection through it at once, as a
//! network failure or a server restart would: what the conformance suite's
//! `c12_acknowledged_writes_survive_cut_connections` needs from a harness
//! (`Instance::interrupt`). Azurite itself cannot drop one client's connections.

use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// The proxy: listens on 127.0.0.1 (port 0) and forwards to `upstream`. Its tasks live on the
/// runtime that started it and stop with it, or when the proxy is dropped.
pub struct CutProxy {
    /// `http://127.0.0.1:PORT/<path of the upstream URL>`: the Azurite URL through the proxy.
    pub url: String,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl CutProxy {
    /// Starts a proxy for the Azurite blob URL `upstream_url` (`http://HOST:PORT/ACCOUNT`).
    pub async fn start(upstream_url: &str) -> std::io::Result<CutProxy> {
        let parsed = url::Url::parse(upstream_url).map_err(std::io::Error::other)?;
        let upstream = format!(
            "{}:{}",
            parsed.host_str().unwrap_or("127.0.0.1"),
            parsed.port_or_known_default().unwrap_or(80)
        );
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let connections: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let accept = tokio::spawn({
            let connections = connections.clone();
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    let upstream = upstream.clone();
                    let task = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(&upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    let mut live = connections.lock().unwrap();
                    live.retain(|t| !t.is_finished());
                    live.push(task.abort_handle());
                }
            }
        })
        .abort_handle();
        Ok(CutProxy {
            url: format!("http://127.0.0.1:{port}{}", parsed.path().trim_end_matches('/')),
            connections,
            accept,
        })
    }

    /// Closes every connection through the proxy (both sides, mid-request or idle) and answers
    /// how many were open. New connections are accepted as before.
    pub fn cut(&self) -> u64 {
        let mut live = self.connections.lock().unwrap();
        let open = live.iter().filter(|t| !t.is_finished()).count() as u64;
        for task in live.drain(..) {
            task.abort();
        }
        open
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
