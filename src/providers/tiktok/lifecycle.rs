//! TikTok Shop's token lifecycle: renew with the refresh token (always
//! keeping the returned one), validate with a cheap shop call, which also
//! lists the shops the authorization covers.

use super::TiktokClient;
use super::client::shop_ids;
use crate::providers::UpstreamError;
use crate::providers::lifecycle::{Renewal, Revoked, Validation};
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

    /// TikTok Shop's auth API has token get and refresh only (wire-spec 7;
    /// the official Node SDK's token.js has no other call); the revoke
    /// endpoint of TikTok Login Kit (open.tiktokapis.com/v2/oauth/revoke,
    /// developers.tiktok.com/docs/en/oauth-revoke-a-user-access-token) is
    /// for TikTok user tokens, not shop tokens.
    async fn revoke(&self, _token: &Secret) -> Result<Revoked, UpstreamError> {
        Ok(Revoked::NotSupported(NO_REVOCATION.into()))
    }
}

/// Why a TikTok Shop token is not revoked upstream.
pub const NO_REVOCATION: &str = "TikTok Shop has no API call that revokes a token: the connection was deleted here only, and its token stays valid until it expires unless the seller removes the app's authorization in TikTok Shop Seller Center";
