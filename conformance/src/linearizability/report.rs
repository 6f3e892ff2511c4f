//! Reports a person can read: the smallest non-linearizable sub-history as a timeline, and the
//! whole history as JSON plus an HTML page with an SVG timeline (one lane per client, one bar
//! per call from invocation to return, the offending calls in red), like Porcupine's
//! visualiser.

use std::fmt::Write as _;
use std::path::Path;

use super::checker::{Timed, Verdict, check};
use super::history::{Call, CallOutcome, History, KeyedOp, Request};
use super::model::{Input, Output, PartitionModel, PartitionOp};

/// The checker's budget for one partition's history (search steps).
pub const BUDGET: u64 = 20_000_000;

/// The model for `ops`, knowing the etags their won claims returned.
pub fn model_for(ops: &[KeyedOp]) -> PartitionModel {
    let mut model = PartitionModel::default();
    for k in ops {
        if let Output::Won(w) = &k.op.output {
            model.issued.insert(w.etag.clone());
        }
    }
    model
}

/// The checker's view of `ops`.
pub fn timed(history: &History, ops: &[KeyedOp]) -> Vec<Timed<PartitionOp>> {
    ops.iter()
        .map(|k| {
            let call = &history.calls[k.call];
            Timed {
                op: k.op.clone(),
                call: call.call_ns,
                ret: if k.op.output == Output::Unknown {
                    None
                } else {
                    call.ret_ns
                },
            }
        })
        .collect()
}

/// Checks one partition's operations.
pub fn verdict(history: &History, ops: &[KeyedOp]) -> Verdict {
    check(&model_for(ops), &timed(history, ops), BUDGET)
}

/// Whether removing `removed` leaves a remaining read naming a value only it produced (the
/// smaller history would then fail for a reason the original did not have).
fn orphans_a_read(remaining: &[KeyedOp], removed: &KeyedOp) -> bool {
    match (&removed.op.input, &removed.op.output) {
        (_, Output::Won(w)) => remaining.iter().any(|k| {
            matches!(&k.op.output, Output::Ownership(Some(o)) if o.etag == w.etag)
                || matches!(&k.op.input, Input::Claim { etag: Some(e), .. } if *e == w.etag)
        }),
        (
            Input::Checkpoint {
                offset,
                sequence_number,
                ..
            },
            _,
        ) => {
            let produced = |k: &KeyedOp| {
                matches!(&k.op.input, Input::Checkpoint { offset: o, sequence_number: s, .. }
                    if o == offset && s == sequence_number)
            };
            remaining.iter().any(|k| {
                matches!(&k.op.output, Output::Checkpoint(Some(v))
                    if v.offset == *offset && v.sequence_number == *sequence_number)
            }) && !remaining.iter().any(produced)
        }
        (Input::Claim { .. }, Output::Unknown) => remaining
            .iter()
            .any(|k| matches!(&k.op.output, Output::Ownership(Some(_)))),
        _ => false,
    }
}

/// Whether `removed` may leave the history without changing what the rest must explain:
/// observations (reads, lost claims, refused fenced writes) only constrain, so they may always
/// go; an operation that may have changed the state (a won claim, a written checkpoint, an
/// unknown outcome) may go only when nothing of the record it changes started after it, and no
/// remaining read saw the value only it wrote.
fn removable(history: &History, remaining: &[KeyedOp], removed: &KeyedOp) -> bool {
    let observation = matches!(
        removed.op.output,
        Output::Lost | Output::OwnershipLost | Output::Refused | Output::Ownership(_) | Output::Checkpoint(_)
    ) || matches!(removed.op.input, Input::ReadOwnership | Input::ReadCheckpoint);
    if observation {
        return true;
    }
    let started = history.calls[removed.call].call_ns;
    let ownership = matches!(removed.op.input, Input::Claim { .. });
    let touches_same_record = |k: &KeyedOp| match (&k.op.input, ownership) {
        (Input::Claim { .. } | Input::ReadOwnership, true) => true,
        (Input::Checkpoint { fenced_by, .. }, true) => fenced_by.is_some(),
        (Input::Checkpoint { .. } | Input::ReadCheckpoint, false) => true,
        _ => false,
    };
    let later = remaining
        .iter()
        .any(|k| touches_same_record(k) && history.calls[k.call].call_ns > started);
    !later && !orphans_a_read(remaining, removed)
}

