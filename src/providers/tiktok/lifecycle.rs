//! TikTok Shop's token lifecycle: renew with the refresh token (always
//! keeping the returned one), validate with a cheap shop call.

use std::sync::Arc;

use super::TiktokClient;
use crate::domain::{Connection, Provider};
use crate::providers::UpstreamError;
use crate::secret::Secret;
use crate::tokens::health::HealthPolicy;
use crate::tokens::lifecycle::{BoxFuture, Renewal, TokenLifecycle, Upstream, Validation};

pub struct TiktokLifecycle {
    client: Arc<TiktokClient>,
    policy: HealthPolicy,
}

impl TiktokLifecycle {
    pub fn new(client: Arc<TiktokClient>, policy: HealthPolicy) -> Self {
        Self { client, policy }
    }
}

impl TokenLifecycle for TiktokLifecycle {
    fn provider(&self) -> Provider {
        Provider::TiktokShop
    }

    fn policy(&self) -> &HealthPolicy {
        &self.policy
    }

    fn renew<'a>(
        &'a self,
        upstream: &'a Upstream,
        _conn: &'a Connection,
        _access_token: Secret,
        refresh_token: Option<Secret>,
    ) -> BoxFuture<'a, Result<Renewal, UpstreamError>> {
        Box::pin(async move {
            let refresh = refresh_token.ok_or_else(|| {
                UpstreamError::transient("/api/v2/token/refresh", "no refresh token is stored")
            })?;
            let grant = upstream.run(|| self.client.refresh(&refresh)).await?;
            Ok(Renewal {
                access_token: grant.access_token,
                refresh_token: Some(grant.refresh_token),
                expires_at: grant.access_token_expires_at,
                expires_in: None,
                refresh_token_expires_at: grant.refresh_token_expires_at,
                data_access_expires_at: None,
                scopes: (!grant.scopes.is_empty()).then_some(grant.scopes),
                derived: Vec::new(),
            })
        })
    }

    fn validate<'a>(
        &'a self,
        upstream: &'a Upstream,
        _conn: &'a Connection,
        access_token: Secret,
    ) -> BoxFuture<'a, Result<Validation, UpstreamError>> {
        Box::pin(async move {
            upstream
                .run(|| self.client.authorized_shops(&access_token))
                .await?;
            Ok(Validation::default())
        })
    }
}
