//! The adapter against the official `CheckpointStore` trait's documented behaviour (and its
//! official Azure Blob store's, whose semantics our contract shares), over memory, SQLite and
//! PostgreSQL: claims create (C3), renew (C4) with a fresh etag (C5), lose (left out, not an
//! error: C6) and relinquish (C8); listings return what was claimed, scope by scope (C2), with
//! the caller's names although our stores lower-case them (C1); checkpoints round-trip and
//! upsert (C9) apart from ownership (C10); of concurrent claims with one etag exactly one wins
//! (C7); bad input (C11) and store outages map to the right `azure_core` error kinds, and
//! outages are retried.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use azure_core::error::ErrorKind as AzureKind;
use azure_messaging_eventhubs::CheckpointStore as SdkStore;
use azure_messaging_eventhubs::models::{Checkpoint, Ownership};
use eventhubs_store_azure_sdk::{RetryOptions, SdkCheckpointStore};
use eventhubs_store_core::CheckpointStore;

// Mixed case, as applications write them: the official processor compares these strings.
const NS: &str = "My-Namespace.ServiceBus.Windows.net";
const HUB: &str = "Orders";
const GROUP: &str = "$Default";

fn claim(partition: &str, owner: Option<&str>, etag: Option<azure_core::http::Etag>) -> Ownership {
    Ownership {
        fully_qualified_namespace: NS.into(),
        event_hub_name: HUB.into(),
        consumer_group: GROUP.into(),
        partition_id: partition.into(),
        owner_id: owner.map(str::to_owned),
        etag,
        last_modified_time: None,
    }
}

fn checkpoint(partition: &str, group: &str, offset: Option<&str>, sequence: Option<i64>) -> Checkpoint {
    Checkpoint {
        fully_qualified_namespace: NS.into(),
        event_hub_name: HUB.into(),
        consumer_group: group.into(),
        partition_id: partition.into(),
        offset: offset.map(str::to_owned),
        sequence_number: sequence,
    }
}

async fn run_all(store: Arc<dyn CheckpointStore>, name: &str) {
    let adapter = SdkCheckpointStore::new(store);
    c3_c4_c5_c6_c8_claims_create_renew_lose_and_relinquish(&adapter, name).await;
    c9_c10_checkpoints_round_trip_and_upsert(&adapter, name).await;
    c7_concurrent_claims_with_one_etag_have_one_winner(&adapter, name).await;
    c11_bad_input_is_a_data_conversion_error(&adapter, name).await;
}

async fn c3_c4_c5_c6_c8_claims_create_renew_lose_and_relinquish(adapter: &SdkCheckpointStore, name: &str) {
    // Create: no etag, no record.
    let won = adapter
        .claim_ownership(&[
            claim("0", Some("Owner-A"), None),
            claim("1", Some("Owner-A"), None),
        ])
        .await
        .unwrap();
    assert_eq!(won.len(), 2, "{name}");
    for o in &won {
        assert_eq!(
            (
                o.fully_qualified_namespace.as_str(),
                o.event_hub_name.as_str(),
                o.consumer_group.as_str()
            ),
            (NS, HUB, GROUP),
            "{name}: the caller's names come back"
        );
        assert_eq!(o.owner_id.as_deref(), Some("Owner-A"), "{name}");
        assert!(o.etag.is_some() && o.last_modified_time.is_some(), "{name}");
    }
    let etag0 = won.iter().find(|o| o.partition_id == "0").unwrap().etag.clone();

    // Listed with the same etags and names.
    let listed = adapter.list_ownerships(NS, HUB, GROUP).await.unwrap();
    assert_eq!(listed.len(), 2, "{name}");
    let listed0 = listed.iter().find(|o| o.partition_id == "0").unwrap();
    assert_eq!(listed0.etag, etag0, "{name}");
    assert_eq!(listed0.consumer_group, GROUP, "{name}");

    // A create over an existing record, and a stale etag, lose: left out, not an error.
    let lost = adapter
        .claim_ownership(&[claim("1", Some("Owner-B"), None)])
        .await
        .unwrap();
    assert!(lost.is_empty(), "{name}: {lost:?}");
    let renewed = adapter
        .claim_ownership(&[claim("0", Some("Owner-B"), etag0.clone())])
        .await
        .unwrap();
    assert_eq!(renewed.len(), 1, "{name}");
    assert_ne!(renewed[0].etag, etag0, "{name}: a won claim has a fresh etag");
    let stale = adapter
        .claim_ownership(&[claim("0", Some("Owner-A"), etag0.clone())])
        .await
        .unwrap();
    assert!(stale.is_empty(), "{name}: {stale:?}");
    // A batch: each claim on its own.
    let mixed = adapter
        .claim_ownership(&[
            claim("0", Some("Owner-A"), etag0),
            claim("2", Some("Owner-A"), None),
        ])
        .await
        .unwrap();
    assert_eq!(
        mixed.iter().map(|o| o.partition_id.as_str()).collect::<Vec<_>>(),
        ["2"],
        "{name}"
    );

    // Relinquish: owner None with the current etag; listed back as None.
    let current = renewed[0].etag.clone();
    let released = adapter
        .claim_ownership(&[claim("0", None, current)])
        .await
        .unwrap();
    assert_eq!(released.len(), 1, "{name}");
    assert_eq!(released[0].owner_id, None, "{name}");
    let listed = adapter.list_ownerships(NS, HUB, GROUP).await.unwrap();
    let listed0 = listed.iter().find(|o| o.partition_id == "0").unwrap();
    assert_eq!(listed0.owner_id, None, "{name}");
    assert_eq!(listed.len(), 3, "{name}");
    // Another consumer group sees none of it (C2).
    assert!(
        adapter
            .list_ownerships(NS, HUB, "other")
            .await
            .unwrap()
            .is_empty(),
        "{name}"
    );
}

