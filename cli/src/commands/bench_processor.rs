//! `ehstore bench-processor URL`: real `eventhubs-client` Processors on the in-process emulator
//! over any store, every load-balancing strategy side by side in one run:
//!
//! - balance: N processors started together over P partitions; cycles until every partition
//!   is owned and until the split is balanced (floor or ceil of P/N each), then the ownership
//!   changes over the next 10 cycles (thrash), then one processor crashes and the time until
//!   its partitions have live owners again (failover; the expiry is the floor);
//! - receive: one partition drained by a Processor's partition client without and with a
//!   checkpoint per batch of 100 into the store, waited for (`update_checkpoint`) or written in
//!   the background (`checkpoint_in_background`), events/s and their ratios; `--rounds`
//!   interleaved rounds, medians reported.
//!
//! Each strategy runs in a consumer group of its own; the records stay in the store under the
//! emulator's namespace (`localhost:PORT`).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventhubs_client::{
    EventData, EventHubClient, LoadBalancingStrategy, Processor, ProcessorOptions, StartPosition,
};
use eventhubs_store_core::{CheckpointStore, Error, ErrorKind, PartitionScope, Result};
use serde_json::json;

use crate::cli::BenchProcessorArgs;
use crate::commands::{client_error, out};
use crate::open::{OpenOptions, open_store_with};

const HUB: &str = "bench";
/// A one-partition hub for the receive measurement.
const RECEIVE_HUB: &str = "receive";

/// What one strategy measured.
#[derive(Debug, Clone, serde::Serialize)]
struct Balance {
    strategy: &'static str,
    cycles_to_owned: Option<f64>,
    cycles_to_balanced: Option<f64>,
    moves_after_balance: usize,
    failover_ms: Option<u128>,
}

fn strategies(which: &str) -> Vec<(&'static str, LoadBalancingStrategy)> {
    [
        ("adaptive", LoadBalancingStrategy::Adaptive),
        ("balanced", LoadBalancingStrategy::Balanced),
        ("greedy", LoadBalancingStrategy::Greedy),
    ]
    .into_iter()
    .filter(|(name, _)| which == "all" || which == *name)
    .collect()
}

/// The live owner of each partition (records renewed within the expiry).
async fn owners(
    store: &dyn CheckpointStore,
    scope: &PartitionScope,
    expiry: Duration,
) -> Result<BTreeMap<String, String>> {
    let now = time::OffsetDateTime::now_utc();
    let expiry = time::Duration::try_from(expiry).unwrap_or(time::Duration::MAX);
    Ok(store
        .list_ownership(scope)
        .await?
        .into_iter()
        .filter(|o| !o.owner_id.is_empty() && o.last_modified_time.is_some_and(|t| now - t <= expiry))
        .map(|o| (o.partition_id, o.owner_id))
        .collect())
}

fn balanced(owners: &BTreeMap<String, String>, live: &[String], partitions: usize) -> bool {
    let n = live.len().max(1);
    let (floor, ceil) = (partitions / n, partitions.div_ceil(n));
    owners.len() == partitions
        && owners.values().all(|o| live.contains(o))
        && live
            .iter()
            .all(|p| (floor..=ceil).contains(&owners.values().filter(|o| *o == p).count()))
}

