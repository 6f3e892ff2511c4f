//! Opening a store root: create it if asked, and check or write the layout marker so the store
//! never spreads its directories over a folder that is not a store.

use std::fs;
use std::io;
use std::path::Path;

use eventhubs_store_core::{Error, ErrorKind, Result};

use crate::error::{BACKEND, io_error};
use crate::fsio::{read_optional, sync_dir, write_synced};
use crate::layout::{MARKER_CONTENT, MARKER_FILE};

/// Prepares `root` for use as a store (blocking).
///
/// - Missing: created (with its parents) when `create` is set, else `NotFound`.
/// - Not a directory: `InvalidInput`.
/// - Has the marker: its layout version must be this one, else `Unsupported`.
/// - No marker: it must hold nothing but dot files (a fresh directory), else `InvalidInput`;
///   then the marker is written atomically.
pub fn open_root(root: &Path, create: bool) -> Result<()> {
    match fs::metadata(root) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(
                Error::invalid_input("dir", &root.display().to_string(), "is not a directory")
                    .with_backend(BACKEND),
            );
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
            fs::create_dir_all(root).map_err(|e| io_error("create store root", root, e))?;
            if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "store root {} does not exist (FileStoreOptions::create_root is off)",
                    root.display()
                ),
            )
            .with_backend(BACKEND));
        }
        Err(e) => return Err(io_error("open store root", root, e)),
    }
    let marker = root.join(MARKER_FILE);
    if let Some(content) = read_optional(&marker)? {
        if content == MARKER_CONTENT.as_bytes() {
            return Ok(());
        }
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "{} names a layout this version does not know: {:?} (expected {MARKER_CONTENT:?})",
                marker.display(),
                String::from_utf8_lossy(&content)
            ),
        )
        .with_backend(BACKEND));
    }
    if let Some(stranger) = first_visible_entry(root)? {
        return Err(Error::invalid_input(
            "dir",
            &root.display().to_string(),
            format!(
                "holds {stranger:?} but no {MARKER_FILE} marker: not a file store; use an empty or new directory"
            ),
        )
        .with_backend(BACKEND));
    }
    // Two processes opening one fresh root race here harmlessly: the marker's temp name is
    // unique per writer and both write the same content.
    let temp = root.join(format!("{MARKER_FILE}.{}.tmp", uuid::Uuid::new_v4().simple()));
    write_synced(&temp, MARKER_CONTENT.as_bytes())?;
    fs::rename(&temp, &marker).map_err(|e| io_error("write marker", &marker, e))?;
    sync_dir(root)
}

fn first_visible_entry(root: &Path) -> Result<Option<String>> {
    for entry in fs::read_dir(root).map_err(|e| io_error("list", root, e))? {
        let entry = entry.map_err(|e| io_error("list", root, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_a_missing_root_only_when_asked() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("a/b");
        assert_eq!(open_root(&root, false).unwrap_err().kind(), ErrorKind::NotFound);
        assert!(!root.exists());
        open_root(&root, true).unwrap();
        assert_eq!(
            fs::read(root.join(MARKER_FILE)).unwrap(),
            MARKER_CONTENT.as_bytes()
        );
        open_root(&root, false).unwrap();
        let names: Vec<_> = fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "only the marker: {names:?}");
    }

    #[test]
    fn refuses_folders_that_are_not_stores() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("notes.txt"), b"mine").unwrap();
        let e = open_root(tmp.path(), true).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("notes.txt"), "{e}");
        assert!(!tmp.path().join(MARKER_FILE).exists());

        let e = open_root(&tmp.path().join("notes.txt"), true).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");

        let other = tempfile::tempdir().unwrap();
        fs::write(other.path().join(MARKER_FILE), b"eventhubs-store-file layout 9\n").unwrap();
        assert_eq!(
            open_root(other.path(), true).unwrap_err().kind(),
            ErrorKind::Unsupported
        );
    }
}
