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

/// The won claims of one write: their positions in the batch, the write's etag and its
/// `last_modified_time`.
struct Won {
    positions: Vec<usize>,
    etag: String,
    time: OffsetDateTime,
}

impl RedisStore {
    /// Runs the claim script once for the claims (`indexes` into `claims`) of one scope and one
    /// owner: one write with one fresh etag, which every won claim of it shares (C5 asks for an
    /// etag never seen before on the partition; this one was never issued at all).
    async fn claim_group(&self, claims: &[Ownership], group: &ClaimGroup<'_>) -> Result<Won> {
        self.register(group.scope).await?;
        let key = self.inner.keys.scope_keys(group.scope).ownership;
        let etag = self.next_etag();
        let mut invocation = self.inner.scripts.claim_batch.prepare_invoke();
        invocation.key(&key).arg(&etag).arg(group.owner_id);
        for &i in &group.indexes {
            let claim = &claims[i];
            invocation
                .arg(&claim.partition_id)
                .arg(claim.etag.as_ref().map_or("", ETag::as_str));
        }
        let (micros, wins): (i64, Vec<u8>) = invocation
            .invoke_async(&mut self.connection())
            .await
            .map_err(|e| map_redis(e, "claim_ownership"))?;
        if wins.contains(&b'?') {
            // A resend of this call after a cut connection, whose first run some other claim
            // may have overtaken: the outcome of those claims is unknown.
            return Err(Error::unavailable(
                "claim_ownership: the call was resent after a cut connection and some of its claims \
                 can no longer be told won or lost; outcome unknown (retry the claim)",
            )
            .with_backend(BACKEND));
        }
        if wins.len() != group.indexes.len() || wins.iter().any(|w| !matches!(w, b'0' | b'1')) {
            return Err(Error::backend(format!(
                "claim_ownership: the script answered {} results for {} claims",
                wins.len(),
                group.indexes.len()
            ))
            .with_backend(BACKEND));
        }
        let time =
            time_from_micros(micros).ok_or_else(|| corrupt("time stamp", &key, &micros.to_string()))?;
        let positions = group
            .indexes
            .iter()
            .zip(wins)
            .filter_map(|(&i, w)| (w == b'1').then_some(i)) // '0': lost (C6)
            .collect();
        Ok(Won {
            positions,
            etag,
            time,
        })
    }
}

/// The claims of one batch that go into one script call: same scope, same owner id.
struct ClaimGroup<'a> {
    scope: &'a PartitionScope,
    owner_id: &'a str,
    indexes: Vec<usize>,
}

/// Groups claim positions by (scope, owner id), in order of first appearance. A processor claims
/// for itself, so a batch is normally one group.
fn group_claims(claims: &[Ownership]) -> Vec<ClaimGroup<'_>> {
    let mut groups: Vec<ClaimGroup<'_>> = Vec::new();
    for (i, claim) in claims.iter().enumerate() {
        match groups
            .iter_mut()
            .find(|g| g.scope == &claim.scope && g.owner_id == claim.owner_id)
        {
            Some(group) => group.indexes.push(i),
            None => groups.push(ClaimGroup {
                scope: &claim.scope,
                owner_id: &claim.owner_id,
                indexes: vec![i],
            }),
        }
    }
    groups
}

impl RedisStore {
    /// Reads a whole hash (one scope's records of one kind) and decodes every field but the
    /// scope clock (field `""`, see [`crate::scripts`]).
    async fn read_hash<T>(
        &self,
        key: &str,
        operation: &str,
        decode: impl Fn(&str, &str) -> Result<T>,
    ) -> Result<Vec<T>> {
        let fields: HashMap<String, String> = self
            .query_idempotent(redis::cmd("HGETALL").arg(key), operation)
            .await?;
        fields
            .iter()
            .filter(|(field, _)| !field.is_empty())
            .map(|(field, value)| decode(field, value))
            .collect()
    }
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

    /// One script call per (scope, owner) in the batch, normally exactly one: the claims of a
    /// call are compared and set atomically on the server, each winning or losing on its own (C6).
    /// The calls of a batch with several groups go out together on the one connection.
    #[tracing::instrument(level = "debug", skip_all, fields(backend = BACKEND, claims = claims.len()))]
    async fn claim_ownership(&self, claims: &[Ownership], _options: &ClaimOptions) -> Result<Vec<Ownership>> {
        let claims = normalize_claims(claims).map_err(|e| e.with_backend(BACKEND))?;
        let groups = group_claims(&claims);
        let writes = try_join_all(groups.iter().map(|group| self.claim_group(&claims, group))).await?;
        drop(groups);
        let mut won: Vec<(usize, &Won)> = writes
            .iter()
            .flat_map(|w| w.positions.iter().map(move |&i| (i, w)))
            .collect();
        won.sort_unstable_by_key(|(i, _)| *i);
        // The winners are moved out of the normalized batch: no copy of their names. Groups
        // partition the positions, so each position answers at most once.
        let mut claims: Vec<Option<Ownership>> = claims.into_iter().map(Some).collect();
        let mut result = Vec::with_capacity(won.len());
        for (i, write) in won {
            let claim = claims.get_mut(i).and_then(Option::take).ok_or_else(|| {
                Error::backend(format!("claim_ownership: claim {i} answered twice")).with_backend(BACKEND)
            })?;
            result.push(Ownership {
                etag: Some(ETag::new(write.etag.clone())),
                last_modified_time: Some(write.time),
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
        let owner = options.required_owner.as_deref().unwrap_or_default();
        // One id per write, sent again unchanged if redis-rs resends the call.
        let write_id = self.next_etag();
        let written: i64 = self
            .inner
            .scripts
            .set_checkpoint
            .key(&keys.ownership)
            .key(&keys.checkpoint)
            .key(&keys.applied)
            .arg(&cp.partition_id)
            .arg(owner)
            .arg(&value)
            .arg(&write_id)
            .arg(crate::scripts::APPLIED_MEMORY_MS)
            .invoke_async(&mut self.connection())
            .await
            .map_err(|e| map_redis(e, "set_checkpoint"))?;
        if written == 1 {
            Ok(())
        } else {
            Err(fence_refused(owner, &cp.partition_id).with_backend(BACKEND))
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
