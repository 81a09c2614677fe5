//! Connecting Google Ads: the consent code becomes an access token and a
//! refresh token (offline access), stored as an `ads` connection.

use chrono::{DateTime, Duration, Utc};

use super::GoogleOAuth;
use crate::domain::{ConnectionKind, Provider};
use crate::providers::connect::{ConnectError, Connected, Upsert};

pub async fn connect(
    oauth: &GoogleOAuth,
    code: &str,
    redirect_uri: &str,
    customer_id: Option<String>,
    now: DateTime<Utc>,
) -> Result<Connected, ConnectError> {
    let grant = oauth
        .exchange_code(code, redirect_uri)
        .await
        .map_err(ConnectError::rejected("code"))?;
    let refresh_token = grant.refresh_token.ok_or_else(|| ConnectError::Invalid {
        field: "code",
        message: "Google returned no refresh token: consent must ask for offline access".into(),
    })?;
    let customer = customer_id.unwrap_or_else(|| "default".into());
    Ok(Connected::account(Upsert {
        provider: Provider::Google,
        kind: ConnectionKind::Ads,
        label: format!("Google Ads {customer}"),
        external_id: customer,
        token: grant.access_token,
        refresh_token: Some(refresh_token),
        expires_at: grant.expires_in.map(|s| now + Duration::seconds(s)),
        refresh_token_expires_at: None,
        data_access_expires_at: None,
        scopes: grant.scopes,
        parent_id: None,
        shop_ids: None,
    }))
}
