//! [`SqliteOptions`]: busy timeout, durability level and reader-pool size.

use std::time::Duration;

/// How hard SQLite works to keep a committed write on disk (`PRAGMA synchronous`).
///
/// Both levels keep every acknowledged write across a crash of the *process* (kill -9): in WAL
/// mode a commit is in the operating system's page cache before `Ok` returns. They differ on a
/// crash of the *machine* (power loss, kernel panic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Synchronous {
    /// `synchronous=FULL` (the default): the write-ahead log is fsynced on every commit, so an
    /// acknowledged write also survives power loss (C12 in its strongest form). Costs one fsync
    /// per write.
    #[default]
    Full,
    /// `synchronous=NORMAL`: the log is fsynced only at WAL checkpoints. Survives kill -9, but the
    /// last commits before a power loss may roll back. Faster on slow disks.
    Normal,
}

impl Synchronous {
    pub(crate) fn pragma_value(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// Options of [`crate::SqliteStore::open_with`]. `SqliteOptions::default()` is what
/// [`crate::SqliteStore::open`] uses.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// How long a write waits for another process's write lock before failing with
    /// `Unavailable` (`PRAGMA busy_timeout`). Default 5 s.
    pub busy_timeout: Duration,
    /// Durability of commits. Default [`Synchronous::Full`].
    pub synchronous: Synchronous,
    /// Idle read connections kept open for reuse (reads never wait for writes in WAL mode).
    /// Default 4; 0 opens a connection per read.
    pub max_idle_readers: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            busy_timeout: Duration::from_secs(5),
            synchronous: Synchronous::Full,
            max_idle_readers: 4,
        }
    }
}

impl SqliteOptions {
    /// The defaults: 5 s busy timeout, `synchronous=FULL`, 4 idle readers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`SqliteOptions::busy_timeout`].
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Sets [`SqliteOptions::synchronous`].
    pub fn synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// Sets [`SqliteOptions::max_idle_readers`].
    pub fn max_idle_readers(mut self, readers: usize) -> Self {
        self.max_idle_readers = readers;
        self
    }
}
