//! Connecting a TikTok Shop: the authorization code becomes a token pair and
//! an integration (a `shop` connection), with the shops it covers.

use super::TiktokClient;
use crate::domain::{ConnectionKind, Provider};
use crate::providers::connect::{ConnectError, Connected, Upsert};

/// `field` names where the caller put `auth_code` (`code` on the callback,
/// `auth_code` in a request body), for the error if TikTok refuses it.
pub async fn connect(
    client: &TiktokClient,
    auth_code: &str,
    field: &'static str,
) -> Result<Connected, ConnectError> {
    let grant = client
        .get_token(auth_code)
        .await
        .map_err(ConnectError::rejected(field))?;
    // The code is spent by now: a failed shop listing must not lose the
    // authorization. The next check lists the shops again.
    let shop_ids = match client.authorized_shop_ids(&grant.access_token).await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!(error = %e, "the shops of a new TikTok authorization could not be listed; the next check lists them");
            None
        }
    };
    let label = if grant.seller_name.is_empty() {
        format!("TikTok Shop {}", grant.open_id)
    } else {
        grant.seller_name.clone()
    };
    Ok(Connected::account(Upsert {
        provider: Provider::TiktokShop,
        kind: ConnectionKind::Shop,
        external_id: grant.open_id,
        label,
        token: grant.access_token,
        refresh_token: Some(grant.refresh_token),
        expires_at: grant.access_token_expires_at,
        refresh_token_expires_at: grant.refresh_token_expires_at,
        data_access_expires_at: None,
        scopes: grant.scopes,
        parent_id: None,
        shop_ids,
    }))
}
