//! The adapter's own retries of `Unavailable` store errors.
//!
//! The official `EventProcessor` stops (its `run` returns the error) on the first error a
//! checkpoint store returns, so a store that is briefly unreachable (a PostgreSQL restart, a
//! Redis failover, a storage 503) would stop it. The adapter retries such errors itself, with
//! bounded exponential backoff, before it gives one to the processor. Retrying is safe for
//! every call: listings read; a claim repeated after its first try was applied loses (its etag
//! changed) and is left out, so the processor sees it on its next listing; a checkpoint is an
//! unconditional upsert of the same value.

use std::future::Future;
use std::time::Duration;

/// How the adapter retries `Unavailable` errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryOptions {
    /// Tries after the first (default 5).
    pub max_retries: u32,
    /// The first delay (default 200 ms), doubled after each try.
    pub initial_delay: Duration,
    /// The longest delay (default 5 s).
    pub max_delay: Duration,
}

impl Default for RetryOptions {
    fn default() -> Self {
        RetryOptions {
            max_retries: 5,
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryOptions {
    /// No retries: every error goes to the caller at once.
    pub fn none() -> Self {
        RetryOptions {
            max_retries: 0,
            ..RetryOptions::default()
        }
    }

    fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(16));
        self.initial_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Runs `step` until it succeeds, fails with something other than `Unavailable`, or the
/// retries run out.
pub async fn retrying<T, F, Fut>(
    what: &str,
    options: &RetryOptions,
    mut step: F,
) -> eventhubs_store_core::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = eventhubs_store_core::Result<T>>,
{
    let mut attempt = 0;
    loop {
        match step().await {
            Err(e) if e.is_retryable() && attempt < options.max_retries => {
                let delay = options.delay(attempt);
                tracing::debug!(operation = what, attempt, ?delay, error = %e, "store unavailable; retrying");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}
