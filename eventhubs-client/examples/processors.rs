//! Three real Processors share the eight partitions of an event hub through a SQLite store, on
//! our emulator, in a few seconds:
//!
//! 1. a producer keeps sending events to every partition;
//! 2. `alpha` starts and takes every partition; `bravo` and `charlie` join and the partitions
//!    spread 3/3/2, each new owner starting after the last checkpoint;
//! 3. `charlie` crashes (aborted: no renewals, nothing relinquished); once its ownership expires the others take
//!    its partitions over, and its left-over partition client can neither read nor checkpoint;
//! 4. `bravo` closes and relinquishes; `alpha` takes its partitions at once.
//!
//! ```text
//! cargo run -p eventhubs-client --example processors [-- STORE_PATH]
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventhubs_client::{
    EventData, EventHubClient, LoadBalancingStrategy, PartitionClient, Processor, ProcessorOptions,
    ReceivedEvent, StartPosition,
};
use eventhubs_emulator::Emulator;
use eventhubs_store_core::CheckpointStore;
use eventhubs_store_sqlite::SqliteStore;
use tokio::sync::Mutex;

/// Charlie's partition client kept after the crash, with the last event it read.
type Zombies = Arc<Mutex<BTreeMap<String, (PartitionClient, Option<ReceivedEvent>)>>>;

type BoxResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const HUB: &str = "orders";
const PARTITIONS: usize = 8;
const EXPIRY: Duration = Duration::from_millis(1500);

#[tokio::main]
async fn main() -> BoxResult<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "processors-demo.db".to_owned());
    let emulator = Emulator::builder().hub(HUB, PARTITIONS).start().await?;
    let connection_string = emulator.connection_string(Some(HUB));
    let store: Arc<dyn CheckpointStore> = Arc::new(SqliteStore::open(&path).await?);
    let started = Instant::now();
    let say =
        move |who: &str, what: &str| println!("[{:>5.2}s] {who:<8} {what}", started.elapsed().as_secs_f64());
    say(
        "-",
        &format!("emulator on {}, store sqlite:{path}", emulator.local_addr()),
    );

    let producer = EventHubClient::from_connection_string(&connection_string, None).await?;
    let sending = tokio::spawn(async move {
        for n in 0u64.. {
            for p in 0..PARTITIONS {
                let event = EventData::new(format!("event {n}"));
                if producer.send(Some(&p.to_string()), vec![event]).await.is_err() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });

    let zombies: Zombies = Arc::default();
    let alpha = start(&connection_string, &store, "alpha", &zombies, say).await?;
    settle(&[&alpha], &[8]).await;
    say("-", "alpha holds every partition");
    let bravo = start(&connection_string, &store, "bravo", &zombies, say).await?;
    let charlie = start(&connection_string, &store, "charlie", &zombies, say).await?;
    settle(&[&alpha, &bravo, &charlie], &[2, 3]).await;
    say(
        "-",
        &format!("balanced: {}", shares(&[&alpha, &bravo, &charlie]).await),
    );

    say("charlie", "crashes: stops renewing, relinquishes nothing");
    charlie.abort();
    settle(&[&alpha, &bravo], &[4]).await;
    say(
        "-",
        &format!(
            "charlie's partitions taken over after expiry: {}",
            shares(&[&alpha, &bravo]).await
        ),
    );
    if let Some((partition, (zombie, last))) = zombies.lock().await.pop_first() {
        say(
            "charlie",
            &format!("wakes up as a zombie on partition {partition} and checkpoints"),
        );
        match last {
            Some(event) => match zombie.update_checkpoint(&event).await {
                Err(e) => say("charlie", &format!("refused (fencing, rule C13): {e}")),
                Ok(()) => say("charlie", "the store took it: it offers no fencing (C13)"),
            },
            None => say("charlie", "had read nothing to checkpoint"),
        }
    }

    bravo.close().await?;
    say("bravo", "closes and relinquishes its partitions");
    settle(&[&alpha], &[8]).await;
    say(
        "-",
        &format!("alpha took over at once: {}", shares(&[&alpha]).await),
    );
    alpha.close().await?;
    sending.abort();
    emulator.shutdown().await;
    Ok(())
}

/// Starts processor `owner`; every partition it gets is read and checkpointed by a task.
async fn start(
    connection_string: &str,
    store: &Arc<dyn CheckpointStore>,
    owner: &str,
    zombies: &Zombies,
    say: impl Fn(&str, &str) + Copy + Send + Sync + 'static,
) -> BoxResult<Arc<Processor>> {
    let client = EventHubClient::from_connection_string(connection_string, None).await?;
    let options = ProcessorOptions {
        strategy: LoadBalancingStrategy::Greedy,
        update_interval: Duration::from_millis(150),
        partition_expiration: EXPIRY,
        start: StartPosition::Earliest,
        owner_id: Some(owner.to_owned()),
        ..ProcessorOptions::default()
    };
    let processor = Arc::new(Processor::new(client, "$Default", Arc::clone(store), options)?);
    processor.start().await?;
    say(owner, "starts");
    let (handing, name, zombies) = (Arc::clone(&processor), owner.to_owned(), Arc::clone(zombies));
    tokio::spawn(async move {
        while let Some(partition) = handing.next_partition_client().await {
            say(&name, &format!("owns partition {}", partition.partition_id()));
            tokio::spawn(read(partition, name.clone(), Arc::clone(&zombies), say));
        }
    });
    Ok(processor)
}

/// Reads and checkpoints one partition until it is lost; charlie keeps its last one as a zombie.
async fn read(mut partition: PartitionClient, owner: String, zombies: Zombies, say: impl Fn(&str, &str)) {
    loop {
        match partition.receive_events(50, Duration::from_millis(200)).await {
            Ok(events) => {
                if let Some(last) = events.last()
                    && let Err(e) = partition.update_checkpoint(last).await
                {
                    say(
                        &owner,
                        &format!(
                            "checkpoint of partition {} refused: {e}",
                            partition.partition_id()
                        ),
                    );
                    return;
                }
                let mut kept = zombies.lock().await;
                if owner == "charlie" && kept.is_empty() && !events.is_empty() {
                    // Keep charlie's first partition client, to show what a zombie can do.
                    let last = events.last().cloned();
                    kept.insert(partition.partition_id().to_owned(), (partition, last));
                    return;
                }
            }
            Err(e) => {
                say(
                    &owner,
                    &format!("lost partition {}: {}", partition.partition_id(), e.kind()),
                );
                return;
            }
        }
    }
}

/// Waits until the processors own every partition between them, each a count in `allowed`.
async fn settle(processors: &[&Processor], allowed: &[usize]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let mut total = 0;
        let mut fits = true;
        for p in processors {
            let n = p.owned_partitions().await.len();
            total += n;
            fits &= allowed.contains(&n);
        }
        if fits && total == PARTITIONS {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn shares(processors: &[&Processor]) -> String {
    let mut parts = Vec::new();
    for p in processors {
        parts.push(format!("{} {}", p.owner_id(), p.owned_partitions().await.len()));
    }
    parts.join(", ")
}
