//! Claims: create (C3), update (C4), result (C5), batches (C6), relinquish (C8).

use eventhubs_store_core::{ETag, Ownership};

use crate::context::{CaseResult, Ctx, ensure};

/// C3: a claim without an etag wins only when no ownership exists for the partition.
pub async fn c3_create_only_when_absent(ctx: &Ctx) -> CaseResult {
    let scope = ctx.scope("hub", "$default");
    let won = ctx
        .claim("C3", &[Ownership::new(scope.clone(), "0", "owner-a")])
        .await?;
    ensure!(
        won.len() == 1,
        "C3",
        "first create of partition 0 should win, got {won:?}"
    );
    let again = ctx
        .claim("C3", &[Ownership::new(scope.clone(), "0", "owner-b")])
        .await?;
    ensure!(
        again.is_empty(),
        "C3",
        "a second create (no etag) of an owned partition won: {again:?}"
    );
    let listed = ctx.ownership("C3", &scope).await?;
    ensure!(
        listed.len() == 1 && listed[0].owner_id == "owner-a",
        "C3",
        "the stored owner should still be owner-a, listed {listed:?}"
    );
    Ok(())
}

/// C4: a claim with an etag wins only if it equals the stored etag; a wrong or stale etag loses,
/// and an etag for a partition that has no record loses.
pub async fn c4_update_requires_matching_etag(ctx: &Ctx) -> CaseResult {
    let scope = ctx.scope("hub", "$default");
    let first = ctx
        .claim("C4", &[Ownership::new(scope.clone(), "0", "owner-a")])
        .await?;
    ensure!(first.len() == 1, "C4", "setup create should win, got {first:?}");
    let etag1 = first[0].etag.clone();
    ensure!(etag1.is_some(), "C4", "a won claim must carry an etag (C5)");

    let bogus = Ownership::new(scope.clone(), "0", "owner-b").with_etag(Some(ETag::new("\"not-the-etag\"")));
    let lost = ctx.claim("C4", &[bogus]).await?;
    ensure!(lost.is_empty(), "C4", "a claim with a wrong etag won: {lost:?}");

    let renewed = ctx
        .claim(
            "C4",
            &[Ownership::new(scope.clone(), "0", "owner-b").with_etag(etag1.clone())],
        )
        .await?;
    ensure!(
        renewed.len() == 1,
        "C4",
        "a claim with the stored etag should win, got {renewed:?}"
    );

    let stale = ctx
        .claim(
            "C4",
            &[Ownership::new(scope.clone(), "0", "owner-c").with_etag(etag1.clone())],
        )
        .await?;
    ensure!(stale.is_empty(), "C4", "a claim with a stale etag won: {stale:?}");

    let missing = ctx
        .claim(
            "C4",
            &[Ownership::new(scope.clone(), "1", "owner-c").with_etag(etag1)],
        )
        .await?;
    ensure!(
        missing.is_empty(),
        "C4",
        "a claim with an etag on a partition without a record won: {missing:?}"
    );

    let listed = ctx.ownership("C4", &scope).await?;
    ensure!(
        listed.len() == 1 && listed[0].owner_id == "owner-b" && listed[0].etag == renewed[0].etag,
        "C4",
        "after the lost claims the record must be owner-b's with the renewed etag, listed {listed:?}"
    );
    Ok(())
}

/// C5: a won claim returns a fresh etag every time (never an earlier one of the partition), and
/// the listing shows exactly what the claim returned.
pub async fn c5_won_claim_returns_fresh_etag(ctx: &Ctx) -> CaseResult {
    let scope = ctx.scope("hub", "$default");
    let mut seen: Vec<ETag> = Vec::new();
    let mut etag = None;
    for round in 0..8 {
        let won = ctx
            .claim(
                "C5",
                &[Ownership::new(scope.clone(), "0", "owner-a").with_etag(etag.clone())],
            )
            .await?;
        ensure!(
            won.len() == 1,
            "C5",
            "renewal {round} with the current etag should win, got {won:?}"
        );
        let Some(fresh) = won[0].etag.clone() else {
            return Err(crate::Failure::new(
                "C5",
                format!("won claim {round} came back without an etag"),
            ));
        };
        ensure!(
            !seen.contains(&fresh),
            "C5",
            "renewal {round} returned etag {fresh:?} issued before"
        );
        ensure!(
            won[0].owner_id == "owner-a" && won[0].partition_id == "0",
            "C5",
            "won claim changed fields: {won:?}"
        );
        let listed = ctx.ownership("C5", &scope).await?;
        ensure!(
            listed.len() == 1 && listed[0].etag.as_ref() == Some(&fresh),
            "C5",
            "listing after renewal {round} should show etag {fresh:?}, listed {listed:?}"
        );
        ensure!(
            listed[0].last_modified_time == won[0].last_modified_time,
            "C5",
            "listing shows last_modified_time {:?} but the claim returned {:?}",
            listed[0].last_modified_time,
            won[0].last_modified_time
        );
        seen.push(fresh.clone());
        etag = Some(fresh);
    }
    Ok(())
}

