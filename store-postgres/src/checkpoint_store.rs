//! The [`CheckpointStore`] implementation of [`PostgresStore`]: binds the validated input to the
//! statements of [`crate::sql`] and turns rows back into records.

use std::sync::Arc;

use async_trait::async_trait;
use eventhubs_store_core::{
    Capabilities, Checkpoint, CheckpointStore, ClaimOptions, ETag, Ownership, PartitionScope, Result,
    SetCheckpointOptions, fence_refused, normalize_checkpoint, normalize_claims, normalize_name,
};
use sqlx::AssertSqlSafe;
use sqlx::postgres::PgRow;
use time::OffsetDateTime;

use crate::error::{BACKEND, corrupt, map_sqlx, retry_if_dead};
use crate::store::PostgresStore;

/// The claim batch as parallel arrays, one element per claim (the `unnest` parameters), borrowed
/// from the claims: no copy of a name per claim.
#[derive(Default)]
struct ClaimColumns<'a> {
    namespaces: Vec<&'a str>,
    event_hubs: Vec<&'a str>,
    consumer_groups: Vec<&'a str>,
    partition_ids: Vec<&'a str>,
    owner_ids: Vec<&'a str>,
    etags: Vec<Option<&'a str>>,
}

impl<'a> ClaimColumns<'a> {
    fn of(claims: &'a [Ownership]) -> Self {
        let n = claims.len();
        let mut c = ClaimColumns {
            namespaces: Vec::with_capacity(n),
            event_hubs: Vec::with_capacity(n),
            consumer_groups: Vec::with_capacity(n),
            partition_ids: Vec::with_capacity(n),
            owner_ids: Vec::with_capacity(n),
            etags: Vec::with_capacity(n),
        };
        for claim in claims {
            c.namespaces.push(claim.scope.namespace());
            c.event_hubs.push(claim.scope.event_hub());
            c.consumer_groups.push(claim.scope.consumer_group());
            c.partition_ids.push(&claim.partition_id);
            c.owner_ids.push(&claim.owner_id);
            c.etags.push(claim.etag.as_ref().map(ETag::as_str));
        }
        c
    }
}

impl PostgresStore {
    /// How often an idempotent call may meet a dead pooled connection: pool size + 1.
    fn retry_attempts(&self) -> u32 {
        self.inner.pool.options().get_max_connections().saturating_add(1)
    }

    /// Runs one of the per-scope listing statements (`$1..$3` = the scope's names).
    async fn fetch_scope<T>(&self, sql: &Arc<str>, scope: &PartitionScope, operation: &str) -> Result<Vec<T>>
    where
        T: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
    {
        retry_if_dead(self.retry_attempts(), || {
            sqlx::query_as(AssertSqlSafe(sql.clone()))
                .bind(scope.namespace())
                .bind(scope.event_hub())
                .bind(scope.consumer_group())
                .fetch_all(&self.inner.pool)
        })
        .await
        .map_err(|e| map_sqlx(e, operation))
    }

