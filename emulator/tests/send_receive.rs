//! Publishing (hub, partition, key, batch) and receiving with every filter form.

// Helpers outside #[test] functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Client, assert_nothing, batch, event, recv, start};
use eventhubs_emulator::hash::partition_for_key;
use fe2o3_amqp::types::primitives::{Symbol, Value};

const SELECTOR: &str = "apache.org:selector-filter:string";

fn symbol_filter(expression: &str) -> Option<(Value, &str)> {
    Some((Value::Symbol(Symbol::from(SELECTOR)), expression))
}

fn seq(r: &common::Received) -> i64 {
    match r.sequence_number {
        Some(Value::Long(n)) => n,
        ref other => panic!("x-opt-sequence-number must be a long, got {other:?}"),
    }
}

fn offset(r: &common::Received) -> String {
    match &r.offset {
        Some(Value::String(s)) => s.clone(),
        other => panic!("x-opt-offset must be a string, got {other:?}"),
    }
}

#[tokio::test]
async fn single_messages_to_a_partition_carry_the_annotations() {
    let emulator = start().await;
    let mut client = Client::connect(&emulator).await;
    let mut sender = client.sender("orders/Partitions/2").await;
    for body in ["a", "b"] {
        sender.send(event(body, None)).await.expect("accepted");
    }
    let mut receiver = client
        .receiver("orders/ConsumerGroups/$default/Partitions/2", None, None, &[])
        .await
        .expect("attach");
    receiver.set_credit(10).await.expect("credit");
    let a = recv(&mut receiver).await;
    let b = recv(&mut receiver).await;
    assert_eq!((a.body.as_str(), b.body.as_str()), ("a", "b"));
    assert_eq!((seq(&a), seq(&b)), (0, 1));
    assert!(offset(&a).parse::<u64>().unwrap() < offset(&b).parse::<u64>().unwrap());
    assert!(matches!(a.enqueued_time, Some(Value::Timestamp(_))));
    assert_eq!(a.partition_key, None);
    client.close().await;
}

#[tokio::test]
async fn batches_and_partition_keys_follow_the_service_hash() {
    let emulator = start().await;
    let mut client = Client::connect(&emulator).await;
    let mut sender = client.sender("orders").await;
    sender
        .send(batch(&["k1", "k2", "k3"], Some("FWfAT")))
        .await
        .expect("batch accepted");
    let partition = partition_for_key("FWfAT", 4);
    let mut receiver = client
        .receiver(
            &format!("orders/ConsumerGroups/cg1/Partitions/{partition}"),
            None,
            None,
            &[],
        )
        .await
        .expect("attach");
    receiver.set_credit(10).await.expect("credit");
    for (i, body) in ["k1", "k2", "k3"].iter().enumerate() {
        let r = recv(&mut receiver).await;
        assert_eq!(r.body, *body);
        assert_eq!(seq(&r), i as i64);
        assert_eq!(r.partition_key, Some(Value::String("FWfAT".into())));
    }
    client.close().await;
}

#[tokio::test]
async fn round_robin_spreads_batches_over_partitions() {
    let emulator = start().await;
    let mut client = Client::connect(&emulator).await;
    let mut sender = client.sender("amqps://localhost/orders").await;
    for i in 0..8 {
        sender
            .send(batch(&[&format!("rr{i}")], None))
            .await
            .expect("accepted");
    }
    let hub = emulator.broker().hub("orders").unwrap();
    for log in &hub.partitions {
        assert_eq!(eventhubs_emulator::broker::lock(log).usage().0, 2);
    }
    client.close().await;
}

#[tokio::test]
async fn every_selector_form_and_position() {
    let emulator = start().await;
    let mut client = Client::connect(&emulator).await;
    let mut sender = client.sender("orders/Partitions/0").await;
    for i in 0..5 {
        sender
            .send(event(&format!("e{i}"), None))
            .await
            .expect("accepted");
    }
    let address = "sb://localhost/orders/ConsumerGroups/$default/Partitions/0";
    // Learn the offsets and times.
    let mut all = client
        .receiver(
            address,
            symbol_filter("amqp.annotation.x-opt-offset > '-1'"),
            None,
            &[],
        )
        .await
        .unwrap();
    all.set_credit(10).await.unwrap();
    let mut events = Vec::new();
    for _ in 0..5 {
        events.push(recv(&mut all).await);
    }
    let enqueued = match &events[2].enqueued_time {
        Some(Value::Timestamp(t)) => t.milliseconds(),
        _ => unreachable!(),
    };
    let cases: Vec<(Value, String, &str)> = vec![
        (
            Value::Symbol(Symbol::from(SELECTOR)),
            format!("amqp.annotation.x-opt-offset > '{}'", offset(&events[1])),
            "e2",
        ),
        (
            Value::Ulong(0x0000_468C_0000_0004),
            format!("amqp.annotation.x-opt-offset >= {}", offset(&events[1])),
            "e1",
        ),
        (
            Value::Ulong(0x0000_0137_0000_000A),
            "amqp.annotation.x-opt-sequence-number > '2'".into(),
            "e3",
        ),
        (
            Value::Symbol(Symbol::from(SELECTOR)),
            "amqp.annotation.x-opt-sequence-number >= 2".into(),
            "e2",
        ),
        (
            Value::Symbol(Symbol::from(SELECTOR)),
            format!("amqp.annotation.x-opt-enqueued-time >= '{}'", enqueued - 60_000),
            "e0",
        ),
        (
            Value::Symbol(Symbol::from(SELECTOR)),
            "amqp.annotation.x-opt-offset > '-1'".into(),
            "e0",
        ),
    ];
    for (descriptor, expression, first) in cases {
        let mut receiver = client
            .receiver(address, Some((descriptor, expression.as_str())), None, &[])
            .await
            .unwrap();
        receiver.set_credit(1).await.unwrap();
        assert_eq!(recv(&mut receiver).await.body, first, "{expression}");
        receiver.close().await.unwrap();
    }
    // @latest: only what is sent after the attach.
    let mut latest = client
        .receiver(
            address,
            symbol_filter("amqp.annotation.x-opt-offset > @latest"),
            None,
            &[],
        )
        .await
        .unwrap();
    latest.set_credit(5).await.unwrap();
    assert_nothing(&mut latest, 300).await;
    sender.send(event("new", None)).await.unwrap();
    assert_eq!(recv(&mut latest).await.body, "new");
    client.close().await;
}

