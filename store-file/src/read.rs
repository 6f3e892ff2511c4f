//! The blocking read paths: listing a scope's records (C2) and the scopes of the store. Reads
//! take no lock: every record file is replaced whole by rename, so a reader sees either the old
//! record or the new one.

use std::fs;
use std::path::Path;

use eventhubs_store_core::{Checkpoint, Ownership, PartitionScope, Result};

use crate::error::{corrupt, io_error};
use crate::fsio::{read_optional, record_entries};
use crate::layout::{Layout, RecordKind};
use crate::names::file_name;
use crate::record::{parse_checkpoint, parse_ownership};

/// Every ownership record of `scope`, relinquished ones included (C8).
pub fn list_ownership(layout: &Layout, scope: &PartitionScope) -> Result<Vec<Ownership>> {
    list_records(layout, scope, RecordKind::Ownership, parse_ownership, |o| {
        (&o.scope, &o.partition_id)
    })
}

/// Every checkpoint of `scope` (C9).
pub fn list_checkpoints(layout: &Layout, scope: &PartitionScope) -> Result<Vec<Checkpoint>> {
    list_records(layout, scope, RecordKind::Checkpoint, parse_checkpoint, |c| {
        (&c.scope, &c.partition_id)
    })
}

/// Reads every record of one kind in `scope`'s directory. Each must parse and must be the
/// record of the scope and partition its path names; anything else is a corrupt store,
/// reported with the file's path (never silently dropped).
fn list_records<T>(
    layout: &Layout,
    scope: &PartitionScope,
    kind: RecordKind,
    parse: fn(&[u8]) -> Result<T, String>,
    key: fn(&T) -> (&PartitionScope, &String),
) -> Result<Vec<T>> {
    let dir = layout.record_dir(scope, kind);
    let Some(entries) = record_entries(&dir)? else {
        layout.check_root()?;
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(entries.len());
    for (name, path) in entries {
        // A checkpoint deleted between listing and reading is simply gone.
        let Some(bytes) = read_optional(&path)? else {
            continue;
        };
        let record = parse(&bytes).map_err(|why| corrupt(&path, why))?;
        let (record_scope, partition_id) = key(&record);
        if record_scope != scope || file_name(partition_id) != name {
            return Err(corrupt(
                &path,
                format!("holds the {} of {record_scope}/{partition_id}", kind.dir_name()),
            ));
        }
        out.push(record);
    }
    Ok(out)
}

/// Every scope holding at least one record, sorted. A scope's names are read from one of its
/// records (long names are hashed in paths, so paths alone cannot give them back), and that
/// record must map back to the directory it was found in.
pub fn list_scopes(layout: &Layout) -> Result<Vec<PartitionScope>> {
    layout.check_root()?;
    let mut scopes = Vec::new();
    for ns in sub_dirs(layout.root())? {
        for hub in sub_dirs(&ns)? {
            for group in sub_dirs(&hub)? {
                if let Some(scope) = scope_of(&group)? {
                    if layout.scope_dir(&scope) != group {
                        return Err(corrupt(&group, format!("holds records of scope {scope}")));
                    }
                    scopes.push(scope);
                }
            }
        }
    }
    scopes.sort();
    scopes.dedup();
    Ok(scopes)
}

/// The scope of the first record found in a scope directory, if it holds any.
fn scope_of(scope_dir: &Path) -> Result<Option<PartitionScope>> {
    for kind in [RecordKind::Ownership, RecordKind::Checkpoint] {
        let dir = scope_dir.join(kind.dir_name());
        for (_, path) in record_entries(&dir)?.unwrap_or_default() {
            let Some(bytes) = read_optional(&path)? else {
                continue;
            };
            let scope = match kind {
                RecordKind::Ownership => parse_ownership(&bytes).map(|o| o.scope),
                RecordKind::Checkpoint => parse_checkpoint(&bytes).map(|c| c.scope),
            };
            return scope.map(Some).map_err(|why| corrupt(&path, why));
        }
    }
    Ok(None)
}

/// The sub-directories of one level of the layout, skipping dot files (the marker, temp files).
fn sub_dirs(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io_error("list", dir, e))? {
        let entry = entry.map_err(|e| io_error("list", dir, e))?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let file_type = entry.file_type().map_err(|e| io_error("inspect", &path, e))?;
        if !file_type.is_dir() {
            return Err(corrupt(&path, "a file where the layout has directories"));
        }
        out.push(path);
    }
    Ok(out)
}