    /// Runs a checkpoint upsert (`$1..$6` = names and values, `$7` = the required owner if fenced)
    /// and returns how many rows it wrote.
    async fn upsert_checkpoint(&self, sql: &Arc<str>, cp: &Checkpoint, owner: Option<&str>) -> Result<u64> {
        let run = || {
            let query = sqlx::query(AssertSqlSafe(sql.clone()))
                .bind(cp.scope.namespace())
                .bind(cp.scope.event_hub())
                .bind(cp.scope.consumer_group())
                .bind(&cp.partition_id)
                .bind(&cp.offset)
                .bind(cp.sequence_number);
            match owner {
                Some(owner) => query.bind(owner),
                None => query,
            }
            .execute(&self.inner.pool)
        };
        // An unconditional upsert may be repeated; a fenced one may not (a repeat after a lost
        // reply could report a written checkpoint as refused).
        let done = match owner {
            None => retry_if_dead(self.retry_attempts(), run).await,
            Some(_) => run().await,
        }
        .map_err(|e| map_sqlx(e, "set_checkpoint"))?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl CheckpointStore for PostgresStore {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    /// Everything: fencing (C13), `list_scopes`, `delete_checkpoint`, durable (C12).
    fn capabilities(&self) -> Capabilities {
        Capabilities::all()
    }

    #[tracing::instrument(level = "debug", skip(self), fields(backend = BACKEND, %scope))]
    async fn list_ownership(&self, scope: &PartitionScope) -> Result<Vec<Ownership>> {
        let rows: Vec<(String, String, String, OffsetDateTime)> = self
            .fetch_scope(&self.inner.sql.list_ownership, scope, "list_ownership")
            .await?;
        Ok(rows
            .into_iter()
            .map(|(partition_id, owner_id, etag, time)| Ownership {
                scope: scope.clone(),
                partition_id,
                owner_id,
                etag: Some(ETag::new(etag)),
                last_modified_time: Some(time),
            })
            .collect())
    }

    /// One statement for the whole batch (see [`crate::sql`]): one round trip for 1 or 1000
    /// claims, each winning or losing on its own (C6).
    #[tracing::instrument(level = "debug", skip_all, fields(backend = BACKEND, claims = claims.len()))]
    async fn claim_ownership(&self, claims: &[Ownership], _options: &ClaimOptions) -> Result<Vec<Ownership>> {
        let claims = normalize_claims(claims).map_err(|e| e.with_backend(BACKEND))?;
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        let columns = ClaimColumns::of(&claims);
        let won: Vec<(i64, String, OffsetDateTime)> =
            sqlx::query_as(AssertSqlSafe(self.inner.sql.claim_batch.clone()))
                .bind(columns.namespaces)
                .bind(columns.event_hubs)
                .bind(columns.consumer_groups)
                .bind(columns.partition_ids)
                .bind(columns.owner_ids)
                .bind(columns.etags)
                .fetch_all(&self.inner.pool)
                .await
                .map_err(|e| map_sqlx(e, "claim_ownership"))?;
        // The winners are moved out of the normalized batch (each position answers at most once:
        // the statement returns one row per won claim, in position order).
        let total = claims.len();
        let mut claims: Vec<Option<Ownership>> = claims.into_iter().map(Some).collect();
        let mut result = Vec::with_capacity(won.len());
        for (idx, etag, time) in won {
            let claim = usize::try_from(idx - 1)
                .ok()
                .and_then(|i| claims.get_mut(i))
                .and_then(Option::take)
                .ok_or_else(|| {
                    eventhubs_store_core::Error::backend(format!(
                        "claim_ownership: the server answered for claim {idx} of {total} (out of range or twice)"
                    ))
                    .with_backend(BACKEND)
                })?;
            result.push(Ownership {
                etag: Some(ETag::new(etag)),
                last_modified_time: Some(time),
                ..claim
            });
        }
        tracing::debug!(won = result.len(), "claim batch done");
        Ok(result)
    }

    #[tracing::instrument(level = "debug", skip(self), fields(backend = BACKEND, %scope))]
    async fn list_checkpoints(&self, scope: &PartitionScope) -> Result<Vec<Checkpoint>> {
        let rows: Vec<(String, Option<String>, Option<i64>)> = self
            .fetch_scope(&self.inner.sql.list_checkpoints, scope, "list_checkpoints")
            .await?;
        Ok(rows
            .into_iter()
            .map(|(partition_id, offset, sequence_number)| Checkpoint {
                scope: scope.clone(),
                partition_id,
                offset,
                sequence_number,
            })
            .collect())
    }

    /// An upsert in one statement; with a required owner, the owner check and the upsert are one
    /// statement too (C13).
    #[tracing::instrument(level = "debug", skip_all, fields(backend = BACKEND, scope = %checkpoint.scope, partition = %checkpoint.partition_id, fenced = options.required_owner.is_some()))]
    async fn set_checkpoint(&self, checkpoint: &Checkpoint, options: &SetCheckpointOptions) -> Result<()> {
        let cp = normalize_checkpoint(checkpoint).map_err(|e| e.with_backend(BACKEND))?;
        match options.required_owner.as_deref() {
            None => {
                self.upsert_checkpoint(&self.inner.sql.set_checkpoint, &cp, None)
                    .await?;
                Ok(())
            }
            // An empty owner id means "relinquished": nobody holds the partition (C8, C13).
            Some("") => Err(fence_refused("", &cp.partition_id).with_backend(BACKEND)),
            Some(owner) => {
                let sql = &self.inner.sql.set_checkpoint_fenced;
                match self.upsert_checkpoint(sql, &cp, Some(owner)).await? {
                    0 => Err(fence_refused(owner, &cp.partition_id).with_backend(BACKEND)),
                    _ => Ok(()),
                }
            }
        }
    }

    #[tracing::instrument(level = "debug", skip(self), fields(backend = BACKEND, %scope))]
    async fn delete_checkpoint(&self, scope: &PartitionScope, partition_id: &str) -> Result<bool> {
        let partition_id =
            normalize_name("partition_id", partition_id).map_err(|e| e.with_backend(BACKEND))?;
        let deleted = sqlx::query(AssertSqlSafe(self.inner.sql.delete_checkpoint.clone()))
            .bind(scope.namespace())
            .bind(scope.event_hub())
            .bind(scope.consumer_group())
            .bind(&partition_id)
            .execute(&self.inner.pool)
            .await
            .map_err(|e| map_sqlx(e, "delete_checkpoint"))?;
        Ok(deleted.rows_affected() > 0)
    }

    #[tracing::instrument(level = "debug", skip(self), fields(backend = BACKEND))]
    async fn list_scopes(&self) -> Result<Vec<PartitionScope>> {
        let rows: Vec<(String, String, String)> = retry_if_dead(self.retry_attempts(), || {
            sqlx::query_as(AssertSqlSafe(self.inner.sql.list_scopes.clone())).fetch_all(&self.inner.pool)
        })
        .await
        .map_err(|e| map_sqlx(e, "list_scopes"))?;
        let mut scopes = rows
            .into_iter()
            .map(|(ns, hub, group)| PartitionScope::new(ns, hub, group).map_err(|e| corrupt("scope", e)))
            .collect::<Result<Vec<_>>>()?;
        scopes.sort();
        scopes.dedup();
        Ok(scopes)
    }
}
