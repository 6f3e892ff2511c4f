//! The receive path side by side in one run on the in-process emulator: the same events of one
//! partition drained by a bare fe2o3-amqp receiver (as fe2o3 opens it, and on a `TCP_NODELAY`
//! socket), by our `PartitionReceiver`, and by a Processor's `PartitionClient` without and
//! with a checkpoint per batch (in-memory and SQLite stores). Prints events/s and the ratios.
//!
//! `cargo run --release -p eventhubs-client --example receive_speed`
//! (`RECEIVE_SPEED_EVENTS`, default 50 000 events of 256 bytes; `RECEIVE_SPEED_PREFETCH`,
//! default 300, the client's default).

use std::sync::Arc;
use std::time::{Duration, Instant};

use eventhubs_client::{
    EventData, EventHubClient, Processor, ProcessorOptions, ReceiverOptions, StartPosition,
};
use eventhubs_emulator::{Emulator, EmulatorHandle, Retention};
use eventhubs_store_core::{CheckpointStore, InMemoryStore};
use fe2o3_amqp::link::receiver::CreditMode;
use fe2o3_amqp::sasl_profile::SaslProfile;
use fe2o3_amqp::types::messaging::{Body, FilterSet, Source};
use fe2o3_amqp::types::primitives::{Symbol, Value};
use fe2o3_amqp::{Connection, Receiver, Session};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const HUB: &str = "speed";
const GROUPS: [&str; 6] = ["raw", "nodelay", "receiver", "processor", "memory", "sqlite"];

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn raw(
    emulator: &EmulatorHandle,
    group: &str,
    total: usize,
    prefetch: u32,
    nodelay: bool,
) -> Result<f64, BoxError> {
    let key = &emulator.broker().config.sas_key;
    let url = format!("amqp://127.0.0.1:{}", emulator.local_addr().port());
    let builder = Connection::builder()
        .container_id(format!("raw-{group}"))
        .hostname("localhost")
        .sasl_profile(SaslProfile::Plain {
            username: key.name.clone(),
            password: key.key.clone(),
        });
    let mut connection = if nodelay {
        let stream = tokio::net::TcpStream::connect(emulator.local_addr()).await?;
        stream.set_nodelay(true)?;
        builder.open_with_stream(stream).await?
    } else {
        builder.open(url.as_str()).await?
    };
    let mut session = Session::begin(&mut connection).await?;
    let mut filters = FilterSet::new();
    filters.insert(
        Symbol::from("apache.org:selector-filter:string"),
        Value::Described(Box::new(serde_amqp::described::Described {
            descriptor: serde_amqp::descriptor::Descriptor::Name(Symbol::from(
                "apache.org:selector-filter:string",
            )),
            value: Value::String("amqp.annotation.x-opt-offset > '-1'".into()),
        })),
    );
    let source = Source::builder()
        .address(format!("{HUB}/ConsumerGroups/{group}/Partitions/0"))
        .filter(filters)
        .build();
    let mut receiver = Receiver::builder()
        .name(format!("raw-{group}"))
        .source(source)
        .target("raw")
        .credit_mode(CreditMode::Auto(prefetch))
        .attach(&mut session)
        .await?;
    let started = Instant::now();
    for _ in 0..total {
        let delivery = receiver.recv::<Body<Value>>().await?;
        receiver.accept(&delivery).await?;
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    receiver.close().await?;
    session.end().await?;
    connection.close().await?;
    Ok(rate)
}

async fn ours(cs: &str, group: &str, total: usize, prefetch: u32) -> Result<f64, BoxError> {
    let client = EventHubClient::from_connection_string(cs, None).await?;
    let options = ReceiverOptions {
        start: StartPosition::Earliest,
        prefetch,
        ..ReceiverOptions::default()
    };
    let mut receiver = client.open_receiver(group, "0", options).await?;
    let started = Instant::now();
    let mut n = 0;
    while n < total {
        n += receiver.receive(100, Duration::from_secs(5)).await?.len();
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    receiver.close().await?;
    client.close().await?;
    Ok(rate)
}

async fn processor(
    cs: &str,
    group: &str,
    total: usize,
    prefetch: u32,
    store: Option<Arc<dyn CheckpointStore>>,
) -> Result<f64, BoxError> {
    let checkpoint = store.is_some();
    let store = store.unwrap_or_else(|| Arc::new(InMemoryStore::new()));
    let client = EventHubClient::from_connection_string(cs, None).await?;
    let options = ProcessorOptions {
        start: StartPosition::Earliest,
        prefetch,
        update_interval: Duration::from_secs(5),
        ..ProcessorOptions::default()
    };
    let processor = Processor::new(client, group, store, options)?;
    processor.start().await?;
    let mut partition = processor.next_partition_client().await.ok_or("no partition")?;
    let started = Instant::now();
    let mut n = 0;
    while n < total {
        let events = partition.receive_events(100, Duration::from_secs(5)).await?;
        n += events.len();
        if checkpoint && let Some(last) = events.last() {
            partition.update_checkpoint(last).await?;
        }
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    partition.close().await?;
    processor.close().await?;
    Ok(rate)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let total = env("RECEIVE_SPEED_EVENTS", 50_000);
    let prefetch = u32::try_from(env("RECEIVE_SPEED_PREFETCH", 300))?;
    let mut builder = Emulator::builder().hub(HUB, 1).retention(Retention {
        max_events: total * 2,
        max_bytes: total * 2048,
    });
    for group in GROUPS {
        builder = builder.consumer_group(HUB, group);
    }
    let emulator = builder.start().await?;
    let cs = emulator.connection_string(Some(HUB));
    let producer = EventHubClient::from_connection_string(&cs, None).await?;
    let body = vec![b'x'; 256];
    for _ in 0..total / 100 {
        producer
            .send(
                Some("0"),
                (0..100).map(|_| EventData::new(body.clone())).collect(),
            )
            .await?;
    }
    producer.close().await?;
    let dir = std::env::temp_dir().join(format!("receive-speed-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let sqlite: Arc<dyn CheckpointStore> =
        Arc::new(eventhubs_store_sqlite::SqliteStore::open(dir.join("speed.db")).await?);
    println!("{total} events of 256 bytes, one partition, prefetch {prefetch}:");
    let bare = raw(&emulator, "raw", total, prefetch, false).await?;
    let nodelay = raw(&emulator, "nodelay", total, prefetch, true).await?;
    let receiver = ours(&cs, "receiver", total, prefetch).await?;
    let client = processor(&cs, "processor", total, prefetch, None).await?;
    let memory = processor(
        &cs,
        "memory",
        total,
        prefetch,
        Some(Arc::new(InMemoryStore::new())),
    )
    .await?;
    let on_sqlite = processor(&cs, "sqlite", total, prefetch, Some(sqlite)).await?;
    let best_raw = bare.max(nodelay);
    for (what, rate) in [
        ("bare fe2o3 receiver (fe2o3 opens the socket)", bare),
        ("bare fe2o3 receiver (TCP_NODELAY socket)", nodelay),
        ("PartitionReceiver", receiver),
        ("PartitionClient, no checkpoint", client),
        ("PartitionClient, checkpoint per 100 (memory)", memory),
        ("PartitionClient, checkpoint per 100 (sqlite)", on_sqlite),
    ] {
        println!(
            "  {what:<48} {rate:>9.0} events/s  {:>5.2} of the best bare receiver",
            rate / best_raw
        );
    }
    println!(
        "  checkpoint-per-batch ratio (vs no checkpoint): memory {:.2}, sqlite {:.2}",
        memory / client,
        on_sqlite / client
    );
    let _ = std::fs::remove_dir_all(dir);
    emulator.shutdown().await;
    Ok(())
}
