//! Erasing what tokenkeeper holds about a platform user when the platform
//! asks (Meta's Data Deletion callback, wire-spec 11.1): the user's
//! connections and those derived from them, the cached insights answers
//! and the exports read with their tokens. Each request is kept by its
//! confirmation code for the status page the platform shows the user.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::audit::AuditEntry;
use crate::domain::{DeletionRequest, DeletionStatus, Provider};
use crate::export::jobs::Exports;
use crate::insights::InsightsService;
use crate::store::{AuditTrail, DeletionStore, StoreError};
use crate::tokens::{DisconnectError, Subject, TokenManager};

#[derive(Debug, thiserror::Error)]
pub enum ErasureError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Disconnect(#[from] DisconnectError),
    /// The cache or the exports could not erase their part; the request
    /// stays `received`, and is finished when the platform sends it again.
    #[error("erasing {what} failed: {reason}")]
    Incomplete { what: &'static str, reason: String },
}

fn incomplete<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> ErasureError {
    move |e| ErasureError::Incomplete {
        what,
        reason: e.to_string(),
    }
}

pub struct Erasure {
    tokens: Arc<TokenManager>,
    insights: Arc<InsightsService>,
    exports: Arc<Exports>,
    requests: Arc<dyn DeletionStore>,
    audit: Arc<dyn AuditTrail>,
    /// Makes confirmation codes (a key derived from the master key).
    code_key: [u8; 32],
}

impl Erasure {
    pub fn new(
        tokens: Arc<TokenManager>,
        insights: Arc<InsightsService>,
        exports: Arc<Exports>,
        requests: Arc<dyn DeletionStore>,
        audit: Arc<dyn AuditTrail>,
        code_key: [u8; 32],
    ) -> Self {
        Self {
            tokens,
            insights,
            exports,
            requests,
            audit,
            code_key,
        }
    }

    /// The confirmation code of the request about `user_id` issued at
    /// `issued_at`: the same request always gets the same code, which
    /// nobody without the key can guess from the user id.
    fn code(&self, provider: Provider, user_id: &str, issued_at: DateTime<Utc>) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.code_key).expect("any key length");
        mac.update(
            format!(
                "{}\n{user_id}\n{}",
                provider.as_str(),
                issued_at.timestamp()
            )
            .as_bytes(),
        );
        hex::encode(&mac.finalize().into_bytes()[..12])
    }

    /// Erases everything held about `provider`'s user `user_id`, as asked
    /// by a request issued at `issued_at`, and answers with the request's
    /// record. The request is recorded before anything is erased, so a
    /// failure part way leaves it `received`, and the same request again
    /// finishes it; once completed, it changes nothing more.
    pub async fn erase_user(
        &self,
        provider: Provider,
        user_id: &str,
        issued_at: DateTime<Utc>,
    ) -> Result<DeletionRequest, ErasureError> {
        let code = self.code(provider, user_id, issued_at);
        let mut request = match self.requests.get(&code).await? {
            Some(done) if done.status == DeletionStatus::Completed => return Ok(done),
            Some(started) => started,
            None => {
                let request = DeletionRequest::received(code, provider, self.tokens.now());
                self.requests.save(&request).await?;
                request
            }
        };
        let removed = self
            .tokens
            .erase_subject(provider, Subject::User(user_id))
            .await?;
        let ids: Vec<String> = removed.iter().map(|r| r.connection.id.clone()).collect();
        if !ids.is_empty() {
            request.connection_ids.extend(ids.iter().cloned());
            self.requests.save(&request).await?;
        }
        let cached = self
            .insights
            .forget(&request.connection_ids)
            .await
            .map_err(incomplete("the cached insights"))?;
        let exports = self
            .exports
            .erase(&request.connection_ids)
            .await
            .map_err(incomplete("the exports"))?;
        request.cached_answers += cached;
        request.exports += exports;
        request.status = DeletionStatus::Completed;
        request.completed_at = Some(self.tokens.now());
        self.requests.save(&request).await?;
        self.audit_erased(&request).await;
        tracing::info!(code = %request.code, connections = request.connection_ids.len(), cached, exports, "data deletion request completed");
        Ok(request)
    }

    /// A request by its confirmation code.
    pub async fn request(&self, code: &str) -> Result<Option<DeletionRequest>, StoreError> {
        self.requests.get(code).await
    }

    /// One audit line per deleted connection, or one for the request when
    /// nothing was stored.
    async fn audit_erased(&self, request: &DeletionRequest) {
        let ids = &request.connection_ids;
        let action = match request.provider {
            Provider::Facebook => "facebook.data_deletion",
            _ => "data_deletion",
        };
        let outcome = format!("deleted (confirmation code {})", request.code);
        let entries: Vec<AuditEntry> = if ids.is_empty() {
            vec![AuditEntry {
                at: self.tokens.now(),
                action,
                key_id: request.provider.as_str().into(),
                connection_id: String::new(),
                outcome: format!("nothing stored (confirmation code {})", request.code),
            }]
        } else {
            ids.iter()
                .map(|id| AuditEntry {
                    at: self.tokens.now(),
                    action,
                    key_id: request.provider.as_str().into(),
                    connection_id: id.clone(),
                    outcome: outcome.clone(),
                })
                .collect()
        };
        for entry in entries {
            if let Err(e) = self.audit.record(entry).await {
                tracing::error!(error = %e, "a data deletion could not be audited");
            }
        }
    }
}
