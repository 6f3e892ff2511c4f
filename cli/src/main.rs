//! `ehstore`: see `ehstore --help` and the crate README.

use std::process::ExitCode;

use clap::Parser;
use eventhubs_store_cli::cli::Cli;
use eventhubs_store_cli::commands;
use eventhubs_store_cli::redact::redact_text;

#[tokio::main]
async fn main() -> ExitCode {
    // Errors are reported once, as one line, below. Without EHSTORE_LOG only our own error
    // events are logged: fe2o3-amqp's engine logs its own view of a connection torn down after
    // a refusal (`IllegalState`), which would make the one line two.
    let filter = match std::env::var("EHSTORE_LOG") {
        Ok(directives) if !directives.is_empty() => tracing_subscriber::EnvFilter::new(directives),
        _ => tracing_subscriber::EnvFilter::new("error,fe2o3_amqp=off"),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
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
