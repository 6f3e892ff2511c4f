//! Property-based model check: random sequences of claims, renewals, relinquishes and
//! checkpoint writes over several scopes, replayed step by step on the store under test and on
//! [`InMemoryStore`] (the oracle). Proptest shrinks a failure to a minimal, readable sequence.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};

use eventhubs_store_core::{
    Checkpoint, CheckpointStore, ClaimOptions, ETag, InMemoryStore, Ownership, PartitionScope,
    SetCheckpointOptions,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

use crate::context::{CaseResult, Ctx, Failure};

/// Sequences per run; `EVENTHUBS_CONFORMANCE_PROPTEST_CASES` overrides.
pub fn proptest_cases() -> u32 {
    std::env::var("EVENTHUBS_CONFORMANCE_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32)
}

/// Which etag a generated claim carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EtagChoice {
    /// No etag: a create (C3).
    None,
    /// The partition's current etag (C4 renewal or takeover).
    Current,
    /// An etag the partition had before, or one never issued (C4 loss).
    Stale,
}

/// One step of a generated sequence.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// A claim batch in scope `scope`: partition → (owner, etag). Owner 0 is `""` (relinquish).
    Claim {
        scope: usize,
        claims: BTreeMap<u8, (u8, EtagChoice)>,
    },
    /// An unconditional checkpoint write (C9).
    Checkpoint {
        scope: usize,
        partition: u8,
        offset: Option<String>,
        sequence_number: Option<i64>,
    },
    /// A fenced checkpoint write (C13) for `owner`.
    Fenced {
        scope: usize,
        partition: u8,
        owner: u8,
        sequence_number: i64,
    },
}

const SCOPES: [(&str, &str); 3] = [("h", "cg"), ("h", "cga"), ("ha", "cg")];

fn op_strategy() -> impl Strategy<Value = Op> {
    let etag = prop_oneof![
        Just(EtagChoice::None),
        Just(EtagChoice::Current),
        Just(EtagChoice::Stale)
    ];
    let claim = (
        0..SCOPES.len(),
        prop::collection::btree_map(0u8..4, (0u8..3, etag), 1..4),
    )
        .prop_map(|(scope, claims)| Op::Claim { scope, claims });
    let checkpoint = (
        0..SCOPES.len(),
        0u8..4,
        prop::option::of("[0-9a-z:]{1,8}"),
        prop::option::of(any::<i64>()),
    )
        .prop_map(|(scope, partition, offset, seq)| Op::Checkpoint {
            scope,
            partition,
            sequence_number: if offset.is_none() && seq.is_none() {
                Some(0)
            } else {
                seq
            },
            offset,
        });
    let fenced = (0..SCOPES.len(), 0u8..4, 0u8..3, 0i64..1000).prop_map(
        |(scope, partition, owner, sequence_number)| Op::Fenced {
            scope,
            partition,
            owner,
            sequence_number,
        },
    );
    prop_oneof![4 => claim, 2 => checkpoint, 1 => fenced]
}

fn owner_name(owner: u8) -> String {
    if owner == 0 {
        String::new()
    } else {
        format!("owner-{owner}")
    }
}

/// One side of the comparison: a store and the etags it issued per partition, oldest first.
struct Side<'a> {
    store: &'a dyn CheckpointStore,
    etags: HashMap<(usize, u8), Vec<ETag>>,
}

impl Side<'_> {
    fn etag_for(&self, key: (usize, u8), choice: EtagChoice) -> Option<ETag> {
        let history = self.etags.get(&key);
        match choice {
            EtagChoice::None => None,
            EtagChoice::Current => history.and_then(|h| h.last().cloned()),
            EtagChoice::Stale => match history {
                Some(h) if h.len() >= 2 => h.first().cloned(),
                _ => Some(ETag::new("\"never-issued\"")),
            },
        }
    }
}

fn fail(rule: &str, message: String) -> TestCaseError {
    TestCaseError::fail(format!("rule {rule} broken: {message}"))
}