async fn balance(
    args: &BenchProcessorArgs,
    store: &Arc<dyn CheckpointStore>,
    connection_string: &str,
    name: &'static str,
    strategy: LoadBalancingStrategy,
) -> Result<Balance> {
    let mut processors = Vec::new();
    let mut namespace = String::new();
    for i in 0..args.processors {
        let client = EventHubClient::from_connection_string(connection_string, None)
            .await
            .map_err(|e| client_error(&e))?;
        namespace = client.fully_qualified_namespace().to_owned();
        let options = ProcessorOptions {
            strategy,
            update_interval: args.interval,
            partition_expiration: args.expiry,
            owner_id: Some(format!("{name}-{i}")),
            ..ProcessorOptions::default()
        };
        processors
            .push(Processor::new(client, name, Arc::clone(store), options).map_err(|e| client_error(&e))?);
    }
    let scope = PartitionScope::new(&namespace, HUB, name)?;
    let live: Vec<String> = processors.iter().map(|p| p.owner_id().to_owned()).collect();
    let started = Instant::now();
    futures::future::try_join_all(processors.iter().map(Processor::start))
        .await
        .map_err(|e| client_error(&e))?;
    let cycles = |t: Instant| t.duration_since(started).as_secs_f64() / args.interval.as_secs_f64();
    let (mut to_owned, mut to_balanced) = (None, None);
    let budget = started + args.interval * 60;
    while Instant::now() < budget {
        let o = owners(store.as_ref(), &scope, args.expiry).await?;
        if to_owned.is_none() && o.len() == args.partitions {
            to_owned = Some(cycles(Instant::now()));
        }
        if balanced(&o, &live, args.partitions) {
            to_balanced = Some(cycles(Instant::now()));
            break;
        }
        tokio::time::sleep(args.interval / 10).await;
    }
    // Thrash: ownership changes over the next 10 cycles.
    let mut moves = 0;
    let mut last = owners(store.as_ref(), &scope, args.expiry).await?;
    let until = Instant::now() + args.interval * 10;
    while Instant::now() < until {
        tokio::time::sleep(args.interval / 10).await;
        let now = owners(store.as_ref(), &scope, args.expiry).await?;
        moves += now
            .iter()
            .filter(|(p, o)| last.get(*p).is_some_and(|b| b != *o))
            .count();
        last = now;
    }
    // Failover: one crashes; time until its partitions have live owners again.
    let failover_ms = if let Some(victim) = processors.pop() {
        victim.abort();
        let survivors: Vec<String> = processors.iter().map(|p| p.owner_id().to_owned()).collect();
        let crashed = Instant::now();
        let mut took = None;
        while crashed.elapsed() < args.expiry * 4 + args.interval * 10 {
            let o = owners(store.as_ref(), &scope, args.expiry).await?;
            if o.len() == args.partitions && o.values().all(|p| survivors.contains(p)) {
                took = Some(crashed.elapsed().as_millis());
                break;
            }
            tokio::time::sleep(args.interval / 20).await;
        }
        took
    } else {
        None
    };
    for p in &processors {
        let _ = p.close().await;
    }
    Ok(Balance {
        strategy: name,
        cycles_to_owned: to_owned,
        cycles_to_balanced: to_balanced,
        moves_after_balance: moves,
        failover_ms,
    })
}

/// How the receive bench checkpoints.
#[derive(Clone, Copy, PartialEq)]
enum Checkpointing {
    None,
    /// `update_checkpoint` after each batch: the reading waits for the store.
    PerBatch,
    /// `checkpoint_in_background` after each batch, flushed at the end.
    InBackground,
}

const MODES: [Checkpointing; 3] = [
    Checkpointing::None,
    Checkpointing::PerBatch,
    Checkpointing::InBackground,
];

