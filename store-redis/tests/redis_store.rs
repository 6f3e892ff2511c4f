//! Behaviour of the Redis store beyond the shared suite (which covers C1–C13, races and fencing
//! included): killed connections, flushed scripts, braces in names, secrets.

// Test code: unwrap/panic report failures (clippy.toml allows them in #[test] fns only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use eventhubs_store_core::{
    Checkpoint, CheckpointStore, ClaimOptions, ETag, ErrorKind, Ownership, PartitionScope,
    SetCheckpointOptions,
};
use eventhubs_store_redis::{RedisOptions, RedisStore};
use support::{TestRedis, configured_url, redis_or_skip};

fn scope() -> PartitionScope {
    PartitionScope::new("ns.servicebus.windows.net", "hub", "$Default").unwrap()
}

fn opts() -> ClaimOptions {
    ClaimOptions::default()
}

async fn admin() -> redis::aio::MultiplexedConnection {
    redis::Client::open(configured_url().as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
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

/// The server kills the store's connections again and again (`CLIENT KILL USER` of an ACL user
/// only this test uses, so no one else's connections are touched) in the middle of a run of
/// checkpoint writes: calls during the outage fail with the retryable `Unavailable` kind (or
/// succeed), the same store object reconnects by itself, and every acknowledged checkpoint is
/// there at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_killed_connections_are_retryable_and_lose_no_acknowledged_checkpoint() {
    let Some(base) = redis_or_skip("restart").await else {
        return;
    };
    let user = format!("{}_user", base.prefix);
    let mut admin = admin().await;
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", &user, "on", "nopass", "~*", "&*", "+@all"][..])
        .query_async(&mut admin)
        .await
        .unwrap();
    let mut url = url::Url::parse(&base.url).unwrap();
    url.set_username(&user).unwrap();
    url.set_password(Some("unused")).unwrap();
    let r = TestRedis {
        store: RedisOptions::new(url.as_str())
            .prefix(&base.prefix)
            .connect()
            .await
            .unwrap(),
        url: base.url.clone(),
        prefix: base.prefix.clone(),
    };

    const WRITERS: u64 = 4;
    const WRITES: u64 = 1500;
    // Odd writes are fenced (C13): scripts, which the store never repeats on its own, so the
    // outage shows through as Unavailable there.
    let claims: Vec<Ownership> = (0..WRITERS)
        .map(|w| Ownership::new(scope(), w.to_string(), "writer"))
        .collect();
    assert_eq!(
        r.store.claim_ownership(&claims, &opts()).await.unwrap().len(),
        WRITERS as usize
    );
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..WRITERS).map(|_| AtomicU64::new(0)).collect());
    let failures = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let killer = {
        let done = done.clone();
        let user = user.clone();
        let mut admin = admin.clone();
        tokio::spawn(async move {
            let mut killed = 0i64;
            while !done.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(30)).await;
                let n: i64 = redis::cmd("CLIENT")
                    .arg(&["KILL", "USER", &user][..])
                    .query_async(&mut admin)
                    .await
                    .unwrap_or(0);
                killed += n;
            }
            killed
        })
    };
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = r.store.clone();
        let acked = acked.clone();
        let failures = failures.clone();
        writers.push(tokio::spawn(async move {
            for seq in 1..=WRITES {
                let cp = Checkpoint::new(scope(), w.to_string(), Some(format!("o{seq}")), Some(seq as i64));
                let options = if seq % 2 == 1 {
                    SetCheckpointOptions::fenced("writer")
                } else {
                    SetCheckpointOptions::new()
                };
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                loop {
                    match store.set_checkpoint(&cp, &options).await {
                        Ok(()) => {
                            acked[w as usize].store(seq, Ordering::SeqCst);
                            break;
                        }
                        Err(e) => {
                            assert_eq!(
                                e.kind(),
                                ErrorKind::Unavailable,
                                "outage error must be retryable: {e}"
                            );
                            failures.fetch_add(1, Ordering::SeqCst);
                            assert!(
                                std::time::Instant::now() < deadline,
                                "the store never recovered: {e}"
                            );
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let killed = killer.await.unwrap();
    assert!(killed > 0, "the test must actually have killed connections");
    eprintln!(
        "restart test: {killed} connections killed, {} calls failed with Unavailable and were retried",
        failures.load(Ordering::SeqCst)
    );
    // Later calls succeed on the same store object, and nothing acknowledged was lost, seen
    // through it and through a brand-new store.
    let fresh = base.reopen().await.unwrap();
    for store in [&r.store, &fresh] {
        let mut cps = store.list_checkpoints(&scope()).await.unwrap();
        cps.sort_by(|a, b| a.partition_id.cmp(&b.partition_id));
        assert_eq!(cps.len() as u64, WRITERS);
        for (w, cp) in cps.iter().enumerate() {
            assert_eq!(acked[w].load(Ordering::SeqCst), WRITES);
            assert_eq!(cp.sequence_number, Some(WRITES as i64));
            assert_eq!(cp.offset.as_deref(), Some(format!("o{WRITES}").as_str()));
        }
    }
    let _: i64 = redis::cmd("ACL")
        .arg(&["DELUSER", &user][..])
        .query_async(&mut admin)
        .await
        .unwrap();
    base.cleanup().await.unwrap();
}
