//! The fault injection knobs do what they say, seen from a plain fe2o3-amqp client: connections
//! cut, links detached with `amqp:link:detach-forced`, connects refused or delayed, a restart
//! on the same port that keeps the events.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{Client, event, recv};
use fe2o3_amqp::link::{LinkStateError, RecvError};
use fe2o3_amqp::types::messaging::Body;
use fe2o3_amqp::types::primitives::Value;

const EARLIEST: &str = "amqp.annotation.x-opt-offset > '-1'";

fn selector(expression: &str) -> Option<(Value, &str)> {
    Some((
        Value::Symbol("apache.org:selector-filter:string".into()),
        expression,
    ))
}

async fn next_error(receiver: &mut fe2o3_amqp::Receiver) -> RecvError {
    tokio::time::timeout(Duration::from_secs(10), receiver.recv::<Body<Value>>())
        .await
        .expect("the fault reaches the receiver within 10 s")
        .expect_err("the receiver fails")
}

#[tokio::test]
async fn dropped_connections_are_cut_and_counted() {
    let emulator = common::start().await;
    let mut client = Client::connect(&emulator).await;
    let mut receiver = client
        .receiver(
            "orders/ConsumerGroups/$default/Partitions/0",
            selector(EARLIEST),
            None,
            &[],
        )
        .await
        .unwrap();
    emulator.faults().drop_connections();
    let error = next_error(&mut receiver).await;
    assert!(
        !matches!(
            error,
            RecvError::LinkStateError(LinkStateError::RemoteDetachedWithError(_))
        ),
        "a cut, not a detach: {error:?}"
    );
    assert_eq!(emulator.faults().dropped(), 1);
    // New connections work as before.
    let mut again = Client::connect(&emulator).await;
    let mut sender = again.sender("orders/Partitions/0").await;
    sender.send(event("after the cut", None)).await.unwrap();
}

#[tokio::test]
async fn detached_receivers_see_detach_forced_and_others_keep_going() {
    let emulator = common::start().await;
    let mut client = Client::connect(&emulator).await;
    let mut zero = client
        .receiver(
            "orders/ConsumerGroups/$default/Partitions/0",
            selector(EARLIEST),
            None,
            &[],
        )
        .await
        .unwrap();
    let mut one = client
        .receiver(
            "orders/ConsumerGroups/$default/Partitions/1",
            selector(EARLIEST),
            None,
            &[],
        )
        .await
        .unwrap();
    emulator.faults().detach_receivers("Orders", "0");
    match next_error(&mut zero).await {
        // The detach closes the link: fe2o3 reports it as closed (or detached) with the error.
        RecvError::LinkStateError(
            LinkStateError::RemoteDetachedWithError(e) | LinkStateError::RemoteClosedWithError(e),
        ) => {
            assert_eq!(
                e.condition,
                fe2o3_amqp::types::definitions::LinkError::DetachForced.into()
            );
        }
        other => panic!("expected detach-forced, got {other:?}"),
    }
    assert_eq!(emulator.faults().detached(), 1);
    // The connection, the other receiver and new senders still work.
    let mut sender = client.sender("orders/Partitions/1").await;
    sender.send(event("still here", None)).await.unwrap();
    assert_eq!(recv(&mut one).await.body, "still here");
    // Detaching the hub's links takes the sender too.
    emulator.faults().detach_links("orders");
    let deadline = Instant::now() + Duration::from_secs(10);
    while emulator.faults().detached() < 3 {
        assert!(Instant::now() < deadline, "sender and receiver detached");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(sender.send(event("gone", None)).await.is_err());
}

#[tokio::test]
async fn refused_and_delayed_connects() {
    let emulator = common::start().await;
    emulator.faults().refuse_connections_for(Duration::from_secs(30));
    let refused = Client::connect_with(&emulator, fe2o3_amqp::sasl_profile::SaslProfile::Anonymous).await;
    assert!(refused.is_err(), "refused while the fault lasts");
    assert!(emulator.faults().refused() >= 1);
    emulator.faults().refuse_connections_for(Duration::ZERO);

    emulator.faults().delay_connections(Duration::from_secs(30));
    let delayed = tokio::time::timeout(
        Duration::from_millis(300),
        Client::connect_with(&emulator, fe2o3_amqp::sasl_profile::SaslProfile::Anonymous),
    )
    .await;
    assert!(delayed.is_err(), "a delayed connect has not opened after 300 ms");
    emulator.faults().delay_connections(Duration::ZERO);
    Client::connect(&emulator).await.close().await;
}

#[tokio::test]
async fn restart_on_the_same_port_keeps_the_events() {
    let mut emulator = common::start().await;
    let port = emulator.local_addr().port();
    let mut client = Client::connect(&emulator).await;
    let mut sender = client.sender("orders/Partitions/2").await;
    sender.send(event("before the restart", None)).await.unwrap();
    emulator.restart(Duration::from_millis(200)).await.unwrap();
    assert_eq!(emulator.local_addr().port(), port);
    assert!(
        sender.send(event("on the old connection", None)).await.is_err(),
        "the old connection is gone"
    );
    let mut client = Client::connect(&emulator).await;
    let mut receiver = client
        .receiver(
            "orders/ConsumerGroups/$default/Partitions/2",
            selector(EARLIEST),
            None,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(recv(&mut receiver).await.body, "before the restart");
}

/// The reply latency knob holds every answer back by at least the latency, and only while
/// it is set.
#[tokio::test]
async fn reply_latency_holds_answers_back() {
    let emulator = common::start().await;
    let mut client = Client::connect(&emulator).await;
    let read = [
        ("operation", "READ"),
        ("name", "orders"),
        ("type", "com.microsoft:eventhub"),
    ];
    emulator.faults().set_reply_latency(Duration::from_millis(150));
    assert_eq!(emulator.faults().reply_latency(), Duration::from_millis(150));
    let started = Instant::now();
    let (status, _, _) = client.request("$management", &read, Value::Null).await;
    assert_eq!(status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
    emulator.faults().set_reply_latency(Duration::ZERO);
    let (status, _, _) = client.request("$management", &read, Value::Null).await;
    assert_eq!(status, 200);
    client.close().await;
}