/// Shrinks a non-linearizable partition history to a smaller one that is still not
/// linearizable for the same reasons: drops operations one at a time, latest first, when
/// [`removable`] allows it and the rest stays non-linearizable.
pub fn shrink(history: &History, ops: &[KeyedOp]) -> Vec<KeyedOp> {
    let mut current = ops.to_vec();
    let mut changed = true;
    let mut rounds = 0;
    while changed && rounds < 8 {
        changed = false;
        rounds += 1;
        let mut i = current.len();
        while i > 0 {
            i -= 1;
            let mut candidate = current.clone();
            let removed = candidate.remove(i);
            if !removable(history, &candidate, &removed) {
                continue;
            }
            if matches!(verdict(history, &candidate), Verdict::NotLinearizable { .. }) {
                current = candidate;
                changed = true;
            }
        }
    }
    current
}

/// A value for a timeline: whole up to 48 characters (etags stay whole: two that share a prefix
/// must not look alike), else its head and tail.
fn short(s: &str) -> String {
    let count = s.chars().count();
    if count <= 48 {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(12).collect();
        let tail: String = s.chars().skip(count - 8).collect();
        format!("{head:?}…{tail:?} ({} bytes)", s.len())
    }
}

/// A modification time on the store's clock, as RFC 3339.
fn when(nanos: Option<i128>) -> String {
    nanos
        .and_then(|n| time::OffsetDateTime::from_unix_timestamp_nanos(n).ok())
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| "-".into())
}

/// One partition operation, in words.
pub fn describe(op: &PartitionOp) -> String {
    let input = match &op.input {
        Input::Claim { owner, etag } => match etag {
            None => format!("claim for {} (create)", short(owner)),
            Some(e) => format!("claim for {} expecting etag {}", short(owner), short(e)),
        },
        Input::Checkpoint {
            offset,
            sequence_number,
            fenced_by,
        } => {
            let fence = fenced_by
                .as_ref()
                .map(|o| format!(" fenced by {}", short(o)))
                .unwrap_or_default();
            format!(
                "checkpoint offset {} seq {:?}{fence}",
                offset.as_deref().map_or("-".into(), short),
                sequence_number
            )
        }
        Input::ReadOwnership => "list ownership".into(),
        Input::ReadCheckpoint => "list checkpoints".into(),
    };
    let output = match &op.output {
        Output::Won(w) => format!(
            "won: owner {} etag {} modified {}",
            short(&w.owner),
            short(&w.etag),
            when(w.modified)
        ),
        Output::Lost => "lost".into(),
        Output::Written => "ok".into(),
        Output::OwnershipLost => "OwnershipLost".into(),
        Output::Ownership(None) | Output::Checkpoint(None) => "no row".into(),
        Output::Ownership(Some(o)) => format!(
            "owner {} etag {} modified {}",
            short(&o.owner),
            short(&o.etag),
            when(o.modified)
        ),
        Output::Checkpoint(Some(v)) => format!(
            "offset {} seq {:?}",
            v.offset.as_deref().map_or("-".into(), short),
            v.sequence_number
        ),
        Output::Unknown => "unknown outcome (error or timeout)".into(),
        Output::Refused => "refused as unstorable (InvalidInput)".into(),
    };
    format!("{input} → {output}")
}

