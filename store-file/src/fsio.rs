//! Blocking file operations with the durability the contract needs (C12): atomic replacement
//! (temp file, fsync, rename, fsync of the directory) and cross-process partition locks.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use eventhubs_store_core::Result;

use crate::error::{corrupt, io_error};
use crate::names::is_record_file_name;

/// The temp file a record named `name` is written to before the rename. One per record: it is
/// only written under the partition's lock, so one name is enough, and a temp file a crash left
/// behind is simply overwritten by the next write. Starts with `.`, which no record does.
pub fn temp_name(name: &str) -> String {
    format!(".{name}.tmp")
}

/// Reads a whole file; `None` if it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error("read", path, e)),
    }
}

/// Replaces `dir/name` with `bytes` atomically: readers and a crash at any moment see either
/// the old content or the new, never a mix. Call [`sync_dir`] on `dir` before reporting
/// success, so the rename itself is durable. The caller holds the partition's lock.
pub fn replace_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let temp = dir.join(temp_name(name));
    let target = dir.join(name);
    write_synced(&temp, bytes)?;
    fs::rename(&temp, &target).map_err(|e| io_error("rename temp file onto", &target, e))
}

/// Creates or truncates `path`, writes `bytes` and fsyncs the file.
pub fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| io_error("create", path, e))?;
    file.write_all(bytes).map_err(|e| io_error("write", path, e))?;
    file.sync_all().map_err(|e| io_error("fsync", path, e))
}

/// Makes the entries of `dir` (created, renamed or removed files) durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let handle = File::open(dir).map_err(|e| io_error("open directory to fsync", dir, e))?;
        handle
            .sync_all()
            .map_err(|e| io_error("fsync directory", dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir; // Directory handles cannot be synced this way; NTFS journals renames.
    Ok(())
}

/// An exclusive lock on one partition, held across processes ([`File::lock`]: `flock` on
/// Unix, `LockFileEx` on Windows) and released when dropped, or by the OS when the process
/// dies, so a killed writer never leaves a partition locked.
#[derive(Debug)]
pub struct PartitionLock {
    _file: File,
}

impl PartitionLock {
    /// Waits for and takes the lock on `path`, creating the (empty) lock file if needed.
    pub fn acquire(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        file.lock()?;
        Ok(PartitionLock { _file: file })
    }
}

/// The record files of a directory as `(file name, path)`, or `None` if the directory does not
/// exist. Temp files (leading `.`) are skipped; any other name that cannot be a record is a
/// corrupt store, reported with its path rather than silently ignored.
pub fn record_entries(dir: &Path) -> Result<Option<Vec<(String, PathBuf)>>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("list", dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_error("list", dir, e))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            return Err(corrupt(&path, "file name is not UTF-8"));
        };
        if name.starts_with('.') {
            continue;
        }
        if !is_record_file_name(&name) {
            return Err(corrupt(&path, "not a name this store writes"));
        }
        out.push((name, path));
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn c12_replace_file_leaves_no_temp_and_overwrites_a_crash_leftover() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(temp_name("0")), b"half a rec").unwrap();
        replace_file(dir.path(), "0", b"one").unwrap();
        replace_file(dir.path(), "0", b"two").unwrap();
        sync_dir(dir.path()).unwrap();
        assert_eq!(fs::read(dir.path().join("0")).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("0")]);
    }

    #[test]
    fn record_entries_skips_temp_files_and_reports_strangers() {
        let dir = tempfile::tempdir().unwrap();
        assert!(record_entries(&dir.path().join("missing")).unwrap().is_none());
        fs::write(dir.path().join("0"), b"").unwrap();
        fs::write(dir.path().join(temp_name("1")), b"").unwrap();
        let listed = record_entries(dir.path()).unwrap().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].0, "0");
        fs::write(dir.path().join("README"), b"").unwrap();
        let e = record_entries(dir.path()).unwrap_err();
        assert!(e.to_string().contains("README"), "{e}");
    }

    #[test]
    fn partition_lock_excludes_other_handles() {
        let dir = tempfile::tempdir().unwrap();
        let path = Arc::new(dir.path().join("lock"));
        let inside = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (path, inside) = (path.clone(), inside.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let _lock = PartitionLock::acquire(&path).unwrap();
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders at once");
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }
}