async fn c9_c10_checkpoints_round_trip_and_upsert(adapter: &SdkCheckpointStore, name: &str) {
    adapter
        .update_checkpoint(checkpoint("0", GROUP, Some("4294967296"), Some(i64::MAX)))
        .await
        .unwrap();
    adapter
        .update_checkpoint(checkpoint("1", GROUP, None, Some(7)))
        .await
        .unwrap();
    adapter
        .update_checkpoint(checkpoint("1", "Other-Group", Some("12"), Some(3)))
        .await
        .unwrap();
    let mut listed = adapter.list_checkpoints(NS, HUB, GROUP).await.unwrap();
    listed.sort_by(|a, b| a.partition_id.cmp(&b.partition_id));
    let values: Vec<_> = listed
        .iter()
        .map(|c| (c.partition_id.as_str(), c.offset.as_deref(), c.sequence_number))
        .collect();
    assert_eq!(
        values,
        [("0", Some("4294967296"), Some(i64::MAX)), ("1", None, Some(7))],
        "{name}"
    );
    assert!(
        listed
            .iter()
            .all(|c| c.consumer_group == GROUP && c.event_hub_name == HUB),
        "{name}"
    );
    // An unconditional upsert (C9): a lower value replaces a higher one.
    adapter
        .update_checkpoint(checkpoint("0", GROUP, Some("5"), Some(5)))
        .await
        .unwrap();
    let listed = adapter.list_checkpoints(NS, HUB, GROUP).await.unwrap();
    let c0 = listed.iter().find(|c| c.partition_id == "0").unwrap();
    assert_eq!(
        (c0.offset.as_deref(), c0.sequence_number),
        (Some("5"), Some(5)),
        "{name}"
    );
    // Checkpoints and ownership are separate (C10).
    assert_eq!(
        adapter.list_ownerships(NS, HUB, GROUP).await.unwrap().len(),
        3,
        "{name}"
    );
}

async fn c7_concurrent_claims_with_one_etag_have_one_winner(adapter: &SdkCheckpointStore, name: &str) {
    let first = adapter
        .claim_ownership(&[claim("9", Some("seed"), None)])
        .await
        .unwrap();
    let etag = first[0].etag.clone();
    let racers = (0..8).map(|i| {
        let adapter = adapter.clone();
        let etag = etag.clone();
        tokio::spawn(async move {
            adapter
                .claim_ownership(&[claim("9", Some(&format!("racer-{i}")), etag)])
                .await
                .unwrap()
        })
    });
    let winners: Vec<_> = futures::future::join_all(racers)
        .await
        .into_iter()
        .flat_map(|r| r.unwrap())
        .collect();
    assert_eq!(winners.len(), 1, "{name}: {winners:?}");
    let listed = adapter.list_ownerships(NS, HUB, GROUP).await.unwrap();
    let stored = listed.iter().find(|o| o.partition_id == "9").unwrap();
    assert_eq!(stored.owner_id, winners[0].owner_id, "{name}");
    assert_eq!(stored.etag, winners[0].etag, "{name}");
}

