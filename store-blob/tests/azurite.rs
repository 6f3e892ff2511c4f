//! The blob store against a live Azurite: Shared Key signing, the layout, claims, checkpoints,
//! paging, errors. The shared contract is checked by tests/conformance.rs; these cases cover
//! what is specific to Blob Storage.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail by panicking

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use azure_core::http::RetryOptions;
use common::{azurite_or_skip, connection_string, fresh_store, unique_container};
use eventhubs_store_blob::{BlobStore, BlobStoreBuilder};
use eventhubs_store_core::{
    Checkpoint, CheckpointStore, ClaimOptions, ETag, ErrorKind, Ownership, PartitionScope,
    SetCheckpointOptions,
};

fn scope() -> PartitionScope {
    PartitionScope::new("MyNs.ServiceBus.Windows.Net", "Orders", "$Default").unwrap()
}

fn claim(partition: &str, owner: &str, etag: Option<&str>) -> Ownership {
    Ownership::new(scope(), partition, owner).with_etag(etag.map(ETag::new))
}

async fn claim_all(store: &BlobStore, claims: &[Ownership]) -> Vec<Ownership> {
    store
        .claim_ownership(claims, &ClaimOptions::default())
        .await
        .unwrap()
}

macro_rules! azurite {
    ($name:literal) => {
        match azurite_or_skip($name) {
            Some(url) => url,
            None => return,
        }
    };
}

#[tokio::test]
async fn shared_key_signing_is_accepted_and_a_wrong_key_is_unauthorized() {
    let url = azurite!("shared_key_signing_is_accepted_and_a_wrong_key_is_unauthorized");
    let store = fresh_store(&url, |b| b).await;
    assert_eq!(claim_all(&store, &[claim("0", "a", None)]).await.len(), 1);
    assert_eq!(store.list_ownership(&scope()).await.unwrap().len(), 1);

    let wrong_key = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk=";
    let cs = format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={wrong_key};BlobEndpoint={url};"
    );
    let bad = BlobStore::from_connection_string(&cs, store.container_name()).unwrap();
    let e = bad.list_ownership(&scope()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    assert!(!e.to_string().contains(wrong_key), "{e}");
    assert!(!format!("{e:?}").contains(wrong_key), "{e:?}");
    assert!(!format!("{bad:?}").contains(wrong_key), "{bad:?}");
    store.delete_container().await.unwrap();
}

#[tokio::test]
async fn missing_container_is_not_found_naming_it_until_created() {
    let url = azurite!("missing_container_is_not_found_naming_it_until_created");
    let container = unique_container("missing");
    let store = BlobStore::from_connection_string(&connection_string(&url), &container).unwrap();
    for e in [
        store.list_ownership(&scope()).await.unwrap_err(),
        store
            .claim_ownership(&[claim("0", "a", None)], &ClaimOptions::default())
            .await
            .unwrap_err(),
        store
            .set_checkpoint(
                &Checkpoint::new(scope(), "0", Some("1".into()), None),
                &SetCheckpointOptions::new(),
            )
            .await
            .unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        assert!(e.to_string().contains(&container), "{e}");
        assert!(e.to_string().contains("create_container_if_missing"), "{e}");
    }
    assert!(store.create_container_if_missing().await.unwrap());
    assert!(!store.create_container_if_missing().await.unwrap());
    assert!(store.list_ownership(&scope()).await.unwrap().is_empty());
    assert!(store.delete_container().await.unwrap());
    assert!(!store.delete_container().await.unwrap());
}

