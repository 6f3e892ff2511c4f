//! Concurrent histories: several clients on several handles issue random mixed operations,
//! each recorded with its invocation and return times and what it returned; then the history
//! is split by partition into the checker's operations.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eventhubs_store_core::{
    Checkpoint, CheckpointStore, ClaimOptions, ErrorKind, Ownership, PartitionScope, SetCheckpointOptions,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::model::{Input, MADE_UP_ETAG_PREFIX, Output, Owned, PartitionOp, Values};

/// How one history is run (environment knobs in [`HistoryConfig::from_env`]).
#[derive(Debug, Clone)]
pub struct HistoryConfig {
    /// Concurrent clients.
    pub clients: usize,
    /// Operations per client.
    pub ops_per_client: usize,
    /// Histories per case run.
    pub histories: usize,
    /// Time between two connection cuts while the clients run.
    pub cut_every: Duration,
    /// One operation taking longer counts as an unknown outcome.
    pub op_timeout: Duration,
    /// Where to write the whole history (JSON) and its timeline (HTML), if anywhere.
    pub out: Option<std::path::PathBuf>,
}

/// A configuration installed by a tool, used instead of the environment's.
static INSTALLED: Mutex<Option<HistoryConfig>> = Mutex::new(None);

impl HistoryConfig {
    /// Makes this the configuration of every later history in this process (what `ehstore
    /// conformance --history-*` does).
    pub fn install(self) {
        if let Ok(mut slot) = INSTALLED.lock() {
            *slot = Some(self);
        }
    }

    /// The installed configuration, else the environment's.
    pub fn current() -> Self {
        INSTALLED
            .lock()
            .ok()
            .and_then(|slot| slot.clone())
            .unwrap_or_else(Self::from_env)
    }

    /// Defaults sized for CI (each backend's run well under 30 s), overridden by
    /// `EVENTHUBS_CONFORMANCE_HISTORY_CLIENTS` (4), `…_HISTORY_OPS` (operations per client, 60),
    /// `…_HISTORIES` (3) and `…_HISTORY_OUT` (a path: `PATH.json` and `PATH.html` are written).
    pub fn from_env() -> Self {
        let num = |name: &str, default: usize| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        HistoryConfig {
            clients: num("EVENTHUBS_CONFORMANCE_HISTORY_CLIENTS", 4).max(1),
            ops_per_client: num("EVENTHUBS_CONFORMANCE_HISTORY_OPS", 60).max(1),
            histories: num("EVENTHUBS_CONFORMANCE_HISTORIES", 3).max(1),
            cut_every: Duration::from_millis(15),
            op_timeout: Duration::from_secs(10),
            out: std::env::var_os("EVENTHUBS_CONFORMANCE_HISTORY_OUT").map(Into::into),
        }
    }
}

/// The partitions every history works on (ids the store lower-cases, C1).
pub const PARTITIONS: [&str; 3] = ["0", "1", "Ä-2"];

/// One recorded store call.
#[derive(Debug, Clone, Serialize)]
pub struct Call {
    /// Its index in the history.
    pub id: usize,
    /// The client that made it.
    pub client: usize,
    /// The store handle it went through (0: the case's store; others from `reopen()`).
    pub handle: usize,
    /// The scope (index into the history's scopes).
    pub scope: usize,
    /// What was asked.
    pub request: Request,
    /// What came back.
    pub outcome: CallOutcome,
    /// Invocation, nanoseconds since the history began.
    pub call_ns: u64,
    /// Return, nanoseconds since the history began; `None` when the call timed out.
    pub ret_ns: Option<u64>,
}

/// A store call.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Request {
    /// `claim_ownership` of a batch: (partition, owner, expected etag).
    Claim {
        /// The claims.
        claims: Vec<(String, String, Option<String>)>,
    },
    /// `set_checkpoint`.
    Checkpoint {
        /// Partition.
        partition: String,
        /// Offset.
        offset: Option<String>,
        /// Sequence number.
        sequence_number: Option<i64>,
        /// The owner a fenced write requires.
        fenced_by: Option<String>,
    },
    /// `list_ownership`.
    ListOwnership,
    /// `list_checkpoints`.
    ListCheckpoints,
}

