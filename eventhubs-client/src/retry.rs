//! The client's one retry mechanism: [`RetryOptions`] (bounded exponential backoff with
//! jitter, and a timeout on every network step) and `with_retries`, which every operation of
//! the client goes through. What is worth retrying is decided in one place,
//! [`Error::is_retryable`](crate::Error::is_retryable), fed by the AMQP classifier.

use std::future::Future;
use std::time::Duration;

use rand::Rng;

use crate::error::{Error, ErrorKind, Result};

/// How operations are retried and how long each network step may take.
///
/// Defaults sit where the official SDKs' do: 3 retries, a first delay of 200 ms doubling up
/// to 30 s, ±20 % jitter, 30 s per network step (connect, attach, send settlement,
/// management and CBS requests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryOptions {
    /// Retries after the first try (0: try once).
    pub max_retries: u32,
    /// The delay before the first retry; each further retry doubles it.
    pub initial_delay: Duration,
    /// The longest delay between two tries.
    pub max_delay: Duration,
    /// How long one network step may take before it fails with `Unavailable` (and the
    /// connection under it is replaced).
    pub try_timeout: Duration,
}

impl Default for RetryOptions {
    fn default() -> Self {
        RetryOptions {
            max_retries: 3,
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
            try_timeout: Duration::from_secs(30),
        }
    }
}

impl RetryOptions {
    /// Checks the options: delays and the timeout above zero, `initial_delay <= max_delay`.
    ///
    /// # Errors
    /// `InvalidInput` naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, rule: &str| {
            Err(Error::new(
                ErrorKind::InvalidInput,
                format!("retry options: {field} {rule}"),
            ))
        };
        if self.initial_delay.is_zero() {
            return bad("initial_delay", "must be above zero");
        }
        if self.max_delay < self.initial_delay {
            return bad("max_delay", "must be at least initial_delay");
        }
        if self.try_timeout.is_zero() {
            return bad("try_timeout", "must be above zero");
        }
        Ok(())
    }

    /// The delay before retry number `attempt` (0 for the first retry): `initial_delay * 2^attempt`
    /// capped at `max_delay`, then ±20 % jitter (still capped).
    pub fn delay(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let base = self
            .initial_delay
            .saturating_mul(2u32.saturating_pow(attempt.min(30)))
            .min(self.max_delay);
        base.mul_f64(rng.random_range(0.8..=1.2)).min(self.max_delay)
    }
}

/// Runs `step` with the step timeout.
///
/// # Errors
/// `Unavailable` (marked as a connection failure) when `step` takes longer than `timeout`;
/// `step`'s own error otherwise.
pub(crate) async fn timed<T>(
    what: &str,
    timeout: Duration,
    step: impl Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(timeout, step).await {
        Ok(result) => result,
        Err(_) => Err(Error::new(
            ErrorKind::Unavailable,
            format!("{what}: timed out after {timeout:?}"),
        )
        .connection_failure()),
    }
}

/// Runs `operation` until it succeeds, fails with an error that is not retryable, or has been
/// retried `options.max_retries` times; sleeps the backoff between tries. Each try is bounded
/// by `options.try_timeout`. The last error is returned as it is.
pub(crate) async fn with_retries<T, F, Fut>(what: &str, options: &RetryOptions, mut operation: F) -> Result<T>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut attempt = 0;
    loop {
        match timed(what, options.try_timeout, operation(attempt)).await {
            Ok(value) => return Ok(value),
            Err(e) if e.is_retryable() && attempt < options.max_retries => {
                let delay = options.delay(attempt, &mut rand::rng());
                tracing::debug!(operation = what, attempt, error = %e, ?delay, "retrying");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn fast() -> RetryOptions {
        RetryOptions {
            max_retries: 3,
            initial_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
            try_timeout: Duration::from_millis(200),
        }
    }

    #[test]
    fn delays_double_with_jitter_and_stay_under_the_cap() {
        let options = RetryOptions::default();
        let mut rng = StdRng::seed_from_u64(7);
        for attempt in 0..40 {
            let d = options.delay(attempt, &mut rng);
            let base = Duration::from_millis(200)
                .saturating_mul(2u32.saturating_pow(attempt.min(30)))
                .min(Duration::from_secs(30));
            assert!(
                d >= base.mul_f64(0.8) && d <= base.mul_f64(1.2),
                "{attempt}: {d:?}"
            );
            assert!(d <= options.max_delay, "{attempt}: {d:?}");
        }
    }

    #[test]
    fn bad_options_name_the_field() {
        for (options, field) in [
            (
                RetryOptions {
                    initial_delay: Duration::ZERO,
                    ..RetryOptions::default()
                },
                "initial_delay",
            ),
            (
                RetryOptions {
                    max_delay: Duration::from_millis(1),
                    ..RetryOptions::default()
                },
                "max_delay",
            ),
            (
                RetryOptions {
                    try_timeout: Duration::ZERO,
                    ..RetryOptions::default()
                },
                "try_timeout",
            ),
        ] {
            let e = options.validate().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            assert!(e.to_string().contains(field), "{e}");
        }
        RetryOptions::default().validate().unwrap();
    }

    #[tokio::test]
    async fn retryable_errors_are_retried_up_to_the_limit() {
        let tries = AtomicU32::new(0);
        let e = with_retries("op", &fast(), |_| async {
            tries.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(Error::new(ErrorKind::Unavailable, "busy"))
        })
        .await
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(tries.load(Ordering::SeqCst), 4, "one try and three retries");

        let tries = AtomicU32::new(0);
        let got = with_retries("op", &fast(), |attempt| {
            tries.fetch_add(1, Ordering::SeqCst);
            async move {
                if attempt < 2 {
                    Err(Error::new(ErrorKind::Unavailable, "busy"))
                } else {
                    Ok(attempt)
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(got, 2);
    }

    #[tokio::test]
    async fn other_errors_fail_at_once_and_hung_steps_time_out() {
        let tries = AtomicU32::new(0);
        let e = with_retries("op", &fast(), |_| async {
            tries.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(Error::new(ErrorKind::Unauthorized, "no"))
        })
        .await
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        assert_eq!(tries.load(Ordering::SeqCst), 1);

        let e = with_retries("hung attach", &fast(), |_| std::future::pending::<Result<()>>())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.is_connection_failure(), "a timeout replaces the connection");
        assert!(e.to_string().contains("hung attach: timed out"), "{e}");
    }
}
