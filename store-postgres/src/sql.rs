//! The SQL text of every store call, built once per store for its (quoted) schema.
//!
//! Each call is ONE statement, so each costs one round trip and is atomic on its own:
//! - a claim batch of any size is one `WITH … INSERT … ON CONFLICT DO NOTHING … UPDATE … WHERE
//!   etag = …` statement over `unnest` of the batch (C3, C4, C6, C7);
//! - a fenced checkpoint checks the owner and upserts in one statement (C13).

use std::sync::Arc;

/// The statements of one store, with the schema substituted.
#[derive(Debug, Clone)]
pub(crate) struct Statements {
    pub(crate) claim_batch: Arc<str>,
    pub(crate) list_ownership: Arc<str>,
    pub(crate) list_checkpoints: Arc<str>,
    pub(crate) set_checkpoint: Arc<str>,
    pub(crate) set_checkpoint_fenced: Arc<str>,
    pub(crate) delete_checkpoint: Arc<str>,
    pub(crate) list_scopes: Arc<str>,
}

impl Statements {
    /// Builds the statements for `schema`, already a quoted identifier.
    pub(crate) fn for_schema(schema: &str) -> Self {
        let fill = |template: &str| -> Arc<str> { template.replace("{s}", schema).into() };
        Statements {
            claim_batch: fill(CLAIM_BATCH),
            list_ownership: fill(LIST_OWNERSHIP),
            list_checkpoints: fill(LIST_CHECKPOINTS),
            set_checkpoint: fill(SET_CHECKPOINT),
            set_checkpoint_fenced: fill(SET_CHECKPOINT_FENCED),
            delete_checkpoint: fill(DELETE_CHECKPOINT),
            list_scopes: fill(LIST_SCOPES),
        }
    }
}

/// One claim batch in one statement. Parameters are parallel arrays, one element per claim:
/// `$1` namespace, `$2` event hub, `$3` consumer group, `$4` partition id, `$5` owner id,
/// `$6` expected etag (NULL: create). Returns `(idx, etag, last_modified_time)` of every won
/// claim, `idx` being the 1-based position in the arrays.
///
/// - `created` (C3): claims without etag insert; an existing row makes `ON CONFLICT DO NOTHING`
///   skip it (lost). Rows go in key order, so two concurrent batches never wait on each other in
///   a cycle.
/// - `locked` (C4, C7): rows whose etag equals the expected one are locked in key order
///   (`FOR UPDATE`); under READ COMMITTED a row changed by a concurrent claim is re-checked after
///   that claim commits, and its new etag no longer matches, so exactly one of N racing claims
///   wins. It hands on the locked row's `ctid` and the claim's position.
/// - `updated` (C5): each locked row, found again by its `ctid` (a TID scan: no second key
///   lookup, no join on the four key columns) and its etag re-checked, gets a fresh etag
///   (`gen_random_uuid()`) and `GREATEST(previous, clock_timestamp())` as `last_modified_time`:
///   the server's clock, never going backwards for one partition. A held row lock pins the
///   `ctid`, and a row that moved after the statement's snapshot fails the TID scan and is lost,
///   never won by mistake.
///
/// Per claim this is one key lookup, one row lock and one (HOT) update; the fixed part (parse,
/// plan, commit) is shared by the whole batch.
const CLAIM_BATCH: &str = r#"
WITH input AS (
    SELECT *
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
        WITH ORDINALITY AS i(namespace, event_hub, consumer_group, partition_id, owner_id, etag, idx)
),
created AS (
    INSERT INTO {s}.ownership AS o
        (namespace, event_hub, consumer_group, partition_id, owner_id, etag, last_modified_time)
    SELECT namespace, event_hub, consumer_group, partition_id, owner_id,
           gen_random_uuid()::text, clock_timestamp()
    FROM input
    WHERE etag IS NULL
    ORDER BY namespace, event_hub, consumer_group, partition_id
    ON CONFLICT DO NOTHING
    RETURNING o.namespace, o.event_hub, o.consumer_group, o.partition_id, o.etag, o.last_modified_time
),
locked AS MATERIALIZED (
    SELECT o.ctid AS row_id, i.idx, i.owner_id, i.etag
    FROM {s}.ownership AS o
    JOIN input AS i
      ON (o.namespace, o.event_hub, o.consumer_group, o.partition_id)
       = (i.namespace, i.event_hub, i.consumer_group, i.partition_id)
    WHERE i.etag IS NOT NULL AND o.etag = i.etag
    ORDER BY o.namespace, o.event_hub, o.consumer_group, o.partition_id
    FOR UPDATE OF o
),
updated AS (
    UPDATE {s}.ownership AS o
    SET owner_id = l.owner_id,
        etag = gen_random_uuid()::text,
        last_modified_time = GREATEST(o.last_modified_time, clock_timestamp())
    FROM locked AS l
    WHERE o.ctid = l.row_id AND o.etag = l.etag
    RETURNING l.idx, o.etag, o.last_modified_time
)
SELECT i.idx, c.etag, c.last_modified_time
FROM created AS c
JOIN input AS i
  ON (c.namespace, c.event_hub, c.consumer_group, c.partition_id)
   = (i.namespace, i.event_hub, i.consumer_group, i.partition_id)
