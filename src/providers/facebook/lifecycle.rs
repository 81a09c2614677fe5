//! Facebook's token lifecycle: a user token is re-exchanged while valid,
//! checked with `debug_token`, and its page tokens re-derived; every other
//! token (page, system user) is checked with `debug_token`. Only a user's
//! login can be revoked upstream.

use std::sync::Arc;

use chrono::Duration;

use super::GraphClient;
use super::client::{DebugInfo, PageAccount};
use super::errors::classify;
use crate::config::FacebookSettings;
use crate::domain::{ConnectionKind, HealthPolicy, RenewRule};
use crate::providers::UpstreamError;
use crate::providers::lifecycle::{
    Derived, Held, Renewal, Revocable, Revoked, TokenLifecycle, Upstream, Validation,
};
use crate::secret::Secret;

pub fn policy(settings: &FacebookSettings) -> HealthPolicy {
    HealthPolicy::new(
        RenewRule::UserKind,
        Duration::days(settings.refresh_before_days),
        None,
        settings.warning_days.clone(),
    )
}

/// Turns `data.error` of an invalid token into a classified error.
pub fn invalid_token_error(info: &DebugInfo) -> UpstreamError {
    let (code, subcode, message) =
        info.error
            .clone()
            .unwrap_or((190, None, "the token is not valid".into()));
    UpstreamError {
        class: classify(Some(code), subcode, None),
        code: Some(code),
        subcode,
        message,
        retry_after: None,
        http_status: Some(200),
        endpoint: "/debug_token".into(),
    }
}

pub struct FacebookLifecycle {
    graph: Arc<GraphClient>,
}

impl FacebookLifecycle {
    pub fn new(graph: Arc<GraphClient>) -> Self {
        Self { graph }
    }
}

#[async_trait::async_trait]
impl TokenLifecycle for FacebookLifecycle {
    async fn renew(&self, upstream: &Upstream, held: Held) -> Result<Renewal, UpstreamError> {
        let graph = &*self.graph;
        let grant = upstream
            .run(|| graph.exchange_long_lived(&held.access_token))
            .await?;
        let info = upstream
            .run(|| graph.debug_token(&grant.access_token))
            .await?;
        if !info.is_valid {
            return Err(invalid_token_error(&info));
        }
        let pages = upstream.run(|| graph.accounts(&grant.access_token)).await?;
        Ok(Renewal {
            access_token: grant.access_token,
            refresh_token: None,
            // debug_token's time is authoritative; the grant's lifetime is the fallback.
            expires_at: info.expires_at,
            expires_in: grant.expires_in,
            refresh_token_expires_at: None,
            data_access_expires_at: info.data_access_expires_at,
            derived: derived_pages(pages, &info),
            scopes: Some(info.scopes),
        })
    }

    async fn validate(
        &self,
        upstream: &Upstream,
        token: Secret,
    ) -> Result<Validation, UpstreamError> {
        let info = upstream.run(|| self.graph.debug_token(&token)).await?;
        if !info.is_valid {
            return Err(invalid_token_error(&info));
        }
        Ok(Validation {
            expires_at: Some(info.expires_at),
            data_access_expires_at: info.data_access_expires_at,
            scopes: (!info.scopes.is_empty()).then_some(info.scopes),
            ..Validation::default()
        })
    }

    /// A user's login is revoked with `DELETE /{user-id}/permissions`,
    /// which ends its page tokens too. A page or system-user token has no
    /// revocation call of its own.
    async fn revoke(
        &self,
        upstream: &Upstream,
        connection: Revocable,
    ) -> Result<Revoked, UpstreamError> {
        let reason = match connection.kind {
            ConnectionKind::User => {
                let (user, token) = (&connection.external_id, &connection.held.access_token);
                upstream
                    .run(|| self.graph.revoke_login(user, token))
                    .await?;
                return Ok(Revoked::Revoked);
            }
            ConnectionKind::Page => PAGE_NOT_REVOCABLE,
            _ => SYSTEM_USER_NOT_REVOCABLE,
        };
        Ok(Revoked::NotSupported(reason.into()))
    }
}

/// Why deleting a page alone revokes nothing upstream.
const PAGE_NOT_REVOCABLE: &str = "a page token has no revocation of its own: Meta ends it with the login of the user it came from; disconnect that user connection with revoke=true (and cascade=true) to revoke the user and every page";

/// Why deleting a business (system-user) connection revokes nothing upstream.
const SYSTEM_USER_NOT_REVOCABLE: &str = "the Graph API has no call that revokes a system-user token: revoke it in Meta Business Suite, under the business's system users, where it was generated";

/// One derived connection per page a long-lived user token manages, with
/// the user token's data access and scopes.
pub fn derived_pages(pages: Vec<PageAccount>, info: &DebugInfo) -> Vec<Derived> {
    pages
        .into_iter()
        .map(|p| Derived {
            kind: ConnectionKind::Page,
            external_id: p.id,
            label: p.name,
            token: p.access_token,
            // Derived from a long-lived user token: never expires.
            expires_at: None,
            data_access_expires_at: info.data_access_expires_at,
            scopes: info.scopes.clone(),
        })
        .collect()
}