/// The timeline of `ops`: one line per operation in invocation order, with client, handle and
/// times in milliseconds.
pub fn timeline(history: &History, ops: &[KeyedOp]) -> String {
    let mut sorted: Vec<&KeyedOp> = ops.iter().collect();
    sorted.sort_by_key(|k| (history.calls[k.call].call_ns, k.call));
    let mut out = String::new();
    for k in sorted {
        let call = &history.calls[k.call];
        let ret = call
            .ret_ns
            .filter(|_| k.op.output != Output::Unknown)
            .map_or("      ?".to_owned(), |r| format!("{:8.3}", r as f64 / 1e6));
        let _ = writeln!(
            out,
            "  client {} (handle {}) {:8.3} → {} ms  call #{}: {}",
            call.client,
            call.handle,
            call.call_ns as f64 / 1e6,
            ret,
            call.id,
            describe(&k.op)
        );
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn call_label(call: &Call) -> String {
    let request = match &call.request {
        Request::Claim { claims } => format!(
            "claim {}",
            claims
                .iter()
                .map(|(p, o, e)| format!("{p}:{}{}", short(o), e.as_ref().map_or("", |_| "@etag")))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Request::Checkpoint {
            partition,
            sequence_number,
            fenced_by,
            ..
        } => format!(
            "checkpoint {partition} seq {sequence_number:?}{}",
            fenced_by
                .as_ref()
                .map_or(String::new(), |o| format!(" fenced {}", short(o)))
        ),
        Request::ListOwnership => "list ownership".into(),
        Request::ListCheckpoints => "list checkpoints".into(),
    };
    let outcome = match &call.outcome {
        CallOutcome::Claimed { won } => format!("won {}", won.len()),
        CallOutcome::Written => "ok".into(),
        CallOutcome::OwnershipLost => "OwnershipLost".into(),
        CallOutcome::Ownerships { rows } => format!("{} rows", rows.len()),
        CallOutcome::Checkpoints { rows } => format!("{} rows", rows.len()),
        CallOutcome::Unknown { error } => format!("unknown: {error}"),
        CallOutcome::Unstorable { error } => format!("unstorable: {error}"),
        CallOutcome::Refused { error } => format!("refused: {error}"),
    };
    format!("scope {} {request} → {outcome}", call.scope)
}

/// Writes `PATH.json` (the whole history) and `PATH.html` (its timeline; calls in `marked` in
/// red) next to `path`.
pub fn write_files(path: &Path, history: &History, marked: &[usize], summary: &str) -> std::io::Result<()> {
    let json = serde_json::to_string_pretty(history).map_err(std::io::Error::other)?;
    std::fs::write(path.with_extension("json"), json)?;
    let end = history
        .calls
        .iter()
        .map(|c| c.ret_ns.unwrap_or(c.call_ns))
        .max()
        .unwrap_or(1)
        .max(1);
    let clients = history.calls.iter().map(|c| c.client).max().map_or(1, |m| m + 1);
    let (width, lane) = (1600.0f64, 26.0f64);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="monospace" font-size="10">"#,
        width + 120.0,
        lane * clients as f64 + 40.0
    );
    for c in 0..clients {
        let _ = write!(
            svg,
            r#"<text x="4" y="{}">client {c}</text>"#,
            lane * c as f64 + 30.0
        );
    }
    for call in &history.calls {
        let x0 = 100.0 + width * call.call_ns as f64 / end as f64;
        let x1 = 100.0 + width * call.ret_ns.unwrap_or(end) as f64 / end as f64;
        let y = lane * call.client as f64 + 18.0;
        let color = if marked.contains(&call.id) {
            "#e53935"
        } else if matches!(call.outcome, CallOutcome::Unknown { .. }) {
            "#bdbdbd"
        } else {
            "#64b5f6"
        };
        let _ = write!(
            svg,
            r##"<rect x="{x0:.1}" y="{y:.1}" width="{:.1}" height="16" fill="{color}" stroke="#37474f" stroke-width="0.5"><title>#{} client {} handle {} {:.3}→{} ms: {}</title></rect>"##,
            (x1 - x0).max(1.5),
            call.id,
            call.client,
            call.handle,
            call.call_ns as f64 / 1e6,
            call.ret_ns
                .map_or("?".into(), |r| format!("{:.3}", r as f64 / 1e6)),
            escape(&call_label(call))
        );
    }
    svg.push_str("</svg>");
    let html = format!(
        "<!doctype html><meta charset=\"utf-8\"><title>history: {backend}</title>\
         <h1>Conformance history on {backend}</h1><p>{calls} calls, {handles} handles, {cuts} connections cut. \
         Hover a bar for the call; red bars are the smallest sub-history no order explains, grey ones have unknown outcomes.</p>\
         <pre>{summary}</pre><div style=\"overflow-x:auto\">{svg}</div>",
        backend = escape(&history.backend),
        calls = history.calls.len(),
        handles = history.handles,
        cuts = history.cuts,
        summary = escape(summary),
    );
    std::fs::write(path.with_extension("html"), html)
}
