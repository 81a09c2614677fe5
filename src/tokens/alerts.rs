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
use crate::notify::{Event, types};
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
    /// Queues the webhook event for a change `write` made durable, when the
    /// connection's alert state differs from the one announced before. The
    /// state is recorded in the same write, so each change is announced
    /// once, whichever instance or task made it.
    pub(super) async fn announce(&self, conn: &Connection, before: Before) {
        self.announce_all([(conn, before)]).await;
    }

    /// [`TokenManager::announce`] for the records of one write, queued together.
    pub(super) async fn announce_all<'a>(
        &self,
        changed: impl IntoIterator<Item = (&'a Connection, Before)>,
    ) {
        let events: Vec<Event> = changed
            .into_iter()
            .filter_map(|(conn, before)| self.announcement(conn, before))
            .collect();
        self.notifier.send_all(events).await;
    }

    fn announcement(&self, conn: &Connection, mut before: Before) -> Option<Event> {
        let previous = before.0.try_recv().ok()?;
        let previous = previous.as_deref().unwrap_or("ok");
        let state = conn.notified_state.as_deref().unwrap_or("ok");
        let kind = change(previous, state)?;
        let now = self.now();
        let mut data = json!({ "connection": self.facts(conn) });
        if let Some(w) = policy::warning(conn, now, self.policy(conn.provider)) {
            data["warning"] =
                json!({ "what": w.what, "stage_days": w.stage_days, "lapses_at": w.at });
        }
        if let Some(e) = &conn.last_error {
            data["last_error"] = json!(e);
        }
        Some(Event::new(kind, now, data))
    }
}

/// The event a change of alert state announces, if any. A failure is
/// announced when it is entered and its end once, as `recovered`; a
/// warning that cleared (a reconnect) says nothing.
fn change(previous: &str, state: &str) -> Option<&'static str> {
    let failing = |s: &str| s == "reauth_required" || s == "refresh_failed";
    if previous == state {
        None
    } else if state == "reauth_required" {
        Some(types::REAUTH_REQUIRED)
    } else if state == "refresh_failed" {
        // Failing for a reason of its own after needing a reconnect is not
        // news: the reconnect is still needed.
        (previous != "reauth_required").then_some(types::REFRESH_FAILED)
    } else if failing(previous) {
        Some(types::RECOVERED)
    } else if state.starts_with("expiry_warning") {
        Some(types::EXPIRING)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::change;

    #[test]
    fn each_change_is_announced_once_and_a_cleared_warning_not_at_all() {
        assert_eq!(change("ok", "ok"), None);
        assert_eq!(
            change("ok", "refresh_failed"),
            Some("connection.refresh_failed")
        );
        assert_eq!(change("refresh_failed", "ok"), Some("connection.recovered"));
        assert_eq!(
            change("refresh_failed", "reauth_required"),
            Some("connection.reauth_required")
        );
        assert_eq!(change("reauth_required", "refresh_failed"), None);
        assert_eq!(
            change("reauth_required", "ok"),
            Some("connection.recovered")
        );
        assert_eq!(
            change("reauth_required", "expiry_warning:token:7"),
            Some("connection.recovered")
        );
        assert_eq!(
            change("ok", "expiry_warning:token:7"),
            Some("connection.expiring")
        );
        assert_eq!(
            change("expiry_warning:token:14", "expiry_warning:token:7"),
            Some("connection.expiring")
        );
        assert_eq!(change("expiry_warning:token:7", "ok"), None);
    }
}
