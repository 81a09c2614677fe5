//! One webhook event: its type, when it happened, and what it is about. The
//! body follows the Standard Webhooks payload structure (`type`,
//! `timestamp`, `data`); its id travels in the `webhook-id` header.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::domain::{Delivery, DeliveryStatus};

/// The event types: one per state change of a connection, and one for a
/// sweep that failed somewhere.
pub mod types {
    pub const REAUTH_REQUIRED: &str = "connection.reauth_required";
    pub const RECOVERED: &str = "connection.recovered";
    pub const EXPIRING: &str = "connection.expiring";
    pub const REFRESH_FAILED: &str = "connection.refresh_failed";
    pub const DELETED: &str = "connection.deleted";
    pub const SWEEP_FAILED: &str = "sweep.failed";
}

/// One event, before it is queued.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
    pub data: Value,
}

impl Event {
    /// An event with a new id (`msg_` and a UUID, as Standard Webhooks ids
    /// are prefixed).
    pub fn new(kind: &str, occurred_at: DateTime<Utc>, data: Value) -> Self {
        Self {
            id: format!("msg_{}", uuid::Uuid::new_v4().simple()),
            kind: kind.to_string(),
            occurred_at,
            data,
        }
    }

    /// The body sent on every attempt.
    pub fn payload(&self) -> String {
        json!({
            "type": self.kind,
            "timestamp": self.occurred_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            "data": self.data,
        })
        .to_string()
    }

    /// The event as a new delivery, due at once. It is filed under the team
    /// and id of the connection in its `data.connection`, if any.
    pub fn into_delivery(self, now: DateTime<Utc>) -> Delivery {
        let connection = &self.data["connection"];
        let text = |v: &Value| v.as_str().map(str::to_string);
        Delivery {
            payload: self.payload(),
            team_id: text(&connection["team_id"]),
            connection_id: text(&connection["id"]),
            id: self.id,
            event_type: self.kind,
            status: DeliveryStatus::Pending,
            attempts: 0,
            created_at: now,
            next_attempt_at: Some(now),
            last_attempt_at: None,
            last_status: None,
            last_error: None,
            delivered_at: None,
        }
    }
}
