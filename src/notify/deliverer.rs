//! The background sender: takes due deliveries from the outbox, attempts
//! each, and records the outcome and the next attempt's time, so that a
//! restart, or on PostgreSQL another instance, carries on where it stopped.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::Outbound;
use super::signature::{ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::domain::{AttemptOutcome, Delivery, DeliveryStatus};

/// Deliveries taken per round, and attempted at once.
const BATCH: usize = 64;
const AT_ONCE: usize = 16;
/// The longest sleep between looks at the outbox: events queued by another
/// instance (PostgreSQL) are seen within it.
const POLL: Duration = Duration::from_secs(1);
/// How often delivered and exhausted events past their keep are removed.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

pub struct Deliverer {
    out: Arc<Outbound>,
    http: reqwest::Client,
}

impl Deliverer {
    pub(super) fn new(out: Arc<Outbound>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(out.timeout)
            .build()
            .expect("the HTTP client builds");
        Self { out, http }
    }

    /// Delivers until `cancel` fires; an attempt under way is finished.
    pub async fn run(self, cancel: CancellationToken) {
        let mut pruned_at: Option<tokio::time::Instant> = None;
        while !cancel.is_cancelled() {
            if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                self.prune().await;
                pruned_at = Some(tokio::time::Instant::now());
            }
            let now = self.out.clock.now();
            // Held for longer than an attempt can take, so a claim lapses
            // only when its taker stopped.
            let until =
                now + chrono::Duration::from_std(self.out.timeout * 2 + POLL).expect("short");
            match self.out.outbox.claim_due(now, until, BATCH).await {
                Ok(due) if !due.is_empty() => {
                    futures::stream::iter(due)
                        .for_each_concurrent(AT_ONCE, |d| self.attempt(d))
                        .await;
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "cannot read the webhook outbox"),
            }
            let wait = match self.out.outbox.next_due().await {
                Ok(Some(due)) => (due - self.out.clock.now())
                    .to_std()
                    .unwrap_or_default()
                    .min(POLL),
                _ => POLL,
            };
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.out.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn prune(&self) {
        let before = self.out.clock.now() - self.out.keep;
        match self.out.outbox.prune(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "removed old webhook deliveries"),
            Err(e) => tracing::warn!(error = %e, "cannot prune the webhook outbox"),
        }
    }

    /// One attempt of `d`, recorded.
    async fn attempt(&self, mut d: Delivery) {
        let timestamp = self.out.clock.now().timestamp();
        let mut request = self
            .http
            .post(&self.out.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(ID_HEADER, &d.id)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .body(d.payload.clone());
        if let Some(key) = &self.out.key {
            request = request.header(SIGNATURE_HEADER, key.sign(&d.id, timestamp, &d.payload));
        }
        let answer = request.send().await;
        let now = self.out.clock.now();
        let retry_at = || self.out.schedule.next_attempt(d.attempts + 1, now);
        let outcome = match answer {
            Ok(r) if r.status().is_success() => AttemptOutcome::Delivered {
                status: r.status().as_u16(),
            },
            Ok(r) => {
                crate::metrics::webhook_delivery("refused");
                AttemptOutcome::Failed {
                    status: Some(r.status().as_u16()),
                    error: format!("HTTP {}", r.status().as_u16()),
                    retry_at: retry_at(),
                }
            }
            Err(e) => {
                crate::metrics::webhook_delivery("unreachable");
                // Not the error's text: it holds the URL, which may hold a
                // receiver's token.
                let error = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "connection failed"
                } else {
                    "request failed"
                };
                AttemptOutcome::Failed {
                    status: None,
                    error: error.to_string(),
                    retry_at: retry_at(),
                }
            }
        };
        d.attempted(now, &outcome);
        match d.status {
            DeliveryStatus::Delivered => {
                crate::metrics::webhook_delivery("delivered");
                tracing::info!(event = %d.event_type, id = %d.id, attempts = d.attempts, "webhook delivered");
            }
            DeliveryStatus::Pending => tracing::warn!(
                event = %d.event_type, id = %d.id, attempts = d.attempts,
                error = d.last_error.as_deref().unwrap_or(""),
                next_attempt_at = ?d.next_attempt_at, "webhook attempt failed; will retry"
            ),
            DeliveryStatus::Exhausted => {
                crate::metrics::webhook_delivery("exhausted");
                tracing::error!(
                    event = %d.event_type, id = %d.id, attempts = d.attempts,
                    error = d.last_error.as_deref().unwrap_or(""),
                    "webhook delivery exhausted its retries; POST /webhooks/deliveries/{{id}}/retry sends it again"
                );
            }
        }
        if let Err(e) = self.out.outbox.record(&d).await {
            // The claim lapses, and the attempt is made again: at least once.
            tracing::error!(id = %d.id, error = %e, "cannot record a webhook attempt");
        }
    }
}
