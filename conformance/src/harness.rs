//! What a backend implements to run the suite: a [`Harness`] that hands out a fresh, isolated
//! [`Instance`] of its store per case.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use eventhubs_store_core::{BoxError, CheckpointStore};

/// Hands out stores for the suite. One harness serves every case; each case calls
/// [`Harness::setup`] once and [`Instance::cleanup`] at the end, pass or fail.
#[async_trait]
pub trait Harness: Send + Sync {
    /// The backend's name, used in reports and skip lines.
    fn name(&self) -> &str;

    /// A fresh, empty store, isolated from every other case (own schema, key prefix, container
    /// or directory), so cases can run in parallel.
    ///
    /// Return [`SetupError::unreachable`] when the backend's server cannot be reached: outside
    /// CI the suite prints one loud skip line and passes; with `CI=true` it fails.
    async fn setup(&self) -> Result<Box<dyn Instance>, SetupError>;
}

/// One case's store.
#[async_trait]
pub trait Instance: Send + Sync {
    /// The store under test.
    fn store(&self) -> Arc<dyn CheckpointStore>;

    /// A new, independent handle on the same data, opened as a restarted process would open it
    /// (new pool, connection or file handles). The suite uses it for durability (C12) and for
    /// races across handles (C7). `Ok(None)` when the store cannot be reopened (in-memory
    /// stores); those cases then check what they can on the one handle.
    async fn reopen(&self) -> Result<Option<Arc<dyn CheckpointStore>>, BoxError> {
        Ok(None)
    }

    /// Cuts the store's connections from the server side, as a server restart or a network
    /// failure would (`pg_terminate_backend`, `CLIENT KILL`, …), and answers how many it cut
    /// (`Some(0)` when none was open at that moment). The store object must recover by itself.
    /// `Ok(None)`, the default, when the backend has no connections to cut (embedded stores);
    /// the outage case then passes without running.
    async fn interrupt(&self) -> Result<Option<u64>, BoxError> {
        Ok(None)
    }

    /// Removes everything the case created. Called after every case, pass or fail.
    async fn cleanup(self: Box<Self>) -> Result<(), BoxError> {
        Ok(())
    }
}

/// Why [`Harness::setup`] could not produce a store.
#[derive(Debug)]
pub enum SetupError {
    /// The backend's server is not reachable here. Skipped (loudly) outside CI, fatal in CI.
    Unreachable {
        /// What failed, e.g. "connection refused at 127.0.0.1:5432".
        reason: String,
        /// How to enable the backend, e.g. "start PostgreSQL or set EVENTHUBS_TEST_POSTGRES_URL".
        how_to_enable: String,
    },
    /// Anything else: always a failure.
    Failed(BoxError),
}

impl SetupError {
    /// The server cannot be reached; `how_to_enable` tells a developer what to do.
    pub fn unreachable(reason: impl Into<String>, how_to_enable: impl Into<String>) -> Self {
        SetupError::Unreachable {
            reason: reason.into(),
            how_to_enable: how_to_enable.into(),
        }
    }

    /// Any other failure.
    pub fn failed(error: impl Into<BoxError>) -> Self {
        SetupError::Failed(error.into())
    }
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::Unreachable {
                reason,
                how_to_enable,
            } => {
                write!(f, "backend unreachable: {reason}; to enable: {how_to_enable}")
            }
            SetupError::Failed(e) => write!(f, "setup failed: {e}"),
        }
    }
}

impl std::error::Error for SetupError {}

impl From<eventhubs_store_core::Error> for SetupError {
    fn from(e: eventhubs_store_core::Error) -> Self {
        SetupError::Failed(Box::new(e))
    }
}
