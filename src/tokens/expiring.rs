//! A platform said when a connection's authorization lapses (TikTok Shop's
//! upcoming-authorization-expiration webhook): the date is recorded as the
//! connection's data-access expiry, the fact the staged warnings already
//! watch (as Meta's 90-day data access), so the warning stage and its
//! notification follow from the usual write.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::error::TokenError;
use super::manager::TokenManager;
use super::revoked::{Subject, newer_than};
use crate::domain::{Connection, Provider};

impl TokenManager {
    /// Records `lapses_at` on the connections `subject` names. One already
    /// flagged (it needs its user anyway), one that holds this date already,
    /// or one connected again (or working) after the platform sent the
    /// event at `sent_at` is left as it is: the same event twice changes
    /// nothing more, and an old one replayed after the seller authorized
    /// again does not bring the old date back. (TikTok sends the event every
    /// day until then, so one passed over this way comes again.) Returns
    /// the connections it changed.
    pub async fn access_lapses_upstream(
        &self,
        provider: Provider,
        subject: Subject<'_>,
        lapses_at: DateTime<Utc>,
        sent_at: DateTime<Utc>,
    ) -> Result<Vec<Arc<Connection>>, TokenError> {
        let now = self.now();
        let mut changed = Vec::new();
        for conn in self.named(provider, subject).await? {
            if conn.reauth_required
                || conn.data_access_expires_at == Some(lapses_at)
                || newer_than(&conn, sent_at)
            {
                continue;
            }
            let updated = self
                .write_one(&conn.id, now, move |c| {
                    c.data_access_expires_at = Some(lapses_at);
                })
                .await?;
            changed.push(updated);
        }
        Ok(changed)
    }
}
