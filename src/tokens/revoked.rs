//! A platform said that a user took the app's access away (Facebook's
//! Deauthorize callback): their connection and everything derived from it
//! are flagged for reconnection at once, instead of at the next sweep.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::TokenError;
use super::manager::TokenManager;
use crate::domain::{Connection, ConnectionKind, ErrorClass, LastError, Provider};
use crate::store::ListFilter;

/// The error a flagged connection keeps.
const REVOKED: &str = "the user removed the app (deauthorize callback)";

impl TokenManager {
    /// Flags `provider`'s user connections for `external_id` (in every team)
    /// and the connections derived from them `reauth_required`, each once
    /// per change, with its webhook event. A connection already flagged, or
    /// connected again after `issued_at`, is left as it is, so the same
    /// callback twice (or replayed) changes nothing more. Returns the
    /// connections it flagged.
    pub async fn revoked_upstream(
        &self,
        provider: Provider,
        external_id: &str,
        issued_at: DateTime<Utc>,
    ) -> Result<Vec<Arc<Connection>>, TokenError> {
        let all = self
            .store
            .list(&ListFilter {
                provider: Some(provider),
                ..ListFilter::default()
            })
            .await?;
        let users: Vec<&Arc<Connection>> = all
            .iter()
            .filter(|c| c.kind == ConnectionKind::User && c.external_id == external_id)
            .collect();
        let affected = all.iter().filter(|c| {
            users
                .iter()
                .any(|u| u.id == c.id || c.parent_id.as_deref() == Some(&u.id))
        });
        let now = self.now();
        let mut flagged = Vec::new();
        for conn in affected {
            // `issued_at` has whole seconds: a connect within that second
            // came before the removal.
            let reconnected = conn
                .last_refreshed_at
                .is_some_and(|t| t.timestamp() > issued_at.timestamp());
            if conn.reauth_required || reconnected {
                continue;
            }
            let last = LastError {
                class: ErrorClass::ReauthRequired,
                code: None,
                subcode: None,
                message: REVOKED.into(),
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
