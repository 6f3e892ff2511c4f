//! `ehstore process`: a real `eventhubs-client` Processor consuming a hub (Azure or the
//! emulator), checkpointing each batch into any store. The way to try a backend against your
//! own hub before writing code: it prints (`--print`) or counts the events, stops after
//! `--max-events`, `--duration` or Ctrl-C, closes cleanly (last checkpoints, then it
//! relinquishes its partitions, C8) and prints the scope's status table.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eventhubs_client::{
    EventHubClient, PartitionClient, Processor, ProcessorEvent, ProcessorOptions, StartPosition,
};
use eventhubs_store_core::{PartitionScope, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use tokio::task::JoinSet;

use crate::cli::ProcessArgs;
use crate::commands::status::{collect, render};
use crate::commands::{client_error, lock, out};
use crate::open::{OpenOptions, open_store_with};

/// What the readers counted.
#[derive(Debug, Default)]
struct Counts {
    per_partition: BTreeMap<String, u64>,
    checkpoints: u64,
}

/// Runs `ehstore process`.
///
/// # Errors
/// A bad connection string or store URL, an unreachable hub or store, refused credentials.
pub async fn run(args: ProcessArgs) -> Result<ExitCode> {
    if let Some(addr) = args.metrics_addr {
        super::prometheus::serve(addr)?;
    }
    let store = open_store_with(&args.store, &OpenOptions::prepared()).await?;
    let client = EventHubClient::from_connection_string(&args.connection_string, args.hub.as_deref())
        .await
        .map_err(|e| client_error(&e))?;
    let scope = PartitionScope::new(
        client.fully_qualified_namespace(),
        client.event_hub(),
        &args.consumer_group,
    )?;
    let options = ProcessorOptions {
        update_interval: args.interval,
        partition_expiration: args.expiry,
        start: if args.start == "earliest" {
            StartPosition::Earliest
        } else {
            StartPosition::Latest
        },
        owner_id: args.owner.clone(),
        ..ProcessorOptions::default()
    };
    let processor = Arc::new(
        Processor::new(client, &args.consumer_group, Arc::clone(&store), options)
            .map_err(|e| client_error(&e))?,
    );
    let bar = (!args.json && !args.print).then(|| {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar
    });
    let say = {
        let (bar, quiet) = (bar.clone(), args.json);
        move |line: String| match &bar {
            Some(bar) if !bar.is_hidden() => bar.println(line),
            _ if !quiet => eprintln!("{line}"),
            _ => {}
        }
    };
    say(format!(
        "ehstore process: {scope} as owner {} into {} ({})",
        processor.owner_id(),
        crate::redact::redact_url(&args.store),
        store.backend_name()
    ));
    let mut events = processor.events();
    let narrate = {
        let say = say.clone();
        tokio::spawn(async move {
            while let Ok(event) = events.recv().await {
                match event {
                    ProcessorEvent::PartitionInitialized { partition_id } => {
                        say(format!("reading partition {partition_id}"));
                    }
                    ProcessorEvent::PartitionLost { partition_id, reason } => {
                        say(format!("lost partition {partition_id} ({reason})"));
                    }
                    ProcessorEvent::Error { partition_id, error } => say(format!(
                        "error{}: {error} (the processor retries)",
                        partition_id
                            .map(|p| format!(" on partition {p}"))
                            .unwrap_or_default()
                    )),
                    _ => {}
                }
            }
        })
    };
    processor.start().await.map_err(|e| client_error(&e))?;

    let counts = Arc::new(Mutex::new(Counts::default()));
    let total = Arc::new(AtomicU64::new(0));
    let limit = args.max_events;
    let print = args.print;
    let readers = {
        let (p, counts, total) = (Arc::clone(&processor), Arc::clone(&counts), Arc::clone(&total));
        tokio::spawn(async move {
            let mut set = JoinSet::new();
            while let Some(partition) = p.next_partition_client().await {
                set.spawn(read(
                    partition,
                    Arc::clone(&counts),
                    Arc::clone(&total),
                    limit,
                    print,
                ));
            }
            while set.join_next().await.is_some() {}
        })
    };

    let started = Instant::now();
    let deadline = args.duration.map(|d| started + d);
    loop {
        if let Some(bar) = &bar {
            bar.set_message(format!(
                "{} events in {:.0?}",
                total.load(Ordering::SeqCst),
                started.elapsed()
            ));
            bar.tick();
        }
        if limit > 0 && total.load(Ordering::SeqCst) >= limit {
            break;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    // Last checkpoints, then relinquish (C8).
    let closed = processor.close().await;
    let _ = tokio::time::timeout(Duration::from_secs(10), readers).await;
    narrate.abort();
    closed.map_err(|e| client_error(&e))?;

    let status = collect(store.as_ref(), &scope, args.expiry).await?;
    let counts = lock(&counts);
    let processed = total.load(Ordering::SeqCst);
    if args.json {
        out(&serde_json::to_string_pretty(&json!({
            "namespace": scope.namespace(),
            "hub": scope.event_hub(),
            "consumer_group": scope.consumer_group(),
            "owner": processor.owner_id(),
            "events": processed,
            "per_partition": counts.per_partition,
            "checkpoints": counts.checkpoints,
            "seconds": started.elapsed().as_secs_f64(),
        }))
        .unwrap_or_default());
    } else {
        out(&format!(
            "processed {processed} events in {:.1?} ({} checkpoints); per partition: {}",
            started.elapsed(),
            counts.checkpoints,
            counts
                .per_partition
                .iter()
                .map(|(p, n)| format!("{p}:{n}"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
        out(render(&status).trim_end());
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads one partition: counts (or prints) every event, checkpoints each batch; stops at the
/// limit (checkpointing exactly up to it), when the partition is lost or the processor closes.
async fn read(
    mut partition: PartitionClient,
    counts: Arc<Mutex<Counts>>,
    total: Arc<AtomicU64>,
    limit: u64,
    print: bool,
) {
    loop {
        let events = match partition.receive_events(100, Duration::from_millis(500)).await {
            Ok(events) => events,
            Err(_) => break,
        };
        let mut last = None;
        for event in &events {
            // Take one slot of the limit per event; past it, the event is left for next time.
            let n = total.fetch_add(1, Ordering::SeqCst) + 1;
            if limit > 0 && n > limit {
                total.fetch_sub(1, Ordering::SeqCst);
                break;
            }
            if print {
                let body = String::from_utf8_lossy(&event.body);
                let body: String = body.chars().take(200).collect();
                out(&format!(
                    "partition {} sequence {} offset {}: {body}",
                    event.partition_id, event.sequence_number, event.offset
                ));
            }
            *lock(&counts)
                .per_partition
                .entry(event.partition_id.clone())
                .or_default() += 1;
            last = Some(event);
        }
        if let Some(last) = last
            && partition.update_checkpoint(last).await.is_ok()
        {
            lock(&counts).checkpoints += 1;
        }
        if limit > 0 && total.load(Ordering::SeqCst) >= limit {
            break;
        }
    }
    let _ = partition.close().await;
}
