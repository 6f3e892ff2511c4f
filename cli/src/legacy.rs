//! Reading checkpoints from the legacy formats people still have on disk (`ehstore import-legacy`).
//!
//! # Event Processor Host lease files (`--format eph`)
//!
//! The Event Processor Host of the v4 .NET and Java SDKs and of azure-event-hubs-go kept one
//! JSON blob per partition in a lease container (.NET: `{prefix}{consumer group}/{partition}`,
//! Go: `{prefix}{partition}`). Download the blobs of one consumer group into a directory and
//! point `--from` at it. Keys are read case-insensitively (.NET wrote `PascalCase`, Java and Go
//! `camelCase`):
//!
//! ```text
//! {"offset":"4096","sequenceNumber":41,"partitionId":"3","owner":"host-1","token":"…","epoch":7}      Java / .NET
//! {"partitionID":"3","epoch":7,"owner":"host-1","checkpoint":{"offset":"4096","sequenceNumber":41,"enqueueTime":"…"},"state":"…","token":"…"}   Go
//! ```
//!
//! `owner`, `epoch` and `token` belong to blob leases, which the new stores do not use, so they
//! are not imported: processors claim the partitions afresh.
//!
//! # Go `persist.FilePersister` files (`--format go-file`)
//!
//! azure-event-hubs-go's `persist.FilePersister` writes one file per partition named
//! `{namespace}_{event hub}_{consumer group}_{partition}` with every `$` removed (so `$Default`
//! becomes `Default`), holding `{"offset":"4096","sequenceNumber":41,"enqueueTime":"…"}`. The
//! namespace there is what the Go application was given (usually the short name, `myns`); files
//! whose name starts with the short or the fully qualified namespace, the hub and the group of
//! `--namespace/--hub/--group` (compared case-insensitively) are imported, files of other hubs
//! and groups are listed as ignored.
//!
//! # What is imported
//!
//! A checkpoint (offset and sequence number) per partition into the scope given on the command
//! line. Placeholders that mean "no progress yet" (offset `-1`, the start of the stream, or
//! `@latest`; a lease without a checkpoint) are listed and skipped. Every file is read and checked
//! first: if any is malformed, nothing is written.

use std::fs;
use std::path::{Path, PathBuf};

use eventhubs_store_core::{Checkpoint, PartitionScope, normalize_checkpoint};
use serde_json::{Map, Value};

/// Which legacy format the files are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LegacyFormat {
    /// Decide per file: a partition id inside means a lease, otherwise a Go file.
    Auto,
    /// Event Processor Host lease JSON (.NET/Java v4, azure-event-hubs-go `eph`).
    Eph,
    /// azure-event-hubs-go `persist.FilePersister` files.
    GoFile,
}

/// The checkpoints found, and the files that carry none.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LegacyCheckpoints {
    /// One checkpoint per partition, with the file it came from.
    pub checkpoints: Vec<(PathBuf, Checkpoint)>,
    /// Files left out, with the reason (no progress yet, another hub).
    pub ignored: Vec<(PathBuf, String)>,
}

/// A malformed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

const MAX_FILE_BYTES: u64 = 64 * 1024;

