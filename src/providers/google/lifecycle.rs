//! Google's token lifecycle: the refresh_token grant renews the access token
//! (and proves the refresh token still works, so it is also the validation);
//! revocation revokes the refresh token.

use super::GoogleOAuth;
use crate::providers::UpstreamError;
use crate::providers::lifecycle::{Renewal, Revoked};
use crate::providers::refresh_grant::{RefreshGrant, RefreshGrantLifecycle};
use crate::secret::Secret;

pub type GoogleLifecycle = RefreshGrantLifecycle<GoogleOAuth>;

/// Google has no cheap token check besides the refresh grant itself, which
/// renewal does when the token is due; so there is no `check`.
impl RefreshGrant for GoogleOAuth {
    const REFRESH_ENDPOINT: &'static str = "/token";

    async fn grant(&self, refresh_token: &Secret) -> Result<Renewal, UpstreamError> {
        let grant = self.refresh(refresh_token).await?;
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
    }

    async fn revoke(&self, token: &Secret) -> Result<Revoked, UpstreamError> {
        GoogleOAuth::revoke(self, token)
            .await
            .map(|()| Revoked::Revoked)
    }
}
