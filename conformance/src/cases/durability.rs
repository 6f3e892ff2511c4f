//! Durability across a reopen (C12) and the optional tool operations.

use eventhubs_store_core::{Checkpoint, ErrorKind, Ownership};

use crate::context::{CaseResult, Ctx, Failure, OrFail, ensure};

/// C12: after `Ok`, ownership and checkpoints are visible through a freshly opened handle, as a
/// restarted process would see them, with the same etags. Not applicable to stores that cannot
/// be reopened (they must declare `durable: false`).
pub async fn c12_writes_survive_reopen(ctx: &Ctx) -> CaseResult {
    let scope = ctx.scope("hub", "$default");
    let won = ctx
        .claim("C12", &[Ownership::new(scope.clone(), "0", "owner-a")])
        .await?;
    ensure!(won.len() == 1, "C12", "create should win, got {won:?}");
    let cp = Checkpoint::new(scope.clone(), "0", Some("4242".into()), Some(4242));
    ctx.set_checkpoint("C12", &cp).await?;

    let Some(reopened) = ctx.reopen().await? else {
        ensure!(
            !ctx.store().capabilities().durable,
            "C12",
            "the store declares itself durable but its harness cannot reopen it"
        );
        return ctx.not_applicable("the store declares durable: false and cannot be reopened");
    };
    let owners = reopened
        .list_ownership(&scope)
        .await
        .or_fail("C12", "list_ownership after reopen")?;
    ensure!(
        owners.len() == 1 && owners[0].owner_id == "owner-a" && owners[0].etag == won[0].etag,
        "C12",
        "after reopening, ownership should be {won:?}, got {owners:?}"
    );
    let cps = reopened
        .list_checkpoints(&scope)
        .await
        .or_fail("C12", "list_checkpoints after reopen")?;
    ensure!(
        cps == vec![cp],
        "C12",
        "after reopening, the checkpoint is missing or changed: {cps:?}"
    );
    let renewed = reopened
        .claim_ownership(
            &[Ownership::new(scope.clone(), "0", "owner-a").with_etag(won[0].etag.clone())],
            &Default::default(),
        )
        .await
        .or_fail("C12", "claim after reopen")?;
    ensure!(
        renewed.len() == 1,
        "C12",
        "the etag from before the reopen must still claim, got {renewed:?}"
    );
    Ok(())
}

/// Tools: `delete_checkpoint` removes exactly one checkpoint and no ownership (C10), and
/// `list_scopes` lists every scope with records; stores without the capabilities say
/// Unsupported.
pub async fn tools_delete_checkpoint_and_list_scopes(ctx: &Ctx) -> CaseResult {
    let scope = ctx.scope("hub", "$default");
    let other = ctx.scope("hub", "other");
    ctx.set_checkpoint(
        "C10",
        &Checkpoint::new(scope.clone(), "0", Some("1".into()), Some(1)),
    )
    .await?;
    ctx.set_checkpoint(
        "C10",
        &Checkpoint::new(scope.clone(), "1", Some("1".into()), Some(1)),
    )
    .await?;
    let won = ctx
        .claim("C10", &[Ownership::new(scope.clone(), "0", "owner-a")])
        .await?;
    ensure!(won.len() == 1, "C3", "create should win, got {won:?}");
    ctx.claim("C10", &[Ownership::new(other.clone(), "0", "owner-a")])
        .await?;

    let caps = ctx.store().capabilities();
    let deleted = ctx.store().delete_checkpoint(&scope, "0").await;
    if caps.delete_checkpoint {
        ensure!(
            matches!(deleted, Ok(true)),
            "C10",
            "delete_checkpoint of an existing checkpoint should be Ok(true), got {deleted:?}"
        );
        let again = ctx.store().delete_checkpoint(&scope, "0").await;
        ensure!(
            matches!(again, Ok(false)),
            "C10",
            "deleting a missing checkpoint should be Ok(false), got {again:?}"
        );
        let cps = ctx.checkpoints("C10", &scope).await?;
        ensure!(
            cps.len() == 1 && cps[0].partition_id == "1",
            "C10",
            "delete removed the wrong checkpoints: {cps:?}"
        );
        let owners = ctx.ownership("C10", &scope).await?;
        ensure!(
            owners.len() == 1 && owners[0].etag == won[0].etag,
            "C10",
            "deleting a checkpoint touched ownership: {owners:?}"
        );
    } else {
        ensure!(
            matches!(&deleted, Err(e) if e.kind() == ErrorKind::Unsupported),
            "C10",
            "a store without delete_checkpoint must answer Unsupported, got {deleted:?}"
        );
    }

    let scopes = ctx.store().list_scopes().await;
    if caps.list_scopes {
        let scopes = scopes.map_err(|e| Failure::new("C1", format!("list_scopes failed: {e}")))?;
        ensure!(
            scopes.contains(&scope) && scopes.contains(&other),
            "C1",
            "list_scopes must include {scope} and {other}, got {scopes:?}"
        );
        ensure!(
            !scopes.contains(&ctx.scope("hub", "never-used")),
            "C2",
            "list_scopes listed a scope without records"
        );
    } else {
        ensure!(
            matches!(&scopes, Err(e) if e.kind() == ErrorKind::Unsupported),
            "C1",
            "a store without list_scopes must answer Unsupported, got {scopes:?}"
        );
    }
    Ok(())
}
