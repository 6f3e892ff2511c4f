//! `ehstore keda-scaler --listen ADDR`: KEDA's external-scaler gRPC protocol
//! (`externalscaler.ExternalScaler`) over any checkpoint store, with the standard gRPC health
//! service for Kubernetes probes and a graceful stop on SIGTERM or Ctrl-C.
//!
//! KEDA's built-in `azure-eventhub` scaler reads checkpoints only from Azure Blob Storage; this
//! one answers with the same semantics (total unprocessed events, capped at partitions ×
//! threshold; active above the activation threshold) for every store, from a background
//! collection per ScaledObject.

// tonic's handlers return `Result<_, tonic::Status>`; the helpers feeding them do too.
#![allow(clippy::result_large_err)]

mod collector;
pub mod metadata;
pub mod proto;
mod service;

use std::process::ExitCode;
use std::sync::Arc;

use eventhubs_store_core::{Error, ErrorKind, Result};

use crate::cli::KedaScalerArgs;
use crate::commands::out;
pub use service::{EnvLookup, Scaler, capped_total};

/// Runs `ehstore keda-scaler`.
///
/// # Errors
/// The address cannot be listened on, or serving failed.
pub async fn run(args: KedaScalerArgs) -> Result<ExitCode> {
    if let Some(addr) = args.metrics_addr {
        super::prometheus::serve(addr)?;
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| Error::new(ErrorKind::Unavailable, format!("--listen {}: {e}", args.listen)))?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::new(ErrorKind::Unavailable, format!("--listen {}: {e}", args.listen)))?;
    let env: EnvLookup = Arc::new(|var: &str| std::env::var(var).ok());
    let scaler = Scaler::new(args.collect_every, args.stall_after, env);
    let (mut health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<proto::external_scaler_server::ExternalScalerServer<Scaler>>()
        .await;
    // Listening for SIGTERM before saying we serve: a stop sent right after cannot kill us.
    let stop = stop()?;
    out(&format!("KEDA external scaler listening on {local}"));
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(proto::external_scaler_server::ExternalScalerServer::new(scaler))
        .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(listener), stop)
        .await
        .map_err(|e| Error::new(ErrorKind::Unavailable, format!("serving gRPC: {e}")))?;
    out("KEDA external scaler stopped");
    Ok(ExitCode::SUCCESS)
}

/// A future resolving on SIGTERM (what Kubernetes sends) or Ctrl-C; the handlers are installed
/// now.
fn stop() -> Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!("installing the SIGTERM handler: {e}"),
            )
        })?;
    let ctrl_c = tokio::signal::ctrl_c();
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = term.recv() => {}
            _ = ctrl_c => {}
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
    })
}
