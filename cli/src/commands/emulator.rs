//! `ehstore emulator`: the Event Hubs emulator (crate `eventhubs-emulator`) in the foreground,
//! for local development against a real AMQP endpoint. Prints the connection string (with the
//! emulator's well-known development key, never a real secret) and serves until Ctrl-C.

use std::process::ExitCode;

use eventhubs_store_core::{Error, ErrorKind, Result};

use crate::cli::EmulatorArgs;
use crate::commands::out;

fn emulator_error(e: eventhubs_emulator::Error) -> Error {
    Error::new(ErrorKind::InvalidInput, format!("emulator: {e}"))
}

/// Runs `ehstore emulator`.
///
/// # Errors
/// A bad `--hub` value or a port that cannot be bound.
pub async fn run(args: EmulatorArgs) -> Result<ExitCode> {
    let mut builder = eventhubs_emulator::Emulator::builder()
        .port(args.port)
        .accept_unverified_jwt(args.accept_unverified_jwt);
    let mut first = None;
    for spec in &args.hubs {
        let (name, hub) = eventhubs_emulator::config::parse_hub_spec(spec).map_err(emulator_error)?;
        first.get_or_insert_with(|| name.clone());
        builder = builder.hub_config(&name, hub);
    }
    let handle = builder.start().await.map_err(|e| {
        Error::new(
            ErrorKind::Unavailable,
            format!(
                "the emulator cannot start on 127.0.0.1:{} ({e}); try --port 0 for a free port",
                args.port
            ),
        )
    })?;
    out(&format!(
        "Event Hubs emulator listening on {}",
        handle.local_addr()
    ));
    out(&format!("hubs: {}", args.hubs.join(", ")));
    if args.accept_unverified_jwt {
        out("WARNING: JWTs are accepted without signature verification (--accept-unverified-jwt)");
    }
    out(&format!(
        "connection string: {}",
        handle.connection_string(first.as_deref())
    ));
    out("Ctrl-C to stop");
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| Error::new(ErrorKind::Backend, "cannot wait for Ctrl-C").with_source(e))?;
    handle.shutdown().await;
    out("emulator stopped");
    Ok(ExitCode::SUCCESS)
}