/// What a store call returned.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CallOutcome {
    /// The won claims, by partition as returned.
    Claimed {
        /// (partition, record).
        won: Vec<(String, Owned)>,
    },
    /// `set_checkpoint` returned `Ok`.
    Written,
    /// `set_checkpoint` failed with `OwnershipLost`.
    OwnershipLost,
    /// The listing's rows.
    Ownerships {
        /// (partition, record).
        rows: Vec<(String, Owned)>,
    },
    /// The listing's rows.
    Checkpoints {
        /// (partition, values).
        rows: Vec<(String, Values)>,
    },
    /// Failed with an error that leaves the outcome open, or timed out.
    Unknown {
        /// The error.
        error: String,
    },
    /// Refused as input the store cannot store faithfully (`InvalidInput`, C11).
    Unstorable {
        /// The error.
        error: String,
    },
    /// Failed with an error valid input must never get.
    Refused {
        /// The error.
        error: String,
    },
}

/// A whole history.
#[derive(Debug, Clone, Serialize)]
pub struct History {
    /// The backend.
    pub backend: String,
    /// The scopes, as (hub, consumer group).
    pub scopes: Vec<(String, String)>,
    /// Store handles in use.
    pub handles: usize,
    /// Connections cut while it ran.
    pub cuts: u64,
    /// The calls, in invocation order.
    pub calls: Vec<Call>,
}

/// Owner ids that must round-trip exactly: mixed case, Unicode, the maximum length.
fn owners() -> Vec<String> {
    let long: String = "Ö".repeat(eventhubs_store_core::MAX_VALUE_BYTES / 2);
    vec![
        "Owner-A".into(),
        "owner-a".into(),
        "ÖWNER-ß".into(),
        long,
        String::new(),
    ]
}

/// Offsets that must round-trip exactly.
fn offsets() -> Vec<Option<String>> {
    vec![
        None,
        Some("12884901888".into()),
        Some("Geo:Ab-ÇD:0".into()),
        Some("x".repeat(eventhubs_store_core::MAX_VALUE_BYTES)),
    ]
}

/// What one client remembers between its calls: the etags it saw per (scope, partition).
#[derive(Default)]
struct Memory {
    etags: HashMap<(usize, String), Vec<String>>,
}

struct Shared {
    origin: Instant,
    calls: Mutex<Vec<Call>>,
}

impl Shared {
    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn record(&self, call: Call) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(call);
        }
    }
}

/// A returned or listed ownership record, with its partition id as the store gave it.
fn owned(o: Ownership) -> (String, Owned) {
    let record = Owned {
        owner: o.owner_id,
        etag: o.etag.map(|e| e.as_str().to_owned()).unwrap_or_default(),
        modified: o
            .last_modified_time
            .map(time::OffsetDateTime::unix_timestamp_nanos),
    };
    (o.partition_id, record)
}

fn classify(e: &eventhubs_store_core::Error) -> CallOutcome {
    match e.kind() {
        ErrorKind::InvalidInput => CallOutcome::Unstorable { error: e.to_string() },
        ErrorKind::Unsupported | ErrorKind::NotFound | ErrorKind::Unauthorized => {
            CallOutcome::Refused { error: e.to_string() }
        }
        _ => CallOutcome::Unknown { error: e.to_string() },
    }
}

