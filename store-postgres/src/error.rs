//! The one place where PostgreSQL and sqlx errors become [`eventhubs_store_core::Error`]s.
//!
//! SQLSTATE codes are classified by a pure function ([`kind_for_sqlstate`]) so the mapping is
//! unit-tested offline; [`map_sqlx`] applies it to database errors and classifies the driver's own
//! errors (I/O, TLS, pool time-outs) as retryable [`ErrorKind::Unavailable`].

use eventhubs_store_core::{Error, ErrorKind};
use sqlx::migrate::MigrateError;

/// The name stamped on every error of this crate.
pub(crate) const BACKEND: &str = "postgres";

/// Classifies a PostgreSQL SQLSTATE code.
///
/// - Retryable ([`ErrorKind::Unavailable`]): connection exceptions (class 08), insufficient
///   resources (class 53, e.g. too many connections), operator intervention (class 57: query
///   cancelled, admin shutdown as sent by `pg_terminate_backend`, crash shutdown, cannot connect
///   now), serialization failure `40001`, deadlock `40P01`, lock not available `55P03`, and
///   unique violation `23505` (our statements resolve conflicts with `ON CONFLICT`; a unique
///   violation can only come from a race with a concurrent writer, so retrying is right).
/// - [`ErrorKind::NotFound`]: undefined table `42P01`, invalid schema name `3F000`, unknown
///   database `3D000` (the schema was not migrated, or the URL names the wrong database).
/// - [`ErrorKind::Unauthorized`]: class 28 (bad password, no such role) and insufficient
///   privilege `42501`.
/// - [`ErrorKind::InvalidInput`]: data exceptions (class 22: a value the server cannot store);
///   the statement failed, so nothing was written (C11).
/// - Anything else: [`ErrorKind::Backend`].
pub(crate) fn kind_for_sqlstate(code: &str) -> ErrorKind {
    match code {
        "40001" | "40P01" | "55P03" | "23505" => ErrorKind::Unavailable,
        "42P01" | "3F000" | "3D000" => ErrorKind::NotFound,
        "42501" => ErrorKind::Unauthorized,
        _ => match code.get(..2) {
            Some("08" | "53" | "57") => ErrorKind::Unavailable,
            Some("28") => ErrorKind::Unauthorized,
            Some("22") => ErrorKind::InvalidInput,
            _ => ErrorKind::Backend,
        },
    }
}

/// True when the error means the connection itself is gone (killed by `pg_terminate_backend`,
/// server restart, network reset): the pool drops it, and an idempotent call may be repeated at
/// once on a fresh connection.
pub(crate) fn is_dead_connection(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| sqlstate_means_dead_connection(&c)),
        _ => false,
    }
}

/// SQLSTATEs a server sends when it ends the session: admin or crash shutdown (`57P01`,
/// `57P02`) and connection exceptions (class 08).
pub(crate) fn sqlstate_means_dead_connection(code: &str) -> bool {
    matches!(code, "57P01" | "57P02") || code.starts_with("08")
}

/// Runs an idempotent database call again while it fails because its pooled connection turned
/// out to be dead (e.g. killed while idle), at most `attempts` times in all: each failure drops
/// one dead connection from the pool, so with `attempts` = pool size + 1 the last try runs on a
/// fresh connection. Claims, fenced writes and deletes are never repeated: their answer would
/// change.
pub(crate) async fn retry_if_dead<T, F, Fut>(attempts: u32, call: F) -> Result<T, sqlx::Error>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    let mut tried = 1;
    loop {
        match call().await {
            Err(e) if tried < attempts && is_dead_connection(&e) => {
                tracing::debug!(error = %e, tried, "connection lost; retrying on another one");
                tried += 1;
            }
            result => return result,
        }
    }
}

/// Converts a sqlx error raised while doing `operation` (e.g. `"claim_ownership"`).
pub(crate) fn map_sqlx(err: sqlx::Error, operation: &str) -> Error {
    let (kind, message) = match &err {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let kind = kind_for_sqlstate(&code);
            let message = if kind == ErrorKind::NotFound {
                format!(
                    "{operation} failed with SQLSTATE {code}: the store's tables do not exist; \
                     call PostgresStore::migrate() once before using the store"
                )
            } else {
                format!("{operation} failed with SQLSTATE {code}")
            };
            (kind, message)
        }
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut | sqlx::Error::WorkerCrashed => {
            (
                ErrorKind::Unavailable,
                format!("{operation} failed: the server could not be reached"),
            )
        }
        sqlx::Error::PoolClosed => (
            ErrorKind::Backend,
            format!("{operation} failed: the store's connection pool was closed"),
        ),
        sqlx::Error::Configuration(_) | sqlx::Error::InvalidArgument(_) => (
            ErrorKind::InvalidInput,
            format!("{operation} failed: invalid connection settings"),
        ),
        sqlx::Error::Migrate(inner) => (migrate_kind(inner), format!("{operation} failed while migrating")),
        _ => (ErrorKind::Backend, format!("{operation} failed")),
    };
    Error::new(kind, message).with_backend(BACKEND).with_source(err)
}

fn migrate_kind(err: &MigrateError) -> ErrorKind {
    match err {
        MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) => match e {
            sqlx::Error::Database(db) => kind_for_sqlstate(&db.code().unwrap_or_default()),
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut => ErrorKind::Unavailable,
            _ => ErrorKind::Backend,
        },
        _ => ErrorKind::Backend,
    }
}

