//! SQLite result codes and rusqlite errors → [`ErrorKind`]: the one place this backend maps
//! them (unit-tested offline below).
//!
//! | SQLite | kind | why |
//! |---|---|---|
//! | `SQLITE_BUSY`, `SQLITE_LOCKED` | `Unavailable` | another connection or process held the lock past the busy timeout; retrying helps |
//! | `SQLITE_SCHEMA`, `SQLITE_INTERRUPT`, `SQLITE_NOMEM`, `SQLITE_FULL` | `Unavailable` | transient: the statement was rolled back and may succeed later |
//! | `SQLITE_CANTOPEN` | `NotFound` | the file or its directory does not exist (or cannot be opened) |
//! | `SQLITE_PERM`, `SQLITE_AUTH`, `SQLITE_READONLY` | `Unauthorized` | the file system refused access |
//! | `SQLITE_CORRUPT`, `SQLITE_NOTADB`, `SQLITE_IOERR`, everything else | `Backend` | a damaged file, a failing disk or a bug |
//! | rusqlite conversion errors (wrong column type, out of range) | `Backend` | a record that does not parse |

use eventhubs_store_core::{Error, ErrorKind};
use rusqlite::ErrorCode;

/// The backend name stamped on every error of this crate.
pub(crate) const BACKEND: &str = "sqlite";

/// The kind a caller can act on for one rusqlite error.
pub(crate) fn kind_of(err: &rusqlite::Error) -> ErrorKind {
    match err {
        rusqlite::Error::SqliteFailure(failure, _) => kind_of_code(failure.code),
        _ => ErrorKind::Backend,
    }
}

/// The kind for one primary SQLite result code.
pub(crate) fn kind_of_code(code: ErrorCode) -> ErrorKind {
    match code {
        ErrorCode::DatabaseBusy
        | ErrorCode::DatabaseLocked
        | ErrorCode::SchemaChanged
        | ErrorCode::OperationInterrupted
        | ErrorCode::OutOfMemory
        | ErrorCode::DiskFull => ErrorKind::Unavailable,
        ErrorCode::CannotOpen => ErrorKind::NotFound,
        ErrorCode::PermissionDenied | ErrorCode::AuthorizationForStatementDenied | ErrorCode::ReadOnly => {
            ErrorKind::Unauthorized
        }
        _ => ErrorKind::Backend,
    }
}

/// Wraps a rusqlite error into the store's [`Error`], naming the `operation` that failed and
/// keeping the rusqlite error as the source.
pub(crate) fn sqlite_error(operation: &str, err: rusqlite::Error) -> Error {
    let kind = kind_of(&err);
    let hint = match kind {
        ErrorKind::Unavailable => " (the database is busy or short of resources; retry)",
        ErrorKind::NotFound => " (the database file or its directory does not exist or cannot be opened)",
        ErrorKind::Unauthorized => " (the file system refused access to the database)",
        _ => "",
    };
    Error::new(kind, format!("{operation} failed{hint}"))
        .with_backend(BACKEND)
        .with_source(err)
}

/// A record read back from the database does not parse (a damaged or foreign file).
pub(crate) fn corrupt_record(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::backend(format!(
        "corrupt record in the checkpoint database: {what}: {detail}"
    ))
    .with_backend(BACKEND)
}

/// The blocking task running a database call panicked or was cancelled.
pub(crate) fn task_failed(operation: &str, err: tokio::task::JoinError) -> Error {
    Error::backend(format!(
        "{operation} failed: the blocking database task did not finish"
    ))
    .with_backend(BACKEND)
    .with_source(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::ffi;

    fn failure(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(ffi::Error::new(code), Some("message from sqlite".into()))
    }

    /// Extended and primary result codes and the kind each must map to.
    const TABLE: &[(i32, ErrorKind)] = &[
        (ffi::SQLITE_BUSY, ErrorKind::Unavailable),
        (ffi::SQLITE_BUSY_RECOVERY, ErrorKind::Unavailable),
        (ffi::SQLITE_BUSY_SNAPSHOT, ErrorKind::Unavailable),
        (ffi::SQLITE_LOCKED, ErrorKind::Unavailable),
        (ffi::SQLITE_LOCKED_SHAREDCACHE, ErrorKind::Unavailable),
        (ffi::SQLITE_SCHEMA, ErrorKind::Unavailable),
        (ffi::SQLITE_INTERRUPT, ErrorKind::Unavailable),
        (ffi::SQLITE_NOMEM, ErrorKind::Unavailable),
        (ffi::SQLITE_FULL, ErrorKind::Unavailable),
        (ffi::SQLITE_CANTOPEN, ErrorKind::NotFound),
        (ffi::SQLITE_CANTOPEN_ISDIR, ErrorKind::NotFound),
        (ffi::SQLITE_PERM, ErrorKind::Unauthorized),
        (ffi::SQLITE_AUTH, ErrorKind::Unauthorized),
        (ffi::SQLITE_READONLY, ErrorKind::Unauthorized),
        (ffi::SQLITE_READONLY_DBMOVED, ErrorKind::Unauthorized),
        (ffi::SQLITE_CORRUPT, ErrorKind::Backend),
        (ffi::SQLITE_NOTADB, ErrorKind::Backend),
        (ffi::SQLITE_IOERR, ErrorKind::Backend),
        (ffi::SQLITE_IOERR_FSYNC, ErrorKind::Backend),
        (ffi::SQLITE_CONSTRAINT, ErrorKind::Backend),
        (ffi::SQLITE_MISUSE, ErrorKind::Backend),
        (ffi::SQLITE_INTERNAL, ErrorKind::Backend),
    ];

    #[test]
    fn result_codes_map_to_kinds() {
        for &(code, kind) in TABLE {
            let e = sqlite_error("claim_ownership", failure(code));
            assert_eq!(e.kind(), kind, "code {code}");
            assert_eq!(e.is_retryable(), kind == ErrorKind::Unavailable, "code {code}");
        }
    }

    #[test]
    fn messages_say_what_the_kind_means() {
        let e = sqlite_error("open", failure(ffi::SQLITE_CANTOPEN));
        assert!(e.to_string().contains("does not exist"), "{e}");
        let e = sqlite_error("claim_ownership", failure(ffi::SQLITE_BUSY));
        assert!(e.to_string().contains("retry"), "{e}");
    }

    #[test]
    fn conversion_errors_are_backend_errors() {
        let e = rusqlite::Error::InvalidColumnType(2, "etag".into(), rusqlite::types::Type::Integer);
        assert_eq!(kind_of(&e), ErrorKind::Backend);
        assert_eq!(
            kind_of(&rusqlite::Error::IntegralValueOutOfRange(0, -1)),
            ErrorKind::Backend
        );
    }

    #[test]
    fn errors_name_backend_operation_and_keep_the_source() {
        let e = sqlite_error("set_checkpoint", failure(ffi::SQLITE_BUSY));
        let text = e.to_string();
        assert!(
            text.starts_with("[sqlite] unavailable: set_checkpoint failed"),
            "{text}"
        );
        assert_eq!(e.backend_name(), Some("sqlite"));
        assert!(std::error::Error::source(&e).is_some());
        let c = corrupt_record("ownership.last_modified_us", "out of range");
        assert_eq!(c.kind(), ErrorKind::Backend);
        assert!(c.to_string().contains("ownership.last_modified_us"), "{c}");
    }
}
