//! Checkpoints (C9) and their independence from ownership (C10).

use eventhubs_store_core::{Checkpoint, ErrorKind, Ownership, SetCheckpointOptions};

use crate::context::{CaseResult, Ctx, Failure, ensure};

/// C9: set_checkpoint is an unconditional upsert; offsets are opaque strings and sequence
/// numbers exact i64s; each value round-trips exactly, and either may be absent.
pub async fn c9_checkpoint_values_round_trip(ctx: &Ctx) -> CaseResult {
    let scope = ctx.scope("hub", "$default");
    let values: Vec<(Option<&str>, Option<i64>)> = vec![
        (Some("0"), Some(0)),
        (Some("-1"), Some(-1)),
        (Some("12884901888"), Some(i64::MAX)),
        (Some("1:2:3"), Some(42)), // geo-replicated offsets are opaque
        (Some("00042"), None),     // leading zeros kept: not a number
        (Some("offset with spaces and = ; , \" '"), None),
        (None, Some(9_007_199_254_740_993)), // 2^53 + 1: not exact in a double
        (None, Some(i64::MIN + 1)),
    ];
    for (i, (offset, seq)) in values.iter().enumerate() {
        let pid = format!("{i}");
        let cp = Checkpoint::new(scope.clone(), pid.clone(), offset.map(String::from), *seq);
        ctx.set_checkpoint("C9", &cp).await?;
    }
    let listed = ctx.checkpoints("C9", &scope).await?;
    ensure!(
        listed.len() == values.len(),
        "C9",
        "wrote {} checkpoints, listed {}",
        values.len(),
        listed.len()
    );
    for (i, (offset, seq)) in values.iter().enumerate() {
        let pid = format!("{i}");
        let Some(got) = listed.iter().find(|c| c.partition_id == pid) else {
            return Err(Failure::new(
                "C9",
                format!("checkpoint of partition {pid} is missing"),
            ));
        };
        ensure!(
            got.offset.as_deref() == *offset && got.sequence_number == *seq,
            "C9",
            "partition {pid}: wrote offset {offset:?} seq {seq:?}, read back offset {:?} seq {:?}",
            got.offset,
            got.sequence_number
        );
    }
    // Upsert: overwrite with a lower value (checkpoints may move backwards on reset).
    let cp = Checkpoint::new(scope.clone(), "0", Some("5".into()), Some(3));
    ctx.set_checkpoint("C9", &cp).await?;
    let cp = Checkpoint::new(scope.clone(), "0", Some("1".into()), Some(1));
    ctx.set_checkpoint("C9", &cp).await?;
    let listed = ctx.checkpoints("C9", &scope).await?;
    let zero: Vec<_> = listed.iter().filter(|c| c.partition_id == "0").collect();
    ensure!(
        zero.len() == 1 && zero[0].offset.as_deref() == Some("1") && zero[0].sequence_number == Some(1),
        "C9",
        "set_checkpoint must overwrite unconditionally; partition 0 reads {zero:?}"
    );
    Ok(())
}

/// C9 with C11: a checkpoint with neither offset nor sequence number, or an empty offset, is
/// refused with InvalidInput and nothing is written.
pub async fn c9_checkpoint_needs_offset_or_sequence_number(ctx: &Ctx) -> CaseResult {
    let scope = ctx.scope("hub", "$default");
    for (offset, what) in [
        (None, "neither offset nor sequence number"),
        (Some(String::new()), "an empty offset"),
    ] {
        let cp = Checkpoint::new(scope.clone(), "0", offset, None);
        match ctx
            .store()
            .set_checkpoint(&cp, &SetCheckpointOptions::default())
            .await
        {
            Err(e) if e.kind() == ErrorKind::InvalidInput => {}
            other => {
                return Err(Failure::new(
                    "C9",
                    format!("a checkpoint with {what} must fail with InvalidInput, got {other:?}"),
                ));
            }
        }
    }
    let listed = ctx.checkpoints("C9", &scope).await?;
    ensure!(
        listed.is_empty(),
        "C9",
        "refused checkpoints were written: {listed:?}"
    );
    Ok(())
}

/// C10: checkpoints and ownerships are separate records; writing one never creates, changes or
/// hides the other.
pub async fn c10_checkpoints_and_ownership_are_independent(ctx: &Ctx) -> CaseResult {
    let scope = ctx.scope("hub", "$default");
    let cp = Checkpoint::new(scope.clone(), "0", Some("100".into()), Some(7));
    ctx.set_checkpoint("C10", &cp).await?;
    let owners = ctx.ownership("C10", &scope).await?;
    ensure!(
        owners.is_empty(),
        "C10",
        "writing a checkpoint created ownership records: {owners:?}"
    );

    let won = ctx
        .claim("C10", &[Ownership::new(scope.clone(), "0", "owner-a")])
        .await?;
    ensure!(
        won.len() == 1,
        "C10",
        "a checkpoint must not stop the first ownership claim (C3), got {won:?}"
    );
    let cps = ctx.checkpoints("C10", &scope).await?;
    ensure!(
        cps == vec![cp.clone()],
        "C10",
        "claiming ownership changed checkpoints: {cps:?}"
    );

    let cp2 = Checkpoint::new(scope.clone(), "0", Some("200".into()), Some(8));
    ctx.set_checkpoint("C10", &cp2).await?;
    let owners = ctx.ownership("C10", &scope).await?;
    ensure!(
        owners.len() == 1 && owners[0].etag == won[0].etag && owners[0].owner_id == "owner-a",
        "C10",
        "writing a checkpoint changed the ownership record (etag or owner): before {won:?}, after {owners:?}"
    );
    let renewed = ctx
        .claim(
            "C10",
            &[Ownership::new(scope.clone(), "0", "owner-a").with_etag(won[0].etag.clone())],
        )
        .await?;
    ensure!(
        renewed.len() == 1,
        "C10",
        "the ownership etag must still work after a checkpoint write, got {renewed:?}"
    );
    Ok(())
}
