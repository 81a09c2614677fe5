//! One outbound webhook event and its delivery: what was sent, to whose
//! connection, and how the attempts went. A record kept by the store's
//! `OutboxStore`, so that a retry survives a restart and, on PostgreSQL,
//! can be made by any instance.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a delivery is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (the first one included).
    Pending,
    /// An attempt got a 2xx answer.
    Delivered,
    /// Every attempt of the retry schedule failed.
    Exhausted,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Exhausted => "exhausted",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Exhausted]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// One event in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// The event's id: the `webhook-id` header, the same on every attempt.
    pub id: String,
    /// `connection.reauth_required`, `connection.deleted`, ...
    pub event_type: String,
    /// The team of the connection the event is about (none: the event is
    /// about no one team, e.g. `sweep.failed`).
    pub team_id: Option<String>,
    pub connection_id: Option<String>,
    /// The body as sent, byte for byte on every attempt (it is signed).
    pub payload: String,
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// The HTTP status of the last answer (none: no answer, or no attempt).
    pub last_status: Option<u16>,
    /// Why the last attempt failed: `HTTP 500`, `timed out`, ...
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// A 2xx answer.
    Delivered { status: u16 },
    /// Another answer, or none (`status` is then `None`), and the next
    /// attempt is due at `retry_at`, or never (`None`: exhausted).
    Failed {
        status: Option<u16>,
        error: String,
        retry_at: Option<DateTime<Utc>>,
    },
}

impl Delivery {
    /// Records an attempt made at `at`.
    pub fn attempted(&mut self, at: DateTime<Utc>, outcome: &AttemptOutcome) {
        self.attempts += 1;
        self.last_attempt_at = Some(at);
        match outcome {
            AttemptOutcome::Delivered { status } => {
                self.status = DeliveryStatus::Delivered;
                self.last_status = Some(*status);
                self.last_error = None;
                self.next_attempt_at = None;
                self.delivered_at = Some(at);
            }
            AttemptOutcome::Failed {
                status,
                error,
                retry_at,
            } => {
                self.last_status = *status;
                self.last_error = Some(error.clone());
                self.next_attempt_at = *retry_at;
                self.status = if retry_at.is_some() {
                    DeliveryStatus::Pending
                } else {
                    DeliveryStatus::Exhausted
                };
            }
        }
    }

    /// Queues the delivery again for an attempt at `at` (a manual retry):
    /// the attempts made so far are kept.
    pub fn requeued(&mut self, at: DateTime<Utc>) {
        self.status = DeliveryStatus::Pending;
        self.next_attempt_at = Some(at);
    }
}
