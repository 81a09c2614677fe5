//! Webhook alerts on a connection's state changes. The state announced last
//! (`notified_state`) is recorded inside the write that changes the
//! connection, so a change and its alert bookkeeping are one store write,
//! and the event goes out only once that write is durable.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::oneshot;

use super::manager::TokenManager;
use crate::domain::{Connection, policy};
use crate::notify::Event;
use crate::providers::registry::Registry;
use crate::store::Edit;

/// The state announced before an [`alerting`] edit, once it has run.
pub(super) struct Before(oneshot::Receiver<Option<String>>);

/// `edit`, then the connection's alert state as of `now` recorded with it.
pub(super) fn alerting(
    registry: &Arc<Registry>,
    now: DateTime<Utc>,
    edit: impl FnOnce(&mut Connection) + Send + 'static,
) -> (Edit, Before) {
    let registry = registry.clone();
    let (tx, rx) = oneshot::channel();
    let edit: Edit = Box::new(move |c: &mut Connection| {
        edit(c);
        let state = policy::alert_state(c, now, registry.policy(c.provider));
        let _ = tx.send(c.notified_state.replace(state));
    });
    (edit, Before(rx))
}

impl TokenManager {
    /// Sends the webhook event for a change `write` made durable, when the
    /// connection's alert state differs from the one announced before.
    pub(super) fn announce(&self, conn: &Connection, mut before: Before) {
        let Ok(previous) = before.0.try_recv() else {
            return;
        };
        let previous = previous.as_deref().unwrap_or("ok");
        let state = conn.notified_state.as_deref().unwrap_or("ok");
        if previous == state {
            return;
        }
        let kind = if state == "reauth_required" {
            "connection.reauth_required"
        } else if previous == "reauth_required" {
            "connection.recovered"
        } else if state.starts_with("expiry_warning") {
            "connection.expiry_warning"
        } else {
            // A warning that cleared (e.g. after a reconnect): nothing to say.
            return;
        };
        let now = self.now();
        let mut data = json!({ "connection": self.facts(conn) });
        if let Some(w) = policy::warning(conn, now, self.policy(conn.provider)) {
            data["warning"] =
                json!({ "what": w.what, "stage_days": w.stage_days, "lapses_at": w.at });
        }
        if let Some(e) = &conn.last_error {
            data["last_error"] = json!(e);
        }
        self.notifier.send(Event::new(kind, now, data));
    }
}
