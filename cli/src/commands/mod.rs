//! One module per `ehstore` command, and [`run`] to dispatch the parsed command line.

pub mod bench;
pub mod bench_processor;
pub mod conformance;
pub mod demo;
pub mod emulator;
pub mod export;
pub mod import;
pub mod keda;
pub mod lag;
pub mod legacy;
pub mod migrate;
pub mod process;
pub mod prometheus;
pub mod reset;
pub mod status;
pub mod watch;

use std::io::Write;
use std::process::ExitCode;

use eventhubs_store_core::{Checkpoint, CheckpointStore, Error, ErrorKind, PartitionScope, Result};

use crate::cli::{Command, ScopeArgs};
use crate::sync::{Summary, SyncOptions, progress_bar, sync_checkpoints};

/// Runs one command. `Ok(code)` carries the exit code of a command that ran to its end (failed
/// conformance cases or failed records give a non-zero code); `Err` is one clear error.
///
/// # Errors
/// Whatever stopped the command (bad arguments, unreachable store, bad file).
pub async fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Status(a) => status::run(a).await,
        Command::Reset(a) => reset::run(a).await,
        Command::Export(a) => export::run(a).await,
        Command::Import(a) => import::run(a).await,
        Command::Migrate(a) => migrate::run(a).await,
        Command::ImportLegacy(a) => legacy::run(a).await,
        Command::Conformance(a) => conformance::run(a).await,
        Command::Bench(a) => bench::run(a).await,
        Command::BenchProcessor(a) => bench_processor::run(a).await,
        Command::Demo(a) => demo::run(a).await,
        Command::Process(a) => process::run(a).await,
        Command::Emulator(a) => emulator::run(a).await,
        Command::KedaScaler(a) => keda::run(a).await,
    }
}

/// An Event Hubs client error as one of ours, for the commands that run a Processor: the
/// client's `InvalidInput` stays invalid input, what it calls retryable is `Unavailable`,
/// anything else (refused credentials, a protocol error) is `Backend`. The client's messages
/// never carry a key.
pub fn client_error(e: &eventhubs_client::Error) -> Error {
    let kind = match e.kind() {
        eventhubs_client::ErrorKind::InvalidInput => ErrorKind::InvalidInput,
        _ if e.is_retryable() => ErrorKind::Unavailable,
        _ => ErrorKind::Backend,
    };
    Error::new(kind, format!("event hubs: {e}"))
}

/// Locks a mutex of plain counters; a holder that panicked leaves them readable.
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Prints a line on standard output; a closed pipe (`| head`) is not an error worth a panic.
pub fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}");
}

/// The scopes a command works on: the one given, or with `all` every scope of the store.
///
/// # Errors
/// `InvalidInput` when neither is given; `Unsupported` when the store cannot list scopes.
pub async fn scopes_of(
    store: &dyn CheckpointStore,
    scope: &ScopeArgs,
    all: bool,
) -> Result<Vec<PartitionScope>> {
    if let Some(one) = scope.optional()? {
        return Ok(vec![one]);
    }
    if !all {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "give --namespace and --hub (and --group unless $Default), or --all",
        ));
    }
    store.list_scopes().await.map_err(|e| {
        if e.kind() == ErrorKind::Unsupported {
            Error::new(
                ErrorKind::Unsupported,
                format!(
                    "the {} store cannot list its scopes; name one with --namespace and --hub",
                    store.backend_name()
                ),
            )
        } else {
            e
        }
    })
}

/// Writes `records` into `store` with [`sync_checkpoints`] behind a progress bar, then prints
/// the notes and the summary; exit code 1 when anything failed.
pub async fn write_checkpoints(
    store: &dyn CheckpointStore,
    records: &[Checkpoint],
    options: SyncOptions,
    what: &str,
) -> ExitCode {
    let bar = progress_bar(records.len() as u64, what);
    let summary = sync_checkpoints(store, records, options, &bar).await;
    bar.finish_and_clear();
    finish_sync(&summary, options.dry_run)
}

/// Prints the notes and the summary line of a sync; exit code 1 when anything failed.
pub fn finish_sync(summary: &Summary, dry_run: bool) -> ExitCode {
    for note in &summary.notes {
        eprintln!("  {note}");
    }
    let prefix = if dry_run { "dry run: " } else { "" };
    out(&format!("{prefix}{}", summary.line(dry_run)));
    if summary.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
