//! Bad input and hostile names (C11).

use eventhubs_store_core::{Checkpoint, ErrorKind, Ownership, SetCheckpointOptions};

use crate::context::{CaseResult, Ctx, Failure, ensure};

/// Names every store must refuse with InvalidInput (C11).
pub fn refused_names() -> Vec<String> {
    vec![
        String::new(),
        ".".into(),
        "..".into(),
        "../escape".into(),
        "a/b".into(),
        "a\\b".into(),
        "..\\..\\escape".into(),
        "nul\0byte".into(),
        "line\nbreak".into(),
        "tab\there".into(),
        " leading".into(),
        "trailing ".into(),
        "x".repeat(257),
    ]
}

/// Names a store either stores faithfully (listed exactly, lower-cased) or refuses with
/// InvalidInput, writing nothing: never mangled, never colliding with another name.
pub fn hostile_names() -> Vec<String> {
    vec![
        "日本語".into(),
        "ÄÖÜ-Straße".into(),
        "émoji-🦀".into(),
        "x".repeat(256),
        "a b".into(),
        "...".into(),
        ".hidden".into(),
        "name.".into(),
        "%2e%2e".into(),
        "%2F".into(),
        "con".into(),
        "aux.txt".into(),
        "{tag}".into(),
        "a*b?c".into(),
        "a:b".into(),
        "a#b&c=d".into(),
        "-1".into(),
        "'quote\"".into(),
    ]
}

/// C11: invalid names in any position and oversized values fail with InvalidInput, and nothing
/// is written: not the bad record, and not the valid records of the same batch.
pub async fn c11_invalid_input_writes_nothing(ctx: &Ctx) -> CaseResult {
    let scope = ctx.scope("hub", "$default");
    for bad in refused_names() {
        let batch = vec![
            Ownership::new(scope.clone(), "0", "owner-a"),
            Ownership::new(scope.clone(), bad.clone(), "owner-a"),
        ];
        expect_invalid(
            ctx.store().claim_ownership(&batch, &Default::default()).await,
            &format!("claim of partition {bad:?}"),
        )?;
        let cp = Checkpoint::new(scope.clone(), bad.clone(), Some("1".into()), Some(1));
        expect_invalid(
            ctx.store()
                .set_checkpoint(&cp, &SetCheckpointOptions::default())
                .await,
            &format!("checkpoint of partition {bad:?}"),
        )?;
        ensure!(
            eventhubs_store_core::PartitionScope::new(ctx.namespace(), &bad, "g").is_err(),
            "C11",
            "PartitionScope accepted hub name {bad:?}"
        );
    }
    let oversized = "v".repeat(eventhubs_store_core::MAX_VALUE_BYTES + 1);
    expect_invalid(
        ctx.store()
            .claim_ownership(
                &[Ownership::new(scope.clone(), "0", oversized.clone())],
                &Default::default(),
            )
            .await,
        "claim with an oversized owner id",
    )?;
    expect_invalid(
        ctx.store()
            .set_checkpoint(
                &Checkpoint::new(scope.clone(), "0", Some(oversized), None),
                &SetCheckpointOptions::default(),
            )
            .await,
        "checkpoint with an oversized offset",
    )?;
    expect_invalid(
        ctx.store()
            .claim_ownership(
                &[
                    Ownership::new(scope.clone(), "0", "a"),
                    Ownership::new(scope.clone(), "0", "b"),
                ],
                &Default::default(),
            )
            .await,
        "a batch naming partition 0 twice",
    )?;
    let owners = ctx.ownership("C11", &scope).await?;
    ensure!(
        owners.is_empty(),
        "C11",
        "refused claims wrote ownership records: {owners:?}"
    );
    let cps = ctx.checkpoints("C11", &scope).await?;
    ensure!(cps.is_empty(), "C11", "refused checkpoints were written: {cps:?}");
    Ok(())
}