/// Runs one client: `ops` random calls on `store`.
#[allow(clippy::too_many_arguments)]
async fn client(
    id: usize,
    handle: usize,
    store: Arc<dyn CheckpointStore>,
    scopes: Arc<Vec<PartitionScope>>,
    shared: Arc<Shared>,
    ops: usize,
    seed: u64,
    fenced: bool,
    timeout: Duration,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let owners = owners();
    let offsets = offsets();
    let mut memory = Memory::default();
    for _ in 0..ops {
        let scope = rng.random_range(0..scopes.len());
        let kind = rng.random_range(0..10);
        let (request, future): (Request, futures::future::BoxFuture<'static, CallOutcome>) = match kind {
            0..=3 => {
                let count = rng.random_range(1..=PARTITIONS.len());
                let mut chosen: BTreeSet<&str> = BTreeSet::new();
                while chosen.len() < count {
                    chosen.insert(PARTITIONS[rng.random_range(0..PARTITIONS.len())]);
                }
                let claims: Vec<(String, String, Option<String>)> = chosen
                    .into_iter()
                    .map(|p| {
                        let owner = owners[rng.random_range(0..owners.len())].clone();
                        let seen = memory.etags.get(&(scope, p.to_lowercase()));
                        let etag = match rng.random_range(0..6) {
                            0 => None,
                            1 => Some(format!("{MADE_UP_ETAG_PREFIX}{}\"", rng.random::<u32>())),
                            2 => seen.and_then(|s| s.first().cloned()),
                            _ => seen.and_then(|s| s.last().cloned()),
                        };
                        (p.to_owned(), owner, etag)
                    })
                    .collect();
                let batch: Vec<Ownership> = claims
                    .iter()
                    .map(|(p, o, e)| {
                        Ownership::new(scopes[scope].clone(), p.clone(), o.clone())
                            .with_etag(e.clone().map(eventhubs_store_core::ETag::new))
                    })
                    .collect();
                let store = Arc::clone(&store);
                (
                    Request::Claim { claims },
                    Box::pin(async move {
                        match store.claim_ownership(&batch, &ClaimOptions::default()).await {
                            Ok(won) => CallOutcome::Claimed {
                                won: won.into_iter().map(owned).collect(),
                            },
                            Err(e) => classify(&e),
                        }
                    }),
                )
            }
            4..=6 => {
                let partition = PARTITIONS[rng.random_range(0..PARTITIONS.len())].to_owned();
                let mut offset = offsets[rng.random_range(0..offsets.len())].clone();
                let sequence_number = match rng.random_range(0..4) {
                    0 => None,
                    1 => Some(i64::MAX),
                    _ => Some(rng.random_range(0..i64::MAX)),
                };
                if offset.is_none() && sequence_number.is_none() {
                    offset = Some("0".into());
                }
                let fenced_by = (fenced && rng.random_bool(0.5))
                    .then(|| owners[rng.random_range(0..owners.len() - 1)].clone());
                let checkpoint = Checkpoint::new(
                    scopes[scope].clone(),
                    partition.clone(),
                    offset.clone(),
                    sequence_number,
                );
                let options = fenced_by
                    .as_ref()
                    .map_or_else(SetCheckpointOptions::default, SetCheckpointOptions::fenced);
                let store = Arc::clone(&store);
                (
                    Request::Checkpoint {
                        partition,
                        offset,
                        sequence_number,
                        fenced_by,
                    },
                    Box::pin(async move {
                        match store.set_checkpoint(&checkpoint, &options).await {
                            Ok(()) => CallOutcome::Written,
                            Err(e) if e.kind() == ErrorKind::OwnershipLost => CallOutcome::OwnershipLost,
                            Err(e) => classify(&e),
                        }
                    }),
                )
            }
            7 | 8 => {
                let s = scopes[scope].clone();
                let store = Arc::clone(&store);
                (
                    Request::ListOwnership,
                    Box::pin(async move {
                        match store.list_ownership(&s).await {
                            Ok(rows) => CallOutcome::Ownerships {
                                rows: rows.into_iter().map(owned).collect(),
                            },
                            Err(e) => classify(&e),
                        }
                    }),
                )
            }
            _ => {
                let s = scopes[scope].clone();
                let store = Arc::clone(&store);
                (
                    Request::ListCheckpoints,
                    Box::pin(async move {
                        match store.list_checkpoints(&s).await {
                            Ok(rows) => CallOutcome::Checkpoints {
                                rows: rows
                                    .into_iter()
                                    .map(|c| {
                                        (
                                            c.partition_id,
                                            Values {
                                                offset: c.offset,
                                                sequence_number: c.sequence_number,
                                            },
                                        )
                                    })
                                    .collect(),
                            },
                            Err(e) => classify(&e),
                        }
                    }),
                )
            }
        };
        let call_ns = shared.now();
        let (outcome, ret_ns) = match tokio::time::timeout(timeout, future).await {
            Ok(outcome) => (outcome, Some(shared.now())),
            Err(_) => (
                CallOutcome::Unknown {
                    error: format!("no answer within {timeout:?}"),
                },
                None,
            ),
        };
        let ret_ns = match outcome {
            CallOutcome::Unknown { .. } => None,
            _ => ret_ns,
        };
        // Remember the etags seen, for later claims (current or stale).
        let seen: Vec<(String, String)> = match &outcome {
            CallOutcome::Claimed { won } => won.iter().map(|(p, o)| (p.clone(), o.etag.clone())).collect(),
            CallOutcome::Ownerships { rows } => {
                rows.iter().map(|(p, o)| (p.clone(), o.etag.clone())).collect()
            }
            _ => vec![],
        };
        for (p, etag) in seen {
            let list = memory.etags.entry((scope, p)).or_default();
            if list.last() != Some(&etag) {
                list.push(etag);
            }
        }
        shared.record(Call {
            id: 0,
            client: id,
            handle,
            scope,
            request,
            outcome,
            call_ns,
            ret_ns,
        });
    }
}

