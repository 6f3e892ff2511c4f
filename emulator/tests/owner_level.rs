//! Owner levels (`com.microsoft:epoch`): equal or higher steals, lower is refused; without owner
//! levels at most five receivers share a partition of a consumer group.

// Helpers outside #[test] functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Client, event, recv, start};
use fe2o3_amqp::types::messaging::Body;
use fe2o3_amqp::types::primitives::Value;

const ADDRESS: &str = "orders/ConsumerGroups/$default/Partitions/0";

#[tokio::test]
async fn a_higher_owner_level_steals_and_the_old_link_gets_link_stolen() {
    let emulator = start().await;
    let mut first = Client::connect(&emulator).await;
    let mut old = first
        .receiver(ADDRESS, None, Some(1), &[])
        .await
        .expect("first owner");
    old.set_credit(10).await.unwrap();
    let mut second = Client::connect(&emulator).await;
    let mut new = second
        .receiver(ADDRESS, None, Some(2), &[])
        .await
        .expect("higher level attaches");
    new.set_credit(10).await.unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(5), old.recv::<Body<Value>>())
        .await
        .expect("no hang");
    let err = outcome.expect_err("the old receiver is detached");
    assert!(
        format!("{err:?}").contains("stolen") || format!("{err:?}").contains("Stolen"),
        "{err:?}"
    );
    // The new owner keeps working.
    let mut sender = second.sender("orders/Partitions/0").await;
    sender.send(event("after", None)).await.unwrap();
    assert_eq!(recv(&mut new).await.body, "after");
    // An equal level steals too.
    let mut third = Client::connect(&emulator).await;
    let _equal = third
        .receiver(ADDRESS, None, Some(2), &[])
        .await
        .expect("equal level attaches");
    let err = tokio::time::timeout(Duration::from_secs(5), new.recv::<Body<Value>>())
        .await
        .expect("no hang");
    assert!(err.is_err());
    first.close().await;
    second.close().await;
    third.close().await;
}

#[tokio::test]
async fn lower_or_missing_levels_are_refused_while_a_level_holds() {
    let emulator = start().await;
    let mut client = Client::connect(&emulator).await;
    let _owner = client.receiver(ADDRESS, None, Some(5), &[]).await.expect("owner");
    let lower = client.receiver(ADDRESS, None, Some(4), &[]).await;
    let text = format!("{:?}", lower.expect_err("lower refused"));
    assert!(text.contains("stolen") || text.contains("Stolen"), "{text}");
    assert!(client.receiver(ADDRESS, None, None, &[]).await.is_err());
    // Other consumer groups and partitions are independent.
    client
        .receiver("orders/ConsumerGroups/cg1/Partitions/0", None, None, &[])
        .await
        .expect("other group");
    client
        .receiver("orders/ConsumerGroups/$default/Partitions/1", None, None, &[])
        .await
        .expect("other partition");
    client.close().await;
}

#[tokio::test]
async fn a_closed_owner_frees_the_partition() {
    let emulator = start().await;
    let mut client = Client::connect(&emulator).await;
    let owner = client.receiver(ADDRESS, None, Some(5), &[]).await.expect("owner");
    owner.close().await.unwrap();
    client
        .receiver(ADDRESS, None, None, &[])
        .await
        .expect("free again after close");
    client.close().await;
    let mut again = Client::connect(&emulator).await;
    let _owner = again.receiver(ADDRESS, None, Some(1), &[]).await.expect("owner");
    drop(again);
    // Polled, bounded: the server notices the vanished connection and releases its links.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut later = Client::connect(&emulator).await;
        let attached = later.receiver(ADDRESS, None, None, &[]).await;
        later.close().await;
        if attached.is_ok() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a vanished connection never released its links"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_sixth_receiver_without_owner_level_is_refused_with_resource_limit_exceeded() {
    let emulator = start().await;
    let mut clients = Vec::new();
    let mut receivers = Vec::new();
    for _ in 0..5 {
        let mut client = Client::connect(&emulator).await;
        receivers.push(
            client
                .receiver(ADDRESS, None, None, &[])
                .await
                .expect("one of five"),
        );
        clients.push(client);
    }
    let mut sixth = Client::connect(&emulator).await;
    let refused = sixth.receiver(ADDRESS, None, None, &[]).await;
    let text = format!("{:?}", refused.expect_err("the sixth is refused"));
    assert!(
        text.contains("resource-limit-exceeded") || text.contains("ResourceLimitExceeded"),
        "{text}"
    );
    assert!(
        text.contains(
            "Exceeded the maximum number of allowed receivers per partition in a consumer group which is 5"
        ),
        "{text}"
    );
    // The other consumer group has its own five.
    sixth
        .receiver("orders/ConsumerGroups/cg1/Partitions/0", None, None, &[])
        .await
        .expect("other group");
    // One of the five leaves: a new one may attach.
    receivers.pop().unwrap().close().await.unwrap();
    let mut seventh = Client::connect(&emulator).await;
    seventh
        .receiver(ADDRESS, None, None, &[])
        .await
        .expect("a free place after a close");
    for client in clients {
        client.close().await;
    }
    sixth.close().await;
    seventh.close().await;
}
