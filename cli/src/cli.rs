//! The command line (clap derive): every command and its options.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use eventhubs_store_core::{PartitionScope, Result};

use crate::duration::parse_duration;
use crate::legacy::LegacyFormat;
use crate::open::OpenOptions;
use crate::sync::SyncOptions;

const STORE_URLS: &str = "Store URLs: memory:, sqlite:PATH, file:DIR, postgres://USER@HOST/DB?schema=NAME, \
redis://HOST[:PORT][/DB][?prefix=P] (rediss:// for TLS, redis+cluster://H1,H2 for a cluster), \
https://ACCOUNT.blob.core.windows.net/CONTAINER[?SAS], blob:CONTAINER (connection string in \
$AZURE_STORAGE_CONNECTION_STRING). Secrets in URLs are never printed.";

/// Inspect, reset, export, import and migrate Azure Event Hubs checkpoints between stores; run
/// the conformance suite and benchmarks against any store; watch a demo.
#[derive(Debug, Parser)]
#[command(name = "ehstore", version, after_help = STORE_URLS)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show owner, ownership age and checkpoint of every partition of a scope (or of all scopes).
    #[command(visible_alias = "list")]
    Status(StatusArgs),
    /// Set or delete one partition's checkpoint.
    Reset(ResetArgs),
    /// Write checkpoints (and optionally ownership) as JSON Lines.
    Export(ExportArgs),
    /// Read checkpoints from a JSON Lines export; writes nothing if any line is bad.
    Import(ImportArgs),
    /// Copy checkpoints from one store to another, verified, idempotent.
    Migrate(MigrateArgs),
    /// Import checkpoints from Event Processor Host lease files or Go FilePersister files.
    ImportLegacy(ImportLegacyArgs),
    /// Run the conformance suite (rules C1–C13) against a live store.
    Conformance(ConformanceArgs),
    /// Measure set_checkpoint and claim throughput and latency.
    Bench(BenchArgs),
    /// Real Processors on the in-process emulator over a store: every load-balancing strategy
    /// side by side (cycles to owned and balanced, moves after, failover) and receive speed
    /// with and without checkpoints.
    BenchProcessor(BenchProcessorArgs),
    /// Three real Processors on the in-process emulator share eight partitions through a store:
    /// claims, hand-overs, a crash, a fenced zombie, a clean close.
    Demo(DemoArgs),
    /// Consume a real event hub (or the emulator) with a Processor, checkpointing into any store:
    /// print or count its events.
    Process(ProcessArgs),
    /// Run the Event Hubs emulator in the foreground and print its connection string.
    Emulator(EmulatorArgs),
    /// Serve KEDA's external-scaler gRPC protocol over any store: autoscale Processors on
    /// Kubernetes from their checkpoints' lag.
    KedaScaler(KedaScalerArgs),
}

/// `ehstore keda-scaler`.
#[derive(Debug, Args)]
pub struct KedaScalerArgs {
    /// The gRPC address to listen on (port 0 picks a free one; the address is printed).
    #[arg(long, default_value = "0.0.0.0:6000")]
    pub listen: std::net::SocketAddr,
    /// How often each ScaledObject's lag is collected in the background.
    #[arg(long, default_value = "5s", value_parser = duration_arg)]
    pub collect_every: Duration,
    /// An owned partition with lag whose checkpoint has not moved for this long is stalled
    /// (logged and exported).
    #[arg(long, default_value = "5m", value_parser = duration_arg)]
    pub stall_after: Duration,
    /// Serve the collected lag as Prometheus text at http://ADDR/metrics.
    #[arg(long)]
    pub metrics_addr: Option<std::net::SocketAddr>,
}

/// A store URL and how to reach it.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The store URL (see the list below).
    #[arg(value_name = "URL")]
    pub url: String,
    /// The blob container, when URL is an inline storage connection string.
    #[arg(long)]
    pub container: Option<String>,
}

impl StoreArgs {
    /// Open options for reading.
    pub fn read(&self) -> OpenOptions {
        OpenOptions::read_only().with_container(self.container.clone())
    }

    /// Open options for writing (creates and migrates what is missing).
    pub fn write(&self) -> OpenOptions {
        OpenOptions::prepared().with_container(self.container.clone())
    }
}