async fn check_sequence(sut: &dyn CheckpointStore, namespace: &str, ops: &[Op]) -> Result<(), TestCaseError> {
    let oracle = InMemoryStore::new();
    let scopes: Vec<PartitionScope> = SCOPES
        .iter()
        .map(|(hub, group)| PartitionScope::new(namespace, hub, group))
        .collect::<Result<_, _>>()
        .map_err(|e| fail("C11", format!("suite scope invalid: {e}")))?;
    let fenced_supported = sut.capabilities().fenced_checkpoints;
    let mut sides = [
        Side {
            store: sut,
            etags: HashMap::new(),
        },
        Side {
            store: &oracle,
            etags: HashMap::new(),
        },
    ];
    for (step, op) in ops.iter().enumerate() {
        let scope_index = match op {
            Op::Claim { scope, .. } | Op::Checkpoint { scope, .. } | Op::Fenced { scope, .. } => *scope,
        };
        match op {
            Op::Claim { scope, claims } => {
                let mut won_sets = Vec::new();
                for side in sides.iter_mut() {
                    let batch: Vec<Ownership> = claims
                        .iter()
                        .map(|(p, (owner, choice))| {
                            Ownership::new(scopes[*scope].clone(), p.to_string(), owner_name(*owner))
                                .with_etag(side.etag_for((*scope, *p), *choice))
                        })
                        .collect();
                    let won = side
                        .store
                        .claim_ownership(&batch, &ClaimOptions::default())
                        .await
                        .map_err(|e| fail("C6", format!("step {step}: claim failed: {e}")))?;
                    let mut ids = Vec::new();
                    for o in won {
                        let p: u8 = o.partition_id.parse().map_err(|_| {
                            fail(
                                "C1",
                                format!("step {step}: partition id came back as {:?}", o.partition_id),
                            )
                        })?;
                        let Some(etag) = o.etag.clone() else {
                            return Err(fail("C5", format!("step {step}: won claim without etag")));
                        };
                        let history = side.etags.entry((*scope, p)).or_default();
                        if history.contains(&etag) {
                            return Err(fail(
                                "C5",
                                format!("step {step}: partition {p} got etag {etag} again"),
                            ));
                        }
                        history.push(etag);
                        ids.push((p, o.owner_id));
                    }
                    ids.sort();
                    won_sets.push(ids);
                }
                if won_sets[0] != won_sets[1] {
                    return Err(fail(
                        "C3/C4",
                        format!(
                            "step {step}: the store let {:?} win where the contract lets {:?} win",
                            won_sets[0], won_sets[1]
                        ),
                    ));
                }
            }
            Op::Checkpoint {
                scope,
                partition,
                offset,
                sequence_number,
            } => {
                let cp = Checkpoint::new(
                    scopes[*scope].clone(),
                    partition.to_string(),
                    offset.clone(),
                    *sequence_number,
                );
                for side in &sides {
                    side.store
                        .set_checkpoint(&cp, &SetCheckpointOptions::default())
                        .await
                        .map_err(|e| fail("C9", format!("step {step}: set_checkpoint failed: {e}")))?;
                }
            }
            Op::Fenced {
                scope,
                partition,
                owner,
                sequence_number,
            } => {
                if !fenced_supported {
                    continue;
                }
                let cp = Checkpoint::new(
                    scopes[*scope].clone(),
                    partition.to_string(),
                    None,
                    Some(*sequence_number),
                );
                let options = SetCheckpointOptions::fenced(owner_name(*owner));
                let mut outcomes = Vec::new();
                for side in &sides {
                    outcomes.push(
                        side.store
                            .set_checkpoint(&cp, &options)
                            .await
                            .map_err(|e| e.kind()),
                    );
                }
                if outcomes[0] != outcomes[1] {
                    return Err(fail(
                        "C13",
                        format!(
                            "step {step}: fenced write gave {:?}, the contract says {:?}",
                            outcomes[0], outcomes[1]
                        ),
                    ));
                }
            }
        }
        compare_scope(&sides, &scopes[scope_index], scope_index, step).await?;
    }
    Ok(())
}

