//! Connections to one database file and how calls reach them without blocking the async
//! runtime.
//!
//! # Why one writer behind a mutex plus a few pooled readers
//!
//! SQLite admits one writer at a time per file. Several write connections in one process would
//! not write in parallel; they would contend for the file lock through SQLite's busy handler,
//! which *sleeps and polls* (1, 2, 5, 10 … ms), so 32 tasks racing for one partition would spend
//! most of their time asleep. One write connection behind a [`Mutex`] queues this process's
//! writers in order instead, and `busy_timeout` is left to arbitrate only between processes.
//! Reads in WAL mode never wait for a writer and see the last committed transaction, so they
//! take one of a few pooled read-only connections and run in parallel with writes.
//!
//! Every call runs on tokio's blocking pool (`spawn_blocking`): SQLite calls (and the fsync of
//! each commit) block the thread.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use eventhubs_store_core::Result;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::error::{sqlite_error, task_failed};
use crate::migrations::migrate;
use crate::options::SqliteOptions;

/// The connections of one [`crate::SqliteStore`] (shared by its clones).
pub(crate) struct Connections {
    path: PathBuf,
    options: SqliteOptions,
    writer: Mutex<Connection>,
    idle_readers: Mutex<Vec<Connection>>,
}

impl Connections {
    /// Opens (creating if needed) the file, switches it to WAL and migrates it. Blocking.
    pub(crate) fn open_blocking(path: PathBuf, options: SqliteOptions) -> Result<Self> {
        let deadline = Instant::now() + options.busy_timeout;
        let mut writer = open_connection(&path, &options, true)?;
        // Another process may be creating the same file right now: switching to WAL takes an
        // exclusive lock for which SQLite does not always call the busy handler, so retry.
        retry_while_busy(deadline, || enable_wal(&writer))?;
        retry_while_busy(deadline, || migrate(&mut writer).map(drop))?;
        Ok(Connections {
            path,
            options,
            writer: Mutex::new(writer),
            idle_readers: Mutex::new(Vec::new()),
        })
    }

    /// The database file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The options the store was opened with.
    pub(crate) fn options(&self) -> &SqliteOptions {
        &self.options
    }

    /// Runs `f` inside one `BEGIN IMMEDIATE` transaction on the write connection and commits if
    /// it returns `Ok`; an `Err` (or a panic) rolls everything back. Blocking.
    ///
    /// `BEGIN IMMEDIATE` takes the file's write lock before the first read, so a read-then-write
    /// (compare the etag, then update) can never be overtaken by another process in between, and
    /// never fails half-way with an upgrade deadlock.
    pub(crate) fn write<T>(
        &self,
        operation: &str,
        f: impl FnOnce(&Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut conn = lock(&self.writer);
        if !conn.is_autocommit() {
            // Only after a panic inside a transaction: finish it before going on.
            conn.execute_batch("ROLLBACK")
                .map_err(|e| sqlite_error(&format!("{operation}: roll back an abandoned transaction"), e))?;
        }
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sqlite_error(&format!("{operation}: begin immediate"), e))?;
        let value = f(&tx)?;
        tx.commit()
            .map_err(|e| sqlite_error(&format!("{operation}: commit"), e))?;
        Ok(value)
    }

    /// Runs `f` on a read-only connection from the pool (opened on demand). Blocking.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = lock(&self.idle_readers).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => open_reader(&self.path, &self.options)?,
        };
        let value = f(&conn);
        if conn.is_autocommit() {
            let mut idle = lock(&self.idle_readers);
            if idle.len() < self.options.max_idle_readers {
                idle.push(conn);
            }
        }
        value
    }
}

/// Runs blocking database work on `connections` (see [`in_blocking_pool`]).
pub(crate) async fn run_blocking<T: Send + 'static>(
    connections: &Arc<Connections>,
    operation: &'static str,
    f: impl FnOnce(&Connections) -> Result<T> + Send + 'static,
) -> Result<T> {
    let connections = Arc::clone(connections);
    in_blocking_pool(operation, move || f(&connections)).await
}

/// Runs blocking work on tokio's blocking pool, inside the caller's tracing span. Without a
/// tokio runtime (another executor) it runs on the calling thread.
pub(crate) async fn in_blocking_pool<T: Send + 'static>(
    operation: &'static str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let span = tracing::Span::current();
    let job = move || span.in_scope(f);
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle
            .spawn_blocking(job)
            .await
            .map_err(|e| task_failed(operation, e))?,
        Err(_) => job(),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves no half-done state behind: an open transaction is
    // rolled back by `Transaction`'s drop or by the check in `write`.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn open_connection(path: &Path, options: &SqliteOptions, create: bool) -> Result<Connection> {
    // No SQLITE_OPEN_URI: a path is a path, even if it starts with "file:".
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| sqlite_error(&format!("open {}", path.display()), e))?;
    conn.busy_timeout(options.busy_timeout)
        .map_err(|e| sqlite_error("open: set busy_timeout", e))?;
    conn.pragma_update(None, "synchronous", options.synchronous.pragma_value())
        .map_err(|e| sqlite_error("open: set synchronous", e))?;
    Ok(conn)
}

fn open_reader(path: &Path, options: &SqliteOptions) -> Result<Connection> {
    let conn = open_connection(path, options, false)?;
    conn.pragma_update(None, "query_only", true)
        .map_err(|e| sqlite_error("open: set query_only", e))?;
    Ok(conn)
}

fn enable_wal(conn: &Connection) -> Result<()> {
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(|e| sqlite_error("open: set journal_mode=WAL", e))?;
    if mode.eq_ignore_ascii_case("wal") {
        Ok(())
    } else {
        Err(
            eventhubs_store_core::Error::backend(format!("open: journal_mode is {mode:?}, WAL is required"))
                .with_backend(crate::error::BACKEND),
        )
    }
}

/// Retries `f` while it fails with a retryable error (`SQLITE_BUSY`, `SQLITE_LOCKED`, …), until
/// `deadline`.
fn retry_while_busy(deadline: Instant, mut f: impl FnMut() -> Result<()>) -> Result<()> {
    loop {
        match f() {
            Err(e) if e.is_retryable() && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other,
        }
    }
}
