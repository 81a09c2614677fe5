//! Retries of upstream calls: exponential backoff with jitter for transient
//! and rate-limited failures, honouring the platform's wait when it gives one.
//! All waiting of one retried call (backoffs and a client's own throttle
//! waits) comes out of one budget of `max_wait`, so a request never waits
//! longer than that inline.

use std::cell::Cell;
use std::future::Future;
use std::time::Duration;

use super::UpstreamError;
use crate::config::RefreshSettings;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// The most one retried call waits in all; a wait that does not fit is
    /// not slept through and the error is returned.
    pub max_wait: Duration,
}

tokio::task_local! {
    /// What is left of the wait budget of the retried call in progress.
    static BUDGET: Cell<Duration>;
}

/// Takes `wait` out of the budget of the retried call in progress; `false`
/// (nothing taken) when it does not fit. Outside any retried call, `fallback`
/// bounds this one wait.
pub fn spend_wait(wait: Duration, fallback: Duration) -> bool {
    BUDGET
        .try_with(|left| {
            let fits = wait <= left.get();
            if fits {
                left.set(left.get() - wait);
            }
            fits
        })
        .unwrap_or(wait <= fallback)
}

/// Runs `f` with a wait budget of `max`, unless a budget is already running
/// (a retried call inside another shares the outer budget).
async fn with_budget<F: Future>(max: Duration, f: F) -> F::Output {
    if BUDGET.try_with(|_| ()).is_ok() {
        f.await
    } else {
        BUDGET.scope(Cell::new(max), f).await
    }
}

impl From<&RefreshSettings> for RetryPolicy {
    fn from(s: &RefreshSettings) -> Self {
        Self {
            max_attempts: s.max_attempts,
            base_delay: Duration::from_millis(s.base_delay_ms),
            max_delay: Duration::from_millis(s.max_delay_ms),
            max_wait: Duration::from_secs(s.max_retry_wait_secs),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`: base × 2^(attempt-1), capped,
    /// with "equal jitter" (half fixed, half random).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        let capped = exp.min(self.max_delay);
        let half = capped / 2;
        half + half.mul_f64(rand::random::<f64>())
    }

    pub async fn run<T, F, Fut>(&self, mut call: F) -> Result<T, UpstreamError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, UpstreamError>>,
    {
        with_budget(self.max_wait, async {
            let mut attempt = 1;
            loop {
                match call().await {
                    Ok(v) => return Ok(v),
                    Err(e) if e.is_retryable() && attempt < self.max_attempts => {
                        let backoff = self.backoff(attempt);
                        let wait = e.retry_after.map_or(backoff, |ra| ra.max(backoff));
                        if !spend_wait(wait, self.max_wait) {
                            return Err(e);
                        }
                        tracing::debug!(endpoint = %e.endpoint, attempt, wait_ms = wait.as_millis() as u64, "retrying upstream call");
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                    }
                    Err(e) => return Err(e),
                }
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ErrorClass;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            max_wait: Duration::from_secs(1),
        }
    }

    #[tokio::test]
    async fn transient_errors_are_retried_and_others_are_not() {
        let mut calls = 0;
        let r: Result<u32, _> = policy()
            .run(|| {
                calls += 1;
                let n = calls;
                async move {
                    if n < 3 {
                        Err(UpstreamError::transient("/x", "down"))
                    } else {
                        Ok(n)
                    }
                }
            })
            .await;
        assert_eq!(r.unwrap(), 3);

        let mut calls = 0;
        let r: Result<u32, _> = policy()
            .run(|| {
                calls += 1;
                async {
                    let mut e = UpstreamError::transient("/x", "revoked");
                    e.class = ErrorClass::ReauthRequired;
                    Err(e)
                }
            })
            .await;
        assert!(r.is_err());
        assert_eq!(calls, 1);
    }

    #[tokio::test]
    async fn waits_of_one_call_add_up_to_at_most_max_wait() {
        // Each wait fits the bound alone; the second would exceed it in total.
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
            max_wait: Duration::from_millis(100),
        };
        let mut calls = 0;
        let r: Result<u32, _> = p
            .run(|| {
                calls += 1;
                async {
                    let mut e = UpstreamError::transient("/x", "throttled");
                    e.class = ErrorClass::RateLimited;
                    e.retry_after = Some(Duration::from_millis(60));
                    Err(e)
                }
            })
            .await;
        assert!(r.is_err());
        assert_eq!(calls, 2);
        // Outside a retried call, the fallback bounds each wait.
        assert!(spend_wait(Duration::from_secs(1), Duration::from_secs(2)));
        assert!(!spend_wait(Duration::from_secs(3), Duration::from_secs(2)));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            max_wait: Duration::from_secs(60),
        };
        assert!(p.backoff(1) <= Duration::from_millis(100));
        assert!(p.backoff(3) >= Duration::from_millis(200));
        assert!(p.backoff(10) <= Duration::from_millis(1000));
    }
}
