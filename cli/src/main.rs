//! `ehstore`: see `ehstore --help` and the crate README.

use std::process::ExitCode;

use clap::Parser;
use eventhubs_store_cli::cli::Cli;
use eventhubs_store_cli::commands;
use eventhubs_store_cli::redact::redact_text;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("EHSTORE_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match commands::run(cli.command).await {
        Ok(code) => code,
        Err(e) => {
            // One line, secrets redacted once more in case a source error quoted a URL.
            let line = redact_text(&e.to_string()).replace('\n', " ");
            eprintln!("ehstore: error: {line}");
            ExitCode::FAILURE
        }
    }
}
