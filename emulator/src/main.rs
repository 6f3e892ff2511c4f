//! `eventhubs-emulator`: run the Event Hubs emulator from the command line.

use clap::Parser;
use eventhubs_emulator::tls::TlsIdentity;
use eventhubs_emulator::{Emulator, Retention, config::parse_hub_spec};

/// A local Azure Event Hubs (AMQP 1.0) for tests, demos and development.
#[derive(Debug, Parser)]
#[command(name = "eventhubs-emulator", version)]
struct Args {
    /// Port to listen on (0 picks a free one). 5672 is the default, like Microsoft's emulator.
    #[arg(long, default_value_t = 5672, env = "EVENTHUBS_EMULATOR_PORT")]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// A hub: `name:partitions[:group1,group2]`; repeat for more. Default: `eh1:4`.
    #[arg(long = "hub", value_name = "NAME:PARTITIONS[:GROUPS]")]
    hubs: Vec<String>,
    /// Events kept per partition before the oldest are dropped.
    #[arg(long, default_value_t = Retention::default().max_events)]
    retention_events: usize,
    /// Message bytes kept per partition before the oldest are dropped.
    #[arg(long, default_value_t = Retention::default().max_bytes)]
    retention_bytes: usize,
    /// Accept Entra ID tokens (JWTs) on `$cbs` WITHOUT verifying their signature (only shape
    /// and expiry are checked). Anyone reaching the port can then use every hub. Off: JWTs are
    /// refused with 401, as the service refuses a token it cannot verify.
    #[arg(long)]
    accept_unverified_jwt: bool,
    /// Most simultaneous connections; more are closed on accept. With the per-connection caps
    /// this bounds the emulator's memory as a whole.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// Speak TLS only (amqps) with this certificate chain (PEM); needs --tls-key.
    #[arg(
        long,
        value_name = "PEM_FILE",
        requires = "tls_key",
        conflicts_with = "tls_generate"
    )]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "PEM_FILE", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Speak TLS only (amqps) with a certificate made now for localhost and 127.0.0.1, and
    /// write it (PEM) to this file for clients to trust.
    #[arg(long, value_name = "CERT_OUT")]
    tls_generate: Option<std::path::PathBuf>,
    /// Expect AMQP over WebSockets (an HTTP upgrade, subprotocol AMQPWSB10), after TLS when
    /// TLS is on.
    #[arg(long)]
    websockets: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("eventhubs-emulator: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), eventhubs_emulator::Error> {
    let mut builder = Emulator::builder()
        .bind(std::net::SocketAddr::new(args.host, args.port))
        .retention(Retention {
            max_events: args.retention_events,
            max_bytes: args.retention_bytes,
        })
        .accept_unverified_jwt(args.accept_unverified_jwt)
        .max_connections(args.max_connections)
        .websockets(args.websockets);
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let read = |path: &std::path::Path| {
            std::fs::read_to_string(path)
                .map_err(|e| eventhubs_emulator::Error::io(format!("reading {}", path.display()), e))
        };
        builder = builder.tls(TlsIdentity::from_pem(&read(cert)?, &read(key)?)?);
    }
    if let Some(out) = &args.tls_generate {
        let identity = TlsIdentity::self_signed(&["localhost", "127.0.0.1"])?;
        std::fs::write(out, identity.certificate_pem())
            .map_err(|e| eventhubs_emulator::Error::io(format!("writing {}", out.display()), e))?;
        builder = builder.tls(identity);
    }
    let specs = if args.hubs.is_empty() {
        vec!["eh1:4".to_owned()]
    } else {
        args.hubs
    };
    let mut first = None;
    for spec in &specs {
        let (name, hub) = parse_hub_spec(spec)?;
        first.get_or_insert_with(|| name.clone());
        builder = builder.hub_config(&name, hub);
    }
    let handle = builder.start().await?;
    println!("{}", handle.connection_string(None));
    if let Some(hub) = first {
        println!("{}", handle.connection_string(Some(&hub)));
    }
    let _ = tokio::signal::ctrl_c().await;
    eprintln!("eventhubs-emulator: shutting down");
    handle.shutdown().await;
    Ok(())
}
