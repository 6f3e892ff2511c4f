//! Measurements (never assertions) of the two calls a processor makes most, with one method for
//! every store, so figures of different stores, or of a store and its raw server, compare:
//!
//! - [`claim_latencies`]: the median latency of renewing a batch of 1 and a batch of N
//!   partitions, the two sizes interleaved call by call;
//! - [`checkpoint_rate`]: `set_checkpoint` calls per second at a given number of concurrent
//!   callers.
//!
//! The backends' benches (`examples/*_bench.rs`) print these beside the raw server doing the
//! equivalent work; a third party can run them against its own store the same way.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use eventhubs_store_core::{
    Checkpoint, CheckpointStore, ClaimOptions, Error, Ownership, PartitionScope, Result, SetCheckpointOptions,
};

/// Median latencies of one claim call, from the call into the store to its result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClaimLatencies {
    /// Renewing a batch of one partition.
    pub one: Duration,
    /// Renewing a batch of `many` partitions.
    pub many: Duration,
    /// The size of the large batch.
    pub batch: usize,
}

impl ClaimLatencies {
    /// How many times a large batch costs a batch of one.
    pub fn ratio(&self) -> f64 {
        self.many.as_secs_f64() / self.one.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// Median latency of a claim renewing 1 partition and of one renewing `batch` partitions of
/// `scope` (partitions `1-0` and `<batch>-0…`, owners `bench-1` and `bench-<batch>`).
///
/// Method: both batches are claimed once; then each of `rounds` rounds renews both (every claim
/// with the etag of its last win), the two calls in alternating order so neither always runs
/// first. Each call is timed on its own; the medians are reported. Interleaving exposes both
/// sizes to the same background load, and the median ignores the scheduler and fsync stalls of
/// a busy machine.
///
/// # Errors
/// A store error, or a renewal that lost (someone else wrote the scope meanwhile: use a scope
/// of your own).
pub async fn claim_latencies(
    store: &dyn CheckpointStore,
    scope: &PartitionScope,
    batch: usize,
    rounds: usize,
) -> Result<ClaimLatencies> {
    let sizes = [1, batch.max(1)];
    let mut held = Vec::with_capacity(2);
    for n in sizes {
        let first: Vec<Ownership> = (0..n)
            .map(|p| Ownership::new(scope.clone(), format!("{n}-{p}"), format!("bench-{n}")))
            .collect();
        held.push(store.claim_ownership(&first, &ClaimOptions::default()).await?);
    }
    let mut samples = [Vec::with_capacity(rounds), Vec::with_capacity(rounds)];
    for round in 0..rounds.max(1) {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for k in order {
            let renew: Vec<Ownership> = held[k]
                .iter()
                .map(|o| {
                    Ownership::new(scope.clone(), &o.partition_id, &o.owner_id).with_etag(o.etag.clone())
                })
                .collect();
            let started = Instant::now();
            held[k] = store.claim_ownership(&renew, &ClaimOptions::default()).await?;
            samples[k].push(started.elapsed());
            if held[k].len() != sizes[k] {
                return Err(Error::backend(format!(
                    "a renewal lost while measuring ({} of {} won): is someone else writing {scope}?",
                    held[k].len(),
                    sizes[k]
                )));
            }
        }
    }
    let [one, many] = samples;
    Ok(ClaimLatencies {
        one: median(one),
        many: median(many),
        batch: sizes[1],
    })
}

/// `set_checkpoint` calls per second with `callers` concurrent callers for `duration`, over
/// partitions `0`…`31` of `scope` (plain upserts, C9).
///
/// # Errors
/// The first store error of any caller.
pub async fn checkpoint_rate(
    store: Arc<dyn CheckpointStore>,
    scope: &PartitionScope,
    callers: usize,
    duration: Duration,
) -> Result<f64> {
    let written = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let stop_at = started + duration;
    let tasks: Vec<_> = (0..callers.max(1))
        .map(|caller| {
            let (store, scope, written) = (store.clone(), scope.clone(), written.clone());
            tokio::spawn(async move {
                let mut seq = 0i64;
                while Instant::now() < stop_at {
                    seq += 1;
                    let partition = (caller as i64 + seq) % 32;
                    let cp = Checkpoint::new(
                        scope.clone(),
                        partition.to_string(),
                        Some(seq.to_string()),
                        Some(seq),
                    );
                    store.set_checkpoint(&cp, &SetCheckpointOptions::new()).await?;
                    written.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<(), Error>(())
            })
        })
        .collect();
    for task in tasks {
        task.await
            .map_err(|e| Error::backend(format!("a measuring task failed: {e}")))??;
    }
    Ok(written.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// Runs `ours` (the store) and `raw` (the raw server doing the equivalent work, e.g. a
/// `pgbench` or `redis-benchmark` process) `runs` times each, alternating, and answers the best
/// rate of each: alternating exposes both to the same background load. `raw` answers why it
/// could not run (tool missing) as an error string; the last such reason is kept when no run
/// succeeded.
///
/// # Errors
/// The first error of `ours`.
pub async fn alternate<F>(
    runs: usize,
    mut ours: impl FnMut() -> F,
    mut raw: impl FnMut() -> std::result::Result<f64, String>,
) -> Result<(f64, std::result::Result<f64, String>)>
where
    F: std::future::Future<Output = Result<f64>>,
{
    let mut best_ours = 0f64;
    let mut best_raw: std::result::Result<f64, String> = Err("not run".into());
    for _ in 0..runs.max(1) {
        best_ours = best_ours.max(ours().await?);
        best_raw = match (best_raw, raw()) {
            (Ok(best), Ok(r)) => Ok(best.max(r)),
            (_, Ok(r)) => Ok(r),
            (Ok(best), Err(_)) => Ok(best),
            (Err(_), Err(e)) => Err(e),
        };
    }
    Ok((best_ours, best_raw))
}

/// Three lines: the two medians and their ratio, against the target of at most 2x.
impl std::fmt::Display for ClaimLatencies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let micros = |d: Duration| d.as_secs_f64() * 1e6;
        writeln!(f, "  1 partition   {:>8.1} µs", micros(self.one))?;
        write!(
            f,
            "  {:<2} partitions {:>8.1} µs   ratio {:.2}x (target <= 2x)",
            self.batch,
            micros(self.many),
            self.ratio()
        )
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use eventhubs_store_core::InMemoryStore;

    use super::*;

    fn scope() -> PartitionScope {
        PartitionScope::new("m.servicebus.windows.net", "hub", "$default").unwrap()
    }

    #[tokio::test]
    async fn claim_latencies_renew_both_batches_and_keep_them_owned() {
        let store = InMemoryStore::new();
        let l = claim_latencies(&store, &scope(), 32, 5).await.unwrap();
        assert_eq!(l.batch, 32);
        assert!(l.ratio() > 0.0);
        let owned = store.list_ownership(&scope()).await.unwrap();
        assert_eq!(owned.len(), 33);
        assert!(owned.iter().all(|o| o.owner_id.starts_with("bench-")));
    }

    #[tokio::test]
    async fn claim_latencies_fail_when_someone_else_takes_a_partition() {
        let store = InMemoryStore::new();
        // Someone else already owns partition 32-0: the first claim of the batch loses it.
        store
            .claim_ownership(
                &[Ownership::new(scope(), "32-0", "intruder")],
                &ClaimOptions::default(),
            )
            .await
            .unwrap();
        let e = claim_latencies(&store, &scope(), 32, 5).await.unwrap_err();
        assert!(e.to_string().contains("31 of 32"), "{e}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn checkpoint_rate_counts_the_writes_it_made() {
        let store = InMemoryStore::new();
        let rate = checkpoint_rate(Arc::new(store.clone()), &scope(), 4, Duration::from_millis(50))
            .await
            .unwrap();
        assert!(rate > 0.0);
        assert_eq!(store.list_checkpoints(&scope()).await.unwrap().len(), 32);
    }
}
