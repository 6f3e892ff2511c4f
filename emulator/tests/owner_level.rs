//! Owner levels (`com.microsoft:epoch`): equal or higher steals, lower is refused.

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
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut later = Client::connect(&emulator).await;
    later
        .receiver(ADDRESS, None, None, &[])
        .await
        .expect("a vanished connection releases its links");
    later.close().await;
}