/// Namespace, event hub and consumer group.
#[derive(Debug, Clone, Args)]
pub struct ScopeArgs {
    /// Fully qualified namespace, e.g. myns.servicebus.windows.net.
    #[arg(long, short = 'n', env = "EHSTORE_NAMESPACE")]
    pub namespace: Option<String>,
    /// Event hub name.
    #[arg(long = "hub", env = "EHSTORE_EVENT_HUB")]
    pub event_hub: Option<String>,
    /// Consumer group.
    #[arg(long = "group", short = 'g', default_value = "$Default")]
    pub consumer_group: String,
}

impl ScopeArgs {
    /// The scope, if namespace and hub were given; `None` if neither was.
    ///
    /// # Errors
    /// `InvalidInput` when only one of them is given or a name breaks rule C11.
    pub fn optional(&self) -> Result<Option<PartitionScope>> {
        match (&self.namespace, &self.event_hub) {
            (None, None) => Ok(None),
            (Some(ns), Some(hub)) => PartitionScope::new(ns, hub, &self.consumer_group).map(Some),
            _ => Err(eventhubs_store_core::Error::new(
                eventhubs_store_core::ErrorKind::InvalidInput,
                "give both --namespace and --hub (and --group unless $Default)",
            )),
        }
    }

    /// The scope; namespace and hub are required.
    ///
    /// # Errors
    /// `InvalidInput` when namespace or hub is missing or invalid.
    pub fn required(&self) -> Result<PartitionScope> {
        self.optional()?.ok_or_else(|| {
            eventhubs_store_core::Error::new(
                eventhubs_store_core::ErrorKind::InvalidInput,
                "this command needs --namespace and --hub (and --group unless $Default)",
            )
        })
    }
}

/// A store and a scope in it, the arguments of most commands.
#[derive(Debug, Clone, Args)]
pub struct StoreScopeArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// The scope.
    #[command(flatten)]
    pub scope: ScopeArgs,
}

/// How commands that write checkpoints treat the target.
#[derive(Debug, Clone, Copy, Args)]
pub struct WriteArgs {
    /// Replace target checkpoints with a higher sequence number.
    #[arg(long)]
    pub overwrite_newer: bool,
    /// Decide and show what would change; write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

impl WriteArgs {
    /// The options of [`crate::sync::sync_checkpoints`].
    pub fn options(self) -> SyncOptions {
        SyncOptions {
            overwrite_newer: self.overwrite_newer,
            dry_run: self.dry_run,
        }
    }
}

fn duration_arg(text: &str) -> std::result::Result<Duration, String> {
    parse_duration(text)
}

/// `ehstore status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The store and the scope.
    #[command(flatten)]
    pub at: StoreScopeArgs,
    /// Every scope the store holds (needs a store that can list scopes).
    #[arg(long, conflicts_with_all = ["namespace", "event_hub"])]
    pub all: bool,
    /// Ownership older than this (since its last renewal) counts as expired.
    #[arg(long, default_value = "60s", value_parser = duration_arg)]
    pub expiry: Duration,
    /// The event hub's connection string: adds the hub's side (lag in events and time, loss
    /// to retention) to every partition of the hub. The scope is derived from it as the
    /// Processor derives it (namespace `host[:port]`, hub from `EntityPath` or `--hub`, group
    /// from `-g`). Prefer the environment variable: a command line is visible to other users.
    #[arg(long, env = "EVENTHUBS_CONNECTION_STRING", hide_env_values = true, conflicts_with_all = ["all", "namespace"])]
    pub connection_string: Option<String>,
    /// Sample again every INTERVAL (default 5s) with consume and ingest rates and verdicts
    /// judged over a window of samples; needs the connection string. Ctrl-C stops.
    #[arg(long, num_args = 0..=1, default_missing_value = "5s", value_parser = duration_arg)]
    pub watch: Option<Duration>,
    /// With --watch: stop after this many samples (0: until Ctrl-C).
    #[arg(long, default_value_t = 0, requires = "watch")]
    pub samples: u64,
    /// With --watch: the samples a verdict looks back over.
    #[arg(long, default_value_t = 5, requires = "watch", value_parser = clap::value_parser!(u32).range(2..=1000))]
    pub window: u32,
    /// With --watch: an owned partition with lag whose checkpoint has not moved for this long
    /// is stalled.
    #[arg(long, default_value = "5m", value_parser = duration_arg)]
    pub stall_after: Duration,
    /// With --watch: serve the lag of every partition (and the client's metrics) as
    /// Prometheus text at http://ADDR/metrics, e.g. 127.0.0.1:9464.
    #[arg(long, requires = "watch")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// JSON for scripts instead of a table (with --watch: one JSON line per sample).
    #[arg(long)]
    pub json: bool,
}

