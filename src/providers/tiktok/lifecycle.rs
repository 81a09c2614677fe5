//! TikTok Shop's token lifecycle: renew with the refresh token (always
//! keeping the returned one), validate with a cheap shop call, which also
//! lists the shops the authorization covers.

use super::TiktokClient;
use super::client::shop_ids;
use crate::providers::UpstreamError;
use crate::providers::lifecycle::{Renewal, Validation};
use crate::providers::refresh_grant::{RefreshGrant, RefreshGrantLifecycle};
use crate::secret::Secret;

pub type TiktokLifecycle = RefreshGrantLifecycle<TiktokClient>;

impl RefreshGrant for TiktokClient {
    const REFRESH_ENDPOINT: &'static str = "/api/v2/token/refresh";
    const CHECKS_UPSTREAM: bool = true;

    async fn grant(&self, refresh_token: &Secret) -> Result<Renewal, UpstreamError> {
        let grant = self.refresh(refresh_token).await?;
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
    }

    async fn check(&self, access_token: &Secret) -> Result<Validation, UpstreamError> {
        let shops = self.authorized_shops(access_token).await?;
        Ok(Validation {
            shop_ids: shop_ids(&shops),
            ..Validation::default()
        })
    }
}
