//! Bench only: ops/s of our blob checkpoint store vs the official
//! `azure_messaging_eventhubs_checkpointstore_blob` 0.9, side by side on one Azurite, doing the
//! same work through identically built, Shared-Key-signed `BlobContainerClient`s (neither
//! crate's client ships Shared Key auth; ours signs, and `BlobStoreBuilder::build_container_client`
//! hands the official store an identical client).
//!
//! Workloads, each contender on its own fresh container, rounds interleaved:
//! - `set_checkpoint`: sequential checkpoint writes over 32 partitions (steady state: every blob
//!   exists after the warm-up).
//! - `claim 32`: one claim batch renewing 32 partitions with their current etags (the
//!   processor's heartbeat), sequential batches.
//!
//! Azurite: `EVENTHUBS_TEST_AZURITE_BLOB_URL`, else started from
//! ../store-blob/scripts/start-azurite.sh (installed by setup-azurite.sh).
//! Run: `cargo run --release` in this folder. Env: `BENCH_ROUNDS` (3), `BENCH_CHECKPOINTS` (1000
//! per round), `BENCH_CLAIMS` (100 batches per round), `BENCH_OURS_CONCURRENCY` (32: our claim
//! batch's requests in flight).

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_messaging_eventhubs::CheckpointStore as OfficialStore;
use azure_messaging_eventhubs::models::{Checkpoint as OfficialCheckpoint, Ownership as OfficialOwnership};
use azure_messaging_eventhubs_checkpointstore_blob::BlobCheckpointStore;
use azure_storage_blob::BlobContainerClient;
use eventhubs_store_blob::{BlobStore, BlobStoreBuilder, DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME};
use eventhubs_store_core::{
    Checkpoint, CheckpointStore, ClaimOptions, Ownership, PartitionScope, SetCheckpointOptions,
};

const PARTITIONS: usize = 32;
const NAMESPACE: &str = "bench.servicebus.windows.net";
const HUB: &str = "hub";
const GROUP: &str = "$default";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn azurite_url() -> Result<String, BoxError> {
    if let Ok(url) = std::env::var("EVENTHUBS_TEST_AZURITE_BLOB_URL") {
        return Ok(url);
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../store-blob/scripts/start-azurite.sh"
    );
    let out = Command::new("bash")
        .arg(script)
        .args(["--watch-pid", &std::process::id().to_string()])
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "start-azurite.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            l.strip_prefix("export EVENTHUBS_TEST_AZURITE_BLOB_URL=")
                .map(str::to_string)
        })
        .ok_or_else(|| "start-azurite.sh printed no URL".into())
}