#[tokio::test]
async fn c3_c4_c5_claims_use_service_etags_in_either_form() {
    let url = azurite!("c3_c4_c5_claims_use_service_etags_in_either_form");
    let store = fresh_store(&url, |b| b).await;
    let won = claim_all(&store, &[claim("0", "a", None)]).await;
    let first = won[0].clone();
    let etag1 = first.etag.clone().unwrap();
    assert!(
        !etag1.as_str().starts_with('"'),
        "etags are kept unquoted: {etag1:?}"
    );
    assert!(first.last_modified_time.is_some());

    // C3: a second create loses (Put Blob If-None-Match: *).
    assert!(claim_all(&store, &[claim("0", "b", None)]).await.is_empty());

    // The listing's etag is the claim's etag, and works for a renewal.
    let listed = store.list_ownership(&scope()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].etag.as_ref(), Some(&etag1));
    assert_eq!(listed[0].owner_id, "a");
    assert_eq!(listed[0].partition_id, "0");
    assert_eq!(listed[0].scope, scope());
    let renewed = claim_all(&store, &[listed[0].clone()]).await;
    let etag2 = renewed[0].etag.clone().unwrap();
    assert_ne!(etag2, etag1, "C5: a fresh etag");
    assert!(renewed[0].last_modified_time >= first.last_modified_time);

    // C4: the stale etag loses; the quoted header form of the current one wins.
    assert!(
        claim_all(&store, &[claim("0", "b", Some(etag1.as_str()))])
            .await
            .is_empty()
    );
    let quoted = format!("\"{}\"", etag2.as_str());
    let won = claim_all(&store, &[claim("0", "b", Some(&quoted))]).await;
    assert_eq!(won[0].owner_id, "b");

    // An etag for a partition that has no blob loses (Azurite answers 412, Azure 404).
    assert!(
        claim_all(&store, &[claim("7", "b", Some(etag2.as_str()))])
            .await
            .is_empty()
    );
    // A bogus etag loses, and one that cannot travel in a header loses without a request.
    assert!(
        claim_all(&store, &[claim("0", "c", Some("0xBOGUS"))])
            .await
            .is_empty()
    );
    assert!(
        claim_all(&store, &[claim("0", "c", Some("ünï"))])
            .await
            .is_empty()
    );
    store.delete_container().await.unwrap();
}

#[tokio::test]
async fn c8_relinquish_writes_an_empty_owner() {
    let url = azurite!("c8_relinquish_writes_an_empty_owner");
    let store = fresh_store(&url, |b| b).await;
    let won = claim_all(&store, &[claim("0", "a", None)]).await;
    let released = claim_all(
        &store,
        &[Ownership {
            owner_id: String::new(),
            ..won[0].clone()
        }],
    )
    .await;
    assert_eq!(released.len(), 1);
    let listed = store.list_ownership(&scope()).await.unwrap();
    assert_eq!(listed[0].owner_id, "");
    assert_eq!(listed[0].etag, released[0].etag);
    store.delete_container().await.unwrap();
}

#[tokio::test]
async fn c6_a_32_partition_batch_is_claimed_concurrently_and_each_wins_or_loses_alone() {
    let url = azurite!("c6_a_32_partition_batch_is_claimed_concurrently_and_each_wins_or_loses_alone");
    let store = fresh_store(&url, |b| b).await;
    // Someone else holds the even partitions.
    let evens: Vec<Ownership> = (0..32)
        .step_by(2)
        .map(|p| claim(&p.to_string(), "other", None))
        .collect();
    assert_eq!(claim_all(&store, &evens).await.len(), 16);
    let all: Vec<Ownership> = (0..32).map(|p| claim(&p.to_string(), "me", None)).collect();
    let won = claim_all(&store, &all).await;
    let won_ids: Vec<String> = won.iter().map(|o| o.partition_id.clone()).collect();
    let odd_ids: Vec<String> = (1..32).step_by(2).map(|p: i32| p.to_string()).collect();
    assert_eq!(
        won_ids, odd_ids,
        "results keep the batch order and leave out the losers"
    );
    let owners: HashSet<(String, String)> = store
        .list_ownership(&scope())
        .await
        .unwrap()
        .into_iter()
        .map(|o| (o.partition_id, o.owner_id))
        .collect();
    assert_eq!(owners.len(), 32);
    assert!(owners.contains(&("0".into(), "other".into())));
    assert!(owners.contains(&("1".into(), "me".into())));
    store.delete_container().await.unwrap();
}

