//! The provider seam: what the TokenManager asks of each platform. Health
//! windows, renewal and validation live behind this trait, so the manager,
//! store, scheduler and API treat every provider alike; adding a provider is
//! one module implementing it.

use std::future::Future;

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;

use super::UpstreamError;
use super::retry::RetryPolicy;
use crate::domain::ConnectionKind;
use crate::secret::Secret;

/// A connection derived from another (a Facebook page from its user).
#[derive(Debug, Clone)]
pub struct Derived {
    pub kind: ConnectionKind,
    pub external_id: String,
    pub label: String,
    pub token: Secret,
    pub expires_at: Option<DateTime<Utc>>,
    pub data_access_expires_at: Option<DateTime<Utc>>,
    pub scopes: Vec<String>,
}

/// What a renewal produced.
#[derive(Debug, Clone)]
pub struct Renewal {
    pub access_token: Secret,
    /// A new refresh token, when the platform rotated it (always persisted).
    pub refresh_token: Option<Secret>,
    /// The expiry, when the platform gave it as a time.
    pub expires_at: Option<DateTime<Utc>>,
    /// Seconds from now, when the platform gave a lifetime instead; the
    /// manager turns it into a time with its own clock.
    pub expires_in: Option<i64>,
    pub refresh_token_expires_at: Option<DateTime<Utc>>,
    pub data_access_expires_at: Option<DateTime<Utc>>,
    pub scopes: Option<Vec<String>>,
    pub derived: Vec<Derived>,
}

/// What a validation learned about a token that works.
#[derive(Debug, Clone, Default)]
pub struct Validation {
    /// `Some(None)`: never expires; `None`: unknown, keep what is stored.
    pub expires_at: Option<Option<DateTime<Utc>>>,
    pub data_access_expires_at: Option<DateTime<Utc>>,
    pub scopes: Option<Vec<String>>,
    /// TikTok Shop: the shops the token acts for; `None`: keep those stored.
    pub shop_ids: Option<Vec<String>>,
}

/// Upstream calls with retries and a bound on how many run at once. Only
/// the calls hold a permit, not the store writes after them, so a sweep's
/// writes pile up and are committed together.
pub struct Upstream {
    pub retry: RetryPolicy,
    permits: Semaphore,
}

impl Upstream {
    pub fn new(retry: RetryPolicy, concurrency: usize) -> Self {
        Self {
            retry,
            permits: Semaphore::new(concurrency),
        }
    }

    /// One call, retried per the policy, each attempt within the bound.
    pub async fn run<T, F, Fut>(&self, mut call: F) -> Result<T, UpstreamError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, UpstreamError>>,
    {
        self.retry
            .run(|| {
                let attempt = call();
                async {
                    let _permit = self
                        .permits
                        .acquire()
                        .await
                        .expect("the semaphore is never closed");
                    attempt.await
                }
            })
            .await
    }
}

/// What asking a platform to revoke a connection's grant came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    /// The platform revoked it: the token, and any token derived from it,
    /// no longer works.
    Revoked,
    /// The platform has no way to revoke this credential; why, in words a
    /// caller can act on.
    NotSupported(String),
}

/// The connection whose grant [`TokenLifecycle::revoke`] revokes.
pub struct Revocable {
    pub kind: ConnectionKind,
    /// The platform's id of the account (a Facebook user id, say).
    pub external_id: String,
    pub held: Held,
}

/// The secrets a connection holds, opened for a renewal.
pub struct Held {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
}

/// One platform's token lifecycle.
#[async_trait::async_trait]
pub trait TokenLifecycle: Send + Sync {
    /// Gets a new access token (and whatever comes with it).
    async fn renew(&self, upstream: &Upstream, held: Held) -> Result<Renewal, UpstreamError>;

    /// Whether `validate` asks the platform (false: only renewal does).
    fn validates_upstream(&self) -> bool {
        true
    }

    /// Checks that a token works with a cheap upstream call.
    async fn validate(
        &self,
        upstream: &Upstream,
        token: Secret,
    ) -> Result<Validation, UpstreamError>;

    /// Asks the platform to revoke the app's grant behind a connection. A
    /// platform whose answer says the token is already invalid fails with
    /// a `reauth_required` error (classified by its code, as any other).
    async fn revoke(
        &self,
        upstream: &Upstream,
        connection: Revocable,
    ) -> Result<Revoked, UpstreamError> {
        let _ = (upstream, connection);
        Ok(Revoked::NotSupported(
            "the platform has no call that revokes a token".into(),
        ))
    }
}
