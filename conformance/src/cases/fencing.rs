//! Fenced checkpoints (C13).

use eventhubs_store_core::{Checkpoint, ErrorKind, Ownership, SetCheckpointOptions};

use crate::context::{CaseResult, Ctx, Failure, ensure};

/// C13: a fenced checkpoint is written only while the required owner holds the partition;
/// otherwise it fails with OwnershipLost and writes nothing. Stores that do not declare the
/// capability must refuse with Unsupported and write nothing.
pub async fn c13_fenced_checkpoint_requires_current_owner(ctx: &Ctx) -> CaseResult {
    let scope = ctx.scope("hub", "$default");
    let fenced = |owner: &str| SetCheckpointOptions::fenced(owner);
    let cp = |seq: i64| Checkpoint::new(scope.clone(), "0", Some(format!("{seq}")), Some(seq));

    if !ctx.store().capabilities().fenced_checkpoints {
        let result = ctx.store().set_checkpoint(&cp(1), &fenced("owner-a")).await;
        ensure!(
            matches!(&result, Err(e) if e.kind() == ErrorKind::Unsupported),
            "C13",
            "a store without fenced_checkpoints must refuse a fenced write with Unsupported, got {result:?}"
        );
        let cps = ctx.checkpoints("C13", &scope).await?;
        ensure!(
            cps.is_empty(),
            "C13",
            "a refused fenced write was stored: {cps:?}"
        );
        return Ok(());
    }

    expect_lost(
        ctx.store().set_checkpoint(&cp(1), &fenced("owner-a")).await,
        "a fenced write on an unowned partition",
    )?;
    let won = ctx
        .claim("C13", &[Ownership::new(scope.clone(), "0", "owner-a")])
        .await?;
    ensure!(won.len() == 1, "C13", "create should win, got {won:?}");
    ctx.store()
        .set_checkpoint(&cp(2), &fenced("owner-a"))
        .await
        .map_err(|e| {
            Failure::new(
                "C13",
                format!("a fenced write by the current owner must succeed, got {e}"),
            )
        })?;
    expect_lost(
        ctx.store().set_checkpoint(&cp(3), &fenced("owner-b")).await,
        "a fenced write by a non-owner",
    )?;

    // owner-b takes the partition over: the zombie owner-a can no longer move the checkpoint.
    let stolen = ctx
        .claim(
            "C13",
            &[Ownership::new(scope.clone(), "0", "owner-b").with_etag(won[0].etag.clone())],
        )
        .await?;
    ensure!(
        stolen.len() == 1,
        "C13",
        "takeover with the current etag should win, got {stolen:?}"
    );
    expect_lost(
        ctx.store().set_checkpoint(&cp(4), &fenced("owner-a")).await,
        "a fenced write by the previous owner",
    )?;
    // Relinquished: nobody holds it, and the empty owner id never passes the fence.
    let released = ctx
        .claim(
            "C13",
            &[Ownership::new(scope.clone(), "0", "").with_etag(stolen[0].etag.clone())],
        )
        .await?;
    ensure!(
        released.len() == 1,
        "C13",
        "relinquish should win, got {released:?}"
    );
    expect_lost(
        ctx.store().set_checkpoint(&cp(5), &fenced("")).await,
        "a fenced write with an empty owner id",
    )?;

    let cps = ctx.checkpoints("C13", &scope).await?;
    ensure!(
        cps.len() == 1 && cps[0].sequence_number == Some(2),
        "C13",
        "only the owner's fenced write (seq 2) may be stored, listed {cps:?}"
    );
    Ok(())
}

fn expect_lost(result: eventhubs_store_core::Result<()>, what: &str) -> CaseResult {
    match result {
        Err(e) if e.kind() == ErrorKind::OwnershipLost => Ok(()),
        other => Err(Failure::new(
            "C13",
            format!("{what} must fail with OwnershipLost, got {other:?}"),
        )),
    }
}
