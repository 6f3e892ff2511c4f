//! `ehstore bench URL`: throughput and latency of the calls a processor makes, at a chosen
//! concurrency, in a namespace of its own (`bench-<random>.servicebus.windows.net`):
//!
//! - `set_checkpoint`: each caller checkpoints its own partition, sequence number increasing;
//! - `claim x1`: each caller renews its own partition (claim with the etag it got last);
//! - `claim x32`: each caller renews a batch of 32 partitions in its own event hub.
//!
//! Afterwards the checkpoints are deleted and the ownership relinquished. Numbers are for
//! comparing stores side by side on one machine; nothing here asserts a speed.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use eventhubs_store_core::{
    Checkpoint, CheckpointStore, ClaimOptions, Error, ErrorKind, Ownership, PartitionScope, Result,
    SetCheckpointOptions,
};
use serde::Serialize;

use crate::cli::BenchArgs;
use crate::commands::out;
use crate::open::open_store_with;
use crate::table::{Align, Table};

/// One workload's numbers.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    /// The workload.
    pub workload: String,
    /// Successful operations.
    pub ops: u64,
    /// Failed operations (errors, or renewals that unexpectedly lost).
    pub errors: u64,
    /// Operations per second over the wall time.
    pub ops_per_sec: f64,
    /// Latency percentiles in milliseconds.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
}

#[derive(Clone, Copy)]
enum Workload {
    SetCheckpoint,
    Claim(usize),
}

impl Workload {
    fn name(self) -> String {
        match self {
            Workload::SetCheckpoint => "set_checkpoint".into(),
            Workload::Claim(n) => format!("claim x{n}"),
        }
    }
}

/// When a workload stops.
#[derive(Clone, Copy)]
enum Budget {
    Until(Instant),
    Ops(u64),
}

struct Shared {
    store: Arc<dyn CheckpointStore>,
    namespace: String,
    budget: Budget,
    started_ops: AtomicU64,
}

impl Shared {
    fn take_one(&self) -> bool {
        match self.budget {
            Budget::Until(deadline) => Instant::now() < deadline,
            Budget::Ops(total) => self.started_ops.fetch_add(1, Ordering::Relaxed) < total,
        }
    }

    fn scope(&self, hub: &str) -> Result<PartitionScope> {
        PartitionScope::new(&self.namespace, hub, "$default")
    }
}

/// Percentile `p` (0–100) of sorted latencies, in milliseconds.
pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let i = rank.clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

async fn worker(shared: Arc<Shared>, workload: Workload, id: u32) -> (Vec<Duration>, u64) {
    let mut latencies = Vec::new();
    let mut errors = 0;
    let hub = format!("hub-{id}");
    let Ok(scope) = shared.scope(&hub) else {
        return (latencies, 1);
    };
    let width = match workload {
        Workload::SetCheckpoint => 1,
        Workload::Claim(n) => n,
    };
    let mut claims: Vec<Ownership> = (0..width)
        .map(|p| Ownership::new(scope.clone(), p.to_string(), format!("bench-{id}")))
        .collect();
    let mut sequence = 0_i64;
    while shared.take_one() {
        let started = Instant::now();
        let ok = match workload {
            Workload::SetCheckpoint => {
                sequence += 1;
                let cp = Checkpoint::new(
                    scope.clone(),
                    "0",
                    Some((sequence * 1024).to_string()),
                    Some(sequence),
                );
                shared
                    .store
                    .set_checkpoint(&cp, &SetCheckpointOptions::new())
                    .await
                    .is_ok()
            }
            Workload::Claim(n) => match shared
                .store
                .claim_ownership(&claims, &ClaimOptions::default())
                .await
            {
                Ok(won) if won.len() == n => {
                    claims = won;
                    true
                }
                _ => false,
            },
        };
        if ok {
            latencies.push(started.elapsed());
        } else {
            errors += 1;
        }
    }
    (latencies, errors)
}

