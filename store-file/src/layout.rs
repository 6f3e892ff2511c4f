//! Where each record lives under the store root, and the directories that hold them.
//!
//! ```text
//! <root>/.eventhubs-store-file                  marker: "eventhubs-store-file layout 1"
//! <root>/<ns>/<hub>/<group>/ownership/<pid>     one ownership record (see `record`)
//! <root>/<ns>/<hub>/<group>/checkpoint/<pid>    one checkpoint record
//! <root>/<ns>/<hub>/<group>/locks/<pid>         empty; locked while a partition is written
//! <dir>/.<pid>.tmp                              a record being written (or left by a crash)
//! ```
//!
//! `<ns>`, `<hub>`, `<group>` and `<pid>` are the lower-cased names (C1) mapped by
//! [`crate::names::file_name`]: never empty, never starting with `.`, so they can never be
//! `.`/`..`, a temp file, the marker, or collide with each other.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use eventhubs_store_core::{Error, ErrorKind, PartitionScope, Result};

use crate::error::{BACKEND, io_error};
use crate::fsio::sync_dir;
use crate::names::file_name;

/// The marker file at the root, naming the layout version.
pub const MARKER_FILE: &str = ".eventhubs-store-file";
/// The marker's content for this layout.
pub const MARKER_CONTENT: &str = "eventhubs-store-file layout 1\n";
/// The directory of a scope that holds the partition lock files.
pub const LOCKS_DIR: &str = "locks";

/// The two record kinds, each in its own directory of a scope (C10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// `ownership/<pid>`
    Ownership,
    /// `checkpoint/<pid>`
    Checkpoint,
}

impl RecordKind {
    /// The directory name of this kind inside a scope.
    pub fn dir_name(self) -> &'static str {
        match self {
            RecordKind::Ownership => "ownership",
            RecordKind::Checkpoint => "checkpoint",
        }
    }
}

/// The paths of one store root.
#[derive(Debug)]
pub struct Layout {
    root: PathBuf,
    /// Scope directories this handle has created or made durable (see [`Layout::ensure_scope`]).
    durable_scopes: Mutex<HashSet<PathBuf>>,
}

impl Layout {
    /// The layout under `root`.
    pub fn new(root: PathBuf) -> Self {
        Layout {
            root,
            durable_scopes: Mutex::new(HashSet::new()),
        }
    }

    /// The store root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/<ns>/<hub>/<group>`
    pub fn scope_dir(&self, scope: &PartitionScope) -> PathBuf {
        self.root
            .join(file_name(scope.namespace()))
            .join(file_name(scope.event_hub()))
            .join(file_name(scope.consumer_group()))
    }

    /// `<root>/<ns>/<hub>/<group>/<ownership|checkpoint>`
    pub fn record_dir(&self, scope: &PartitionScope, kind: RecordKind) -> PathBuf {
        self.scope_dir(scope).join(kind.dir_name())
    }

    /// `<root>/<ns>/<hub>/<group>/locks/<pid>`
    pub fn lock_path(&self, scope: &PartitionScope, partition_id: &str) -> PathBuf {
        self.scope_dir(scope)
            .join(LOCKS_DIR)
            .join(file_name(partition_id))
    }

    /// Fails with `NotFound` when the root has gone (removed after the store was opened), so a
    /// missing scope directory is told apart from a missing store.
    pub fn check_root(&self) -> Result<()> {
        match fs::metadata(&self.root) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(root_missing(&self.root)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(root_missing(&self.root)),
            Err(e) => Err(io_error("inspect store root", &self.root, e)),
        }
    }

    /// Creates the scope's directories (`ownership`, `checkpoint`, `locks`) if missing and makes
    /// every directory entry from the root down durable (fsync of each parent), once per handle
    /// and scope: a record is durable only if the directories leading to it are (C12), even when
    /// another process created them and was killed before syncing them.
    pub fn ensure_scope(&self, scope: &PartitionScope) -> Result<()> {
        let scope_dir = self.scope_dir(scope);
        if self
            .durable_scopes
            .lock()
            .is_ok_and(|set| set.contains(&scope_dir))
        {
            return Ok(());
        }
        self.check_root()?;
        let mut chain = vec![self.root.clone()];
        for part in [scope.namespace(), scope.event_hub(), scope.consumer_group()] {
            let next = chain[chain.len() - 1].join(file_name(part));
            chain.push(next);
        }
        for dir in chain.iter().skip(1) {
            create_dir(dir)?;
        }
        for leaf in [
            RecordKind::Ownership.dir_name(),
            RecordKind::Checkpoint.dir_name(),
            LOCKS_DIR,
        ] {
            create_dir(&scope_dir.join(leaf))?;
        }
        for dir in &chain {
            sync_dir(dir)?;
        }
        if let Ok(mut set) = self.durable_scopes.lock() {
            set.insert(scope_dir);
        }
        Ok(())
    }

    /// Forgets that the scope's directories exist, after they were removed behind this handle's
    /// back, so the next [`Layout::ensure_scope`] recreates them.
    pub fn forget_scope(&self, scope: &PartitionScope) {
        if let Ok(mut set) = self.durable_scopes.lock() {
            set.remove(&self.scope_dir(scope));
        }
    }
}

fn create_dir(dir: &Path) -> Result<()> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(io_error("create directory", dir, e)),
    }
}

fn root_missing(root: &Path) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("store root {} is missing or not a directory", root.display()),
    )
    .with_backend(BACKEND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_documented_layout() {
        let layout = Layout::new(PathBuf::from("/r"));
        let scope = PartitionScope::new("NS.example", "..hub", "$Default").unwrap();
        assert_eq!(
            layout.record_dir(&scope, RecordKind::Ownership),
            PathBuf::from("/r/ns.example/%2e.hub/%24default/ownership")
        );
        assert_eq!(
            layout.lock_path(&scope, "con"),
            PathBuf::from("/r/ns.example/%2e.hub/%24default/locks/%63on")
        );
    }

    #[test]
    fn ensure_scope_creates_the_three_directories_and_check_root_notices_a_lost_root() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::new(tmp.path().join("root"));
        let scope = PartitionScope::new("ns", "hub", "cg").unwrap();
        let e = layout.ensure_scope(&scope).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        fs::create_dir(layout.root()).unwrap();
        layout.ensure_scope(&scope).unwrap();
        for kind in ["ownership", "checkpoint", "locks"] {
            assert!(layout.scope_dir(&scope).join(kind).is_dir(), "{kind}");
        }
        layout.check_root().unwrap();
        fs::remove_dir_all(layout.root()).unwrap();
        assert_eq!(layout.check_root().unwrap_err().kind(), ErrorKind::NotFound);
    }
}