UNION ALL
SELECT idx, etag, last_modified_time FROM updated
ORDER BY 1
"#;

const LIST_OWNERSHIP: &str = r#"
SELECT partition_id, owner_id, etag, last_modified_time
FROM {s}.ownership
WHERE namespace = $1 AND event_hub = $2 AND consumer_group = $3
"#;

const LIST_CHECKPOINTS: &str = r#"
SELECT partition_id, offset_value, sequence_number
FROM {s}.checkpoint
WHERE namespace = $1 AND event_hub = $2 AND consumer_group = $3
"#;

/// Unconditional upsert (C9): the whole record is replaced, an absent value becomes NULL.
const SET_CHECKPOINT: &str = r#"
INSERT INTO {s}.checkpoint AS c
    (namespace, event_hub, consumer_group, partition_id, offset_value, sequence_number, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, clock_timestamp())
ON CONFLICT (namespace, event_hub, consumer_group, partition_id) DO UPDATE
SET offset_value = EXCLUDED.offset_value,
    sequence_number = EXCLUDED.sequence_number,
    updated_at = EXCLUDED.updated_at
"#;

/// Fenced upsert (C13) in one statement: the ownership row is share-locked when `$7` holds it, so
/// a concurrent claim either commits before (and the owner check sees the new owner) or waits
/// until the checkpoint is written. Returns one row if written, none if refused.
const SET_CHECKPOINT_FENCED: &str = r#"
WITH holder AS (
    SELECT 1
    FROM {s}.ownership
    WHERE namespace = $1::text AND event_hub = $2::text AND consumer_group = $3::text
      AND partition_id = $4::text AND owner_id = $7::text
    FOR SHARE
)
INSERT INTO {s}.checkpoint AS c
    (namespace, event_hub, consumer_group, partition_id, offset_value, sequence_number, updated_at)
SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::bigint, clock_timestamp()
FROM holder
ON CONFLICT (namespace, event_hub, consumer_group, partition_id) DO UPDATE
SET offset_value = EXCLUDED.offset_value,
    sequence_number = EXCLUDED.sequence_number,
    updated_at = EXCLUDED.updated_at
RETURNING 1
"#;

const DELETE_CHECKPOINT: &str = r#"
DELETE FROM {s}.checkpoint
WHERE namespace = $1 AND event_hub = $2 AND consumer_group = $3 AND partition_id = $4
"#;

const LIST_SCOPES: &str = r#"
SELECT namespace, event_hub, consumer_group FROM {s}.ownership
UNION
SELECT namespace, event_hub, consumer_group FROM {s}.checkpoint
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_names_the_schema_and_no_placeholder_is_left() {
        let s = Statements::for_schema("\"my_schema\"");
        for sql in [
            &s.claim_batch,
            &s.list_ownership,
            &s.list_checkpoints,
            &s.set_checkpoint,
            &s.set_checkpoint_fenced,
            &s.delete_checkpoint,
            &s.list_scopes,
        ] {
            assert!(sql.contains("\"my_schema\"."), "{sql}");
            assert!(!sql.contains("{s}"), "{sql}");
        }
    }
}