async fn run_workload(
    store: &Arc<dyn CheckpointStore>,
    namespace: &str,
    workload: Workload,
    args: &BenchArgs,
) -> BenchResult {
    let budget = match args.ops {
        Some(n) => Budget::Ops(n),
        None => Budget::Until(Instant::now() + args.duration),
    };
    // Each workload in its own namespace, so a claim workload starts from absent records.
    let shared = Arc::new(Shared {
        store: store.clone(),
        namespace: format!(
            "{namespace}-{}.servicebus.windows.net",
            workload.name().replace([' ', '_'], "")
        ),
        budget,
        started_ops: AtomicU64::new(0),
    });
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|id| tokio::spawn(worker(shared.clone(), workload, id)))
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in futures::future::join_all(tasks).await {
        match task {
            Ok((l, e)) => {
                latencies.extend(l);
                errors += e;
            }
            Err(_) => errors += 1,
        }
    }
    let wall = started.elapsed().as_secs_f64().max(1e-9);
    latencies.sort();
    let result = BenchResult {
        workload: workload.name(),
        ops: latencies.len() as u64,
        errors,
        ops_per_sec: latencies.len() as f64 / wall,
        p50_ms: percentile_ms(&latencies, 50.0),
        p95_ms: percentile_ms(&latencies, 95.0),
        p99_ms: percentile_ms(&latencies, 99.0),
    };
    clean_up(&shared, args.concurrency).await;
    result
}

/// Deletes the workload's checkpoints and relinquishes its ownership (best effort).
async fn clean_up(shared: &Shared, workers: u32) {
    for id in 0..workers {
        let Ok(scope) = shared.scope(&format!("hub-{id}")) else {
            continue;
        };
        if let Ok(cps) = shared.store.list_checkpoints(&scope).await {
            for cp in cps {
                let _ = shared.store.delete_checkpoint(&scope, &cp.partition_id).await;
            }
        }
        if let Ok(owners) = shared.store.list_ownership(&scope).await {
            let release: Vec<Ownership> = owners
                .into_iter()
                .map(|o| Ownership {
                    owner_id: String::new(),
                    ..o
                })
                .collect();
            let _ = shared
                .store
                .claim_ownership(&release, &ClaimOptions::default())
                .await;
        }
    }
}

/// Runs `ehstore bench`.
///
/// # Errors
/// A store that cannot be opened; per-operation errors are counted instead.
pub async fn run(args: BenchArgs) -> Result<ExitCode> {
    let store = open_store_with(&args.store.url, &args.store.write()).await?;
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let namespace = format!("bench-{}", &run_id[..12]);
    let mut results = Vec::new();
    for workload in [Workload::SetCheckpoint, Workload::Claim(1), Workload::Claim(32)] {
        results.push(run_workload(&store, &namespace, workload, &args).await);
    }
    if args.json {
        let json = serde_json::json!({
            "store": store.backend_name(),
            "concurrency": args.concurrency,
            "results": results,
        });
        out(&format!("{json:#}"));
    } else {
        out(&format!(
            "{} store, concurrency {}, {}:",
            store.backend_name(),
            args.concurrency,
            args.ops
                .map_or(format!("{:?} per workload", args.duration), |n| format!(
                    "{n} operations per workload"
                ))
        ));
        let mut table = Table::new(&[
            ("WORKLOAD", Align::Left),
            ("OPS", Align::Right),
            ("OPS/S", Align::Right),
            ("P50 MS", Align::Right),
            ("P95 MS", Align::Right),
            ("P99 MS", Align::Right),
            ("ERRORS", Align::Right),
        ]);
        for r in &results {
            table.row(vec![
                r.workload.clone(),
                r.ops.to_string(),
                format!("{:.0}", r.ops_per_sec),
                format!("{:.2}", r.p50_ms),
                format!("{:.2}", r.p95_ms),
                format!("{:.2}", r.p99_ms),
                r.errors.to_string(),
            ]);
        }
        out(table.render(2).trim_end());
    }
    if results.iter().any(|r| r.ops == 0) {
        return Err(Error::new(
            ErrorKind::Backend,
            "a workload completed no operation; see the ERRORS column",
        ));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&v, 50.0), 50.0);
        assert_eq!(percentile_ms(&v, 99.0), 99.0);
        assert_eq!(percentile_ms(&v[..1], 95.0), 1.0);
        assert_eq!(percentile_ms(&[], 50.0), 0.0);
    }
}