#[tokio::test]
async fn a_waiting_receiver_gets_events_as_they_arrive() {
    let emulator = start().await;
    let mut client = Client::connect(&emulator).await;
    let mut receiver = client
        .receiver("orders/ConsumerGroups/$default/Partitions/1", None, None, &[])
        .await
        .unwrap();
    receiver.set_credit(100).await.unwrap();
    let mut other = Client::connect(&emulator).await;
    let mut sender = other.sender("orders/Partitions/1").await;
    // Sent after the receiver attached and granted credit, on another connection.
    sender.send(event("late", None)).await.unwrap();
    assert_eq!(recv(&mut receiver).await.body, "late");
    other.close().await;
    client.close().await;
}

#[tokio::test]
async fn runtime_metrics_when_asked() {
    let emulator = start().await;
    let mut client = Client::connect(&emulator).await;
    let mut sender = client.sender("orders/Partitions/3").await;
    sender.send(event("m", None)).await.unwrap();
    let mut receiver = client
        .receiver(
            "orders/ConsumerGroups/$default/Partitions/3",
            None,
            None,
            &["com.microsoft:enable-receiver-runtime-metric"],
        )
        .await
        .unwrap();
    receiver.set_credit(1).await.unwrap();
    let r = recv(&mut receiver).await;
    let metrics = r.delivery_annotations.expect("delivery annotations with metrics");
    let get = |k: &str| metrics.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    assert_eq!(get("last_enqueued_sequence_number"), Some(Value::Long(0)));
    assert!(matches!(get("last_enqueued_offset"), Some(Value::String(_))));
    assert!(matches!(get("last_enqueued_time_utc"), Some(Value::Timestamp(_))));
    assert!(matches!(
        get("runtime_info_retrieval_time_utc"),
        Some(Value::Timestamp(_))
    ));
    // Without the capability: no delivery annotations.
    let mut plain = client
        .receiver("orders/ConsumerGroups/$default/Partitions/3", None, None, &[])
        .await
        .unwrap();
    plain.set_credit(1).await.unwrap();
    assert_eq!(recv(&mut plain).await.delivery_annotations, None);
    client.close().await;
}

#[tokio::test]
async fn unknown_entities_are_clear_errors_not_hangs() {
    let emulator = start().await;
    let mut client = Client::connect(&emulator).await;
    for address in [
        "nohub/ConsumerGroups/$default/Partitions/0",
        "orders/ConsumerGroups/nogroup/Partitions/0",
        "orders/ConsumerGroups/$default/Partitions/9",
        "orders/ConsumerGroups/$default/Partitions/abc",
    ] {
        let attempt =
            tokio::time::timeout(Duration::from_secs(5), client.receiver(address, None, None, &[])).await;
        let err = attempt.expect("no hang").expect_err("refused");
        let text = format!("{err:?}");
        eprintln!("{address}: {text}");
        assert!(
            text.contains("not-found") || text.contains("NotFound"),
            "{address}: {text}"
        );
    }
    let bad_filter = client
        .receiver(
            "orders/ConsumerGroups/$default/Partitions/0",
            symbol_filter("amqp.annotation.x-opt-offset < 1"),
            None,
            &[],
        )
        .await;
    assert!(bad_filter.is_err());
    for address in ["nohub", "orders/Partitions/7"] {
        let attempt = tokio::time::timeout(
            Duration::from_secs(5),
            fe2o3_amqp::Sender::attach(&mut client.session, format!("s-{address}"), address),
        )
        .await
        .expect("no hang");
        assert!(attempt.is_err(), "{address}");
    }
    // The connection still works after refusals.
    let mut sender = client.sender("orders/Partitions/0").await;
    sender.send(event("ok", None)).await.expect("still serving");
    client.close().await;
}

#[tokio::test]
async fn retention_bounds_every_partition() {
    let emulator = eventhubs_emulator::Emulator::builder()
        .hub("small", 1)
        .retention(eventhubs_emulator::Retention {
            max_events: 10,
            max_bytes: 1_000_000,
        })
        .start()
        .await
        .unwrap();
    let mut client = Client::connect(&emulator).await;
    let mut sender = client.sender("small").await;
    for i in 0..25 {
        sender.send(event(&format!("r{i}"), None)).await.unwrap();
    }
    let mut receiver = client
        .receiver("small/ConsumerGroups/$default/Partitions/0", None, None, &[])
        .await
        .unwrap();
    receiver.set_credit(1).await.unwrap();
    let first = recv(&mut receiver).await;
    assert_eq!((first.body.as_str(), seq(&first)), ("r15", 15));
    let hub = emulator.broker().hub("small").unwrap();
    assert_eq!(eventhubs_emulator::broker::lock(&hub.partitions[0]).usage().0, 10);
    client.close().await;
}
