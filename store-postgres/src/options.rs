//! [`PostgresOptions`]: how to connect (URL, schema, pool size) and the rules for the schema
//! name and for showing a URL without its password.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use eventhubs_store_core::{Error, ErrorKind, Result};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::error::{BACKEND, map_sqlx};
use crate::store::PostgresStore;

/// Connections idle longer than this are pinged before use.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

/// The schema the tables live in unless [`PostgresOptions::schema`] says otherwise.
pub const DEFAULT_SCHEMA: &str = "eventhubs";

/// Settings for [`PostgresStore`]: the server URL, the schema holding the tables and the pool.
///
/// `Debug` shows the URL with its password replaced by `***`.
///
/// Compiled, not run (it needs a server):
///
/// ```no_run
/// # async fn demo() -> eventhubs_store_core::Result<()> {
/// use eventhubs_store_postgres::PostgresOptions;
///
/// let store = PostgresOptions::new("postgres://app:secret@db.internal/events")
///     .schema("checkpoints")
///     .max_connections(16)
///     .application_name("orders-processor")
///     .connect()
///     .await?;
/// store.migrate().await?; // once per schema, e.g. at deploy time
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresOptions {
    url: String,
    schema: String,
    max_connections: u32,
    acquire_timeout: Duration,
    application_name: Option<String>,
}

impl PostgresOptions {
    /// Options for the server at `url` (`postgres://user:password@host:port/database?sslmode=…`),
    /// schema [`DEFAULT_SCHEMA`], up to 10 connections, a 10 s acquire time-out.
    pub fn new(url: impl Into<String>) -> Self {
        PostgresOptions {
            url: url.into(),
            schema: DEFAULT_SCHEMA.to_owned(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
            application_name: None,
        }
    }

    /// The schema holding the tables (validated by [`validate_schema`] when connecting).
    pub fn schema(mut self, name: impl Into<String>) -> Self {
        self.schema = name.into();
        self
    }

    /// The most connections the pool opens (at least 1).
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// How long a call waits for a free (or new) connection before failing with
    /// [`ErrorKind::Unavailable`].
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// The `application_name` the connections report to the server (`pg_stat_activity`).
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = Some(name.into());
        self
    }

    /// Opens the pool (one connection eagerly, so a wrong URL or a stopped server fails here)
    /// and returns the store. Does not create or migrate the schema: see
    /// [`PostgresStore::migrate`].
    ///
    /// # Errors
    /// `InvalidInput` for a bad URL or schema name, `Unavailable` if the server cannot be
    /// reached, `Unauthorized` if the credentials are refused.
    pub async fn connect(self) -> Result<PostgresStore> {
        let schema = validate_schema(&self.schema)?;
        let mut connect = PgConnectOptions::from_str(&self.url).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("url {}: not a valid PostgreSQL URL", redact_url(&self.url)),
            )
            .with_backend(BACKEND)
            .with_source(e)
        })?;
        if let Some(name) = &self.application_name {
            connect = connect.application_name(name);
        }
        let pool = PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.acquire_timeout)
            // Ping only connections idle for a while (the server or a firewall may have dropped
            // them), not on every call: a ping is a round trip, and a busy store's connections are
            // fresh. A connection killed within that second fails its call with the retryable
            // Unavailable kind and is replaced.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > IDLE_BEFORE_PING {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(connect)
            .await
            .map_err(|e| map_sqlx(e, &format!("connecting to {}", redact_url(&self.url))))?;
        Ok(PostgresStore::new_validated(pool, schema))
    }
}

impl fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("url", &redact_url(&self.url))
            .field("schema", &self.schema)
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("application_name", &self.application_name)
            .finish()
    }
}

/// Checks a schema name: 1–63 bytes of ASCII letters, digits and `_`, not starting with a digit
/// and not with `pg_` (reserved by PostgreSQL). The name is used double-quoted, so its case is
/// kept. Returns the name unchanged.
///
/// # Errors
/// `InvalidInput` naming the field `schema` and the rule.
pub fn validate_schema(name: &str) -> Result<String> {
    let bad = |why: &str| Err(Error::invalid_input("schema", name, why).with_backend(BACKEND));
    if name.is_empty() || name.len() > 63 {
        return bad("must be 1 to 63 bytes long (PostgreSQL identifier limit)");
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return bad("may hold only ASCII letters, digits and '_'");
    }
    if name.as_bytes()[0].is_ascii_digit() {
        return bad("must not start with a digit");
    }
    if name.to_ascii_lowercase().starts_with("pg_") {
        return bad("must not start with 'pg_' (reserved by PostgreSQL)");
    }
    Ok(name.to_owned())
}

/// The schema name as a double-quoted SQL identifier (the name was validated, so it holds no
/// quote; doubling is kept as defence in depth).
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A URL fit for messages and `Debug`: the password, if any, replaced by `***`; anything that does
/// not parse as a URL is hidden entirely (it might be a password in the wrong place).
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() && parsed.set_password(Some("***")).is_err() {
                return "<url hidden>".to_owned();
            }
            let query: Vec<(String, String)> = parsed
                .query_pairs()
                .map(|(k, v)| {
                    let v = if k.eq_ignore_ascii_case("password") {
                        "***".into()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            if !query.is_empty() {
                parsed.query_pairs_mut().clear().extend_pairs(query);
            }
            parsed.to_string()
        }
        Err(_) => "<url hidden>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_in_user_info_and_query() {
        let r = redact_url("postgres://app:s3cret@db:5432/events");
        assert_eq!(r, "postgres://app:***@db:5432/events");
        let r = redact_url("postgres://db/events?user=app&password=s3cret&sslmode=require");
        assert!(!r.contains("s3cret"), "{r}");
        assert!(r.contains("sslmode=require"), "{r}");
        assert_eq!(redact_url("postgres://app@db/events"), "postgres://app@db/events");
        assert_eq!(redact_url("not a url s3cret"), "<url hidden>");
    }

    #[test]
    fn debug_of_options_hides_the_password() {
        let o = PostgresOptions::new("postgres://app:s3cret@db/events").schema("x");
        let d = format!("{o:?}");
        assert!(!d.contains("s3cret"), "{d}");
        assert!(d.contains("***"), "{d}");
    }

    #[test]
    fn schema_names_are_validated() {
        for good in ["eventhubs", "EventHubs_2", "_x"] {
            assert_eq!(validate_schema(good).unwrap(), good);
        }
        for bad in [
            "",
            "1abc",
            "a-b",
            "a b",
            "a\"b",
            "pg_temp",
            "PG_x",
            "é",
            &"x".repeat(64),
        ] {
            let e = validate_schema(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}");
            assert!(e.to_string().contains("schema"), "{e}");
        }
        assert_eq!(quote_ident("Ab_1"), "\"Ab_1\"");
    }

    #[tokio::test]
    async fn bad_url_is_invalid_input_without_the_password() {
        let e = PostgresOptions::new("postgres://app:s3cret@db:notaport/x")
            .connect()
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(!e.to_string().contains("s3cret"), "{e}");
        assert!(!format!("{e:?}").contains("s3cret"), "{e:?}");
    }
}
