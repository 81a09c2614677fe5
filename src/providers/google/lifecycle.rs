//! Google's token lifecycle: the refresh_token grant renews the access token
//! (and proves the refresh token still works, so it is also the validation).

use std::sync::Arc;

use super::GoogleOAuth;
use crate::domain::{Connection, Provider};
use crate::providers::UpstreamError;
use crate::secret::Secret;
use crate::tokens::health::HealthPolicy;
use crate::tokens::lifecycle::{BoxFuture, Renewal, TokenLifecycle, Upstream, Validation};

pub struct GoogleLifecycle {
    oauth: Arc<GoogleOAuth>,
    policy: HealthPolicy,
}

impl GoogleLifecycle {
    pub fn new(oauth: Arc<GoogleOAuth>, policy: HealthPolicy) -> Self {
        Self { oauth, policy }
    }
}

impl TokenLifecycle for GoogleLifecycle {
    fn provider(&self) -> Provider {
        Provider::Google
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
            let refresh = refresh_token
                .ok_or_else(|| UpstreamError::transient("/token", "no refresh token is stored"))?;
            let grant = upstream.run(|| self.oauth.refresh(&refresh)).await?;
            Ok(Renewal {
                access_token: grant.access_token,
                refresh_token: grant.refresh_token,
                expires_at: None,
                expires_in: grant.expires_in,
                refresh_token_expires_at: None,
                data_access_expires_at: None,
                scopes: (!grant.scopes.is_empty()).then_some(grant.scopes),
                derived: Vec::new(),
            })
        })
    }

    fn validates_upstream(&self) -> bool {
        false
    }

    fn validate<'a>(
        &'a self,
        upstream: &'a Upstream,
        conn: &'a Connection,
        access_token: Secret,
    ) -> BoxFuture<'a, Result<Validation, UpstreamError>> {
        Box::pin(async move {
            // Google has no cheap token check besides the refresh grant itself,
            // which `renew` does when the token is due.
            let _ = (upstream, conn, access_token);
            Ok(Validation::default())
        })
    }
}
