//! Behaviour of the Redis store beyond the shared suite (which covers C1–C13, races and fencing
//! included, and cut connections: `c12_acknowledged_writes_survive_cut_connections`):
//! flushed scripts, etag prefixes, the scope clock, braces in names, secrets.

// Test code: unwrap/panic report failures (clippy.toml allows them in #[test] fns only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use eventhubs_store_core::{
    Checkpoint, CheckpointStore, ClaimOptions, ETag, ErrorKind, Ownership, PartitionScope,
    SetCheckpointOptions,
};
use eventhubs_store_redis::RedisStore;
use support::{configured_url, redis_or_skip};

fn scope() -> PartitionScope {
    PartitionScope::new("ns.servicebus.windows.net", "hub", "$Default").unwrap()
}

fn opts() -> ClaimOptions {
    ClaimOptions::default()
}

async fn admin() -> redis::aio::MultiplexedConnection {
    support::admin(&configured_url()).await.unwrap()
}

#[tokio::test]
async fn scripts_flushed_on_the_server_are_loaded_again() {
    let Some(r) = redis_or_skip("noscript").await else {
        return;
    };
    r.store
        .claim_ownership(&[Ownership::new(scope(), "0", "a")], &opts())
        .await
        .unwrap();
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut admin().await)
        .await
        .unwrap();
    let won = r
        .store
        .claim_ownership(&[Ownership::new(scope(), "1", "a")], &opts())
        .await
        .unwrap();
    assert_eq!(won.len(), 1);
    r.cleanup().await.unwrap();
}

/// The claim script compares the stored etag in place (no substring): an expected etag that is a
/// prefix of the stored one, or the stored one plus more, must lose (C4). The scope's clock (field
/// `""` of the ownership hash) never goes back: a clock ahead of the server's `TIME` stamps the
/// next write with it (C5), and it is never listed as a partition.
#[tokio::test]
async fn c4_c5_etag_prefixes_lose_and_a_scope_clock_ahead_of_the_server_is_kept() {
    let Some(r) = redis_or_skip("stamps").await else {
        return;
    };
    let claims = [
        Ownership::new(scope(), "0", "a"),
        Ownership::new(scope(), "1", "a"),
    ];
    let held = r.store.claim_ownership(&claims, &opts()).await.unwrap();
    assert_eq!(held.len(), 2);
    let etag = held[0].etag.clone().unwrap();
    for wrong in [
        &etag.as_str()[..etag.as_str().len() - 1],
        &format!("{}0", etag.as_str()),
    ] {
        let claim = Ownership::new(scope(), "0", "b").with_etag(Some(ETag::new(wrong)));
        assert!(
            r.store
                .claim_ownership(&[claim], &opts())
                .await
                .unwrap()
                .is_empty(),
            "{wrong}"
        );
    }

    // The scope's clock is moved one hour ahead of the server's.
    let key = format!(
        "{}:{{ns.servicebus.windows.net/hub/$default}}:ownership",
        r.prefix
    );
    let later = held[0].last_modified_time.unwrap() + time::Duration::hours(1);
    let later_micros = i64::try_from(later.unix_timestamp_nanos() / 1000).unwrap();
    let _: i64 = redis::cmd("HSET")
        .arg(&key)
        .arg("")
        .arg(later_micros)
        .query_async(&mut admin().await)
        .await
        .unwrap();
    let renew: Vec<Ownership> = held
        .iter()
        .map(|o| Ownership::new(scope(), &o.partition_id, "a").with_etag(o.etag.clone()))
        .collect();
    let renewed = r.store.claim_ownership(&renew, &opts()).await.unwrap();
    assert_eq!(renewed.len(), 2);
    for o in &renewed {
        assert_eq!(o.last_modified_time, Some(later));
        assert_ne!(o.etag, held[0].etag);
    }
    let listed = r.store.list_ownership(&scope()).await.unwrap();
    assert_eq!(listed.len(), 2, "the clock field is not a partition: {listed:?}");
    for o in &listed {
        assert_eq!(o.last_modified_time, Some(later));
        assert_eq!(o.etag, renewed[0].etag);
    }
    // A later write is stamped at least as late (never moved back).
    let again = r
        .store
        .claim_ownership(
            &[Ownership::new(scope(), "0", "a").with_etag(renewed[0].etag.clone())],
            &opts(),
        )
        .await
        .unwrap();
    assert!(again[0].last_modified_time.unwrap() >= later);
    r.cleanup().await.unwrap();
}

