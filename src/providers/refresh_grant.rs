//! The lifecycle of a provider whose access token is renewed with a stored
//! refresh token (Google, TikTok Shop). The rules are the same for each: no
//! stored refresh token is a transient failure naming the token endpoint,
//! the grant runs under the upstream's retries and permits, and validation
//! is an optional cheap call. The provider's client supplies the grant and
//! the call.

use std::sync::Arc;

use crate::providers::UpstreamError;
use crate::providers::lifecycle::{
    Held, Renewal, Revocable, Revoked, TokenLifecycle, Upstream, Validation,
};
use crate::secret::Secret;

/// What a refresh-token provider's client does for its lifecycle.
pub trait RefreshGrant: Send + Sync + 'static {
    /// The token endpoint, named when no refresh token is stored.
    const REFRESH_ENDPOINT: &'static str;
    /// Whether `check` asks the platform; when not, only renewal does.
    const CHECKS_UPSTREAM: bool = false;

    /// One refresh-token grant, as a renewal.
    fn grant(
        &self,
        refresh_token: &Secret,
    ) -> impl Future<Output = Result<Renewal, UpstreamError>> + Send;

    /// A cheap call that fails when the access token does not work, and
    /// what it learned about the token.
    fn check(
        &self,
        access_token: &Secret,
    ) -> impl Future<Output = Result<Validation, UpstreamError>> + Send {
        let _ = access_token;
        async { Ok(Validation::default()) }
    }

    /// Revokes the grant behind `token` (the refresh token when one is
    /// stored, else the access token). By default the platform has no
    /// such call.
    fn revoke(
        &self,
        token: &Secret,
    ) -> impl Future<Output = Result<Revoked, UpstreamError>> + Send {
        let _ = token;
        async {
            Ok(Revoked::NotSupported(
                "the platform has no call that revokes a token".into(),
            ))
        }
    }
}

pub struct RefreshGrantLifecycle<C> {
    client: Arc<C>,
}

impl<C> RefreshGrantLifecycle<C> {
    pub fn new(client: Arc<C>) -> Self {
        Self { client }
    }
}

#[async_trait::async_trait]
impl<C: RefreshGrant> TokenLifecycle for RefreshGrantLifecycle<C> {
    async fn renew(&self, upstream: &Upstream, held: Held) -> Result<Renewal, UpstreamError> {
        let refresh = held.refresh_token.ok_or_else(|| {
            UpstreamError::transient(C::REFRESH_ENDPOINT, "no refresh token is stored")
        })?;
        upstream.run(|| self.client.grant(&refresh)).await
    }

    fn validates_upstream(&self) -> bool {
        C::CHECKS_UPSTREAM
    }

    async fn validate(
        &self,
        upstream: &Upstream,
        token: Secret,
    ) -> Result<Validation, UpstreamError> {
        if !C::CHECKS_UPSTREAM {
            return Ok(Validation::default());
        }
        upstream.run(|| self.client.check(&token)).await
    }

    async fn revoke(
        &self,
        upstream: &Upstream,
        connection: Revocable,
    ) -> Result<Revoked, UpstreamError> {
        let Held {
            access_token,
            refresh_token,
        } = connection.held;
        let token = refresh_token.unwrap_or(access_token);
        upstream.run(|| self.client.revoke(&token)).await
    }
}
