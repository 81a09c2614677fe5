//! Outbound webhooks: connection events in the Standard Webhooks format
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature`), queued in a
//! persisted outbox and delivered in the background, retried on a schedule
//! until a 2xx answer or exhaustion. Events carry a connection's facts,
//! never a token.

mod deliverer;
mod event;
mod schedule;
pub mod signature;

use std::sync::Arc;

pub use deliverer::Deliverer;
pub use event::{Event, types};
pub use schedule::RetrySchedule;
pub use signature::SigningKey;

use crate::clock::SharedClock;
use crate::config::NotificationSettings;
use crate::domain::Delivery;
use crate::secret::Secret;
use crate::store::{DeliveryFilter, OutboxStore, StoreError};

/// Queues events for the webhook; does nothing when none is configured.
#[derive(Clone)]
pub struct Notifier {
    inner: Option<Arc<Outbound>>,
}

/// What the notifier and its deliverer share.
struct Outbound {
    url: String,
    key: Option<SigningKey>,
    outbox: Arc<dyn OutboxStore>,
    clock: SharedClock,
    schedule: RetrySchedule,
    timeout: std::time::Duration,
    keep: chrono::Duration,
    /// Wakes the deliverer when an event is queued or requeued.
    wake: tokio::sync::Notify,
}

/// Attempts to queue events before they are given up.
const QUEUE_ATTEMPTS: u32 = 6;

impl Outbound {
    async fn queue(&self, deliveries: &[Delivery]) -> Result<(), StoreError> {
        self.outbox.enqueue(deliveries).await?;
        for d in deliveries {
            tracing::info!(event = %d.event_type, id = %d.id, "queued webhook event");
        }
        self.wake.notify_one();
        Ok(())
    }

    /// Tries again after 0.5, 1, 2, 4 and 8 s.
    async fn queue_retrying(&self, deliveries: Vec<Delivery>) {
        let mut wait = std::time::Duration::from_millis(500);
        for attempt in 2..=QUEUE_ATTEMPTS {
            tokio::time::sleep(wait).await;
            wait *= 2;
            match self.queue(&deliveries).await {
                Ok(()) => return,
                Err(e) if attempt == QUEUE_ATTEMPTS => {
                    for d in &deliveries {
                        crate::metrics::webhook_delivery("not_queued");
                        tracing::error!(event = %d.event_type, id = %d.id, error = %e,
                            "cannot queue a webhook event; it will not be sent");
                    }
                }
                Err(_) => {}
            }
        }
    }
}

impl Notifier {
    /// No webhook: events are dropped.
    pub fn disabled() -> Self {
        Self { inner: None }
    }

    /// A notifier for `settings.webhook_url` (when set) over `outbox`.
    pub fn new(
        settings: &NotificationSettings,
        secret: Option<&Secret>,
        outbox: Arc<dyn OutboxStore>,
        clock: SharedClock,
    ) -> Self {
        if settings.webhook_url.is_empty() {
            return Self::disabled();
        }
        let key = secret.map(|s| SigningKey::from_secret(s).expect("configuration checked it"));
        if key.is_none() {
            tracing::warn!(
                "notifications.webhook_url is set but TOKENKEEPER_WEBHOOK_SECRET is not: events go unsigned"
            );
        }
        Self {
            inner: Some(Arc::new(Outbound {
                url: settings.webhook_url.clone(),
                key,
                outbox,
                clock,
                schedule: RetrySchedule::from_secs(&settings.retry_schedule_secs),
                timeout: std::time::Duration::from_secs(settings.timeout_secs),
                keep: chrono::Duration::days(settings.keep_days as i64),
                wake: tokio::sync::Notify::new(),
            })),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Queues `event`, durably, and wakes the deliverer.
    pub async fn send(&self, event: Event) {
        self.send_all(vec![event]).await;
    }

    /// Queues `events` in one write. A failure to queue (the database busy
    /// or away a moment) is retried in the background a few times, then
    /// logged and counted; never the caller's failure: the changes the
    /// events announce are already stored.
    pub async fn send_all(&self, events: Vec<Event>) {
        let Some(out) = &self.inner else {
            return;
        };
        if events.is_empty() {
            return;
        }
        let now = out.clock.now();
        let deliveries: Vec<Delivery> = events.into_iter().map(|e| e.into_delivery(now)).collect();
        if let Err(e) = out.queue(&deliveries).await {
            tracing::warn!(error = %e, events = deliveries.len(), "cannot queue webhook events yet; retrying");
            let out = out.clone();
            tokio::spawn(async move { out.queue_retrying(deliveries).await });
        }
    }

    /// The deliverer to run in the background, when a webhook is set.
    pub fn deliverer(&self) -> Option<Deliverer> {
        self.inner.clone().map(Deliverer::new)
    }

    /// The deliveries matching `filter`, newest first; `None` without a webhook.
    pub async fn deliveries(
        &self,
        filter: &DeliveryFilter,
    ) -> Result<Option<Vec<Delivery>>, StoreError> {
        match &self.inner {
            Some(out) => out.outbox.list(filter).await.map(Some),
            None => Ok(None),
        }
    }

    pub async fn delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        match &self.inner {
            Some(out) => out.outbox.get(id).await,
            None => Ok(None),
        }
    }

    /// Queues delivery `id` for another attempt now (its attempts so far
    /// are kept), and wakes the deliverer.
    pub async fn retry(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        let Some(out) = &self.inner else {
            return Ok(None);
        };
        let requeued = out.outbox.requeue(id, out.clock.now()).await?;
        if requeued.is_some() {
            out.wake.notify_one();
        }
        Ok(requeued)
    }
}