/// A fresh container, our store on it, and a second, independently built client for it signed
/// the same way (for the official store).
async fn fresh_store(url: &str, name: &str) -> Result<(BlobStore, BlobContainerClient), BoxError> {
    let concurrency = env_usize("BENCH_OURS_CONCURRENCY", 32);
    let cs = format!(
        "DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT_NAME};AccountKey={DEV_ACCOUNT_KEY};BlobEndpoint={url};"
    );
    let container = format!("{name}-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let builder = BlobStoreBuilder::from_connection_string(&cs, &container)?.claim_concurrency(concurrency);
    let client = builder.build_container_client()?;
    let store = builder.build()?;
    store.create_container_if_missing().await?;
    Ok((store, client))
}

fn official_checkpoint(p: usize, n: i64) -> OfficialCheckpoint {
    OfficialCheckpoint {
        fully_qualified_namespace: NAMESPACE.into(),
        event_hub_name: HUB.into(),
        consumer_group: GROUP.into(),
        partition_id: p.to_string(),
        offset: Some((n * 100).to_string()),
        sequence_number: Some(n),
    }
}

fn official_claims(owner: &str) -> Vec<OfficialOwnership> {
    (0..PARTITIONS)
        .map(|p| OfficialOwnership {
            fully_qualified_namespace: NAMESPACE.into(),
            event_hub_name: HUB.into(),
            consumer_group: GROUP.into(),
            partition_id: p.to_string(),
            owner_id: Some(owner.into()),
            ..Default::default()
        })
        .collect()
}

struct Contenders {
    ours: BlobStore,
    ours_claim: BlobStore,
    official: Arc<BlobCheckpointStore>,
    official_claim: Arc<BlobCheckpointStore>,
    scope: PartitionScope,
}

async fn ours_checkpoints(c: &Contenders, ops: usize, base: i64) -> Result<Duration, BoxError> {
    let start = Instant::now();
    for i in 0..ops {
        let n = base + i as i64;
        let cp = Checkpoint::new(
            c.scope.clone(),
            (i % PARTITIONS).to_string(),
            Some((n * 100).to_string()),
            Some(n),
        );
        c.ours.set_checkpoint(&cp, &SetCheckpointOptions::new()).await?;
    }
    Ok(start.elapsed())
}

async fn official_checkpoints(c: &Contenders, ops: usize, base: i64) -> Result<Duration, BoxError> {
    let start = Instant::now();
    for i in 0..ops {
        c.official
            .update_checkpoint(official_checkpoint(i % PARTITIONS, base + i as i64))
            .await?;
    }
    Ok(start.elapsed())
}

async fn ours_claims(
    c: &Contenders,
    held: &mut Vec<Ownership>,
    batches: usize,
) -> Result<Duration, BoxError> {
    let start = Instant::now();
    for _ in 0..batches {
        let won = c
            .ours_claim
            .claim_ownership(held, &ClaimOptions::default())
            .await?;
        if won.len() != PARTITIONS {
            return Err(format!("ours renewed only {} of {PARTITIONS}", won.len()).into());
        }
        *held = won;
    }
    Ok(start.elapsed())
}

async fn official_claims_run(
    c: &Contenders,
    held: &mut Vec<OfficialOwnership>,
    batches: usize,
) -> Result<Duration, BoxError> {
    let start = Instant::now();
    for _ in 0..batches {
        let won = c.official_claim.claim_ownership(held).await?;
        if won.len() != PARTITIONS {
            return Err(format!("official renewed only {} of {PARTITIONS}", won.len()).into());
        }
        *held = won;
    }
    Ok(start.elapsed())
}

fn rate(ops: usize, d: Duration) -> f64 {
    ops as f64 / d.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), BoxError> {
    let rounds = env_usize("BENCH_ROUNDS", 3);
    let checkpoints = env_usize("BENCH_CHECKPOINTS", 1000);
    let batches = env_usize("BENCH_CLAIMS", 100);
    let url = azurite_url()?;
    println!(
        "Azurite: {url}; {rounds} rounds; {checkpoints} checkpoints and {batches} 32-partition claims per round"
    );

    let (ours, _) = fresh_store(&url, "ours").await?;
    let (ours_claim, _) = fresh_store(&url, "ours-claim").await?;
    let (official_cp_store, official_cp_client) = fresh_store(&url, "official").await?;
    let (official_claim_store, official_claim_client) = fresh_store(&url, "official-claim").await?;
    let c = Contenders {
        scope: PartitionScope::new(NAMESPACE, HUB, GROUP)?,
        official: BlobCheckpointStore::new(official_cp_client),
        official_claim: BlobCheckpointStore::new(official_claim_client),
        ours,
        ours_claim,
    };

    // Warm-up: create every blob, open connections.
    ours_checkpoints(&c, PARTITIONS * 2, 0).await?;
    official_checkpoints(&c, PARTITIONS * 2, 0).await?;
    let first: Vec<Ownership> = (0..PARTITIONS)
        .map(|p| Ownership::new(c.scope.clone(), p.to_string(), "bench"))
        .collect();
    let mut ours_held = c
        .ours_claim
        .claim_ownership(&first, &ClaimOptions::default())
        .await?;
    let mut official_held = c
        .official_claim
        .claim_ownership(&official_claims("bench"))
        .await?;
    if ours_held.len() != PARTITIONS || official_held.len() != PARTITIONS {
        return Err("warm-up claims did not win every partition".into());
    }
    ours_claims(&c, &mut ours_held, 5).await?;
    official_claims_run(&c, &mut official_held, 5).await?;

    let (mut cp_ours, mut cp_official, mut cl_ours, mut cl_official) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for round in 0..rounds {
        let base = 1_000 + (round * checkpoints) as i64;
        // Alternate who goes first so drift in Azurite (memory, GC) hits both alike.
        let (a, b) = if round % 2 == 0 {
            let a = ours_checkpoints(&c, checkpoints, base).await?;
            (a, official_checkpoints(&c, checkpoints, base).await?)
        } else {
            let b = official_checkpoints(&c, checkpoints, base).await?;
            (ours_checkpoints(&c, checkpoints, base).await?, b)
        };
        let (x, y) = if round % 2 == 0 {
            let x = ours_claims(&c, &mut ours_held, batches).await?;
            (x, official_claims_run(&c, &mut official_held, batches).await?)
        } else {
            let y = official_claims_run(&c, &mut official_held, batches).await?;
            (ours_claims(&c, &mut ours_held, batches).await?, y)
        };
        println!(
            "round {}: set_checkpoint ours {:>8.0} ops/s, official {:>8.0} ops/s | claim 32 ours {:>7.1} batches/s, official {:>7.1} batches/s",
            round + 1,
            rate(checkpoints, a),
            rate(checkpoints, b),
            rate(batches, x),
            rate(batches, y)
        );
        cp_ours += a;
        cp_official += b;
        cl_ours += x;
        cl_official += y;
    }
    let total_cp = checkpoints * rounds;
    let total_cl = batches * rounds;
    println!();
    println!(
        "{:<28} {:>14} {:>14} {:>8}",
        "workload (all rounds)", "ours", "official", "ratio"
    );
    println!(
        "{:<28} {:>10.0} op/s {:>10.0} op/s {:>7.2}x",
        "set_checkpoint",
        rate(total_cp, cp_ours),
        rate(total_cp, cp_official),
        rate(total_cp, cp_ours) / rate(total_cp, cp_official)
    );
    println!(
        "{:<28} {:>10.1} op/s {:>10.1} op/s {:>7.2}x",
        "claim 32 partitions (batch)",
        rate(total_cl, cl_ours),
        rate(total_cl, cl_official),
        rate(total_cl, cl_ours) / rate(total_cl, cl_official)
    );
    println!(
        "{:<28} {:>10.0} op/s {:>10.0} op/s",
        "  = partition claims",
        rate(total_cl * PARTITIONS, cl_ours),
        rate(total_cl * PARTITIONS, cl_official)
    );

    for store in [&c.ours, &c.ours_claim, &official_cp_store, &official_claim_store] {
        store.delete_container().await?;
    }
    Ok(())
}
