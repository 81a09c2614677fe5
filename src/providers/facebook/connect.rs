//! Connecting Facebook: the Login callback (code), a short-lived user token a
//! dashboard already holds, or a business (system-user) token. The user
//! flows yield the user and one derived connection per page.

use chrono::{DateTime, Duration, Utc};

use super::lifecycle::{derived_pages, invalid_token_error};
use super::{DebugInfo, GraphClient};
use crate::domain::{ConnectionKind, Provider};
use crate::providers::connect::{ConnectError, Connected, Upsert};
use crate::providers::lifecycle::Upstream;
use crate::secret::Secret;

/// The Login callback: code → short-lived → long-lived user token.
pub async fn with_code(
    graph: &GraphClient,
    upstream: &Upstream,
    code: &str,
    redirect_uri: &str,
    now: DateTime<Utc>,
) -> Result<Connected, ConnectError> {
    let short = graph
        .exchange_code(code, redirect_uri)
        .await
        .map_err(ConnectError::rejected("code"))?;
    user_token(graph, upstream, &short.access_token, "code", now).await
}

/// Upgrades a user token to a long-lived one and lists its pages. `field`
/// names what the caller handed in that `token` stands for: the token
/// itself, or the code it was just exchanged from.
pub async fn user_token(
    graph: &GraphClient,
    upstream: &Upstream,
    token: &Secret,
    field: &'static str,
    now: DateTime<Utc>,
) -> Result<Connected, ConnectError> {
    let long = upstream
        .run(|| graph.exchange_long_lived(token))
        .await
        .map_err(ConnectError::rejected(field))?;
    let info = upstream
        .run(|| graph.debug_token(&long.access_token))
        .await?;
    if !info.is_valid {
        return Err(ConnectError::rejected(field)(invalid_token_error(&info)));
    }
    let me = upstream.run(|| graph.me(&long.access_token)).await?;
    let pages = upstream.run(|| graph.accounts(&long.access_token)).await?;
    let expires_at = info
        .expires_at
        .or_else(|| long.expires_in.map(|s| now + Duration::seconds(s)));
    Ok(Connected {
        account: account(
            ConnectionKind::User,
            me.id,
            me.name,
            long.access_token,
            expires_at,
            &info,
        ),
        derived: derived_pages(pages, &info),
    })
}

/// A business (system-user) token, after `debug_token` confirms it.
pub async fn business_token(
    graph: &GraphClient,
    upstream: &Upstream,
    token: &Secret,
    label: Option<String>,
) -> Result<Connected, ConnectError> {
    let info = upstream.run(|| graph.debug_token(token)).await?;
    let invalid = |message: String| ConnectError::Invalid {
        field: "access_token",
        message,
    };
    if !info.is_valid {
        let e = invalid_token_error(&info);
        return Err(invalid(format!(
            "Facebook says the token is not valid: {}",
            e.message
        )));
    }
    if info.token_type.as_deref() != Some("SYSTEM_USER") {
        return Err(invalid(format!(
            "expected a system-user (business) token, got {}",
            info.token_type.as_deref().unwrap_or("an unknown type")
        )));
    }
    let external_id = info
        .user_id
        .clone()
        .ok_or_else(|| invalid("debug_token names no user_id for this token".into()))?;
    let label = label.unwrap_or_else(|| format!("System user {external_id}"));
    Ok(Connected::account(account(
        ConnectionKind::SystemUser,
        external_id,
        label,
        token.clone(),
        info.expires_at,
        &info,
    )))
}

fn account(
    kind: ConnectionKind,
    external_id: String,
    label: String,
    token: Secret,
    expires_at: Option<DateTime<Utc>>,
    info: &DebugInfo,
) -> Upsert {
    Upsert {
        provider: Provider::Facebook,
        kind,
        external_id,
        label,
        token,
        refresh_token: None,
        expires_at,
        refresh_token_expires_at: None,
        data_access_expires_at: info.data_access_expires_at,
        scopes: info.scopes.clone(),
        parent_id: None,
        shop_ids: None,
    }
}