/// Reads every file under `dir` (recursively, dot files skipped) as `format`, for `scope`.
///
/// # Errors
/// Every malformed file, or the directory itself when it cannot be read.
pub fn read_legacy_dir(
    dir: &Path,
    scope: &PartitionScope,
    format: LegacyFormat,
) -> Result<LegacyCheckpoints, Vec<FileError>> {
    let mut files = Vec::new();
    collect_files(dir, &mut files).map_err(|e| {
        vec![FileError {
            path: dir.to_path_buf(),
            message: format!("cannot read the directory: {e}"),
        }]
    })?;
    files.sort();
    let mut found = LegacyCheckpoints::default();
    let mut errors = Vec::new();
    for path in files {
        match read_one(&path, scope, format) {
            Ok(Found::Checkpoint(cp)) => {
                if let Some((first, _)) = found
                    .checkpoints
                    .iter()
                    .find(|(_, c)| c.partition_id == cp.partition_id)
                {
                    errors.push(FileError {
                        message: format!(
                            "a second checkpoint of partition {:?} (the first is {})",
                            cp.partition_id,
                            first.display()
                        ),
                        path,
                    });
                } else {
                    found.checkpoints.push((path, cp));
                }
            }
            Ok(Found::Ignored(why)) => found.ignored.push((path, why)),
            Err(message) => errors.push(FileError { path, message }),
        }
    }
    found
        .checkpoints
        .sort_by(|a, b| crate::table::partition_order(&a.1.partition_id, &b.1.partition_id));
    if errors.is_empty() { Ok(found) } else { Err(errors) }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect_files(&entry.path(), out)?;
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
    Ok(())
}

enum Found {
    Checkpoint(Checkpoint),
    Ignored(String),
}

fn read_one(path: &Path, scope: &PartitionScope, format: LegacyFormat) -> Result<Found, String> {
    let size = fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?.len();
    if size > MAX_FILE_BYTES {
        return Err(format!("{size} bytes: too large for a lease or checkpoint file"));
    }
    let text = fs::read_to_string(path).map_err(|e| format!("cannot read as UTF-8 text: {e}"))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Object(obj) = value else {
        return Err("not a JSON object".into());
    };
    let is_lease = get(&obj, "partitionid").is_some();
    match format {
        LegacyFormat::Eph => read_lease(&obj, scope),
        LegacyFormat::GoFile => read_go_file(path, &obj, scope),
        LegacyFormat::Auto if is_lease => read_lease(&obj, scope),
        LegacyFormat::Auto => read_go_file(path, &obj, scope),
    }
}

/// A key, compared case-insensitively.
fn get<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

fn read_lease(obj: &Map<String, Value>, scope: &PartitionScope) -> Result<Found, String> {
    let partition_id = match get(obj, "partitionid") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err("a lease needs partitionId (a string)".into()),
    };
    // Java/.NET keep the checkpoint at the top level, Go under "checkpoint".
    let holder = match get(obj, "checkpoint") {
        Some(Value::Object(inner)) => inner,
        Some(Value::Null) | None => obj,
        Some(_) => return Err("field checkpoint must be an object".into()),
    };
    position(scope, partition_id, holder)
}

