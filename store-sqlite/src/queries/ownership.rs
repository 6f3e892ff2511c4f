//! Ownership records: listing and the claim batch (C3–C8).

use eventhubs_store_core::{ETag, Ownership, PartitionScope, Result};
use rusqlite::{Connection, OptionalExtension, ToSql, Transaction, params};

use super::scope_params;
use crate::clock::{from_micros, now_micros};
use crate::error::sqlite_error;

/// Every ownership record of `scope` (C2), relinquished ones included (C8).
pub(crate) fn list_ownership(conn: &Connection, scope: &PartitionScope) -> Result<Vec<Ownership>> {
    let fail = |e| sqlite_error("list_ownership", e);
    let [namespace, event_hub, consumer_group] = scope_params(scope);
    let mut stmt = conn
        .prepare_cached(
            "SELECT partition_id, owner_id, etag, last_modified_us FROM ownership
             WHERE namespace = ?1 AND event_hub = ?2 AND consumer_group = ?3
             ORDER BY partition_id",
        )
        .map_err(fail)?;
    let rows = stmt
        .query_map(params![namespace, event_hub, consumer_group], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, i64>(3)?,
            ))
        })
        .map_err(fail)?;
    let mut out = Vec::new();
    for row in rows {
        let (partition_id, owner_id, etag, modified_us) = row.map_err(fail)?;
        out.push(Ownership {
            scope: scope.clone(),
            partition_id,
            owner_id,
            etag: Some(ETag::new(etag)),
            last_modified_time: Some(from_micros(modified_us)?),
        });
    }
    Ok(out)
}

/// Applies a whole, already normalised claim batch inside the caller's `BEGIN IMMEDIATE`
/// transaction and returns the won claims (C6).
///
/// - no etag: `INSERT … ON CONFLICT DO NOTHING` wins only if no record exists (C3);
/// - an etag: `UPDATE … WHERE etag = expected` wins only if it matches (C4);
/// - each win gets a fresh random etag and `max(previous, now)` as its time (C5);
/// - the write lock is held from the first statement to the commit, so of concurrent claims
///   with one expected etag, in this or any other process, exactly one matches (C7).
pub(crate) fn claim_batch(tx: &Transaction<'_>, claims: Vec<Ownership>) -> Result<Vec<Ownership>> {
    let fail = |e| sqlite_error("claim_ownership", e);
    // Read the clock under the write lock, so times follow the order of commits.
    let now = now_micros();
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO ownership
                 (namespace, event_hub, consumer_group, partition_id, owner_id, etag, last_modified_us)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (namespace, event_hub, consumer_group, partition_id) DO NOTHING",
        )
        .map_err(fail)?;
    let mut update = tx
        .prepare_cached(
            "UPDATE ownership
             SET owner_id = ?5, etag = ?6, last_modified_us = max(last_modified_us, ?7)
             WHERE namespace = ?1 AND event_hub = ?2 AND consumer_group = ?3 AND partition_id = ?4
               AND etag = ?8
             RETURNING last_modified_us",
        )
        .map_err(fail)?;
    let mut won = Vec::new();
    for claim in claims {
        let [namespace, event_hub, consumer_group] = scope_params(&claim.scope);
        let etag = new_etag();
        let expected = claim.etag.as_ref().map(ETag::as_str);
        // ?1–?7 are shared by both statements; the update adds the expected etag as ?8.
        let row: [&dyn ToSql; 8] = [
            &namespace,
            &event_hub,
            &consumer_group,
            &claim.partition_id,
            &claim.owner_id,
            &etag,
            &now,
            &expected,
        ];
        let modified_us = if expected.is_none() {
            let inserted = insert.execute(&row[..7]).map_err(fail)?;
            (inserted == 1).then_some(now)
        } else {
            update
                .query_row(&row[..], |r| r.get::<_, i64>(0))
                .optional()
                .map_err(fail)?
        };
        if let Some(modified_us) = modified_us {
            won.push(Ownership {
                etag: Some(ETag::new(etag)),
                last_modified_time: Some(from_micros(modified_us)?),
                ..claim
            });
        }
    }
    Ok(won)
}

/// A fresh etag: a random (v4) UUID, unique across processes, restarts and re-created files
/// (C5), unlike a counter that would start over with a new file.
fn new_etag() -> String {
    uuid::Uuid::new_v4().to_string()
}
