//! Test support shared by this crate's integration tests: the server URL from the environment,
//! one fresh schema per test, clean-up, and the CI-aware skip rule.
#![allow(dead_code)]

use std::time::Duration;

use eventhubs_store_core::{Error, ErrorKind};
use eventhubs_store_postgres::{PostgresOptions, PostgresStore};
use sqlx::{AssertSqlSafe, Connection, Executor};

/// Where the tests find PostgreSQL unless `EVENTHUBS_TEST_POSTGRES_URL` says otherwise.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// How to enable the tests when the server is missing.
pub const HOW_TO_ENABLE: &str = "start PostgreSQL on 127.0.0.1:5432 with a database `test` \
    (trust auth for user postgres), or set EVENTHUBS_TEST_POSTGRES_URL=postgres://user@host:port/db \
    (or build with --features testcontainers where Docker runs)";

/// The configured server URL.
pub fn configured_url() -> String {
    std::env::var("EVENTHUBS_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A schema name no other test run uses.
pub fn unique_name(tag: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("ehtest_{tag}_{}", &id[..12])
}

/// Why a test could not get a store.
#[derive(Debug)]
pub enum Unavailable {
    /// The server cannot be reached: skipped outside CI, a failure with CI=true.
    Unreachable(String),
    /// Anything else: always a failure.
    Failed(Error),
}

/// One test's store in its own migrated schema.
pub struct TestDb {
    pub store: PostgresStore,
    pub url: String,
    pub schema: String,
    pub application_name: String,
}

impl TestDb {
    /// A fresh, migrated schema for `tag`.
    pub async fn create(tag: &str) -> Result<TestDb, Unavailable> {
        let url = server_url().await?;
        let schema = unique_name(tag);
        let application_name = format!("{schema}_app");
        let store = Self::open(&url, &schema, &application_name)
            .await
            .map_err(classify)?;
        store.migrate().await.map_err(Unavailable::Failed)?;
        Ok(TestDb {
            store,
            url,
            schema,
            application_name,
        })
    }

    /// A second, independent store on the same schema (its own pool), as a restarted process
    /// would open it.
    pub async fn reopen(&self) -> Result<PostgresStore, Error> {
        Self::open(&self.url, &self.schema, &self.application_name).await
    }

    async fn open(url: &str, schema: &str, application_name: &str) -> Result<PostgresStore, Error> {
        PostgresOptions::new(url)
            .schema(schema)
            .application_name(application_name)
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect()
            .await
    }

    /// Terminates every server process of this test's pool (and of stores reopened from it:
    /// they share its `application_name`), as a server restart would, and answers how many.
    pub async fn cut_connections(&self) -> Result<u64, sqlx::Error> {
        let mut admin = sqlx::PgConnection::connect(&self.url).await?;
        let cut: i64 = sqlx::query_scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&self.application_name)
        .fetch_one(&mut admin)
        .await?;
        admin.close().await?;
        Ok(u64::try_from(cut).unwrap_or(0))
    }

    /// Drops the schema and closes the pool.
    pub async fn cleanup(self) -> Result<(), Error> {
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema);
        let result = self.store.pool().execute(AssertSqlSafe(sql)).await;
        self.store.pool().close().await;
        result
            .map(|_| ())
            .map_err(|e| Error::backend("dropping the test schema").with_source(e))
    }
}

fn classify(e: Error) -> Unavailable {
    if e.kind() == ErrorKind::Unavailable {
        Unavailable::Unreachable(e.to_string())
    } else {
        Unavailable::Failed(e)
    }
}

/// The URL of a reachable server: the configured one, or (feature `testcontainers`) a container
/// started for the tests when the configured one cannot be reached.
async fn server_url() -> Result<String, Unavailable> {
    // Probed once per test process: an unreachable server costs one short time-out, not one per
    // case.
    static PROBE: tokio::sync::OnceCell<Result<String, (bool, String)>> = tokio::sync::OnceCell::const_new();
    PROBE
        .get_or_init(|| async {
            let url = configured_url();
            let probe = PostgresOptions::new(&url)
                .acquire_timeout(Duration::from_secs(3))
                .connect()
                .await;
            match probe {
                Ok(store) => {
                    store.pool().close().await;
                    Ok(url)
                }
                Err(e) if e.kind() == ErrorKind::Unavailable => {
                    fallback_url(e).await.map_err(|why| (true, why))
                }
                Err(e) => Err((false, e.to_string())),
            }
        })
        .await
        .clone()
        .map_err(|(unreachable, why)| {
            if unreachable {
                Unavailable::Unreachable(why)
            } else {
                Unavailable::Failed(Error::backend(why))
            }
        })
}

#[cfg(not(feature = "testcontainers"))]
async fn fallback_url(e: Error) -> Result<String, String> {
    Err(e.to_string())
}

#[cfg(feature = "testcontainers")]
async fn fallback_url(e: Error) -> Result<String, String> {
    container::url()
        .await
        .map_err(|why| format!("{e}; no container either: {why}"))
}

#[cfg(feature = "testcontainers")]
mod container {
    use std::sync::OnceLock;

    use testcontainers::core::{ContainerPort, WaitFor};
    use testcontainers::runners::SyncRunner;
    use testcontainers::{GenericImage, ImageExt, ReuseDirective};

    static URL: OnceLock<Result<String, String>> = OnceLock::new();

    /// Starts (or reuses, across runs) one `postgres:16` container named
    /// `eventhubs-test-postgres`. Started from a plain thread: the blocking runner brings its own
    /// runtime.
    pub async fn url() -> Result<String, String> {
        if let Some(url) = URL.get() {
            return url.clone();
        }
        let started = std::thread::spawn(|| {
            GenericImage::new("postgres", "16")
                .with_exposed_port(ContainerPort::Tcp(5432))
                .with_wait_for(WaitFor::message_on_stderr(
                    "database system is ready to accept connections",
                ))
                .with_env_var("POSTGRES_HOST_AUTH_METHOD", "trust")
                .with_env_var("POSTGRES_DB", "test")
                .with_container_name("eventhubs-test-postgres")
                .with_reuse(ReuseDirective::Always)
                .start()
                .map_err(|e| e.to_string())
                .and_then(|c| c.get_host_port_ipv4(5432).map_err(|e| e.to_string()))
                .map(|port| format!("postgres://postgres@127.0.0.1:{port}/test"))
        })
        .join()
        .unwrap_or_else(|_| Err("the container thread panicked".to_owned()));
        URL.get_or_init(|| started).clone()
    }
}

/// The CI rule for this crate's own tests: with CI=true an unreachable server fails the test;
/// otherwise one loud line says why it was skipped and how to enable it. Returns the store when
/// there is one.
pub async fn db_or_skip(tag: &str) -> Option<TestDb> {
    match TestDb::create(tag).await {
        Ok(db) => Some(db),
        Err(Unavailable::Failed(e)) => panic!("postgres test setup failed: {e}"),
        Err(Unavailable::Unreachable(why)) => {
            eventhubs_conformance::skip_unless_ci("postgres", &why, HOW_TO_ENABLE);
            None
        }
    }
}
