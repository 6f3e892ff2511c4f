//! Concurrent histories under faults, checked for linearizability (C3–C10, C13): the case that
//! sees the bugs one operation at a time cannot.

use std::sync::Arc;
use std::time::Instant;

use crate::context::{CaseResult, Ctx, Failure};
use crate::linearizability::checker::Verdict;
use crate::linearizability::history::{self, CallOutcome, HistoryConfig, KeyedOp, Setup};
use crate::linearizability::model::{Input, Output};
use crate::linearizability::report::{self, shrink, timeline, verdict};

/// Clients (spread over the store's handle and up to two reopened ones) issue random claims with
/// the current, a stale, a made-up or no etag, relinquishes, fenced and unfenced checkpoints and
/// listings, on three partitions of two scopes, while the harness cuts the store's connections
/// every 15 ms where it can ([`crate::Instance::interrupt`]). Every call is recorded with its
/// invocation and return; a call that failed with a retryable error or timed out may or may
/// not have taken effect. Owner ids, offsets and sequence numbers must round-trip exactly
/// (mixed case, Unicode, the maximum lengths, `i64::MAX`).
///
/// The history passes when, partition by partition, one order of its operations explains every
/// result under the contract's rules (C3–C10, C13), with modification times non-decreasing on
/// the store's clock (C5). On failure the report is the smallest sub-history no order explains,
/// as a timeline; `EVENTHUBS_CONFORMANCE_HISTORY_OUT=PATH` also writes the whole history as
/// `PATH-N.json` and an SVG timeline as `PATH-N.html`.
pub async fn c7_concurrent_histories_are_linearizable(ctx: &Ctx) -> CaseResult {
    let config = HistoryConfig::current();
    let mut handles = vec![Arc::clone(&ctx.store)];
    for _ in 0..2 {
        if let Some(handle) = ctx.reopen().await? {
            handles.push(handle);
        }
    }
    let can_cut = ctx.interrupt().await?.is_some();
    let mut setup = Setup {
        handles,
        scopes: Vec::new(),
        interrupt: can_cut.then(|| Arc::clone(&ctx.instance)),
        backend: ctx.store.backend_name().to_owned(),
        fenced: ctx.store.capabilities().fenced_checkpoints,
    };
    for n in 0..config.histories {
        // Fresh scopes for each history: it starts from empty records.
        setup.scopes = [(format!("hub-{n}"), "$default"), (format!("Hub-B{n}"), "Group-B")]
            .into_iter()
            .map(|(h, g)| (ctx.scope(&h, g), (h.clone(), g.to_owned())))
            .collect();
        let seed: u64 = rand::random();
        let history = history::run(&setup, &config, seed).await;
        let (keys, strays) = history::by_partition(&history);
        let started = Instant::now();
        let mut failure: Option<(Failure, Vec<usize>, String)> = None;
        if let Some(stray) = strays.first() {
            let text = format!("call #{}: {}", stray.call, stray.what);
            failure = Some((Failure::new("C1", text.clone()), vec![stray.call], text));
        }
        if failure.is_none()
            && let Some(call) = history
                .calls
                .iter()
                .find(|c| matches!(c.outcome, CallOutcome::Refused { .. }))
        {
            let text = format!(
                "call #{} of client {} with valid input failed: {:?} (C6: a call fails only when the store fails)",
                call.id, call.client, call.outcome
            );
            failure = Some((Failure::new("C6", text.clone()), vec![call.id], text));
        }
        for ((scope, partition), ops) in &keys {
            if failure.is_some() {
                break;
            }
            match verdict(&history, ops) {
                Verdict::Linearizable(_) => {}
                Verdict::Undecided { steps } => {
                    let text = format!(
                        "the checker could not decide partition {partition:?} of scope {scope} within \
                         {steps} steps ({} operations); shorten the history \
                         (EVENTHUBS_CONFORMANCE_HISTORY_OPS)",
                        ops.len()
                    );
                    failure = Some((Failure::new("checker", text.clone()), vec![], text));
                }
                Verdict::NotLinearizable { .. } => {
                    let small = shrink(&history, ops);
                    let (rule, note) = rule_of(&history, ops, &small);
                    let text = format!(
                        "history {n} (seed {seed}) on partition {partition:?} of scope {} ({} of its {} \
                         operations shown): no order of these operations explains what they returned \
                         ({} clients, {} handles, {} connections cut)\n{}{note}",
                        history.scopes[*scope].0,
                        small.len(),
                        ops.len(),
                        config.clients,
                        history.handles,
                        history.cuts,
                        timeline(&history, &small)
                    );
                    let marked = small.iter().map(|k| k.call).collect();
                    failure = Some((Failure::new(rule, text.clone()), marked, text));
                }
            }
        }
        let checked_in = started.elapsed();
        let count = |f: fn(&CallOutcome) -> bool| history.calls.iter().filter(|c| f(&c.outcome)).count();
        eprintln!(
            "conformance history {n} on {}: {} calls by {} clients over {} handles, {} connections cut, \
             {} unknown outcomes, {} refused as unstorable (C11); {} partitions checked in {checked_in:?}{}",
            history.backend,
            history.calls.len(),
            config.clients,
            history.handles,
            history.cuts,
            count(|o| matches!(o, CallOutcome::Unknown { .. })),
            count(|o| matches!(o, CallOutcome::Unstorable { .. })),
            keys.len(),
            if failure.is_some() {
                " — NOT linearizable"
            } else {
                ""
            }
        );
        if let Some(out) = &config.out {
            let path = out.with_file_name(format!(
                "{}-{n}",
                out.file_name()
                    .map_or("history".into(), |f| f.to_string_lossy().into_owned())
            ));
            let (marked, summary) = failure
                .as_ref()
                .map_or((Vec::new(), "linearizable".to_owned()), |(_, m, s)| {
                    (m.clone(), s.clone())
                });
            if let Err(e) = report::write_files(&path, &history, &marked, &summary) {
                eprintln!("could not write the history to {}: {e}", path.display());
            }
        }
        if let Some((failure, _, _)) = failure {
            return Err(failure);
        }
    }
    if can_cut {
        recovers(&setup).await?;
    }
    Ok(())
}