/// C5: `last_modified_time` comes from the store's clock (ignored on input), close to now, and
/// never moves backwards when the claim is renewed, so expiry computed from it is sound.
pub async fn c5_last_modified_time_from_store_clock(ctx: &Ctx) -> CaseResult {
    let scope = ctx.scope("hub", "$default");
    let mut input = Ownership::new(scope.clone(), "0", "owner-a");
    input.last_modified_time = Some(time::OffsetDateTime::UNIX_EPOCH);
    let before = time::OffsetDateTime::now_utc();
    let won = ctx.claim("C5", &[input]).await?;
    ensure!(won.len() == 1, "C5", "create should win, got {won:?}");
    let Some(t0) = won[0].last_modified_time else {
        return Err(crate::Failure::new(
            "C5",
            "a won claim came back without last_modified_time",
        ));
    };
    // Allow generous skew between this process and a remote server's clock.
    let skew = time::Duration::minutes(5);
    ensure!(
        t0 > before - skew && t0 < before + skew,
        "C5",
        "last_modified_time {t0} is not the store's clock (input said 1970, local now is {before})"
    );
    let mut previous = t0;
    let mut etag = won[0].etag.clone();
    for round in 0..5 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let renewed = ctx
            .claim(
                "C5",
                &[Ownership::new(scope.clone(), "0", "owner-a").with_etag(etag)],
            )
            .await?;
        ensure!(
            renewed.len() == 1,
            "C5",
            "renewal {round} should win, got {renewed:?}"
        );
        let t = renewed[0].last_modified_time;
        ensure!(
            t.is_some_and(|t| t >= previous),
            "C5",
            "renewal {round} moved last_modified_time backwards: {previous} then {t:?}"
        );
        previous = t.unwrap_or(previous);
        etag = renewed[0].etag.clone();
    }
    Ok(())
}

/// C6: in one batch each claim wins or loses on its own: won ones are returned, lost ones are
/// left out, and the call does not fail.
pub async fn c6_batch_claims_win_or_lose_individually(ctx: &Ctx) -> CaseResult {
    let scope = ctx.scope("hub", "$default");
    let setup = ctx
        .claim(
            "C6",
            &[
                Ownership::new(scope.clone(), "1", "other"),
                Ownership::new(scope.clone(), "3", "other"),
            ],
        )
        .await?;
    ensure!(setup.len() == 2, "C6", "setup claims should win, got {setup:?}");
    let etag3 = setup
        .iter()
        .find(|o| o.partition_id == "3")
        .and_then(|o| o.etag.clone());

    let batch: Vec<Ownership> = vec![
        Ownership::new(scope.clone(), "0", "me"), // absent: wins
        Ownership::new(scope.clone(), "1", "me"), // exists, no etag: loses
        Ownership::new(scope.clone(), "2", "me").with_etag(Some(ETag::new("nope"))), // absent with etag: loses
        Ownership::new(scope.clone(), "3", "me").with_etag(etag3),                   // right etag: wins
    ];
    let mut won = ctx.claim("C6", &batch).await?;
    won.sort_by(|a, b| a.partition_id.cmp(&b.partition_id));
    let ids: Vec<&str> = won.iter().map(|o| o.partition_id.as_str()).collect();
    ensure!(
        ids == ["0", "3"],
        "C6",
        "expected partitions 0 and 3 to win alone, won {ids:?}"
    );
    ensure!(
        won.iter().all(|o| o.owner_id == "me"),
        "C6",
        "won claims must carry the claimed owner: {won:?}"
    );

    let listed = ctx.ownership("C6", &scope).await?;
    let owners: Vec<(&str, &str)> = listed
        .iter()
        .map(|o| (o.partition_id.as_str(), o.owner_id.as_str()))
        .collect();
    ensure!(
        owners == [("0", "me"), ("1", "other"), ("3", "me")],
        "C6",
        "stored records after the batch should be 0:me 1:other 3:me, got {owners:?}"
    );

    let big: Vec<Ownership> = (0..32)
        .map(|p| Ownership::new(scope.clone(), format!("{}", 100 + p), "me"))
        .collect();
    let won = ctx.claim("C6", &big).await?;
    ensure!(
        won.len() == 32,
        "C6",
        "a 32-partition create batch should win all 32, won {}",
        won.len()
    );
    Ok(())
}

/// C8: claiming with owner id `""` and the current etag relinquishes; the partition is listed
/// with owner `""`, and can then be claimed with its etag by anyone.
pub async fn c8_relinquish_lists_empty_owner(ctx: &Ctx) -> CaseResult {
    let scope = ctx.scope("hub", "$default");
    let won = ctx
        .claim("C8", &[Ownership::new(scope.clone(), "0", "owner-a")])
        .await?;
    ensure!(won.len() == 1, "C8", "create should win, got {won:?}");
    let released = ctx
        .claim(
            "C8",
            &[Ownership::new(scope.clone(), "0", "").with_etag(won[0].etag.clone())],
        )
        .await?;
    ensure!(
        released.len() == 1,
        "C8",
        "relinquish with the current etag should win, got {released:?}"
    );
    ensure!(
        released[0].owner_id.is_empty(),
        "C8",
        "relinquished record should have owner \"\": {released:?}"
    );
    let listed = ctx.ownership("C8", &scope).await?;
    ensure!(
        listed.len() == 1 && listed[0].owner_id.is_empty() && listed[0].etag == released[0].etag,
        "C8",
        "a relinquished partition is listed with owner \"\" and its etag, listed {listed:?}"
    );
    let taken = ctx
        .claim(
            "C8",
            &[Ownership::new(scope.clone(), "0", "owner-b").with_etag(listed[0].etag.clone())],
        )
        .await?;
    ensure!(
        taken.len() == 1,
        "C8",
        "a relinquished partition should be claimable with its etag, got {taken:?}"
    );
    Ok(())
}
