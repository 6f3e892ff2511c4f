//! The [`CheckpointStore`] implementation of [`RedisStore`].

use std::collections::HashMap;

use async_trait::async_trait;
use eventhubs_store_core::{
    Capabilities, Checkpoint, CheckpointStore, ClaimOptions, ETag, Error, Ownership, PartitionScope, Result,
    SetCheckpointOptions, fence_refused, normalize_checkpoint, normalize_claims, normalize_name,
};
use futures::future::try_join_all;
use time::OffsetDateTime;

use crate::codec::{decode_checkpoint, decode_ownership, encode_checkpoint, time_from_micros};
use crate::error::{BACKEND, corrupt, map_redis};
use crate::keys::parse_registry_member;
use crate::store::RedisStore;

/// A won claim: its position in the batch, its new etag and its new `last_modified_time`.
type Win = (usize, String, OffsetDateTime);

impl RedisStore {
    /// Runs the claim script once for the claims (`indexes` into `claims`) of one scope and returns
    /// the won ones: position, new etag, new time.
    async fn claim_scope(
        &self,
        claims: &[Ownership],
        scope: &PartitionScope,
        indexes: &[usize],
    ) -> Result<Vec<Win>> {
        self.register(scope).await?;
        let keys = self.inner.keys.scope_keys(scope);
        let mut invocation = self.inner.scripts.claim_batch.prepare_invoke();
        invocation.key(&keys.ownership);
        let mut etags = Vec::with_capacity(indexes.len());
        for &i in indexes {
            let claim = &claims[i];
            // A fresh etag per write: never equal to an earlier one (C5).
            let etag = self.next_etag();
            invocation
                .arg(&claim.partition_id)
                .arg(claim.etag.as_ref().map_or("", ETag::as_str))
                .arg(&claim.owner_id)
                .arg(&etag);
            etags.push(etag);
        }
        let stamps: Vec<Option<i64>> = invocation
            .invoke_async(&mut self.connection())
            .await
            .map_err(|e| map_redis(e, "claim_ownership"))?;
        if stamps.len() != indexes.len() {
            return Err(Error::backend(format!(
                "claim_ownership: the script answered {} results for {} claims",
                stamps.len(),
                indexes.len()
            ))
            .with_backend(BACKEND));
        }
        let mut won = Vec::new();
        for ((&i, etag), stamp) in indexes.iter().zip(etags).zip(stamps) {
            let Some(micros) = stamp else {
                continue; // lost (C6)
            };
            let time = time_from_micros(micros)
                .ok_or_else(|| corrupt("time stamp", &keys.ownership, &micros.to_string()))?;
            won.push((i, etag, time));
        }
        Ok(won)
    }
}

impl RedisStore {
    /// Reads a whole hash (one scope's records of one kind) and decodes every field.
    async fn read_hash<T>(
        &self,
        key: &str,
        operation: &str,
        decode: impl Fn(&str, &str) -> Result<T>,
    ) -> Result<Vec<T>> {
        let fields: HashMap<String, String> = self
            .query_idempotent(redis::cmd("HGETALL").arg(key), operation)
            .await?;
        fields.iter().map(|(field, value)| decode(field, value)).collect()
    }
}

/// Groups claim positions by scope, in order of first appearance.
fn group_by_scope(claims: &[Ownership]) -> Vec<(&PartitionScope, Vec<usize>)> {
    let mut groups: Vec<(&PartitionScope, Vec<usize>)> = Vec::new();
    for (i, claim) in claims.iter().enumerate() {
        match groups.iter_mut().find(|(s, _)| *s == &claim.scope) {
            Some((_, idx)) => idx.push(i),
            None => groups.push((&claim.scope, vec![i])),
        }
    }
    groups
}

#[async_trait]
impl CheckpointStore for RedisStore {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    /// Everything: fencing (C13), `list_scopes`, `delete_checkpoint`. `durable` holds as far as
    /// the server persists (AOF with `appendfsync always` for the strict reading of C12).
    fn capabilities(&self) -> Capabilities {
        Capabilities::all()
    }

    #[tracing::instrument(level = "debug", skip(self), fields(backend = BACKEND, %scope))]
    async fn list_ownership(&self, scope: &PartitionScope) -> Result<Vec<Ownership>> {
        let key = self.inner.keys.scope_keys(scope).ownership;
        self.read_hash(&key, "list_ownership", |partition, value| {
            decode_ownership(scope, partition.to_owned(), value)
                .ok_or_else(|| corrupt("ownership", &key, partition))
        })
        .await
    }