async fn c11_bad_input_is_a_data_conversion_error(adapter: &SdkCheckpointStore, name: &str) {
    let e = adapter
        .claim_ownership(&[claim("", Some("a"), None)])
        .await
        .unwrap_err();
    assert!(matches!(e.kind(), AzureKind::DataConversion), "{name}: {e:?}");
    let e = adapter.list_ownerships("", HUB, GROUP).await.unwrap_err();
    assert!(matches!(e.kind(), AzureKind::DataConversion), "{name}: {e:?}");
    let e = adapter
        .update_checkpoint(checkpoint("0", GROUP, None, None))
        .await
        .unwrap_err();
    assert!(matches!(e.kind(), AzureKind::DataConversion), "{name}: {e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_trait_s_behaviour_over_memory() {
    run_all(common::memory(), "memory").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_trait_s_behaviour_over_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    run_all(common::sqlite(&dir).await, "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_trait_s_behaviour_over_postgres() {
    let Some(store) = common::postgres().await else {
        return;
    };
    run_all(store, "postgres").await;
}

/// A store that is unreachable for its first `outage` calls.
#[derive(Debug)]
struct Flaky {
    inner: Arc<dyn CheckpointStore>,
    outage: usize,
    calls: AtomicUsize,
}

impl Flaky {
    fn down(&self) -> eventhubs_store_core::Result<()> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.outage {
            return Err(eventhubs_store_core::Error::unavailable(
                "connection refused (test outage)",
            ));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl CheckpointStore for Flaky {
    fn backend_name(&self) -> &'static str {
        "flaky"
    }
    fn capabilities(&self) -> eventhubs_store_core::Capabilities {
        self.inner.capabilities()
    }
    async fn list_ownership(
        &self,
        scope: &eventhubs_store_core::PartitionScope,
    ) -> eventhubs_store_core::Result<Vec<eventhubs_store_core::Ownership>> {
        self.down()?;
        self.inner.list_ownership(scope).await
    }
    async fn claim_ownership(
        &self,
        claims: &[eventhubs_store_core::Ownership],
        options: &eventhubs_store_core::ClaimOptions,
    ) -> eventhubs_store_core::Result<Vec<eventhubs_store_core::Ownership>> {
        self.down()?;
        self.inner.claim_ownership(claims, options).await
    }
    async fn list_checkpoints(
        &self,
        scope: &eventhubs_store_core::PartitionScope,
    ) -> eventhubs_store_core::Result<Vec<eventhubs_store_core::Checkpoint>> {
        self.down()?;
        self.inner.list_checkpoints(scope).await
    }
    async fn set_checkpoint(
        &self,
        checkpoint: &eventhubs_store_core::Checkpoint,
        options: &eventhubs_store_core::SetCheckpointOptions,
    ) -> eventhubs_store_core::Result<()> {
        self.down()?;
        self.inner.set_checkpoint(checkpoint, options).await
    }
}

/// The official processor stops on the first store error; the adapter rides out a short
/// outage itself, and a longer one surfaces as a retryable-looking `Io` error.
#[tokio::test]
async fn a_short_outage_is_ridden_out_and_a_long_one_is_an_io_error() {
    let quick = RetryOptions {
        max_retries: 3,
        initial_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    };
    let flaky = Arc::new(Flaky {
        inner: common::memory(),
        outage: 3,
        calls: AtomicUsize::new(0),
    });
    let adapter = SdkCheckpointStore::new(flaky.clone()).with_retry(quick.clone());
    let won = adapter
        .claim_ownership(&[claim("0", Some("a"), None)])
        .await
        .unwrap();
    assert_eq!(won.len(), 1);
    assert_eq!(
        flaky.calls.load(Ordering::SeqCst),
        4,
        "three refusals, then the claim"
    );

    let down = Arc::new(Flaky {
        inner: common::memory(),
        outage: usize::MAX,
        calls: AtomicUsize::new(0),
    });
    let adapter = SdkCheckpointStore::new(down.clone()).with_retry(quick);
    let e = adapter.list_checkpoints(NS, HUB, GROUP).await.unwrap_err();
    assert!(matches!(e.kind(), AzureKind::Io), "{e:?}");
    assert_eq!(down.calls.load(Ordering::SeqCst), 4);
    let adapter = SdkCheckpointStore::new(down.clone()).with_retry(RetryOptions::none());
    assert!(adapter.list_ownerships(NS, HUB, GROUP).await.is_err());
    assert_eq!(down.calls.load(Ordering::SeqCst), 5);
}