/// After the cuts, every handle serves again by itself within [`RECOVERY`]: a round of
/// listings on all of them succeeds.
async fn recovers(setup: &Setup) -> CaseResult {
    let started = Instant::now();
    let scope = &setup.scopes[0].0;
    loop {
        let round = futures::future::join_all(
            setup
                .handles
                .iter()
                .flat_map(|h| std::iter::repeat_n(h, 4))
                .map(|h| h.list_ownership(scope)),
        )
        .await;
        let failed: Vec<String> = round
            .into_iter()
            .filter_map(|r| r.err())
            .map(|e| e.to_string())
            .collect();
        if failed.is_empty() {
            return Ok(());
        }
        if started.elapsed() > RECOVERY {
            return Err(Failure::new(
                "C12",
                format!(
                    "the store did not recover within {RECOVERY:?} after the cuts: {}",
                    failed.join("; ")
                ),
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// How long the store may take to serve again after the last cut.
const RECOVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// The rule a non-linearizable partition history breaks, judged by what its smallest
/// unexplained sub-history holds, and a note naming the claims that ran among its checkpoint
/// writes when those alone cannot be explained (a claim that rewrote a checkpoint, C10).
fn rule_of(history: &history::History, all: &[KeyedOp], small: &[KeyedOp]) -> (&'static str, String) {
    let fenced = small.iter().any(|k| {
        matches!(
            &k.op.input,
            Input::Checkpoint {
                fenced_by: Some(_),
                ..
            }
        )
    });
    let claims = small
        .iter()
        .any(|k| matches!(k.op.input, Input::Claim { .. } | Input::ReadOwnership));
    let checkpoints = small
        .iter()
        .any(|k| matches!(k.op.input, Input::Checkpoint { .. } | Input::ReadCheckpoint));
    let owner_changed = small.iter().any(|k| match (&k.op.input, &k.op.output) {
        (Input::Claim { owner, .. }, Output::Won(w)) => w.owner != *owner,
        _ => false,
    });
    if owner_changed {
        // The stored record is the winner's, exactly (C7).
        return ("C7", String::new());
    }
    if claims && checkpoints {
        return (if fenced { "C13" } else { "C10" }, String::new());
    }
    if checkpoints {
        let from = small
            .iter()
            .map(|k| history.calls[k.call].call_ns)
            .min()
            .unwrap_or(0);
        let to = small
            .iter()
            .filter_map(|k| history.calls[k.call].ret_ns)
            .max()
            .unwrap_or(u64::MAX);
        let among: Vec<String> = all
            .iter()
            .filter(|k| matches!(k.op.input, Input::Claim { .. }) && !matches!(k.op.output, Output::Lost))
            .filter(|k| {
                // Claims whose interval overlaps the sub-history's.
                let c = &history.calls[k.call];
                c.call_ns <= to && c.ret_ns.unwrap_or(u64::MAX) >= from
            })
            .map(|k| format!("#{}", k.call))
            .collect();
        let note = if among.is_empty() {
            String::new()
        } else {
            format!(
                "  checkpoints alone cannot explain this, and claims of the partition ran meanwhile: {} \
                 (a claim must not touch the checkpoint, C10)\n",
                among.join(", ")
            )
        };
        let rule = match (fenced, among.is_empty()) {
            (true, _) => "C13",
            (false, false) => "C10",
            (false, true) => "C9",
        };
        return (rule, note);
    }
    ("C7", String::new())
}