    /// One script call per scope in the batch (normally exactly one): the whole batch of a scope
    /// is compared and set atomically on the server, each claim winning or losing on its own (C6).
    #[tracing::instrument(level = "debug", skip_all, fields(backend = BACKEND, claims = claims.len()))]
    async fn claim_ownership(&self, claims: &[Ownership], _options: &ClaimOptions) -> Result<Vec<Ownership>> {
        let claims = normalize_claims(claims).map_err(|e| e.with_backend(BACKEND))?;
        let groups = group_by_scope(&claims);
        let per_scope = try_join_all(
            groups
                .iter()
                .map(|(scope, indexes)| self.claim_scope(&claims, scope, indexes)),
        )
        .await?;
        let mut won: Vec<Win> = per_scope.into_iter().flatten().collect();
        won.sort_by_key(|(i, _, _)| *i);
        // The winners are moved out of the normalized batch: no copy of their names. Scopes
        // partition the positions, so each position answers at most once.
        let mut claims: Vec<Option<Ownership>> = claims.into_iter().map(Some).collect();
        let mut result = Vec::with_capacity(won.len());
        for (i, etag, time) in won {
            let claim = claims.get_mut(i).and_then(Option::take).ok_or_else(|| {
                Error::backend(format!("claim_ownership: claim {i} answered twice")).with_backend(BACKEND)
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
        let key = self.inner.keys.scope_keys(scope).checkpoint;
        self.read_hash(&key, "list_checkpoints", |partition, value| {
            decode_checkpoint(scope, partition.to_owned(), value)
                .ok_or_else(|| corrupt("checkpoint", &key, partition))
        })
        .await
    }

    /// `HSET` (C9), or with a required owner the fenced script: owner check and write in one
    /// atomic step (C13).
    #[tracing::instrument(level = "debug", skip_all, fields(backend = BACKEND, scope = %checkpoint.scope, partition = %checkpoint.partition_id, fenced = options.required_owner.is_some()))]
    async fn set_checkpoint(&self, checkpoint: &Checkpoint, options: &SetCheckpointOptions) -> Result<()> {
        let cp = normalize_checkpoint(checkpoint).map_err(|e| e.with_backend(BACKEND))?;
        if let Some(owner) = &options.required_owner {
            // An empty owner id means "relinquished": nobody holds the partition (C8, C13).
            if owner.is_empty() {
                return Err(fence_refused(owner, &cp.partition_id).with_backend(BACKEND));
            }
        }
        self.register(&cp.scope).await?;
        let keys = self.inner.keys.scope_keys(&cp.scope);
        let value = encode_checkpoint(&cp);
        match &options.required_owner {
            None => {
                let mut hset = redis::cmd("HSET");
                hset.arg(&keys.checkpoint).arg(&cp.partition_id).arg(&value);
                let _: i64 = self.query_idempotent(&hset, "set_checkpoint").await?;
                Ok(())
            }
            Some(owner) => {
                let written: i64 = self
                    .inner
                    .scripts
                    .set_checkpoint_fenced
                    .key(&keys.ownership)
                    .key(&keys.checkpoint)
                    .arg(&cp.partition_id)
                    .arg(owner)
                    .arg(&value)
                    .invoke_async(&mut self.connection())
                    .await
                    .map_err(|e| map_redis(e, "set_checkpoint"))?;
                if written == 1 {
                    Ok(())
                } else {
                    Err(fence_refused(owner, &cp.partition_id).with_backend(BACKEND))
                }
            }
        }
    }

    #[tracing::instrument(level = "debug", skip(self), fields(backend = BACKEND, %scope))]
    async fn delete_checkpoint(&self, scope: &PartitionScope, partition_id: &str) -> Result<bool> {
        let partition_id =
            normalize_name("partition_id", partition_id).map_err(|e| e.with_backend(BACKEND))?;
        let removed: i64 = redis::cmd("HDEL")
            .arg(self.inner.keys.scope_keys(scope).checkpoint)
            .arg(&partition_id)
            .query_async(&mut self.connection())
            .await
            .map_err(|e| map_redis(e, "delete_checkpoint"))?;
        Ok(removed > 0)
    }

    /// Reads the scope registry and keeps the scopes that still hold a record (one `EXISTS` per
    /// scope, on its own slot).
    #[tracing::instrument(level = "debug", skip(self), fields(backend = BACKEND))]
    async fn list_scopes(&self) -> Result<Vec<PartitionScope>> {
        let members: Vec<String> = self
            .query_idempotent(
                redis::cmd("SMEMBERS").arg(self.inner.keys.scopes_key()),
                "list_scopes",
            )
            .await?;
        let scopes = members
            .iter()
            .map(|m| parse_registry_member(m))
            .collect::<Result<Vec<_>>>()?;
        let held = try_join_all(scopes.iter().map(|scope| async move {
            let keys = self.inner.keys.scope_keys(scope);
            let mut exists = redis::cmd("EXISTS");
            exists.arg(&keys.ownership).arg(&keys.checkpoint);
            let n: i64 = self.query_idempotent(&exists, "list_scopes").await?;
            Ok::<bool, Error>(n > 0)
        }))
        .await?;
        let mut result: Vec<PartitionScope> = scopes
            .into_iter()
            .zip(held)
            .filter_map(|(s, h)| h.then_some(s))
            .collect();
        result.sort();
        Ok(result)
    }
}