#[tokio::test]
async fn c7_concurrent_renewals_from_separate_handles_have_one_winner() {
    let url = azurite!("c7_concurrent_renewals_from_separate_handles_have_one_winner");
    let store = fresh_store(&url, |b| b).await;
    let cs = connection_string(&url);
    let mut expected = None;
    for round in 0..5 {
        let handles: Vec<Arc<BlobStore>> = (0..12)
            .map(|_| Arc::new(BlobStore::from_connection_string(&cs, store.container_name()).unwrap()))
            .collect();
        let tasks: Vec<_> = handles
            .into_iter()
            .enumerate()
            .map(|(i, h)| {
                let c = claim("0", &format!("r{round}-{i}"), expected.as_deref());
                tokio::spawn(async move { h.claim_ownership(&[c], &ClaimOptions::default()).await.unwrap() })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            winners.extend(t.await.unwrap());
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one winner: {winners:?}");
        let stored = store.list_ownership(&scope()).await.unwrap();
        assert_eq!(stored[0].owner_id, winners[0].owner_id);
        assert_eq!(stored[0].etag, winners[0].etag);
        expected = winners[0].etag.as_ref().map(|e| e.as_str().to_string());
    }
    store.delete_container().await.unwrap();
}

#[tokio::test]
async fn c9_checkpoints_round_trip_opaque_offsets_and_overwrite() {
    let url = azurite!("c9_checkpoints_round_trip_opaque_offsets_and_overwrite");
    let store = fresh_store(&url, |b| b).await;
    let opts = SetCheckpointOptions::new();
    let cps = [
        Checkpoint::new(scope(), "0", Some("12884901888".into()), Some(42)),
        Checkpoint::new(scope(), "1", Some("g1:ab/cd=+?&x y".into()), None),
        Checkpoint::new(scope(), "2", None, Some(i64::MIN)),
        Checkpoint::new(scope(), "3", Some("-1".into()), Some(i64::MAX)),
    ];
    for cp in &cps {
        store.set_checkpoint(cp, &opts).await.unwrap();
    }
    let mut listed = store.list_checkpoints(&scope()).await.unwrap();
    listed.sort_by(|a, b| a.partition_id.cmp(&b.partition_id));
    assert_eq!(listed, cps.to_vec());
    // Overwrite drops a value that is no longer given.
    let newer = Checkpoint::new(scope(), "0", None, Some(43));
    store.set_checkpoint(&newer, &opts).await.unwrap();
    let listed = store.list_checkpoints(&scope()).await.unwrap();
    assert!(listed.contains(&newer), "{listed:?}");
    // C10: no ownership appeared.
    assert!(store.list_ownership(&scope()).await.unwrap().is_empty());
    store.delete_container().await.unwrap();
}

#[tokio::test]
async fn c13_fenced_checkpoints_are_unsupported_and_write_nothing() {
    let url = azurite!("c13_fenced_checkpoints_are_unsupported_and_write_nothing");
    let store = fresh_store(&url, |b| b).await;
    assert!(!store.capabilities().fenced_checkpoints);
    let e = store
        .set_checkpoint(
            &Checkpoint::new(scope(), "0", Some("1".into()), None),
            &SetCheckpointOptions::fenced("me"),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(e.to_string().contains("C13"), "{e}");
    assert!(store.list_checkpoints(&scope()).await.unwrap().is_empty());
    store.delete_container().await.unwrap();
}

#[tokio::test]
async fn c11_values_metadata_cannot_carry_are_refused_before_any_write() {
    let url = azurite!("c11_values_metadata_cannot_carry_are_refused_before_any_write");
    let store = fresh_store(&url, |b| b).await;
    // One bad claim in a batch: nothing of the batch is written.
    let e = store
        .claim_ownership(
            &[claim("0", "fine", None), claim("1", "ünïcode", None)],
            &ClaimOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("claims[1].owner_id"), "{e}");
    let e = store
        .claim_ownership(&[claim("p.", "a", None)], &ClaimOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    for offset in [" padded", "日本"] {
        let e = store
            .set_checkpoint(
                &Checkpoint::new(scope(), "0", Some(offset.into()), None),
                &SetCheckpointOptions::new(),
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("offset"), "{e}");
    }
    assert!(store.list_ownership(&scope()).await.unwrap().is_empty());
    assert!(store.list_checkpoints(&scope()).await.unwrap().is_empty());
    assert!(store.list_scopes().await.unwrap().is_empty());
    store.delete_container().await.unwrap();
}

#[tokio::test]
async fn c1_c11_names_needing_url_encoding_round_trip() {
    let url = azurite!("c1_c11_names_needing_url_encoding_round_trip");
    let store = fresh_store(&url, |b| b).await;
    let odd = PartitionScope::new("Ns?x=1&y#z", "Hub %2F 100%", "Grüße 日本").unwrap();
    let ids = ["P?Q", "a#b", "50%", "sp ace", "Ünï", "+plus", "..x"];
    let claims: Vec<Ownership> = ids
        .iter()
        .map(|p| Ownership::new(odd.clone(), *p, "me"))
        .collect();
    let won = store
        .claim_ownership(&claims, &ClaimOptions::default())
        .await
        .unwrap();
    assert_eq!(won.len(), ids.len());
    let mut listed: Vec<String> = store
        .list_ownership(&odd)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.partition_id)
        .collect();
    listed.sort();
    let mut expected: Vec<String> = ids.iter().map(|p| p.to_lowercase()).collect();
    expected.sort();
    assert_eq!(listed, expected);
    // Renewals address the same blobs.
    let renewed = store
        .claim_ownership(&won, &ClaimOptions::default())
        .await
        .unwrap();
    assert_eq!(renewed.len(), ids.len());
    assert_eq!(store.list_scopes().await.unwrap(), vec![odd]);
    store.delete_container().await.unwrap();
}

#[tokio::test]
async fn c2_listing_pages_through_every_blob_of_exactly_one_scope() {
    let url = azurite!("c2_listing_pages_through_every_blob_of_exactly_one_scope");
    let store = fresh_store(&url, |b| b.list_page_size(7)).await;
    let a = PartitionScope::new("ns", "a", "cg").unwrap();
    let ab = PartitionScope::new("ns", "ab", "cg").unwrap();
    let claims: Vec<Ownership> = (0..50)
        .map(|p| Ownership::new(a.clone(), p.to_string(), "me"))
        .collect();
    assert_eq!(
        store
            .claim_ownership(&claims, &ClaimOptions::default())
            .await
            .unwrap()
            .len(),
        50
    );
    let other: Vec<Ownership> = (0..9)
        .map(|p| Ownership::new(ab.clone(), p.to_string(), "x"))
        .collect();
    store
        .claim_ownership(&other, &ClaimOptions::default())
        .await
        .unwrap();
    for p in 0..23 {
        store
            .set_checkpoint(
                &Checkpoint::new(a.clone(), p.to_string(), None, Some(p)),
                &SetCheckpointOptions::new(),
            )
            .await
            .unwrap();
    }
    assert_eq!(store.list_ownership(&a).await.unwrap().len(), 50);
    assert_eq!(store.list_ownership(&ab).await.unwrap().len(), 9);
    assert_eq!(store.list_checkpoints(&a).await.unwrap().len(), 23);
    assert!(store.list_checkpoints(&ab).await.unwrap().is_empty());
    assert_eq!(store.list_scopes().await.unwrap(), vec![a, ab]);
    store.delete_container().await.unwrap();
}

#[tokio::test]
async fn listing_follows_the_services_continuation_past_5000_blobs() {
    let url = azurite!("listing_follows_the_services_continuation_past_5000_blobs");
    let store = fresh_store(&url, |b| b.claim_concurrency(64)).await;
    let n = 5003;
    for chunk in (0..n).collect::<Vec<i32>>().chunks(1000) {
        let claims: Vec<Ownership> = chunk.iter().map(|p| claim(&p.to_string(), "me", None)).collect();
        assert_eq!(claim_all(&store, &claims).await.len(), chunk.len());
    }
    let listed = store.list_ownership(&scope()).await.unwrap();
    let ids: HashSet<String> = listed.into_iter().map(|o| o.partition_id).collect();
    assert_eq!(ids.len(), n as usize);
    store.delete_container().await.unwrap();
}

#[tokio::test]
async fn tools_delete_checkpoint_and_list_scopes() {
    let url = azurite!("tools_delete_checkpoint_and_list_scopes");
    let store = fresh_store(&url, |b| b).await;
    let cp = Checkpoint::new(scope(), "0", Some("5".into()), Some(5));
    store
        .set_checkpoint(&cp, &SetCheckpointOptions::new())
        .await
        .unwrap();
    claim_all(&store, &[claim("0", "a", None)]).await;
    assert_eq!(store.list_scopes().await.unwrap(), vec![scope()]);
    assert!(store.delete_checkpoint(&scope(), "0").await.unwrap());
    assert!(!store.delete_checkpoint(&scope(), "0").await.unwrap());
    assert!(store.list_checkpoints(&scope()).await.unwrap().is_empty());
    assert_eq!(store.list_ownership(&scope()).await.unwrap().len(), 1, "C10");
    store.delete_container().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_endpoint_is_unavailable() {
    // A port nothing listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cs = common::connection_string(&format!("http://127.0.0.1:{port}/devstoreaccount1"));
    let store = BlobStoreBuilder::from_connection_string(&cs, "cps")
        .unwrap()
        .retry(RetryOptions::none())
        .build()
        .unwrap();
    let e = store.list_checkpoints(&scope()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable());
    let e = store
        .claim_ownership(&[claim("0", "a", None)], &ClaimOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
}
