//! Scope keys (C1) and isolation between scopes (C2).

use eventhubs_store_core::{Checkpoint, Ownership, PartitionScope};

use crate::context::{CaseResult, Ctx, ensure};

/// C1: namespace, hub, group and partition id are case-insensitive: a record written with
/// mixed case is listed lower-cased and is the same record as its lower-case spelling.
pub async fn c1_names_are_case_insensitive(ctx: &Ctx) -> CaseResult {
    let upper = ctx.scope_in("UPPER-", "OrdersHub", "$Default");
    let lower = ctx.scope_in("upper-", "ordershub", "$default");
    ensure!(
        upper == lower,
        "C1",
        "PartitionScope must lower-case names: {upper:?} vs {lower:?}"
    );

    let won = ctx
        .claim("C1", &[Ownership::new(upper.clone(), "P0", "owner-a")])
        .await?;
    ensure!(won.len() == 1, "C1", "create should win, got {won:?}");
    ensure!(
        won[0].partition_id == "p0",
        "C1",
        "a won claim must return the lower-cased partition id, got {:?}",
        won[0].partition_id
    );
    let again = ctx
        .claim("C1", &[Ownership::new(lower.clone(), "p0", "owner-b")])
        .await?;
    ensure!(
        again.is_empty(),
        "C1",
        "\"P0\" and \"p0\" must be one record: the second create won {again:?}"
    );

    ctx.set_checkpoint(
        "C1",
        &Checkpoint::new(upper.clone(), "P1", Some("5".into()), Some(5)),
    )
    .await?;
    ctx.set_checkpoint(
        "C1",
        &Checkpoint::new(lower.clone(), "p1", Some("6".into()), Some(6)),
    )
    .await?;
    let cps = ctx.checkpoints("C1", &lower).await?;
    ensure!(
        cps.len() == 1 && cps[0].partition_id == "p1" && cps[0].sequence_number == Some(6),
        "C1",
        "checkpoints of \"P1\" and \"p1\" must be one lower-cased record holding the last write, got {cps:?}"
    );
    let owners = ctx.ownership("C1", &upper).await?;
    ensure!(
        owners.len() == 1 && owners[0].partition_id == "p0" && owners[0].scope == lower,
        "C1",
        "listing must return lower-cased names, got {owners:?}"
    );
    ensure!(
        owners[0].scope.event_hub() == "ordershub" && owners[0].scope.consumer_group() == "$default",
        "C1",
        "listed scope must be lower-cased, got {}",
        owners[0].scope
    );
    Ok(())
}

/// C2: listing a scope returns exactly its records, never those of a scope whose names are
/// prefixes or extensions of its own (`a` vs `ab` vs `a.b`), in any of the three positions, and
/// partition `1` never shadows `10`.
pub async fn c2_scopes_are_isolated(ctx: &Ctx) -> CaseResult {
    let scopes: Vec<PartitionScope> = vec![
        ctx.scope_in("", "a", "g"),
        ctx.scope_in("", "ab", "g"),
        ctx.scope_in("", "a.b", "g"),
        ctx.scope_in("", "a", "gg"),
        ctx.scope_in("", "a", "g-"),
        ctx.scope_in("x", "a", "g"),
        ctx.scope_in("", "b", "a"),
    ];
    for (i, scope) in scopes.iter().enumerate() {
        let owner = format!("owner-{i}");
        let won = ctx
            .claim(
                "C2",
                &[
                    Ownership::new(scope.clone(), "1", owner.clone()),
                    Ownership::new(scope.clone(), "10", owner),
                ],
            )
            .await?;
        ensure!(
            won.len() == 2,
            "C2",
            "creates in scope {scope} should win (each scope is separate), got {won:?}"
        );
        ctx.set_checkpoint(
            "C2",
            &Checkpoint::new(scope.clone(), "1", Some(format!("{i}")), Some(i as i64)),
        )
        .await?;
    }
    for (i, scope) in scopes.iter().enumerate() {
        let owners = ctx.ownership("C2", scope).await?;
        let ids: Vec<&str> = owners.iter().map(|o| o.partition_id.as_str()).collect();
        ensure!(
            ids == ["1", "10"],
            "C2",
            "scope {scope} should list partitions 1 and 10, got {ids:?}"
        );
        for o in &owners {
            ensure!(
                o.scope == *scope && o.owner_id == format!("owner-{i}"),
                "C2",
                "listing scope {scope} returned a record of another scope: {o:?}"
            );
        }
        let cps = ctx.checkpoints("C2", scope).await?;
        ensure!(
            cps.len() == 1 && cps[0].scope == *scope && cps[0].sequence_number == Some(i as i64),
            "C2",
            "scope {scope} should list exactly its one checkpoint (seq {i}), got {cps:?}"
        );
    }
    let empty = ctx.scope_in("", "a", "h");
    let none = ctx.ownership("C2", &empty).await?;
    ensure!(
        none.is_empty(),
        "C2",
        "an unused scope {empty} listed records: {none:?}"
    );
    let none = ctx.checkpoints("C2", &empty).await?;
    ensure!(
        none.is_empty(),
        "C2",
        "an unused scope {empty} listed checkpoints: {none:?}"
    );
    Ok(())
}