fn read_go_file(path: &Path, obj: &Map<String, Value>, scope: &PartitionScope) -> Result<Found, String> {
    if get(obj, "offset").is_none() {
        return Err("neither a lease (no partitionId) nor a Go checkpoint (no offset)".into());
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let group = scope.consumer_group().replace('$', "");
    let short_ns = scope.namespace().split('.').next().unwrap_or_default();
    let prefixes = [scope.namespace(), short_ns].map(|ns| {
        format!(
            "{}_{}_{}_",
            ns.replace('$', ""),
            scope.event_hub().replace('$', ""),
            group
        )
    });
    let Some(partition_id) = prefixes
        .iter()
        .find_map(|p| name.strip_prefix(p.as_str()))
        .filter(|rest| !rest.is_empty())
    else {
        return Ok(Found::Ignored(format!(
            "its name is not {}_<partition>: another namespace, hub or group",
            prefixes[1].trim_end_matches('_')
        )));
    };
    position(scope, partition_id.to_owned(), obj)
}

/// The checkpoint held in `holder` (`offset`, `sequenceNumber`), or why there is none.
fn position(
    scope: &PartitionScope,
    partition_id: String,
    holder: &Map<String, Value>,
) -> Result<Found, String> {
    let offset = match get(holder, "offset") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => return Err("field offset must be a string".into()),
    };
    let sequence_number = match get(holder, "sequencenumber") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .ok_or("field sequenceNumber must be a 64-bit integer")?,
        ),
    };
    match offset.as_deref() {
        None => return Ok(Found::Ignored("no checkpoint in it (no offset)".into())),
        Some("-1") => {
            return Ok(Found::Ignored(
                "offset -1: the start of the stream, no progress yet".into(),
            ));
        }
        Some("@latest") => return Ok(Found::Ignored("offset @latest: no progress recorded".into())),
        Some(_) => {}
    }
    let cp = Checkpoint::new(scope.clone(), partition_id, offset, sequence_number);
    normalize_checkpoint(&cp)
        .map(Found::Checkpoint)
        .map_err(|e| e.message().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> PartitionScope {
        PartitionScope::new("myns.servicebus.windows.net", "orders", "$Default").unwrap()
    }

    fn write(dir: &Path, name: &str, text: &str) {
        let path = dir.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn eph_leases_of_every_sdk_are_read() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        write(
            d,
            "$default/0",
            r#"{"Offset":"100","SequenceNumber":10,"PartitionId":"0","Owner":"h","Token":"t","Epoch":3}"#,
        );
        write(
            d,
            "$default/1",
            r#"{"offset":"200","sequenceNumber":20,"partitionId":"1","owner":"h","epoch":1}"#,
        );
        write(
            d,
            "go/2",
            r#"{"partitionID":"2","epoch":2,"owner":"h","checkpoint":{"offset":"300","sequenceNumber":30,"enqueueTime":"2020-01-01T00:00:00Z"},"state":"leased","token":"x"}"#,
        );
        write(
            d,
            "$default/3",
            r#"{"offset":null,"sequenceNumber":0,"partitionId":"3","owner":"","epoch":0}"#,
        );
        let found = read_legacy_dir(d, &scope(), LegacyFormat::Eph).unwrap();
        let got: Vec<(String, Option<String>, Option<i64>)> = found
            .checkpoints
            .iter()
            .map(|(_, c)| (c.partition_id.clone(), c.offset.clone(), c.sequence_number))
            .collect();
        assert_eq!(
            got,
            vec![
                ("0".into(), Some("100".into()), Some(10)),
                ("1".into(), Some("200".into()), Some(20)),
                ("2".into(), Some("300".into()), Some(30)),
            ]
        );
        assert_eq!(found.ignored.len(), 1);
    }

    #[test]
    fn go_files_are_matched_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let body = |o: &str, s: i64| {
            format!(r#"{{"offset":"{o}","sequenceNumber":{s},"enqueueTime":"2020-01-01T00:00:00Z"}}"#)
        };
        write(d, "myns_orders_Default_0", &body("111", 11));
        write(
            d,
            "myns.servicebus.windows.net_orders_Default_1",
            &body("222", 22),
        );
        write(d, "myns_payments_Default_0", &body("9", 9));
        write(d, "myns_orders_Default_2", &body("-1", 0));
        write(d, ".hidden", "junk");
        let found = read_legacy_dir(d, &scope(), LegacyFormat::Auto).unwrap();
        let parts: Vec<&str> = found
            .checkpoints
            .iter()
            .map(|(_, c)| c.partition_id.as_str())
            .collect();
        assert_eq!(parts, vec!["0", "1"]);
        assert_eq!(found.ignored.len(), 2, "{:?}", found.ignored);
    }

    #[test]
    fn any_bad_file_fails_the_whole_read() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        write(d, "a", r#"{"offset":"1","sequenceNumber":1,"partitionId":"0"}"#);
        write(d, "b", "{not json");
        write(d, "c", r#"{"offset":"1","sequenceNumber":"x","partitionId":"1"}"#);
        write(d, "d", r#"{"offset":"1","sequenceNumber":1,"partitionId":"a/b"}"#);
        let errors = read_legacy_dir(d, &scope(), LegacyFormat::Eph).unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[2].message.contains("C11"), "{}", errors[2]);
    }
}
