//! A platform said that a user took the app's access away (Facebook's
//! Deauthorize callback, TikTok Shop's seller deauthorization): their
//! connection and everything derived from it are flagged for reconnection
//! at once, instead of at the next sweep.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::error::TokenError;
use super::manager::TokenManager;
use crate::domain::{Connection, ConnectionKind, ErrorClass, LastError, Provider};
use crate::store::ListFilter;

/// Whom a platform's event names, in the platform's own ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    /// A user connection by its external id (Facebook's app-scoped user
    /// id), and the connections derived from it.
    User(&'a str),
    /// The connections whose authorization covers this TikTok Shop
    /// `shop_id` (recorded from TikTok's authorized-shops call: a shop id
    /// is not the `open_id` the connection is keyed by).
    Shop(&'a str),
}

impl Subject<'_> {
    fn names(&self, conn: &Connection) -> bool {
        match *self {
            Subject::User(id) => conn.kind == ConnectionKind::User && conn.external_id == id,
            Subject::Shop(id) => conn.shop_ids.iter().any(|s| s == id),
        }
    }

    /// The error a flagged connection keeps.
    fn revoked(&self) -> &'static str {
        match self {
            Subject::User(_) => "the user removed the app (deauthorize callback)",
            Subject::Shop(_) => "the seller deauthorized the app (TikTok Shop webhook)",
        }
    }
}

/// Whether `conn` was connected (or last worked) after the platform sent
/// an event at `sent_at`: then the event is older than what is stored.
/// Platform times have whole seconds: a connect within that second came
/// before the event.
pub(super) fn newer_than(conn: &Connection, sent_at: DateTime<Utc>) -> bool {
    conn.last_refreshed_at
        .is_some_and(|t| t.timestamp() > sent_at.timestamp())
}

impl TokenManager {
    /// `provider`'s connections `subject` names (in every team), with the
    /// connections derived from them.
    pub(super) async fn named(
        &self,
        provider: Provider,
        subject: Subject<'_>,
    ) -> Result<Vec<Arc<Connection>>, TokenError> {
        let all = self
            .store
            .list(&ListFilter {
                provider: Some(provider),
                ..ListFilter::default()
            })
            .await?;
        let roots: Vec<String> = all
            .iter()
            .filter(|c| subject.names(c))
            .map(|c| c.id.clone())
            .collect();
        Ok(all
            .into_iter()
            .filter(|c| {
                roots.contains(&c.id) || c.parent_id.as_ref().is_some_and(|p| roots.contains(p))
            })
            .collect())
    }

    /// [`TokenManager::subject_revoked`] for a user connection.
    pub async fn revoked_upstream(
        &self,
        provider: Provider,
        external_id: &str,
        issued_at: DateTime<Utc>,
    ) -> Result<Vec<Arc<Connection>>, TokenError> {
        self.subject_revoked(provider, Subject::User(external_id), issued_at)
            .await
    }

    /// Flags the connections `subject` names, and those derived from them,
    /// `reauth_required`, each once per change, with its webhook event. A
    /// connection already flagged, or connected again after `issued_at`, is
    /// left as it is, so the same event twice (or replayed) changes nothing
    /// more. Returns the connections it flagged.
    pub async fn subject_revoked(
        &self,
        provider: Provider,
        subject: Subject<'_>,
        issued_at: DateTime<Utc>,
    ) -> Result<Vec<Arc<Connection>>, TokenError> {
        let now = self.now();
        let mut flagged = Vec::new();
        for conn in self.named(provider, subject).await? {
            if conn.reauth_required || newer_than(&conn, issued_at) {
                continue;
            }
            let last = LastError {
                class: ErrorClass::ReauthRequired,
                code: None,
                subcode: None,
                message: subject.revoked().into(),
                at: now,
            };
            let updated = self
                .write_one(&conn.id, now, move |c| {
                    c.reauth_required = true;
                    c.last_error = Some(last);
                })
                .await?;
            flagged.push(updated);
        }
        Ok(flagged)
    }
}