/// Converts an error of the embedded migrations ([`crate::PostgresStore::migrate`]).
pub(crate) fn map_migrate(err: MigrateError) -> Error {
    let kind = migrate_kind(&err);
    let message = match &err {
        MigrateError::VersionMismatch(v) => {
            format!("migrate failed: migration {v} applied to this schema differs from the embedded one")
        }
        MigrateError::VersionMissing(v) => format!(
            "migrate failed: migration {v} was applied to this schema by a newer version of this crate"
        ),
        MigrateError::Dirty(v) => {
            format!("migrate failed: migration {v} was left half-applied; repair the schema by hand")
        }
        _ => "migrate failed".to_owned(),
    };
    Error::new(kind, message).with_backend(BACKEND).with_source(err)
}

/// A record read back from the database that cannot be turned into our types (a name that no
/// longer passes C11, written by hand or by another tool).
pub(crate) fn corrupt(what: &str, err: Error) -> Error {
    Error::backend(format!("corrupt {what} record in the database"))
        .with_backend(BACKEND)
        .with_source(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_sqlstates_map_to_unavailable() {
        for code in [
            "40001", "40P01", "55P03", "23505", "08000", "08006", "08001", "53300", "53100", "57P01",
            "57P02", "57P03", "57014",
        ] {
            assert_eq!(kind_for_sqlstate(code), ErrorKind::Unavailable, "{code}");
        }
    }

    #[test]
    fn missing_tables_map_to_not_found() {
        for code in ["42P01", "3F000", "3D000"] {
            assert_eq!(kind_for_sqlstate(code), ErrorKind::NotFound, "{code}");
        }
    }

    #[test]
    fn auth_and_data_and_other_codes() {
        assert_eq!(kind_for_sqlstate("28P01"), ErrorKind::Unauthorized);
        assert_eq!(kind_for_sqlstate("28000"), ErrorKind::Unauthorized);
        assert_eq!(kind_for_sqlstate("42501"), ErrorKind::Unauthorized);
        assert_eq!(kind_for_sqlstate("22021"), ErrorKind::InvalidInput);
        assert_eq!(kind_for_sqlstate("22001"), ErrorKind::InvalidInput);
        assert_eq!(kind_for_sqlstate("23514"), ErrorKind::Backend);
        assert_eq!(kind_for_sqlstate("42601"), ErrorKind::Backend);
        assert_eq!(kind_for_sqlstate(""), ErrorKind::Backend);
        assert_eq!(kind_for_sqlstate("X"), ErrorKind::Backend);
    }

    #[test]
    fn driver_errors_map_by_variant() {
        let io = map_sqlx(
            sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
            "list_ownership",
        );
        assert_eq!(io.kind(), ErrorKind::Unavailable);
        assert!(io.is_retryable());
        assert_eq!(io.backend_name(), Some("postgres"));
        assert!(io.to_string().contains("list_ownership"), "{io}");

        assert_eq!(
            map_sqlx(sqlx::Error::PoolTimedOut, "x").kind(),
            ErrorKind::Unavailable
        );
        assert_eq!(
            map_sqlx(sqlx::Error::WorkerCrashed, "x").kind(),
            ErrorKind::Unavailable
        );
        assert_eq!(map_sqlx(sqlx::Error::PoolClosed, "x").kind(), ErrorKind::Backend);
        assert_eq!(map_sqlx(sqlx::Error::RowNotFound, "x").kind(), ErrorKind::Backend);
        assert_eq!(
            map_sqlx(sqlx::Error::Protocol("garbage".into()), "x").kind(),
            ErrorKind::Backend
        );
        assert_eq!(
            map_sqlx(sqlx::Error::Configuration("bad url".into()), "connect").kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn dead_connections_are_recognised() {
        assert!(sqlstate_means_dead_connection("57P01"));
        assert!(sqlstate_means_dead_connection("57P02"));
        assert!(sqlstate_means_dead_connection("08006"));
        assert!(!sqlstate_means_dead_connection("40001"));
        assert!(!sqlstate_means_dead_connection("57014"));
        assert!(is_dead_connection(&sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::UnexpectedEof
        ))));
        assert!(!is_dead_connection(&sqlx::Error::PoolTimedOut));
    }

    #[tokio::test]
    async fn idempotent_calls_are_repeated_only_after_dead_connections_and_boundedly() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let calls = AtomicU32::new(0);
        let r: Result<u32, sqlx::Error> = retry_if_dead(4, || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0..=2 => Err(sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into())),
                n => Ok(n),
            }
        })
        .await;
        assert_eq!(r.unwrap(), 3);
        let calls = AtomicU32::new(0);
        let r: Result<u32, sqlx::Error> = retry_if_dead(2, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into()))
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        let calls = AtomicU32::new(0);
        let r: Result<u32, sqlx::Error> = retry_if_dead(4, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(sqlx::Error::PoolTimedOut)
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn migrate_errors_name_the_version() {
        let e = map_migrate(MigrateError::VersionMismatch(1));
        assert_eq!(e.kind(), ErrorKind::Backend);
        assert!(e.to_string().contains("migration 1"), "{e}");
        let e = map_migrate(MigrateError::Execute(sqlx::Error::PoolTimedOut));
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        let e = map_sqlx(
            sqlx::Error::Migrate(Box::new(MigrateError::Execute(sqlx::Error::PoolTimedOut))),
            "migrate",
        );
        assert_eq!(e.kind(), ErrorKind::Unavailable);
    }
}
