//! Checkpoint records: listing, the upsert (C9) with optional fencing (C13), and deletion.

use eventhubs_store_core::{Checkpoint, PartitionScope, Result};
use rusqlite::{Connection, Transaction, params};

use super::scope_params;
use crate::error::sqlite_error;

/// Every checkpoint of `scope` (C2), values exactly as written (C9).
pub(crate) fn list_checkpoints(conn: &Connection, scope: &PartitionScope) -> Result<Vec<Checkpoint>> {
    let fail = |e| sqlite_error("list_checkpoints", e);
    let [namespace, event_hub, consumer_group] = scope_params(scope);
    let mut stmt = conn
        .prepare_cached(
            "SELECT partition_id, offset_value, sequence_number FROM checkpoint
             WHERE namespace = ?1 AND event_hub = ?2 AND consumer_group = ?3
             ORDER BY partition_id",
        )
        .map_err(fail)?;
    let rows = stmt
        .query_map(params![namespace, event_hub, consumer_group], |row| {
            Ok(Checkpoint {
                scope: scope.clone(),
                partition_id: row.get(0)?,
                offset: row.get(1)?,
                sequence_number: row.get(2)?,
            })
        })
        .map_err(fail)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
}

/// Upserts a checkpoint; returns whether it wrote.
///
/// - `required_owner: None`: the unconditional upsert (C9); always writes.
/// - `Some(owner)`: fenced (C13): one statement that writes only while `owner` (never `""`)
///   holds the partition's ownership, so no other writer can slip in between the check and the
///   write.
///
/// Never touches ownership (C10).
pub(crate) fn upsert_checkpoint(
    tx: &Transaction<'_>,
    checkpoint: &Checkpoint,
    required_owner: Option<&str>,
) -> Result<bool> {
    let [namespace, event_hub, consumer_group] = scope_params(&checkpoint.scope);
    tx.prepare_cached(
        "INSERT INTO checkpoint
             (namespace, event_hub, consumer_group, partition_id, offset_value, sequence_number)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6
         WHERE ?7 IS NULL OR EXISTS (
             SELECT 1 FROM ownership
             WHERE namespace = ?1 AND event_hub = ?2 AND consumer_group = ?3 AND partition_id = ?4
               AND owner_id = ?7 AND owner_id <> ''
         )
         ON CONFLICT (namespace, event_hub, consumer_group, partition_id)
         DO UPDATE SET offset_value = excluded.offset_value, sequence_number = excluded.sequence_number",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            namespace,
            event_hub,
            consumer_group,
            checkpoint.partition_id,
            checkpoint.offset,
            checkpoint.sequence_number,
            required_owner
        ])
    })
    .map(|written| written == 1)
    .map_err(|e| sqlite_error("set_checkpoint", e))
}

/// Deletes one checkpoint; whether one existed. Never touches ownership (C10).
pub(crate) fn delete_checkpoint(
    tx: &Transaction<'_>,
    scope: &PartitionScope,
    partition_id: &str,
) -> Result<bool> {
    let [namespace, event_hub, consumer_group] = scope_params(scope);
    tx.prepare_cached(
        "DELETE FROM checkpoint
         WHERE namespace = ?1 AND event_hub = ?2 AND consumer_group = ?3 AND partition_id = ?4",
    )
    .and_then(|mut stmt| stmt.execute(params![namespace, event_hub, consumer_group, partition_id]))
    .map(|deleted| deleted > 0)
    .map_err(|e| sqlite_error("delete_checkpoint", e))
}