async fn compare_scope(
    sides: &[Side<'_>; 2],
    scope: &PartitionScope,
    scope_index: usize,
    step: usize,
) -> Result<(), TestCaseError> {
    let mut owners = Vec::new();
    let mut checkpoints = Vec::new();
    for side in sides {
        let mut listed = side
            .store
            .list_ownership(scope)
            .await
            .map_err(|e| fail("C2", format!("step {step}: list_ownership failed: {e}")))?;
        listed.sort_by(|a, b| a.partition_id.cmp(&b.partition_id));
        for o in &listed {
            let current = o
                .partition_id
                .parse::<u8>()
                .ok()
                .and_then(|p| side.etags.get(&(scope_index, p)))
                .and_then(|h| h.last());
            if o.etag.as_ref() != current {
                return Err(fail(
                    "C5",
                    format!(
                        "step {step}: partition {} listed with etag {:?}, the last won claim returned {current:?}",
                        o.partition_id, o.etag
                    ),
                ));
            }
        }
        owners.push(
            listed
                .into_iter()
                .map(|o| (o.partition_id, o.owner_id))
                .collect::<Vec<_>>(),
        );
        let mut cps = side
            .store
            .list_checkpoints(scope)
            .await
            .map_err(|e| fail("C2", format!("step {step}: list_checkpoints failed: {e}")))?;
        cps.sort_by(|a, b| a.partition_id.cmp(&b.partition_id));
        checkpoints.push(cps);
    }
    if owners[0] != owners[1] {
        return Err(fail(
            "C3/C4/C8",
            format!(
                "step {step}: scope {scope} lists owners {:?}, the contract says {:?}",
                owners[0], owners[1]
            ),
        ));
    }
    if checkpoints[0] != checkpoints[1] {
        return Err(fail(
            "C9",
            format!(
                "step {step}: scope {scope} lists checkpoints {:?}, the contract says {:?}",
                checkpoints[0], checkpoints[1]
            ),
        ));
    }
    Ok(())
}

/// C3–C10, C13 together: random operation sequences give exactly the results the reference
/// store gives, step by step. A failure shows the shrunk, minimal sequence.
pub async fn model_random_sequences_match_reference(ctx: &Ctx) -> CaseResult {
    if tokio::runtime::Handle::current().runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        return Err(Failure::new(
            "harness",
            "the model case needs a multi-thread tokio runtime",
        ));
    }
    let store = ctx.store.clone();
    let namespace = ctx.namespace().to_string();
    let iteration = AtomicUsize::new(0);
    let config = Config {
        cases: proptest_cases(),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let strategy = prop::collection::vec(op_strategy(), 1..24);
    let handle = tokio::runtime::Handle::current();
    let result = tokio::task::block_in_place(|| {
        runner.run(&strategy, |ops| {
            // Every sequence, shrunk ones included, gets fresh scopes in the same store.
            let n = iteration.fetch_add(1, Ordering::Relaxed);
            let ns = format!("m{n}-{namespace}");
            handle.block_on(check_sequence(store.as_ref(), &ns, &ops))
        })
    });
    match result {
        Ok(()) => Ok(()),
        Err(TestError::Fail(reason, ops)) => {
            let reason = reason.to_string();
            let rule = ["C3/C4/C8", "C3/C4", "C13", "C11", "C9", "C6", "C5", "C2", "C1"]
                .into_iter()
                .find(|r| reason.contains(&format!("rule {r} ")))
                .unwrap_or("model");
            let reason = reason
                .strip_prefix(&format!("rule {rule} broken: "))
                .unwrap_or(&reason)
                .to_string();
            let steps: Vec<String> = ops
                .iter()
                .enumerate()
                .map(|(i, op)| format!("  {i}: {op:?}"))
                .collect();
            Err(Failure::new(
                rule,
                format!("{reason}\nminimal failing sequence:\n{}", steps.join("\n")),
            ))
        }
        Err(TestError::Abort(reason)) => Err(Failure::new("model", format!("proptest aborted: {reason}"))),
    }
}