/// C11: each hostile-but-valid name, as partition id and as hub and group name, is either stored
/// faithfully or refused with InvalidInput with nothing written. Every acknowledged write is
/// read back exactly, under the (lower-cased) name it was written under, with the values
/// written; a refused one leaves nothing behind; a listing that fails is a failure, never
/// "nothing there".
pub async fn c11_hostile_names_round_trip_or_are_refused(ctx: &Ctx) -> CaseResult {
    let scope = ctx.scope("hub", "$default");
    let mut claimed: Vec<String> = Vec::new();
    let mut checkpointed: Vec<String> = Vec::new();
    for name in hostile_names() {
        let claim = ctx
            .store()
            .claim_ownership(
                &[Ownership::new(scope.clone(), name.clone(), "owner-a")],
                &Default::default(),
            )
            .await;
        match claim {
            Ok(won) => {
                ensure!(
                    won.len() == 1,
                    "C11",
                    "create of partition {name:?} should win, got {won:?}"
                );
                ensure!(
                    won[0].partition_id == name.to_lowercase() && won[0].owner_id == "owner-a",
                    "C11",
                    "partition {name:?} came back as {:?} owned by {:?}",
                    won[0].partition_id,
                    won[0].owner_id
                );
                claimed.push(name.to_lowercase());
            }
            Err(e) if e.kind() == ErrorKind::InvalidInput => {}
            Err(e) => {
                return Err(Failure::new(
                    "C11",
                    format!("claim of partition {name:?}: expected Ok or InvalidInput, got {e}"),
                ));
            }
        }
        let cp = Checkpoint::new(scope.clone(), name.clone(), Some(format!("7-{name}")), Some(7));
        match ctx
            .store()
            .set_checkpoint(&cp, &SetCheckpointOptions::default())
            .await
        {
            Ok(()) => checkpointed.push(name.clone()),
            Err(e) if e.kind() == ErrorKind::InvalidInput => {}
            Err(e) => {
                return Err(Failure::new(
                    "C11",
                    format!("checkpoint of partition {name:?}: expected Ok or InvalidInput, got {e}"),
                ));
            }
        }
    }
    let owners = ctx.ownership("C11", &scope).await?;
    let mut listed: Vec<String> = owners.iter().map(|o| o.partition_id.clone()).collect();
    listed.sort();
    claimed.sort();
    ensure!(
        listed == claimed,
        "C11",
        "every acknowledged claim, and nothing else, must be listed under its name: wrote \
         {claimed:?}, listed {listed:?}"
    );
    if let Some(o) = owners
        .iter()
        .find(|o| o.owner_id != "owner-a" || o.scope != scope)
    {
        return Err(Failure::new("C11", format!("a claim came back mangled: {o:?}")));
    }
    let listed = ctx.checkpoints("C11", &scope).await?;
    let mut expected: Vec<(String, String)> = checkpointed
        .iter()
        .map(|n| (n.to_lowercase(), format!("7-{n}")))
        .collect();
    expected.sort();
    let mut got: Vec<(String, String)> = listed
        .iter()
        .map(|c| (c.partition_id.clone(), c.offset.clone().unwrap_or_default()))
        .collect();
    got.sort();
    ensure!(
        got == expected,
        "C11",
        "every acknowledged checkpoint, and nothing else, must be listed under its name with its \
         offset: wrote {expected:?}, listed {got:?}"
    );
    if let Some(c) = listed
        .iter()
        .find(|c| c.sequence_number != Some(7) || c.scope != scope)
    {
        return Err(Failure::new(
            "C11",
            format!("a checkpoint came back mangled: {c:?}"),
        ));
    }
    // Hostile hub and group names: a scope either works faithfully or is refused.
    for name in hostile_names() {
        let hostile =
            eventhubs_store_core::PartitionScope::new(ctx.namespace(), &name, &name).map_err(|e| {
                Failure::new(
                    "C11",
                    format!("PartitionScope refused the valid hub and group name {name:?}: {e}"),
                )
            })?;
        hostile_scope_round_trips(ctx, &hostile).await?;
    }
    Ok(())
}

/// One claim and one checkpoint in `hostile`: each either acknowledged and listed exactly in
/// that scope alone, or refused with InvalidInput and absent.
async fn hostile_scope_round_trips(ctx: &Ctx, hostile: &eventhubs_store_core::PartitionScope) -> CaseResult {
    let claim = ctx
        .store()
        .claim_ownership(
            &[Ownership::new(hostile.clone(), "0", "owner-a")],
            &Default::default(),
        )
        .await;
    let claimed = match claim {
        Ok(won) => {
            ensure!(
                won.len() == 1,
                "C11",
                "create in scope {hostile} should win, got {won:?}"
            );
            true
        }
        Err(e) if e.kind() == ErrorKind::InvalidInput => false,
        Err(e) => {
            return Err(Failure::new(
                "C11",
                format!("claim in scope {hostile}: expected Ok or InvalidInput, got {e}"),
            ));
        }
    };
    let owners = ctx.ownership("C11", hostile).await?;
    if claimed {
        ensure!(
            owners.len() == 1
                && owners[0].scope == *hostile
                && owners[0].partition_id == "0"
                && owners[0].owner_id == "owner-a",
            "C11",
            "scope {hostile} should list its one record exactly, got {owners:?}"
        );
    } else {
        ensure!(
            owners.is_empty(),
            "C11",
            "refused scope {hostile} has records: {owners:?}"
        );
    }
    let cp = Checkpoint::new(hostile.clone(), "0", Some("42".into()), Some(42));
    let written = match ctx
        .store()
        .set_checkpoint(&cp, &SetCheckpointOptions::default())
        .await
    {
        Ok(()) => true,
        Err(e) if e.kind() == ErrorKind::InvalidInput => false,
        Err(e) => {
            return Err(Failure::new(
                "C11",
                format!("checkpoint in scope {hostile}: expected Ok or InvalidInput, got {e}"),
            ));
        }
    };
    let cps = ctx.checkpoints("C11", hostile).await?;
    if written {
        ensure!(
            cps.len() == 1
                && cps[0].scope == *hostile
                && cps[0].partition_id == "0"
                && cps[0].offset.as_deref() == Some("42")
                && cps[0].sequence_number == Some(42),
            "C11",
            "scope {hostile} should list its one checkpoint exactly, got {cps:?}"
        );
    } else {
        ensure!(
            cps.is_empty(),
            "C11",
            "refused scope {hostile} has checkpoints: {cps:?}"
        );
    }
    Ok(())
}

fn expect_invalid<T: std::fmt::Debug>(result: eventhubs_store_core::Result<T>, what: &str) -> CaseResult {
    match result {
        Err(e) if e.kind() == ErrorKind::InvalidInput => Ok(()),
        other => Err(Failure::new(
            "C11",
            format!("{what} must fail with InvalidInput, got {other:?}"),
        )),
    }
}
