//! [`PostgresStore`]: the store type, its constructors and [`PostgresStore::migrate`].

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use eventhubs_store_core::Result;
use sqlx::migrate::Migrator;
use sqlx::{AssertSqlSafe, Executor, PgPool};

use crate::error::{BACKEND, map_migrate, map_sqlx};
use crate::options::{DEFAULT_SCHEMA, PostgresOptions, quote_ident, validate_schema};
use crate::sql::Statements;

/// The versioned migrations embedded in the crate (`migrations/*.sql`). They hold unqualified
/// table names and run with `search_path` set to the store's schema.
static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// A [`CheckpointStore`](eventhubs_store_core::CheckpointStore) in PostgreSQL.
///
/// Two tables (`ownership`, `checkpoint`) in one schema (default [`DEFAULT_SCHEMA`]); create them
/// with [`PostgresStore::migrate`]. Every call is one statement, so one round trip, whatever the
/// size of a claim batch. Cloning is cheap and shares the pool.
#[derive(Clone)]
pub struct PostgresStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) pool: PgPool,
    pub(crate) schema: String,
    pub(crate) sql: Statements,
}

impl PostgresStore {
    /// Connects to `url` with default [`PostgresOptions`] (schema [`DEFAULT_SCHEMA`]).
    ///
    /// # Errors
    /// As [`PostgresOptions::connect`].
    pub async fn connect(url: &str) -> Result<Self> {
        PostgresOptions::new(url).connect().await
    }

    /// A store over an existing pool, in schema [`DEFAULT_SCHEMA`].
    pub fn from_pool(pool: PgPool) -> Self {
        Self::new_validated(pool, DEFAULT_SCHEMA.to_owned())
    }

    /// A store over an existing pool, in `schema`.
    ///
    /// # Errors
    /// `InvalidInput` if the schema name breaks [`validate_schema`].
    pub fn from_pool_in_schema(pool: PgPool, schema: &str) -> Result<Self> {
        Ok(Self::new_validated(pool, validate_schema(schema)?))
    }

    pub(crate) fn new_validated(pool: PgPool, schema: String) -> Self {
        let sql = Statements::for_schema(&quote_ident(&schema));
        PostgresStore {
            inner: Arc::new(Inner { pool, schema, sql }),
        }
    }

    /// The schema holding the tables.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// The connection pool (shared with every clone of the store).
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// Creates the schema if needed and applies the embedded migrations not yet applied to it.
    ///
    /// Run it on request (at deploy time, or once at start-up); store calls never migrate on
    /// their own. Migrations are recorded in `<schema>._sqlx_migrations`; concurrent callers
    /// wait for each other (an advisory lock), and a second run applies nothing.
    ///
    /// # Errors
    /// `Unavailable` if the server cannot be reached, `Unauthorized` without the right to create
    /// the schema, `Backend` if the schema holds migrations this version does not know or that
    /// differ from the embedded ones.
    #[tracing::instrument(level = "debug", skip(self), fields(backend = BACKEND, schema = %self.inner.schema))]
    pub async fn migrate(&self) -> Result<()> {
        let schema = quote_ident(&self.inner.schema);
        let mut migrator = Migrator {
            migrations: Cow::Owned(MIGRATIONS.migrations.to_vec()),
            ..Migrator::DEFAULT
        };
        migrator.dangerous_set_table_name(format!("{schema}._sqlx_migrations"));
        // Created under the migrator's advisory lock, so concurrent first runs do not collide.
        migrator.create_schema(schema.clone());

        let mut conn = self
            .inner
            .pool
            .acquire()
            .await
            .map_err(|e| map_sqlx(e, "migrate"))?;
        // The search_path change must not leak into the pool.
        conn.close_on_drop();
        conn.execute(AssertSqlSafe(format!("SET search_path TO {schema}")))
            .await
            .map_err(|e| map_sqlx(e, "migrate"))?;
        migrator
            .run_direct(None, &mut *conn, false)
            .await
            .map_err(map_migrate)?;
        Ok(())
    }
}

impl fmt::Debug for PostgresStore {
    /// Shows user, host, port and database of the pool and the schema; never the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let options = self.inner.pool.connect_options();
        f.debug_struct("PostgresStore")
            .field(
                "server",
                &format_args!(
                    "postgres://{}@{}:{}/{}",
                    options.get_username(),
                    options.get_host(),
                    options.get_port(),
                    options.get_database().unwrap_or_default()
                ),
            )
            .field("schema", &self.inner.schema)
            .finish()
    }
}
