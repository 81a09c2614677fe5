//! Webhook notifications: connection events and failed sweeps, signed with
//! HMAC-SHA256, delivered in the background with retries. Events carry a
//! connection's facts, never a token.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::Value;
use sha2::Sha256;

use crate::config::NotificationSettings;
use crate::secret::Secret;

pub const SIGNATURE_HEADER: &str = "X-Tokenkeeper-Signature";
pub const EVENT_HEADER: &str = "X-Tokenkeeper-Event";

/// One event as posted to the webhook.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub id: String,
    /// `connection.reauth_required`, `connection.recovered`,
    /// `connection.expiry_warning` or `sweep.failed`.
    #[serde(rename = "type")]
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
    pub data: Value,
}

impl Event {
    pub fn new(kind: &str, occurred_at: DateTime<Utc>, data: Value) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            kind: kind.to_string(),
            occurred_at,
            data,
        }
    }
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &Secret, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("any key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[derive(Clone)]
pub struct Notifier {
    inner: Option<Arc<Webhook>>,
}

struct Webhook {
    url: String,
    secret: Option<Secret>,
    http: reqwest::Client,
    max_attempts: u32,
    initial_backoff: Duration,
}

impl Notifier {
    pub fn new(settings: &NotificationSettings, secret: Option<Secret>) -> Self {
        if settings.webhook_url.is_empty() {
            return Self { inner: None };
        }
        if secret.is_none() {
            tracing::warn!(
                "notifications.webhook_url is set but TOKENKEEPER_WEBHOOK_SECRET is not: events go unsigned"
            );
        }
        Self {
            inner: Some(Arc::new(Webhook {
                url: settings.webhook_url.clone(),
                secret,
                http: reqwest::Client::builder()
                    .timeout(Duration::from_secs(settings.timeout_secs))
                    .build()
                    .expect("the HTTP client builds"),
                max_attempts: settings.max_attempts.max(1),
                initial_backoff: Duration::from_millis(settings.initial_backoff_ms),
            })),
        }
    }

    /// Queues delivery and returns at once.
    pub fn send(&self, event: Event) {
        let Some(hook) = self.inner.clone() else {
            return;
        };
        tracing::info!(event = %event.kind, id = %event.id, "notifying webhook");
        tokio::spawn(async move { hook.deliver(event).await });
    }
}

impl Webhook {
    async fn deliver(&self, event: Event) {
        let body = serde_json::to_vec(&event).expect("events serialize");
        let mut backoff = self.initial_backoff;
        for attempt in 1..=self.max_attempts {
            let mut request = self
                .http
                .post(&self.url)
                .header("Content-Type", "application/json")
                .header(EVENT_HEADER, &event.kind)
                .body(body.clone());
            if let Some(secret) = &self.secret {
                request = request.header(SIGNATURE_HEADER, signature(secret, &body));
            }
            match request.send().await {
                Ok(r) if r.status().is_success() => {
                    crate::metrics::webhook_delivery("delivered");
                    tracing::debug!(event = %event.kind, attempt, "webhook delivered");
                    return;
                }
                Ok(r) => {
                    crate::metrics::webhook_delivery("refused");
                    tracing::warn!(event = %event.kind, attempt, status = r.status().as_u16(), "webhook refused")
                }
                Err(_) => {
                    crate::metrics::webhook_delivery("unreachable");
                    tracing::warn!(event = %event.kind, attempt, "webhook unreachable")
                }
            }
            if attempt < self.max_attempts {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        crate::metrics::webhook_delivery("gave_up");
        tracing::error!(event = %event.kind, id = %event.id, "webhook delivery gave up");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_hex() {
        let sig = signature(&Secret::new("s"), b"{}");
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64);
        assert_ne!(sig, signature(&Secret::new("t"), b"{}"));
    }
}
