//! Throughput: one producer sending batches of 100 × 1 KiB events (message format 0x80013700)
//! to one partition while one receiver drains it. Prints events/s and MiB/s.
//!
//! Run: `cargo bench -p eventhubs-emulator --bench throughput` (release build).
//! `EMULATOR_BENCH_EVENTS` sets the event count (default 100 000).

use std::time::Instant;

use eventhubs_emulator::{Emulator, Retention};
use fe2o3_amqp::link::delivery::Sendable;
use fe2o3_amqp::link::receiver::CreditMode;
use fe2o3_amqp::types::definitions::SenderSettleMode;
use fe2o3_amqp::types::messaging::{Body, Data, Message, message::__private::Serializable};
use fe2o3_amqp::types::primitives::{Binary, Value};
use fe2o3_amqp::{Connection, Receiver, Sender, Session};

const BATCH: usize = 100;
const EVENT_BYTES: usize = 1024;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn batch_message(payload: &[u8]) -> Result<Sendable<fe2o3_amqp::types::messaging::Batch<Data>>, BoxError> {
    let inner = serde_amqp::to_vec(&Serializable(
        Message::builder().data(Binary::from(payload.to_vec())).build(),
    ))?;
    let sections: Vec<Data> = (0..BATCH).map(|_| Data(Binary::from(inner.clone()))).collect();
    Ok(Sendable::builder()
        .message(Message::builder().data_batch(sections).build())
        .message_format(0x8001_3700)
        .build())
}

async fn run(total: usize) -> Result<(), BoxError> {
    let emulator = Emulator::builder()
        .hub("bench", 1)
        .retention(Retention {
            max_events: total * 2,
            max_bytes: total * (EVENT_BYTES + 256) * 2,
        })
        .start()
        .await?;
    // SASL PLAIN with the key: no put-token needed (the emulator refuses anonymous links).
    let url = format!(
        "amqp://RootManageSharedAccessKey:SAS_KEY_VALUE@127.0.0.1:{}",
        emulator.local_addr().port()
    );

    let mut rconn = Connection::open("bench-receiver", url.as_str()).await?;
    let mut rsession = Session::begin(&mut rconn).await?;
    let mut receiver = Receiver::builder()
        .name("drain")
        .source("bench/ConsumerGroups/$default/Partitions/0")
        .target("bench-target")
        .sender_settle_mode(SenderSettleMode::Settled)
        .credit_mode(CreditMode::Manual)
        .attach(&mut rsession)
        .await?;

    let payload = vec![b'x'; EVENT_BYTES];
    let message = batch_message(&payload)?;
    let started = Instant::now();
    let drain = tokio::spawn(async move {
        let mut bytes = 0usize;
        // Prefetch like the SDKs: keep up to 1000 events of credit outstanding.
        receiver.set_credit(1000).await?;
        for i in 0..total {
            if i % 500 == 499 {
                receiver.set_credit(1000).await?;
            }
            if std::env::var("EMULATOR_BENCH_LOG").is_ok() && i % 100 == 0 {
                eprintln!("received {i}");
            }
            let delivery = receiver.recv::<Body<Value>>().await?;
            if let Body::Data(batch) = delivery.body() {
                bytes += batch.iter().map(|d| d.0.len()).sum::<usize>();
            }
        }
        receiver.close().await?;
        Ok::<_, BoxError>(bytes)
    });

    let mut pconn = Connection::open("bench-producer", url.as_str()).await?;
    let mut psession = Session::begin(&mut pconn).await?;
    let mut sender = Sender::attach(&mut psession, "producer", "bench/Partitions/0").await?;
    for _ in 0..total / BATCH {
        sender.send(message.clone()).await?;
    }
    let sent = started.elapsed();
    let bytes = drain.await??;
    let drained = started.elapsed();
    assert_eq!(bytes, total * EVENT_BYTES, "every event drained");
    sender.close().await?;
    psession.end().await?;
    pconn.close().await?;
    rsession.end().await?;
    rconn.close().await?;
    emulator.shutdown().await;

    let rate = total as f64 / drained.as_secs_f64();
    println!(
        "emulator throughput: {total} events of {EVENT_BYTES} B in batches of {BATCH}: \
         producer done in {:.2?}, receiver drained in {:.2?} => {:.0} events/s ({:.1} MiB/s)",
        sent,
        drained,
        rate,
        rate * EVENT_BYTES as f64 / (1024.0 * 1024.0)
    );
    Ok(())
}

fn main() -> Result<(), BoxError> {
    if let Ok(filter) = std::env::var("EMULATOR_BENCH_LOG") {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let total: usize = std::env::var("EMULATOR_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let total = total.div_ceil(BATCH) * BATCH;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(total))
}
