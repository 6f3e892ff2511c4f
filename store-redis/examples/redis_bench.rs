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
//! renewals interleaved call by call (see `claim_latencies`), each call timed whole through the
//! store's public API.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use eventhubs_store_core::{
    Checkpoint, CheckpointStore, ClaimOptions, Ownership, PartitionScope, SetCheckpointOptions,
};
use eventhubs_store_redis::{RedisOptions, RedisStore};

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

    let (one, many) = claim_latencies(&store, &scope, CLAIM_ROUNDS).await?;
    println!("claim (renewal with etag), median of {CLAIM_ROUNDS} calls each, 1 and 32 interleaved:");
    println!("  1 partition   {:>8.1} µs", one);
    println!(
        "  32 partitions {:>8.1} µs   ratio {:.2}x (target <= 2x)",
        many,
        many / one
    );

    println!("set_checkpoint throughput vs redis-benchmark HSET (same concurrency):");
    println!("  (store and redis-benchmark alternate twice; the better run of each is shown)");
    for callers in [1usize, 16] {
        let mut ours = 0f64;
        let mut raw: Result<f64, String> = Err("not run".into());
        for _ in 0..2 {
            ours = ours.max(writes_per_second(&store, &scope, callers, Duration::from_secs(seconds)).await?);
            raw = match (raw, redis_benchmark_hset(&url, &prefix, callers, seconds)) {
                (Ok(best), Ok(r)) => Ok(best.max(r)),
                (_, Ok(r)) => Ok(r),
                (_, Err(e)) => Err(e.to_string()),
            };
        }
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

/// Claim calls timed per batch size.
const CLAIM_ROUNDS: usize = 2000;

/// Median latency of one claim call renewing 1 partition and one renewing 32 partitions.
///
/// Method: both batches are claimed once, then `rounds` rounds each renew the 1-partition batch
/// and the 32-partition batch (every claim with the etag of its last win, all of them won), the
/// two calls in alternating order so neither always runs first. Each call is timed on its own,
/// from the call into the store to its result (validation, the one script call, decoding); the
/// medians of the two series and their ratio are reported. Interleaving exposes both sizes to
/// the same background load, and the median ignores scheduler stalls of a busy machine.
async fn claim_latencies(store: &RedisStore, scope: &PartitionScope, rounds: usize) -> BoxResult<(f64, f64)> {
    let sizes = [1usize, 32];
    let mut held = Vec::new();
    for n in sizes {
        let first: Vec<Ownership> = (0..n)
            .map(|p| Ownership::new(scope.clone(), format!("{n}-{p}"), format!("bench-{n}")))
            .collect();
        held.push(store.claim_ownership(&first, &ClaimOptions::default()).await?);
    }
    let mut samples = [Vec::with_capacity(rounds), Vec::with_capacity(rounds)];
    for round in 0..rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for k in order {
            let n = sizes[k];
            let renew: Vec<Ownership> = held[k]
                .iter()
                .map(|o| {
                    Ownership::new(scope.clone(), &o.partition_id, &o.owner_id).with_etag(o.etag.clone())
                })
                .collect();
            let started = Instant::now();
            held[k] = store.claim_ownership(&renew, &ClaimOptions::default()).await?;
            samples[k].push(started.elapsed().as_secs_f64() * 1e6);
            if held[k].len() != n {
                return Err(format!(
                    "a renewal lost a partition while benchmarking ({} of {n})",
                    held[k].len()
                )
                .into());
            }
        }
    }
    let [one, many] = samples;
    Ok((median(one), median(many)))
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Checkpoints per second with `callers` concurrent writers.
async fn writes_per_second(
    store: &RedisStore,
    scope: &PartitionScope,
    callers: usize,
    duration: Duration,
) -> BoxResult<f64> {
    let written = Arc::new(AtomicU64::new(0));
    let stop_at = Instant::now() + duration;
    let workers: Vec<_> = (0..callers)
        .map(|worker| {
            let (store, scope, written) = (store.clone(), scope.clone(), written.clone());
            tokio::spawn(async move {
                let mut n = 0i64;
                while Instant::now() < stop_at {
                    n += 1;
                    let partition = format!("p{worker}");
                    let cp = Checkpoint::new(scope.clone(), partition, Some(n.to_string()), Some(n));
                    store.set_checkpoint(&cp, &SetCheckpointOptions::new()).await?;
                    written.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<(), eventhubs_store_core::Error>(())
            })
        })
        .collect();
    let started = Instant::now();
    for w in workers {
        w.await??;
    }
    Ok(written.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
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
