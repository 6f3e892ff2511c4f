//! Side-by-side measurement (not a test): claim of 1 vs 32 partitions, `set_checkpoint`
//! throughput at 1 and 16 concurrent callers, and `pgbench` running the equivalent upsert at the
//! same concurrency, all in one run against one server.
//!
//! ```text
//! cargo run --release -p eventhubs-store-postgres --example postgres_bench
//! EVENTHUBS_TEST_POSTGRES_URL=postgres://user@host:5432/db BENCH_SECONDS=5 cargo run --release … (four runs of BENCH_SECONDS per rate)
//! ```
//! Targets: a 32-partition claim costs at most 2x a 1-partition claim; `set_checkpoint` reaches at
//! least half of pgbench's rate at the same concurrency.
//!
//! The claim figures are medians over 1000 calls per batch size, the 1- and 32-partition
//! renewals interleaved call by call (`eventhubs_conformance::measure`), each call timed whole through the
//! store's public API with a durable commit. Needs `pgbench` on the PATH for the raw
//! figures (skipped with a note otherwise).

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use eventhubs_conformance::measure;
use eventhubs_store_core::PartitionScope;
use eventhubs_store_postgres::PostgresOptions;
use sqlx::{AssertSqlSafe, Executor};

/// Claim calls timed per batch size.
const CLAIM_ROUNDS: usize = 1000;

type BoxResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[tokio::main]
async fn main() -> BoxResult<()> {
    let url = std::env::var("EVENTHUBS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let schema = format!("ehbench_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let store = PostgresOptions::new(&url)
        .schema(&schema)
        .max_connections(16)
        .connect()
        .await?;
    store.migrate().await?;
    let result = run(&store, &url, &schema, seconds).await;
    store
        .pool()
        .execute(AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
        )))
        .await?;
    result
}

async fn run(
    store: &eventhubs_store_postgres::PostgresStore,
    url: &str,
    schema: &str,
    seconds: u64,
) -> BoxResult<()> {
    let scope = PartitionScope::new("bench.servicebus.windows.net", "hub", "$default")?;
    println!("PostgreSQL store bench ({seconds} s per rate figure)");
    let claims = measure::claim_latencies(store, &scope, 32, CLAIM_ROUNDS).await?;
    println!("claim (renewal with etag), median of {CLAIM_ROUNDS} calls each, 1 and 32 interleaved:");
    println!("{claims}");

    println!("set_checkpoint throughput vs pgbench (same upsert, prepared, same concurrency):");
    println!("  (store and pgbench alternate twice; the better run of each is shown)");
    for callers in [1usize, 16] {
        let (ours, raw) = measure::alternate(
            2,
            || {
                measure::checkpoint_rate(
                    Arc::new(store.clone()),
                    &scope,
                    callers,
                    Duration::from_secs(seconds),
                )
            },
            || pgbench_rate(url, schema, callers, seconds).map_err(|e| e.to_string()),
        )
        .await?;
        match raw {
            Ok(raw) => println!(
                "  c={callers:<2}  store {ours:>9.0}/s   pgbench {raw:>9.0}/s   ratio {:.2} (target >= 0.5)",
                ours / raw
            ),
            Err(e) => println!("  c={callers:<2}  store {ours:>9.0}/s   pgbench unavailable: {e}"),
        }
    }
    Ok(())
}

/// pgbench running the store's upsert statement on the same table, `-M prepared`.
fn pgbench_rate(url: &str, schema: &str, clients: usize, seconds: u64) -> BoxResult<f64> {
    let script = std::env::temp_dir().join(format!("{schema}-upsert.sql"));
    std::fs::write(
        &script,
        format!(
            "\\set p random(0, 31)\n\\set s random(1, 1000000000)\n\
             INSERT INTO \"{schema}\".checkpoint AS c (namespace, event_hub, consumer_group, partition_id, \
             offset_value, sequence_number, updated_at) VALUES ('raw.servicebus.windows.net', 'hub', '$default', \
             :p, :s, :s, clock_timestamp()) ON CONFLICT (namespace, event_hub, consumer_group, partition_id) \
             DO UPDATE SET offset_value = EXCLUDED.offset_value, sequence_number = EXCLUDED.sequence_number, \
             updated_at = EXCLUDED.updated_at;\n"
        ),
    )?;
    let parsed = url::Url::parse(url)?;
    let mut cmd = Command::new("pgbench");
    cmd.args(["-n", "-M", "prepared", "-f"])
        .arg(&script)
        .args([
            "-c",
            &clients.to_string(),
            "-j",
            &clients.min(2).to_string(),
            "-T",
            &seconds.to_string(),
        ])
        .args(["-h", parsed.host_str().unwrap_or("127.0.0.1")])
        .args(["-p", &parsed.port().unwrap_or(5432).to_string()])
        .args([
            "-U",
            if parsed.username().is_empty() {
                "postgres"
            } else {
                parsed.username()
            },
        ])
        .arg(parsed.path().trim_start_matches('/'));
    if let Some(password) = parsed.password() {
        cmd.env("PGPASSWORD", password);
    }
    let out = cmd.output()?;
    let _ = std::fs::remove_file(&script);
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| {
            format!(
                "no tps in pgbench output: {}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into()
        })
}
