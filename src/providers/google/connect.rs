//! Connecting Google Ads: the consent code becomes an access token and a
//! refresh token (offline access), stored as an `ads` connection.

use std::sync::Arc;

use chrono::Duration;

use super::GoogleOAuth;
use crate::domain::{Connection, ConnectionKind, Provider};
use crate::tokens::{TokenError, TokenManager, Upsert};

pub async fn connect(
    tokens: &TokenManager,
    oauth: &GoogleOAuth,
    code: &str,
    redirect_uri: &str,
    customer_id: Option<String>,
    team_id: Option<String>,
) -> Result<Arc<Connection>, TokenError> {
    let grant = oauth
        .exchange_code(code, redirect_uri)
        .await
        .map_err(TokenError::rejected_input("code"))?;
    let refresh_token = grant.refresh_token.ok_or_else(|| TokenError::Invalid {
        field: "code".into(),
        message: "Google returned no refresh token: consent must ask for offline access".into(),
    })?;
    let customer = customer_id.unwrap_or_else(|| "default".into());
    tokens
        .upsert(
            team_id,
            Upsert {
                provider: Provider::Google,
                kind: ConnectionKind::Ads,
                label: format!("Google Ads {customer}"),
                external_id: customer,
                token: grant.access_token,
                refresh_token: Some(refresh_token),
                expires_at: grant
                    .expires_in
                    .map(|s| tokens.now() + Duration::seconds(s)),
                refresh_token_expires_at: None,
                data_access_expires_at: None,
                scopes: grant.scopes,
                parent_id: None,
            },
        )
        .await
}
