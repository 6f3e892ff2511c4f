//! Side-by-side measurement (not a test): claim of 1 vs 32 partitions, `set_checkpoint`
//! throughput at 1 and 16 concurrent callers, and `redis-benchmark` doing HSET at the same
//! concurrency, all in one run against one server.
//!
//! ```text
//! cargo run --release -p eventhubs-store-redis --example redis_bench
//! EVENTHUBS_TEST_REDIS_URL=redis://host:6379 BENCH_SECONDS=5 cargo run --release …
//! ```
//! Targets: a 32-partition claim costs at most 2x a 1-partition claim; `set_checkpoint` reaches at
//! least half of redis-benchmark's HSET rate at the same concurrency. Needs `redis-benchmark` on
//! the PATH for the raw figures (skipped with a note otherwise).
//!
//! The claim figures are medians over 2000 calls per batch size, the 1- and 32-partition
//! renewals interleaved call by call (`eventhubs_conformance::measure`), each call timed whole through the
//! store's public API.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use eventhubs_conformance::measure;
use eventhubs_store_core::PartitionScope;
use eventhubs_store_redis::RedisOptions;

/// Claim calls timed per batch size.
const CLAIM_ROUNDS: usize = 2000;

type BoxResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[tokio::main]
async fn main() -> BoxResult<()> {
    let url =
        std::env::var("EVENTHUBS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let prefix = format!("ehbench_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let store = RedisOptions::new(&url).prefix(&prefix).connect().await?;
    let scope = PartitionScope::new("bench.servicebus.windows.net", "hub", "$default")?;
    println!("Redis store bench ({seconds} s per rate figure)");

    let claims = measure::claim_latencies(&store, &scope, 32, CLAIM_ROUNDS).await?;
    println!("claim (renewal with etag), median of {CLAIM_ROUNDS} calls each, 1 and 32 interleaved:");
    println!("{claims}");

    println!("set_checkpoint throughput vs redis-benchmark HSET (same concurrency):");
    println!("  (store and redis-benchmark alternate twice; the better run of each is shown)");
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
            || redis_benchmark_hset(&url, &prefix, callers, seconds).map_err(|e| e.to_string()),
        )
        .await?;
        match raw {
            Ok(raw) => println!(
                "  c={callers:<2}  store {ours:>9.0}/s   redis-benchmark {raw:>9.0}/s   ratio {:.2} (target >= 0.5)",
                ours / raw
            ),
            Err(e) => println!("  c={callers:<2}  store {ours:>9.0}/s   redis-benchmark unavailable: {e}"),
        }
    }
    delete_prefix(&url, &prefix).await
}

/// redis-benchmark sending `HSET <a key under our prefix> <random field> <value>` at `clients`
/// connections, about `seconds` long.
fn redis_benchmark_hset(url: &str, prefix: &str, clients: usize, seconds: u64) -> BoxResult<f64> {
    let info = url::Url::parse(url)?;
    let requests = (if clients == 1 { 15_000 } else { 60_000 }) * seconds;
    let mut cmd = Command::new("redis-benchmark");
    cmd.args(["-h", info.host_str().unwrap_or("127.0.0.1")])
        .args(["-p", &info.port().unwrap_or(6379).to_string()])
        .args([
            "-c",
            &clients.to_string(),
            "-n",
            &requests.to_string(),
            "-r",
            "32",
            "-q",
        ]);
    if let Some(password) = info.password() {
        cmd.args(["-a", password]);
    }
    cmd.args([
        "HSET",
        &format!("{prefix}:{{raw}}:checkpoint"),
        "p__rand_int__",
        "123456\n123456",
    ]);
    let out = cmd.output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "HSET …: 41841.00 requests per second, p50=0.023 msec" (the last of \r-separated updates)
    text.split(['\r', '\n'])
        .filter(|l| l.contains("requests per second"))
        .filter_map(|l| l.rsplit_once(": ")?.1.split_whitespace().next()?.parse().ok())
        .next_back()
        .ok_or_else(|| format!("no HSET rate in redis-benchmark output: {text}").into())
}

async fn delete_prefix(url: &str, prefix: &str) -> BoxResult<()> {
    let mut conn = redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await?;
    // A tool, not the store: KEYS over the bench's own prefix is fine here.
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await?;
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await?;
    }
    Ok(())
}