/// What a run needs besides the configuration.
pub struct Setup {
    /// Store handles (the first is the case's; the others from `reopen()`).
    pub handles: Vec<Arc<dyn CheckpointStore>>,
    /// The scopes, and their (hub, group) names for the report.
    pub scopes: Vec<(PartitionScope, (String, String))>,
    /// Cuts connections, when the harness can ([`crate::Instance::interrupt`]).
    pub interrupt: Option<Arc<Box<dyn crate::Instance>>>,
    /// The backend's name.
    pub backend: String,
    /// Whether fenced checkpoints are offered (C13).
    pub fenced: bool,
}

/// Runs one history with `config`, clients spread over the handles, cutting connections while
/// they run when `interrupt` is given.
pub async fn run(setup: &Setup, config: &HistoryConfig, seed: u64) -> History {
    let shared = Arc::new(Shared {
        origin: Instant::now(),
        calls: Mutex::new(Vec::new()),
    });
    let scopes = Arc::new(setup.scopes.iter().map(|(s, _)| s.clone()).collect::<Vec<_>>());
    let clients = (0..config.clients).map(|c| {
        let handle = c % setup.handles.len();
        client(
            c,
            handle,
            Arc::clone(&setup.handles[handle]),
            Arc::clone(&scopes),
            Arc::clone(&shared),
            config.ops_per_client,
            seed.wrapping_add(c as u64 * 7919),
            setup.fenced,
            config.op_timeout,
        )
    });
    let running = futures::future::join_all(clients);
    let done = std::sync::atomic::AtomicBool::new(false);
    let cutter = async {
        let mut cuts = 0u64;
        if let Some(instance) = &setup.interrupt {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                tokio::time::sleep(config.cut_every).await;
                if done.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                cuts += instance.interrupt().await.ok().flatten().unwrap_or(0);
            }
        }
        cuts
    };
    let ((), cuts) = futures::future::join(
        async {
            running.await;
            done.store(true, std::sync::atomic::Ordering::Relaxed);
        },
        cutter,
    )
    .await;
    let mut calls = shared.calls.lock().map(|c| c.clone()).unwrap_or_default();
    calls.sort_by_key(|c| (c.call_ns, c.client));
    for (i, c) in calls.iter_mut().enumerate() {
        c.id = i;
    }
    History {
        backend: setup.backend.clone(),
        scopes: setup.scopes.iter().map(|(_, names)| names.clone()).collect(),
        handles: setup.handles.len(),
        cuts,
        calls,
    }
}

/// One partition's operation, pointing back at its call.
#[derive(Debug, Clone)]
pub struct KeyedOp {
    /// The call it came from.
    pub call: usize,
    /// The operation.
    pub op: PartitionOp,
}

