//! Schema migrations keyed by `PRAGMA user_version`.
//!
//! Each migration runs, together with the `user_version` bump, in one `BEGIN IMMEDIATE`
//! transaction, so processes opening the same new file at once migrate it exactly once and a
//! kill -9 in the middle leaves the previous version intact. `PRAGMA application_id` marks the
//! file as ours, so pointing the store at some other application's database fails with a clear
//! error instead of adding tables to it.

use eventhubs_store_core::{Error, ErrorKind, Result};
use rusqlite::{Connection, TransactionBehavior};

use crate::error::{BACKEND, sqlite_error};

/// `PRAGMA application_id` of a checkpoint database: "EHCP" in ASCII.
pub(crate) const APPLICATION_ID: i32 = 0x4548_4350;

/// One step of the schema, applied when `user_version` is below its position (1-based).
struct Migration {
    description: &'static str,
    sql: &'static str,
}

/// The schema, oldest first. Never edit a released step; append a new one.
///
/// Names are stored normalised (lower-cased, C1) and compared byte for byte; timestamps are
/// microseconds since the Unix epoch (C5); `STRICT` makes SQLite refuse a value of the wrong
/// type instead of converting it, so a record always reads back as written (C9).
const MIGRATIONS: &[Migration] = &[Migration {
    description: "ownership and checkpoint tables",
    sql: "
        CREATE TABLE ownership (
            namespace        TEXT NOT NULL,
            event_hub        TEXT NOT NULL,
            consumer_group   TEXT NOT NULL,
            partition_id     TEXT NOT NULL,
            owner_id         TEXT NOT NULL,
            etag             TEXT NOT NULL,
            last_modified_us INTEGER NOT NULL,
            PRIMARY KEY (namespace, event_hub, consumer_group, partition_id)
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE checkpoint (
            namespace        TEXT NOT NULL,
            event_hub        TEXT NOT NULL,
            consumer_group   TEXT NOT NULL,
            partition_id     TEXT NOT NULL,
            offset_value     TEXT,
            sequence_number  INTEGER,
            CHECK (offset_value IS NOT NULL OR sequence_number IS NOT NULL),
            PRIMARY KEY (namespace, event_hub, consumer_group, partition_id)
        ) STRICT, WITHOUT ROWID;
    ",
}];

/// The `user_version` this build writes and understands.
pub(crate) fn schema_version() -> i32 {
    i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX)
}

/// Brings the database to [`schema_version`]; returns how many steps were applied.
///
/// Fails with `Backend` if the file was written by a newer build, and with `InvalidInput` if it
/// belongs to another application.
pub(crate) fn migrate(conn: &mut Connection) -> Result<usize> {
    let (version, app_id) = read_header(conn)?;
    if version == schema_version() && app_id == APPLICATION_ID {
        return Ok(0);
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| sqlite_error("migrate: begin", e))?;
    // Read again under the write lock: another process may have migrated meanwhile.
    let (version, app_id) = read_header(&tx)?;
    check_compatible(&tx, version, app_id)?;
    let start = usize::try_from(version).unwrap_or(0);
    let mut applied = 0;
    for (index, step) in MIGRATIONS.iter().enumerate().skip(start) {
        tracing::info!(
            backend = BACKEND,
            version = index + 1,
            step = step.description,
            "applying migration"
        );
        tx.execute_batch(step.sql)
            .map_err(|e| sqlite_error(&format!("migrate: step {} ({})", index + 1, step.description), e))?;
        applied += 1;
    }
    tx.pragma_update(None, "user_version", schema_version())
        .map_err(|e| sqlite_error("migrate: set user_version", e))?;
    tx.pragma_update(None, "application_id", APPLICATION_ID)
        .map_err(|e| sqlite_error("migrate: set application_id", e))?;
    tx.commit().map_err(|e| sqlite_error("migrate: commit", e))?;
    Ok(applied)
}

fn read_header(conn: &Connection) -> Result<(i32, i32)> {
    let version: i32 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|e| sqlite_error("migrate: read user_version", e))?;
    let app_id: i32 = conn
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .map_err(|e| sqlite_error("migrate: read application_id", e))?;
    Ok((version, app_id))
}

fn check_compatible(conn: &Connection, version: i32, app_id: i32) -> Result<()> {
    let foreign = || {
        Error::new(
            ErrorKind::InvalidInput,
            format!(
                "path: the file is a SQLite database of another application (application_id {app_id:#x}, \
                 user_version {version}); point the store at a new or checkpoint-store file"
            ),
        )
        .with_backend(BACKEND)
    };
    if version > schema_version() {
        return Err(Error::backend(format!(
            "the database has schema version {version}, newer than the {} this build understands; \
             upgrade eventhubs-store-sqlite",
            schema_version()
        ))
        .with_backend(BACKEND));
    }
    if app_id != APPLICATION_ID && app_id != 0 {
        return Err(foreign());
    }
    if app_id == 0 {
        // A file without our mark must be empty, or we would add tables to someone's database.
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
            .map_err(|e| sqlite_error("migrate: inspect schema", e))?;
        if tables > 0 {
            return Err(foreign());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_database_is_migrated_once() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), MIGRATIONS.len());
        assert_eq!(migrate(&mut conn).unwrap(), 0);
        let (version, app_id) = read_header(&conn).unwrap();
        assert_eq!((version, app_id), (schema_version(), APPLICATION_ID));
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name IN ('ownership', 'checkpoint')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 2);
    }

    #[test]
    fn newer_schema_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        conn.pragma_update(None, "user_version", schema_version() + 1)
            .unwrap();
        let e = migrate(&mut conn).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Backend);
        assert!(e.to_string().contains("newer"), "{e}");
    }

    #[test]
    fn foreign_database_is_refused_and_left_alone() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
            .unwrap();
        let e = migrate(&mut conn).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("another application"), "{e}");
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tables, 1, "nothing added to the foreign database");

        let mut other = Connection::open_in_memory().unwrap();
        other.pragma_update(None, "application_id", 7).unwrap();
        assert_eq!(migrate(&mut other).unwrap_err().kind(), ErrorKind::InvalidInput);
    }
}