/// The consumer group of one receive run: each drains the partition from the start.
fn group_of(mode: Checkpointing, round: u32) -> String {
    let name = match mode {
        Checkpointing::None => "plain",
        Checkpointing::PerBatch => "checkpointed",
        Checkpointing::InBackground => "background",
    };
    format!("{name}-{round}")
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// Events/s through one partition client, checkpointing per batch into the store as `mode` says.
async fn receive(
    store: &Arc<dyn CheckpointStore>,
    connection_string: &str,
    group: &str,
    events: usize,
    mode: Checkpointing,
) -> Result<f64> {
    let client = EventHubClient::from_connection_string(connection_string, None)
        .await
        .map_err(|e| client_error(&e))?;
    let options = ProcessorOptions {
        start: StartPosition::Earliest,
        ..ProcessorOptions::default()
    };
    let processor =
        Processor::new(client, group, Arc::clone(store), options).map_err(|e| client_error(&e))?;
    processor.start().await.map_err(|e| client_error(&e))?;
    let mut partition = processor
        .next_partition_client()
        .await
        .ok_or_else(|| Error::new(ErrorKind::Unavailable, "no partition handed out"))?;
    let started = Instant::now();
    let mut n = 0;
    while n < events {
        let batch = partition
            .receive_events(100, Duration::from_secs(5))
            .await
            .map_err(|e| client_error(&e))?;
        n += batch.len();
        let Some(last) = batch.last() else { continue };
        match mode {
            Checkpointing::None => {}
            Checkpointing::PerBatch => partition
                .update_checkpoint(last)
                .await
                .map_err(|e| client_error(&e))?,
            Checkpointing::InBackground => partition
                .checkpoint_in_background(last)
                .map_err(|e| client_error(&e))?,
        }
    }
    // The last background checkpoint is part of the work.
    partition
        .flush_checkpoints()
        .await
        .map_err(|e| client_error(&e))?;
    let rate = events as f64 / started.elapsed().as_secs_f64();
    let _ = partition.close().await;
    let _ = processor.close().await;
    Ok(rate)
}

/// Runs `ehstore bench-processor`.
///
/// # Errors
/// The store's or the emulator's.
pub async fn run(args: BenchProcessorArgs) -> Result<ExitCode> {
    if !(1..=1024).contains(&args.partitions) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "--partitions {} must be 1 to 1024 (the service's limit)",
                args.partitions
            ),
        ));
    }
    let store = open_store_with(&args.store.url, &OpenOptions::prepared()).await?;
    let chosen = strategies(&args.strategy);
    let mut builder = eventhubs_emulator::Emulator::builder().hub(HUB, args.partitions);
    for (name, _) in &chosen {
        builder = builder.consumer_group(HUB, name);
    }
    builder = builder.hub(RECEIVE_HUB, 1);
    for round in 0..args.rounds {
        for mode in MODES {
            builder = builder.consumer_group(RECEIVE_HUB, &group_of(mode, round));
        }
    }
    let emulator = builder
        .retention(eventhubs_emulator::Retention {
            max_events: args.events * 2,
            max_bytes: args.events * 2048,
        })
        .start()
        .await
        .map_err(|e| Error::new(ErrorKind::Unavailable, format!("emulator: {e}")))?;
    let cs = emulator.connection_string(Some(HUB));
    let mut results = Vec::new();
    for (name, strategy) in chosen {
        results.push(balance(&args, &store, &cs, name, strategy).await?);
    }
    // Receive: fill the one partition, drain it twice.
    let cs = emulator.connection_string(Some(RECEIVE_HUB));
    let producer = EventHubClient::from_connection_string(&cs, None)
        .await
        .map_err(|e| client_error(&e))?;
    let body = vec![b'x'; 256];
    for _ in 0..args.events.div_ceil(100) {
        let batch = (0..100).map(|_| EventData::new(body.clone())).collect();
        producer
            .send(Some("0"), batch)
            .await
            .map_err(|e| client_error(&e))?;
    }
    let total = args.events.div_ceil(100) * 100;
    // Interleaved rounds, medians: a quiet moment or a busy one falls on every mode alike.
    let mut rates: [Vec<f64>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for round in 0..args.rounds {
        for (i, mode) in MODES.into_iter().enumerate() {
            rates[i].push(receive(&store, &cs, &group_of(mode, round), total, mode).await?);
        }
    }
    let [plain, checkpointed, background] = rates.map(median);
    emulator.shutdown().await;
    if args.json {
        out(&format!(
            "{:#}",
            json!({
                "store": store.backend_name(),
                "processors": args.processors,
                "partitions": args.partitions,
                "interval_ms": args.interval.as_millis(),
                "expiry_ms": args.expiry.as_millis(),
                "balance": results,
                "receive": {"events": total, "rounds": args.rounds, "no_checkpoint": plain, "checkpoint_per_100": checkpointed,
                            "ratio": checkpointed / plain,
                            "checkpoint_per_100_in_background": background,
                            "background_ratio": background / plain},
            })
        ));
        return Ok(ExitCode::SUCCESS);
    }
    out(&format!(
        "{} store: {} Processors, {} partitions, cycles of {:?}, expiry {:?}",
        store.backend_name(),
        args.processors,
        args.partitions,
        args.interval,
        args.expiry
    ));
    out("  STRATEGY   CYCLES TO OWNED  CYCLES TO BALANCED  MOVES IN 10 CYCLES AFTER  FAILOVER");
    let c = |v: Option<f64>| v.map_or_else(|| "not in 60".to_owned(), |v| format!("{v:.1}"));
    for r in &results {
        out(&format!(
            "  {:<10} {:>15}  {:>18}  {:>24}  {}",
            r.strategy,
            c(r.cycles_to_owned),
            c(r.cycles_to_balanced),
            r.moves_after_balance,
            r.failover_ms
                .map_or_else(|| "-".to_owned(), |ms| format!("{ms} ms"))
        ));
    }
    out(&format!(
        "  receive, one partition, {total} events of 256 bytes, median of {} rounds: {plain:.0} events/s without checkpoints, \
         {checkpointed:.0} with one per 100 (ratio {:.2}), {background:.0} with one per 100 in the background \
         (ratio {:.2})",
        args.rounds,
        checkpointed / plain,
        background / plain
    ));
    Ok(ExitCode::SUCCESS)
}