/// `ehstore reset`.
#[derive(Debug, Args)]
pub struct ResetArgs {
    /// The store and the scope.
    #[command(flatten)]
    pub at: StoreScopeArgs,
    /// The partition id.
    #[arg(long, short = 'p')]
    pub partition: String,
    /// The new offset (opaque string).
    #[arg(long, required_unless_present_any = ["sequence_number", "delete"])]
    pub offset: Option<String>,
    /// The new sequence number.
    #[arg(long, allow_negative_numbers = true)]
    pub sequence_number: Option<i64>,
    /// Delete the checkpoint: the next owner starts from its default position.
    #[arg(long, conflicts_with_all = ["offset", "sequence_number"])]
    pub delete: bool,
    /// Change it even while a processor owns the partition.
    #[arg(long)]
    pub force: bool,
    /// Show what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Ownership older than this counts as expired (not currently owned).
    #[arg(long, default_value = "60s", value_parser = duration_arg)]
    pub expiry: Duration,
}

/// `ehstore export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The store and the scope.
    #[command(flatten)]
    pub at: StoreScopeArgs,
    /// Every scope the store holds.
    #[arg(long, conflicts_with_all = ["namespace", "event_hub"])]
    pub all: bool,
    /// Include ownership records (for inspection; import does not write them).
    #[arg(long)]
    pub ownership: bool,
    /// Write to this file instead of standard output.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
}

/// `ehstore import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// The JSON Lines file (`-` for standard input).
    #[arg(long, short = 'i')]
    pub input: PathBuf,
    /// Overwrite and dry-run.
    #[command(flatten)]
    pub write: WriteArgs,
}

/// `ehstore migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The source store URL.
    #[arg(long)]
    pub from: String,
    /// The target store URL (created and migrated if missing).
    #[arg(long)]
    pub to: String,
    /// The blob container of an inline connection string in --from.
    #[arg(long)]
    pub from_container: Option<String>,
    /// The blob container of an inline connection string in --to.
    #[arg(long)]
    pub to_container: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub scope: ScopeArgs,
    /// Every scope of the source (the default when no scope is given).
    #[arg(long, conflicts_with_all = ["namespace", "event_hub"])]
    pub all: bool,
    /// Overwrite and dry-run.
    #[command(flatten)]
    pub write: WriteArgs,
}

/// `ehstore import-legacy`.
#[derive(Debug, Args)]
pub struct ImportLegacyArgs {
    /// The store and the scope.
    #[command(flatten)]
    pub at: StoreScopeArgs,
    /// Directory of lease blobs or checkpoint files (read recursively).
    #[arg(long)]
    pub from: PathBuf,
    /// The files' format.
    #[arg(long, value_enum, default_value = "auto")]
    pub format: LegacyFormat,
    /// Overwrite and dry-run.
    #[command(flatten)]
    pub write: WriteArgs,
}

/// `ehstore conformance`.
#[derive(Debug, Args)]
pub struct ConformanceArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Run only the cases whose name contains this text (e.g. c7).
    #[arg(long)]
    pub filter: Option<String>,
    /// Concurrent clients in each history of `c7_concurrent_histories_are_linearizable`.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub history_clients: u32,
    /// Operations per client in each history.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub history_ops: u32,
    /// Histories checked.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub histories: u32,
    /// Write each history as FILE-N.json and its timeline as FILE-N.html.
    #[arg(long, value_name = "FILE")]
    pub history_out: Option<std::path::PathBuf>,
}

/// `ehstore bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Concurrent callers.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    /// How long each workload runs.
    #[arg(long, default_value = "3s", value_parser = duration_arg)]
    pub duration: Duration,
    /// Run each workload for this many operations instead of --duration.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub ops: Option<u64>,
    /// JSON for scripts instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `ehstore bench-processor`.
