//! `ehstore demo`: the real thing in a few seconds. It starts the in-process Event Hubs
//! emulator and runs three real `eventhubs-client` Processors over the chosen store (SQLite by
//! default), with a producer sending throughout:
//!
//! 1. `alpha` starts alone and claims all eight partitions;
//! 2. `bravo` and `charlie` join; the processors' own load balancer hands partitions over
//!    until the split is 3/3/2;
//! 3. `charlie` crashes (stops renewing, relinquishes nothing); once its ownership expires the
//!    others take its partitions and start after its checkpoints;
//! 4. the crashed `charlie`, a zombie still holding its partition clients, tries to checkpoint:
//!    refused, by its client (the ownership expired) and by the store (fencing, rule C13);
//! 5. `bravo` closes cleanly: last checkpoints, then it relinquishes (C8) and `alpha` takes over
//!    at once;
//! 6. the producer stops, `alpha` catches up, and the final status table is printed.
//!
//! The emulator listens on 127.0.0.1:`--port` (default 5674) so its namespace, and with it the
//! store's records, are the same from run to run: a second run first re-sends the events the
//! last run's checkpoints point into (the emulator keeps events in memory only), then resumes
//! after those checkpoints.

mod fleet;
mod producer;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventhubs_client::EventHubClient;
use eventhubs_store_core::{
    Checkpoint, CheckpointStore, Error, ErrorKind, PartitionScope, Result, SetCheckpointOptions,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::cli::DemoArgs;
use crate::commands::status::{collect, render};
use crate::commands::{client_error, lock, out};
use crate::duration::format_duration;
use crate::open::{OpenOptions, open_store_with};
use crate::redact::redact_url;
use fleet::DemoProcessor;
use producer::Producer;

/// The demo's event hub.
pub const DEMO_HUB: &str = "orders";
/// Partitions of the demo hub.
pub const DEMO_PARTITIONS: usize = 8;
/// How long a phase may take before the demo reports it did not settle.
const PHASE_TIMEOUT: Duration = Duration::from_secs(30);

/// Prints the demo's story: timestamped lines above the live progress line, or nothing with
/// `--json`.
#[derive(Clone)]
pub struct Narrator {
    started: Instant,
    bar: Option<ProgressBar>,
}

impl Narrator {
    fn say(&self, who: &str, what: &str) {
        let Some(bar) = &self.bar else { return };
        let line = format!("[{:>5.2}s] {who:<8} {what}", self.started.elapsed().as_secs_f64());
        if bar.is_hidden() {
            out(&line);
        } else {
            bar.println(line);
        }
    }
}

struct Demo {
    store: Arc<dyn CheckpointStore>,
    connection_string: String,
    args: DemoArgs,
    narrator: Narrator,
    running: Vec<DemoProcessor>,
}

impl Demo {
    async fn join(&mut self, name: &str) -> Result<()> {
        let p = DemoProcessor::start(
            name,
            &self.connection_string,
            Arc::clone(&self.store),
            self.args.interval,
            self.args.expiry,
            self.narrator.clone(),
        )
        .await?;
        self.running.push(p);
        Ok(())
    }

    async fn shares(&self) -> Vec<(String, usize)> {
        let mut shares = Vec::new();
        for p in &self.running {
            shares.push((p.name.clone(), p.owned().await));
        }
        shares
    }

    /// Waits until the running processors own every partition, each within one of the fair
    /// share; says so (or that it did not settle in time).
    async fn settle(&self, what: &str, progress: &dyn Fn()) -> Vec<(String, usize)> {
        let deadline = Instant::now() + PHASE_TIMEOUT;
        loop {
            progress();
            let shares = self.shares().await;
            let total: usize = shares.iter().map(|(_, n)| n).sum();
            let n = shares.len().max(1);
            let (min, max) = (DEMO_PARTITIONS / n, DEMO_PARTITIONS.div_ceil(n));
            let balanced = total == DEMO_PARTITIONS && shares.iter().all(|(_, k)| (min..=max).contains(k));
            if balanced || Instant::now() > deadline {
                let text: Vec<String> = shares.iter().map(|(p, k)| format!("{p} {k}")).collect();
                let verdict = if balanced { what } else { "did not settle in time" };
                self.narrator.say("-", &format!("{verdict}: {}", text.join(", ")));
                return shares;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn take(&mut self, name: &str) -> Option<DemoProcessor> {
        let i = self.running.iter().position(|p| p.name == name)?;
        Some(self.running.remove(i))
    }
}

/// Events the last run's checkpoints point into, per partition: sequence number + 1.
async fn history(store: &dyn CheckpointStore, scope: &PartitionScope) -> Result<BTreeMap<usize, u64>> {
    Ok(store
        .list_checkpoints(scope)
        .await?
        .into_iter()
        .filter_map(|c| {
            let p = c
                .partition_id
                .parse::<usize>()
                .ok()
                .filter(|p| *p < DEMO_PARTITIONS)?;
            let seq = u64::try_from(c.sequence_number?).ok()?;
            Some((p, seq + 1))
        })
        .collect())
}

async fn start_emulator(port: u16) -> Result<eventhubs_emulator::EmulatorHandle> {
    let build = |port| {
        eventhubs_emulator::Emulator::builder()
            .hub(DEMO_HUB, DEMO_PARTITIONS)
            .port(port)
            .start()
    };
    match build(port).await {
        Ok(handle) => Ok(handle),
        // Taken: any free port (the namespace, and so the store's records, differ this run).
        Err(_) if port != 0 => build(0)
            .await
            .map_err(|e| Error::new(ErrorKind::Unavailable, format!("emulator: {e}"))),
        Err(e) => Err(Error::new(ErrorKind::Unavailable, format!("emulator: {e}"))),
    }
}

/// Runs `ehstore demo`.
///
/// # Errors
/// The store's, or the emulator's when it cannot start.
pub async fn run(args: DemoArgs) -> Result<ExitCode> {
    let store = open_store_with(&args.store, &OpenOptions::prepared()).await?;
    let emulator = start_emulator(args.port).await?;
    let connection_string = emulator.connection_string(Some(DEMO_HUB));
    let producer_client = EventHubClient::from_connection_string(&connection_string, None)
        .await
        .map_err(|e| client_error(&e))?;
    let namespace = producer_client.fully_qualified_namespace().to_owned();
    let scope = PartitionScope::new(&namespace, DEMO_HUB, "$Default")?;
    let bar = (!args.json).then(|| {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar
    });
    let narrator = Narrator {
        started: Instant::now(),
        bar: bar.clone(),
    };
    if !args.json {
        out(&format!(
            "ehstore demo: 3 real Processors share the {DEMO_PARTITIONS} partitions of {scope}\n\
             on the in-process Event Hubs emulator ({}), store: {} ({}); ownership expires {} after \
             its last renewal; a load-balancing cycle every {}\n",
            emulator.local_addr(),
            redact_url(&args.store),
            store.backend_name(),
            format_duration(args.expiry),
            format_duration(args.interval),
        ));
    }
    let history = history(store.as_ref(), &scope).await?;
    if !history.is_empty() {
        let events: u64 = history.values().sum();
        narrator.say(
            "-",
            &format!(
                "the store holds checkpoints from an earlier run: re-sending its {events} events \
                 (the emulator keeps none), the processors resume after those checkpoints"
            ),
        );
        producer::replay(&producer_client, &history).await?;
    }
    let producer = Producer::start(producer_client, DEMO_PARTITIONS, &history, 5, args.interval);
    let mut demo = Demo {
        store: Arc::clone(&store),
        connection_string,
        args,
        narrator,
        running: Vec::new(),
    };
    let sent = Arc::clone(&producer.sent);
    let progress = {
        let bar = bar.clone();
        move || {
            if let Some(bar) = &bar {
                bar.set_message(format!(
                    "events sent: {}",
                    sent.load(std::sync::atomic::Ordering::SeqCst)
                ));
                bar.tick();
            }
        }
    };

    demo.join("alpha").await?;
    let alone = demo.settle("alpha holds every partition", &progress).await;
    demo.join("bravo").await?;
    demo.join("charlie").await?;
    let balanced = demo.settle("balanced", &progress).await;

    // charlie crashes; its readers keep their clients: the zombie.
    let mut charlie = demo.take("charlie");
    let zombie = match charlie.as_mut() {
        Some(c) => {
            // Let it read from each of its partitions first, so its zombie has events in hand.
            let owned = c.owned().await;
            let deadline = Instant::now() + Duration::from_secs(5);
            while lock(&c.tally).last_received.len() < owned && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let clients = c.crash(owned).await;
            demo.narrator.say(
                "charlie",
                &format!(
                    "crashes: stops renewing; its partitions free up {} after its last renewal",
                    format_duration(demo.args.expiry)
                ),
            );
            clients
        }
        None => Vec::new(),
    };
    let after_crash = demo.settle("charlie's partitions taken over", &progress).await;

    // The zombie tries to checkpoint what it last read.
    let mut zombie_report = json!(null);
    let in_hand = charlie.as_ref().and_then(|c| {
        let tally = lock(&c.tally);
        zombie
            .iter()
            .find_map(|client| Some((client, tally.last_received.get(client.partition_id())?.clone())))
    });
    if in_hand.is_none() {
        demo.narrator.say(
            "charlie",
            "crashed before it read anything: no zombie write to try",
        );
    }
    {
        if let Some((client, event)) = in_hand {
            let by_client = client.update_checkpoint(&event).await;
            demo.narrator.say(
                "charlie",
                &format!(
                    "wakes up as a zombie and checkpoints partition {} at sequence number {}: {}",
                    event.partition_id,
                    event.sequence_number,
                    match &by_client {
                        Ok(()) => "accepted".to_owned(),
                        Err(e) => format!("refused by its client ({e})"),
                    }
                ),
            );
            let fenced = store.capabilities().fenced_checkpoints;
            let by_store = if fenced {
                let checkpoint = Checkpoint::new(
                    scope.clone(),
                    event.partition_id.as_str(),
                    Some(event.offset.clone()),
                    Some(event.sequence_number),
                );
                store
                    .set_checkpoint(&checkpoint, &SetCheckpointOptions::fenced("charlie"))
                    .await
            } else {
                Ok(())
            };
            demo.narrator.say(
                "charlie",
                &match (&by_store, fenced) {
                    (_, false) => "(this store has no fenced checkpoints, C13: the store itself would take a zombie's write)".to_owned(),
                    (Err(e), true) if e.kind() == ErrorKind::OwnershipLost => {
                        "the same write straight to the store: refused, it no longer owns the partition (fencing, rule C13)".to_owned()
                    }
                    (Err(e), true) => format!("the same write straight to the store failed: {e}"),
                    (Ok(()), true) => "the same write straight to the store: ACCEPTED (fencing failed!)".to_owned(),
                },
            );
            zombie_report = json!({
                "partition": event.partition_id,
                "sequence_number": event.sequence_number,
                "refused_by_client": by_client.is_err(),
                "refused_by_store": fenced.then(|| by_store.is_err()),
            });
        }
    }
    drop(zombie);

    // bravo closes cleanly.
    let mut closed = Vec::new();
    if let Some(bravo) = demo.take("bravo") {
        demo.narrator.say(
            "bravo",
            "closes: last checkpoints, then relinquishes its partitions (C8)",
        );
        let name = bravo.name.clone();
        closed.push((name, bravo.close().await?));
    }
    let after_close = demo.settle("alpha took over at once", &progress).await;

    // Stop producing; alpha catches up.
    let produced = producer.stop().await;
    let deadline = Instant::now() + PHASE_TIMEOUT;
    let caught_up = loop {
        progress();
        let checkpoints = store.list_checkpoints(&scope).await?;
        let behind = produced.iter().enumerate().any(|(p, n)| {
            *n > 0
                && !checkpoints.iter().any(|c| {
                    c.partition_id == p.to_string()
                        && c.sequence_number
                            .is_some_and(|s| u64::try_from(s + 1).ok() == Some(*n))
                })
        });
        if !behind || Instant::now() > deadline {
            break !behind;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let status = collect(store.as_ref(), &scope, demo.args.expiry).await?;
    let ownership = store.list_ownership(&scope).await?;
    let checkpoints = store.list_checkpoints(&scope).await?;
    let mut processed = BTreeMap::new();
    let mut reported = BTreeMap::new();
    let tallies = demo
        .running
        .iter()
        .chain(charlie.iter())
        .map(|p| (p.name.clone(), Arc::clone(&p.tally)))
        .chain(closed);
    for (name, tally) in tallies {
        let tally = lock(&tally);
        processed.insert(name, tally.events);
        // The last checkpoint of a partition is the highest: each owner starts after the
        // previous one's.
        for (partition, cp) in &tally.checkpoints {
            let entry = reported.entry(partition.clone()).or_insert_with(|| cp.clone());
            if cp.0 > entry.0 {
                *entry = cp.clone();
            }
        }
    }
    if demo.args.json {
        let partitions: Vec<serde_json::Value> = (0..DEMO_PARTITIONS)
            .map(|p| {
                let id = p.to_string();
                let owner = ownership.iter().find(|o| o.partition_id == id);
                let checkpoint = checkpoints.iter().find(|c| c.partition_id == id);
                json!({
                    "partition": id,
                    "owner": owner.map(|o| o.owner_id.clone()),
                    "sequence_number": checkpoint.and_then(|c| c.sequence_number),
                    "offset": checkpoint.and_then(|c| c.offset.clone()),
                    "events": produced.get(p),
                    "reported_sequence_number": reported.get(&id).map(|(seq, _)| *seq),
                })
            })
            .collect();
        let share = |s: &[(String, usize)]| {
            s.iter()
                .map(|(p, n)| json!({"processor": p, "partitions": n}))
                .collect::<Vec<_>>()
        };
        out(&serde_json::to_string_pretty(&json!({
            "namespace": namespace,
            "hub": DEMO_HUB,
            "consumer_group": "$default",
            "events_sent": producer_sent(&produced, &history),
            "resumed_from_earlier_run": !history.is_empty(),
            "phases": {
                "alone": share(&alone),
                "balanced": share(&balanced),
                "after_crash": share(&after_crash),
                "after_close": share(&after_close),
                "caught_up": caught_up,
            },
            "processed": processed,
            "zombie_checkpoint": zombie_report,
            "partitions": partitions,
        }))
        .unwrap_or_default());
    } else {
        let counts: Vec<String> = processed.iter().map(|(p, n)| format!("{p} {n}")).collect();
        out(&format!(
            "\nevents sent {}, processed: {}{}",
            producer_sent(&produced, &history),
            counts.join(", "),
            if caught_up {
                "; every partition checkpointed at its last event"
            } else {
                "; NOT caught up in time"
            }
        ));
        out(&format!(
            "\nfinal state (expiry {}):",
            format_duration(demo.args.expiry)
        ));
        out(render(&status).trim_end());
        out(&format!(
            "\nlook again any time:\n  ehstore status {} --namespace {namespace} --hub {DEMO_HUB}\nrun the demo again: it resumes after these checkpoints",
            redact_url(&demo.args.store)
        ));
    }
    // alpha stays owner in the store (the table above); closing relinquishes nothing more
    // than a crash would after the expiry, so it is simply dropped with the emulator.
    for p in demo.running.drain(..) {
        p.processor.abort();
    }
    emulator.shutdown().await;
    Ok(if caught_up {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Events sent by this run (the replayed history excluded).
fn producer_sent(produced: &[u64], history: &BTreeMap<usize, u64>) -> u64 {
    produced
        .iter()
        .enumerate()
        .map(|(p, n)| n - history.get(&p).copied().unwrap_or(0).min(*n))
        .sum()
}
