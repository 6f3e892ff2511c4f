//! The blocking write paths: claims (C3–C8), checkpoints (C9, C13) and deletes, each under the
//! partition's cross-process lock.

use std::path::{Path, PathBuf};

use eventhubs_store_core::{Checkpoint, ETag, Ownership, PartitionScope, Result, fence_refused};
use time::OffsetDateTime;

use crate::error::{BACKEND, corrupt, io_error};
use crate::fsio::{PartitionLock, read_optional, replace_file, sync_dir};
use crate::layout::{Layout, RecordKind};
use crate::names::file_name;
use crate::record::{checkpoint_bytes, ownership_bytes, parse_ownership};

/// Claims a normalised batch. Each claim takes its partition's lock, compares and writes on its
/// own (C6); lost claims are left out of the result. The directories written to are synced once
/// at the end, before anything is reported won (C12).
pub fn claim_batch(layout: &Layout, claims: Vec<Ownership>) -> Result<Vec<Ownership>> {
    let mut won = Vec::new();
    let mut written_dirs: Vec<PathBuf> = Vec::new();
    for claim in claims {
        let dir = layout.record_dir(&claim.scope, RecordKind::Ownership);
        if let Some(record) = claim_one(layout, &dir, claim)? {
            if !written_dirs.contains(&dir) {
                written_dirs.push(dir);
            }
            won.push(record);
        }
    }
    for dir in &written_dirs {
        sync_dir(dir)?;
    }
    Ok(won)
}

fn claim_one(layout: &Layout, dir: &Path, claim: Ownership) -> Result<Option<Ownership>> {
    if claim.etag.is_some() && !dir.is_dir() {
        // No record in this scope at all, so no etag can match (C4): lose without creating
        // anything.
        layout.check_root()?;
        return Ok(None);
    }
    let _lock = lock_partition(layout, &claim.scope, &claim.partition_id)?;
    let name = file_name(&claim.partition_id);
    let current = read_ownership(&dir.join(&name), &claim.scope, &claim.partition_id)?;
    let wins = match (&claim.etag, &current) {
        (None, None) => true,                                                     // C3
        (Some(expected), Some(stored)) => stored.etag.as_ref() == Some(expected), // C4
        _ => false,
    };
    if !wins {
        return Ok(None);
    }
    // C5: an etag no write of any process ever issued before, and the store clock, never
    // going backwards for this partition.
    let etag = ETag::new(uuid::Uuid::new_v4().simple().to_string());
    let now = OffsetDateTime::now_utc();
    let time = match current.and_then(|c| c.last_modified_time) {
        Some(previous) if previous > now => previous,
        _ => now,
    };
    let bytes = ownership_bytes(&claim, &etag, time).map_err(|why| corrupt(&dir.join(&name), why))?;
    replace_file(dir, &name, &bytes)?;
    Ok(Some(Ownership {
        etag: Some(etag),
        last_modified_time: Some(time),
        ..claim
    }))
}

/// Writes a normalised checkpoint (C9); with `required_owner`, only while that owner holds the
/// partition, checked and written under the partition's lock so no claim can come between
/// (C13).
pub fn set_checkpoint(layout: &Layout, cp: &Checkpoint, required_owner: Option<&str>) -> Result<()> {
    let own_dir = layout.record_dir(&cp.scope, RecordKind::Ownership);
    if let Some(owner) = required_owner
        && !own_dir.is_dir()
    {
        layout.check_root()?;
        return Err(fence_refused(owner, &cp.partition_id).with_backend(BACKEND));
    }
    let _lock = lock_partition(layout, &cp.scope, &cp.partition_id)?;
    let name = file_name(&cp.partition_id);
    if let Some(owner) = required_owner {
        let current = read_ownership(&own_dir.join(&name), &cp.scope, &cp.partition_id)?;
        let holds = !owner.is_empty() && current.is_some_and(|o| o.owner_id == owner);
        if !holds {
            return Err(fence_refused(owner, &cp.partition_id).with_backend(BACKEND));
        }
    }
    let dir = layout.record_dir(&cp.scope, RecordKind::Checkpoint);
    let bytes = checkpoint_bytes(cp).map_err(|why| corrupt(&dir.join(&name), why))?;
    replace_file(&dir, &name, &bytes)?;
    sync_dir(&dir)
}

/// Deletes one checkpoint; `Ok(true)` if it existed. Never touches ownership (C10).
pub fn delete_checkpoint(layout: &Layout, scope: &PartitionScope, partition_id: &str) -> Result<bool> {
    let dir = layout.record_dir(scope, RecordKind::Checkpoint);
    if !dir.is_dir() {
        layout.check_root()?;
        return Ok(false);
    }
    let _lock = lock_partition(layout, scope, partition_id)?;
    let path = dir.join(file_name(partition_id));
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_error("delete", &path, e)),
    }
    sync_dir(&dir)?;
    Ok(true)
}

/// Reads the ownership record at `path` if any, checking it is the record of that partition.
pub fn read_ownership(path: &Path, scope: &PartitionScope, partition_id: &str) -> Result<Option<Ownership>> {
    let Some(bytes) = read_optional(path)? else {
        return Ok(None);
    };
    let owner = parse_ownership(&bytes).map_err(|why| corrupt(path, why))?;
    if &owner.scope != scope || owner.partition_id != partition_id {
        return Err(corrupt(
            path,
            format!("holds the record of {}/{}", owner.scope, owner.partition_id),
        ));
    }
    Ok(Some(owner))
}

/// Creates the scope's directories if needed and takes the partition's lock.
fn lock_partition(layout: &Layout, scope: &PartitionScope, partition_id: &str) -> Result<PartitionLock> {
    layout.ensure_scope(scope)?;
    let path = layout.lock_path(scope, partition_id);
    match PartitionLock::acquire(&path) {
        Ok(lock) => Ok(lock),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // The scope's directories were removed behind this handle's back: recreate them.
            layout.forget_scope(scope);
            layout.ensure_scope(scope)?;
            PartitionLock::acquire(&path).map_err(|e| io_error("lock", &path, e))
        }
        Err(e) => Err(io_error("lock", &path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c5_last_modified_time_never_goes_backwards() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::new(tmp.path().to_path_buf());
        let scope = PartitionScope::new("ns", "hub", "cg").unwrap();
        let won = claim_batch(&layout, vec![Ownership::new(scope.clone(), "0", "a")]).unwrap();
        // Another machine's clock (or a clock step back) left a time in the future.
        let future = OffsetDateTime::now_utc() + time::Duration::hours(1);
        let etag = won[0].etag.clone().unwrap();
        let dir = layout.record_dir(&scope, RecordKind::Ownership);
        let bytes = ownership_bytes(&won[0], &etag, future).unwrap();
        replace_file(&dir, "0", &bytes).unwrap();
        let renewed = claim_batch(
            &layout,
            vec![Ownership::new(scope, "0", "a").with_etag(Some(etag))],
        )
        .unwrap();
        assert_eq!(renewed[0].last_modified_time, Some(future));
        assert_ne!(renewed[0].etag, won[0].etag);
    }
}