#[derive(Debug, Args)]
pub struct BenchProcessorArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Processors started together.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub processors: u32,
    /// Partitions of the hub (1 to 1024).
    #[arg(long, default_value_t = 32)]
    pub partitions: usize,
    /// Time between load-balancing cycles.
    #[arg(long, default_value = "500ms", value_parser = duration_arg)]
    pub interval: Duration,
    /// Ownership expires this long after its last renewal.
    #[arg(long, default_value = "3s", value_parser = duration_arg)]
    pub expiry: Duration,
    /// Events for the receive measurement.
    #[arg(long, default_value_t = 20_000)]
    pub events: usize,
    /// Rounds of the receive measurement: each round drains the partition once per way of
    /// checkpointing, interleaved, and the medians are reported (one run is noisy).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub rounds: u32,
    /// `adaptive`, `balanced`, `greedy` or `all`.
    #[arg(long, default_value = "all", value_parser = ["adaptive", "balanced", "greedy", "all"])]
    pub strategy: String,
    /// JSON for scripts instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `ehstore demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The store the processors share.
    #[arg(long, default_value = "sqlite:ehstore-demo.db")]
    pub store: String,
    /// Ownership expires this long after its last renewal (short, so the demo is quick).
    #[arg(long, default_value = "1500ms", value_parser = duration_arg)]
    pub expiry: Duration,
    /// Time between load-balancing cycles.
    #[arg(long, default_value = "150ms", value_parser = duration_arg)]
    pub interval: Duration,
    /// Port of the in-process emulator on 127.0.0.1. Fixed by default so the namespace (and the
    /// store's records) are the same from run to run; 0 or a taken port picks a free one.
    #[arg(long, default_value_t = 5674)]
    pub port: u16,
    /// Print one JSON summary for scripts instead of the story and the table.
    #[arg(long)]
    pub json: bool,
}

/// `ehstore process`.
#[derive(Debug, Args)]
pub struct ProcessArgs {
    /// The event hub's connection string (`Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…`,
    /// `EntityPath` or `--hub` names the hub). Prefer the environment variable: a command line
    /// is visible to other users.
    #[arg(long, env = "EVENTHUBS_CONNECTION_STRING", hide_env_values = true)]
    pub connection_string: String,
    /// The event hub, when the connection string has no `EntityPath`.
    #[arg(long = "hub")]
    pub hub: Option<String>,
    /// The consumer group.
    #[arg(long, short = 'g', default_value = "$Default")]
    pub consumer_group: String,
    /// The store the Processor keeps ownership and checkpoints in.
    #[arg(long)]
    pub store: String,
    /// Where a partition without a checkpoint starts: `earliest` or `latest`.
    #[arg(long, default_value = "latest", value_parser = ["earliest", "latest"])]
    pub start: String,
    /// Print every event (partition, sequence number, body) instead of only counting.
    #[arg(long)]
    pub print: bool,
    /// Stop after this many events (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub max_events: u64,
    /// Stop after this long (e.g. `30s`); Ctrl-C stops too.
    #[arg(long, value_parser = duration_arg)]
    pub duration: Option<Duration>,
    /// This processor's owner id (default a random one).
    #[arg(long)]
    pub owner: Option<String>,
    /// Time between load-balancing cycles.
    #[arg(long, default_value = "10s", value_parser = duration_arg)]
    pub interval: Duration,
    /// Ownership expires this long after its last renewal.
    #[arg(long, default_value = "60s", value_parser = duration_arg)]
    pub expiry: Duration,
    /// Serve the Processor's metrics as Prometheus text at http://ADDR/metrics, e.g.
    /// 127.0.0.1:9464.
    #[arg(long)]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Print one JSON summary at the end instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// `ehstore emulator`.
#[derive(Debug, Args)]
pub struct EmulatorArgs {
    /// Port on 127.0.0.1 (0 picks a free one; 5672 is often taken by RabbitMQ).
    #[arg(long, default_value_t = 5672)]
    pub port: u16,
    /// A hub, `name:partitions[:group1,group2]`; repeat for more.
    #[arg(
        long = "hub",
        value_name = "NAME:PARTITIONS[:GROUPS]",
        default_value = "orders:8"
    )]
    pub hubs: Vec<String>,
    /// Accept Entra ID tokens (JWTs) on `$cbs` WITHOUT verifying their signature (only shape
    /// and expiry are checked), to exercise an Entra ID client locally. Anyone reaching the
    /// port can then use every hub. Off: JWTs are refused with 401.
    #[arg(long)]
    pub accept_unverified_jwt: bool,
}
