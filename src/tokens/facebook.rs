//! Connecting Facebook: the Login callback (code), a short-lived user token a
//! dashboard already holds, or a business (system-user) token. Renewal and
//! validation are in `providers::facebook::lifecycle`.

use std::sync::Arc;

use chrono::Duration;

use super::TokenError;
use super::manager::{TokenManager, Upsert};
use super::need::Need;
use crate::domain::{Connection, ConnectionKind, Provider};
use crate::providers::facebook::DebugInfo;
use crate::providers::facebook::lifecycle::invalid_token_error;
use crate::secret::Secret;

impl TokenManager {
    /// The Login callback: code → short-lived → long-lived, then store the
    /// user and its pages.
    pub async fn connect_facebook_code(
        &self,
        code: &str,
        redirect_uri: &str,
        team_id: Option<String>,
    ) -> Result<Vec<Arc<Connection>>, TokenError> {
        let graph = self.graph()?;
        let short = graph
            .exchange_code(code, redirect_uri)
            .await
            .map_err(TokenError::rejected_input("code"))?;
        self.connect_user_token(&short.access_token, "code", team_id)
            .await
    }

    /// Upgrades a user token a dashboard already holds and stores the user
    /// and one connection per page.
    pub async fn connect_facebook_user_token(
        &self,
        token: &Secret,
        team_id: Option<String>,
    ) -> Result<Vec<Arc<Connection>>, TokenError> {
        self.connect_user_token(token, "access_token", team_id)
            .await
    }

    /// `field` names what the caller handed in that `token` stands for: the
    /// token itself, or the code it was just exchanged from.
    async fn connect_user_token(
        &self,
        token: &Secret,
        field: &'static str,
        team_id: Option<String>,
    ) -> Result<Vec<Arc<Connection>>, TokenError> {
        let graph = self.graph()?;
        let long = self
            .upstream(|| graph.exchange_long_lived(token))
            .await
            .map_err(TokenError::rejected_input(field))?;
        let info = self
            .upstream(|| graph.debug_token(&long.access_token))
            .await?;
        if !info.is_valid {
            return Err(TokenError::rejected_input(field)(invalid_token_error(
                &info,
            )));
        }
        let me = self.upstream(|| graph.me(&long.access_token)).await?;
        let pages = self.upstream(|| graph.accounts(&long.access_token)).await?;
        let now = self.now();
        let expires_at = info
            .expires_at
            .or_else(|| long.expires_in.map(|s| now + Duration::seconds(s)));
        let user = self
            .upsert(
                team_id.clone(),
                facebook(
                    ConnectionKind::User,
                    me.id,
                    me.name,
                    long.access_token,
                    expires_at,
                    &info,
                    None,
                ),
            )
            .await?;
        let mut stored = vec![user.clone()];
        for page in pages {
            stored.push(
                self.upsert(
                    team_id.clone(),
                    // Derived from a long-lived user token: never expires.
                    facebook(
                        ConnectionKind::Page,
                        page.id,
                        page.name,
                        page.access_token,
                        None,
                        &info,
                        Some(user.id.clone()),
                    ),
                )
                .await?,
            );
        }
        Ok(stored)
    }

    /// Registers a business (system-user) token after `debug_token` confirms it.
    pub async fn register_facebook_business_token(
        &self,
        token: &Secret,
        label: Option<String>,
        team_id: Option<String>,
    ) -> Result<Arc<Connection>, TokenError> {
        let graph = self.graph()?;
        let info = self.upstream(|| graph.debug_token(token)).await?;
        if !info.is_valid {
            let e = invalid_token_error(&info);
            return Err(TokenError::Invalid {
                field: "access_token".into(),
                message: format!("Facebook says the token is not valid: {}", e.message),
            });
        }
        if info.token_type.as_deref() != Some("SYSTEM_USER") {
            return Err(TokenError::Invalid {
                field: "access_token".into(),
                message: format!(
                    "expected a system-user (business) token, got {}",
                    info.token_type.as_deref().unwrap_or("an unknown type")
                ),
            });
        }
        let external_id = info.user_id.clone().ok_or_else(|| TokenError::Invalid {
            field: "access_token".into(),
            message: "debug_token names no user_id for this token".into(),
        })?;
        let label = label.unwrap_or_else(|| format!("System user {external_id}"));
        self.upsert(
            team_id,
            facebook(
                ConnectionKind::SystemUser,
                external_id,
                label,
                token.clone(),
                info.expires_at,
                &info,
                None,
            ),
        )
        .await
    }

    /// `debug_token` for a stored Facebook connection, as Facebook reports
    /// it. A token Facebook calls invalid for a reauth reason is recorded on
    /// the connection, as a refresh would record it.
    pub async fn debug_facebook_token(
        &self,
        id: &str,
        need: &Need<'_>,
    ) -> Result<DebugInfo, TokenError> {
        let need = Need {
            provider: Some(Provider::Facebook),
            ..*need
        };
        let conn = self.connection_for(id, &need).await?;
        let graph = self.graph()?;
        let token = self.store.secrets()?.open(&conn.secrets.access_token)?;
        // An error of the call itself is about the app token it is made
        // with; only `is_valid: false` speaks of the connection's token.
        let info = self.upstream(|| graph.debug_token(&token)).await?;
        if !info.is_valid {
            self.observe(&conn.id, &invalid_token_error(&info)).await;
        }
        Ok(info)
    }

    /// The Login dialog URL (with `auth_type=rerequest` to ask again for
    /// declined permissions).
    pub fn facebook_dialog_url(
        &self,
        state: &str,
        scopes: &[String],
        rerequest: bool,
    ) -> Result<String, TokenError> {
        Ok(self.graph()?.dialog_url(
            &self.settings.facebook.redirect_uri,
            state,
            scopes,
            rerequest,
        ))
    }
}

fn facebook(
    kind: ConnectionKind,
    external_id: String,
    label: String,
    token: Secret,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
    info: &DebugInfo,
    parent_id: Option<String>,
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
        parent_id,
    }
}