/// A problem seen without the checker: a row the store invented or renamed.
#[derive(Debug, Clone)]
pub struct Stray {
    /// The call.
    pub call: usize,
    /// What is wrong.
    pub what: String,
}

/// Operations by (scope index, lower-cased partition id).
pub type ByPartition = BTreeMap<(usize, String), Vec<KeyedOp>>;

/// Splits a history by (scope, partition): claims per claimed partition, listings into one read
/// per partition (absent rows included), writes as they are. Rows naming a partition the
/// history never used, or not lower-cased (C1), are strays.
pub fn by_partition(history: &History) -> (ByPartition, Vec<Stray>) {
    let mut keys: ByPartition = BTreeMap::new();
    let mut strays = Vec::new();
    let known: Vec<String> = PARTITIONS.iter().map(|p| p.to_lowercase()).collect();
    for call in &history.calls {
        let mut push = |partition: &str, op: PartitionOp| {
            keys.entry((call.scope, partition.to_lowercase()))
                .or_default()
                .push(KeyedOp { call: call.id, op });
        };
        match (&call.request, &call.outcome) {
            (Request::Claim { claims }, outcome) => {
                for (p, owner, etag) in claims {
                    let input = Input::Claim {
                        owner: owner.clone(),
                        etag: etag.clone(),
                    };
                    let output = match outcome {
                        CallOutcome::Claimed { won } => won
                            .iter()
                            .find(|(wp, _)| *wp == p.to_lowercase())
                            .map_or(Output::Lost, |(_, o)| Output::Won(o.clone())),
                        CallOutcome::Unstorable { .. } => Output::Refused,
                        _ => Output::Unknown,
                    };
                    push(p, PartitionOp { input, output });
                }
                if let CallOutcome::Claimed { won } = outcome {
                    for (wp, _) in won {
                        if !claims.iter().any(|(p, _, _)| p.to_lowercase() == *wp) {
                            strays.push(Stray {
                                call: call.id,
                                what: format!(
                                    "the claim returned partition {wp:?}, which it did not claim (C1)"
                                ),
                            });
                        }
                    }
                }
            }
            (
                Request::Checkpoint {
                    partition,
                    offset,
                    sequence_number,
                    fenced_by,
                },
                outcome,
            ) => {
                let output = match outcome {
                    CallOutcome::Written => Output::Written,
                    CallOutcome::OwnershipLost => Output::OwnershipLost,
                    CallOutcome::Unstorable { .. } => Output::Refused,
                    _ => Output::Unknown,
                };
                push(
                    partition,
                    PartitionOp {
                        input: Input::Checkpoint {
                            offset: offset.clone(),
                            sequence_number: *sequence_number,
                            fenced_by: fenced_by.clone(),
                        },
                        output,
                    },
                );
            }
            (Request::ListOwnership, CallOutcome::Ownerships { rows }) => {
                for (p, _) in rows {
                    if !known.contains(p) {
                        strays.push(Stray {
                            call: call.id,
                            what: format!("the listing has partition {p:?}, which no call wrote (C1, C2)"),
                        });
                    }
                }
                for p in &known {
                    let row = rows.iter().find(|(rp, _)| rp == p).map(|(_, o)| o.clone());
                    push(
                        p,
                        PartitionOp {
                            input: Input::ReadOwnership,
                            output: Output::Ownership(row),
                        },
                    );
                }
            }
            (Request::ListCheckpoints, CallOutcome::Checkpoints { rows }) => {
                for (p, _) in rows {
                    if !known.contains(p) {
                        strays.push(Stray {
                            call: call.id,
                            what: format!("the listing has partition {p:?}, which no call wrote (C1, C2)"),
                        });
                    }
                }
                for p in &known {
                    let row = rows.iter().find(|(rp, _)| rp == p).map(|(_, v)| v.clone());
                    push(
                        p,
                        PartitionOp {
                            input: Input::ReadCheckpoint,
                            output: Output::Checkpoint(row),
                        },
                    );
                }
            }
            // A failed listing observed nothing.
            (Request::ListOwnership | Request::ListCheckpoints, _) => {}
        }
    }
    (keys, strays)
}