/// An etag names one write: the claims of one script call share it, and a batch with several
/// owners is one write per owner, each with its own fresh etag (C5) and each claim winning or
/// losing on its own (C6).
#[tokio::test]
async fn c5_c6_claims_of_one_write_share_an_etag_and_each_owner_is_its_own_write() {
    let Some(r) = redis_or_skip("groups").await else {
        return;
    };
    let first = r
        .store
        .claim_ownership(
            &[
                Ownership::new(scope(), "0", "a"),
                Ownership::new(scope(), "1", "b"),
                Ownership::new(scope(), "2", "a"),
                Ownership::new(scope(), "3", "b"),
            ],
            &opts(),
        )
        .await
        .unwrap();
    let ids: Vec<&str> = first.iter().map(|o| o.partition_id.as_str()).collect();
    assert_eq!(ids, ["0", "1", "2", "3"], "answers keep the batch order");
    assert_eq!(first[0].etag, first[2].etag);
    assert_eq!(first[1].etag, first[3].etag);
    assert_ne!(first[0].etag, first[1].etag);

    // Partition 1 is taken over by "c"; "b" then renews 1 and 3 with the etag they shared:
    // 3 still carries it and wins, 1 does not and loses, even though the etag is the same.
    let taken = r
        .store
        .claim_ownership(
            &[Ownership::new(scope(), "1", "c").with_etag(first[1].etag.clone())],
            &opts(),
        )
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    let renewed = r
        .store
        .claim_ownership(
            &[
                Ownership::new(scope(), "1", "b").with_etag(first[1].etag.clone()),
                Ownership::new(scope(), "3", "b").with_etag(first[3].etag.clone()),
            ],
            &opts(),
        )
        .await
        .unwrap();
    assert_eq!(renewed.len(), 1);
    assert_eq!(renewed[0].partition_id, "3");
    let mut seen = std::collections::HashSet::new();
    for etag in [&first[0].etag, &first[1].etag, &taken[0].etag, &renewed[0].etag] {
        assert!(seen.insert(etag.clone()), "etag {etag:?} issued twice");
    }
    r.cleanup().await.unwrap();
}

#[tokio::test]
async fn names_with_braces_and_huge_sequence_numbers_round_trip() {
    let Some(r) = redis_or_skip("names").await else {
        return;
    };
    let odd = PartitionScope::new("}{ns", "h{u}b", "%7D}").unwrap();
    let cp = Checkpoint::new(
        odd.clone(),
        "{0}",
        Some("off\u{1F600}set".into()),
        Some(i64::MAX - 1),
    );
    r.store
        .set_checkpoint(&cp, &SetCheckpointOptions::new())
        .await
        .unwrap();
    let won = r
        .store
        .claim_ownership(&[Ownership::new(odd.clone(), "{0}", "o{w}n")], &opts())
        .await
        .unwrap();
    assert_eq!(won.len(), 1);
    r.store
        .set_checkpoint(&cp, &SetCheckpointOptions::fenced("o{w}n"))
        .await
        .unwrap();
    assert_eq!(r.store.list_checkpoints(&odd).await.unwrap(), vec![cp]);
    assert_eq!(r.store.list_ownership(&odd).await.unwrap(), won);
    assert_eq!(r.store.list_scopes().await.unwrap(), vec![odd]);
    r.cleanup().await.unwrap();
}

#[tokio::test]
async fn from_connection_manager_and_debug_hides_secrets() {
    let Some(r) = redis_or_skip("cm").await else {
        return;
    };
    let client = redis::Client::open(r.url.as_str()).unwrap();
    let cm = redis::aio::ConnectionManager::new(client).await.unwrap();
    let store = RedisStore::from_connection_manager(cm, &r.prefix).unwrap();
    store
        .set_checkpoint(
            &Checkpoint::new(scope(), "0", None, Some(5)),
            &SetCheckpointOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(r.store.list_checkpoints(&scope()).await.unwrap().len(), 1);

    let e = RedisStore::connect("redis://:hunter2-secret@127.0.0.1:1")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(
        !e.to_string().contains("hunter2") && !format!("{e:?}").contains("hunter2"),
        "{e:?}"
    );
    let d = format!("{:?}", r.store);
    assert!(d.contains(&r.prefix), "{d}");
    r.cleanup().await.unwrap();
}
