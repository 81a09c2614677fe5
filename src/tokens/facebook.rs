//! Facebook's side of the lifecycle: connect (code or short-lived token),
//! register a business token, refresh a user token (re-exchange, verify,
//! re-derive page tokens), and validate any token with `debug_token`.

use std::sync::Arc;

use chrono::Duration;

use super::TokenError;
use super::manager::TokenManager;
use crate::providers::UpstreamError;
use crate::providers::facebook::{DebugInfo, errors::classify};
use crate::secret::Secret;
use crate::store::{Connection, ConnectionKind, Provider, StoredSecrets};

/// What a connect or registration stored.
pub struct Upsert {
    pub kind: ConnectionKind,
    pub external_id: String,
    pub label: String,
    pub token: Secret,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub data_access_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub scopes: Vec<String>,
    pub parent_id: Option<String>,
}

/// Turns `data.error` of an invalid token into a classified error.
fn invalid_token_error(info: &DebugInfo) -> UpstreamError {
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
        let short = graph.exchange_code(code, redirect_uri).await?;
        self.connect_facebook_user_token(&short.access_token, team_id)
            .await
    }

    /// Upgrades a user token a dashboard already holds and stores the user
    /// and one connection per page.
    pub async fn connect_facebook_user_token(
        &self,
        token: &Secret,
        team_id: Option<String>,
    ) -> Result<Vec<Arc<Connection>>, TokenError> {
        let graph = self.graph()?;
        let long = self.upstream(|| graph.exchange_long_lived(token)).await?;
        let info = self
            .upstream(|| graph.debug_token(&long.access_token))
            .await?;
        if !info.is_valid {
            return Err(invalid_token_error(&info).into());
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
                Upsert {
                    kind: ConnectionKind::User,
                    external_id: me.id.clone(),
                    label: me.name.clone(),
                    token: long.access_token.clone(),
                    expires_at,
                    data_access_expires_at: info.data_access_expires_at,
                    scopes: info.scopes.clone(),
                    parent_id: None,
                },
            )
            .await?;
        let mut stored = vec![user.clone()];
        stored.extend(
            self.store_pages(&user, pages, info.data_access_expires_at, &info.scopes)
                .await?,
        );
        Ok(stored)
    }

    async fn store_pages(
        &self,
        user: &Arc<Connection>,
        pages: Vec<crate::providers::facebook::PageAccount>,
        data_access: Option<chrono::DateTime<chrono::Utc>>,
        scopes: &[String],
    ) -> Result<Vec<Arc<Connection>>, TokenError> {
        let mut stored = Vec::with_capacity(pages.len());
        for page in pages {
            stored.push(
                self.upsert(
                    user.team_id.clone(),
                    Upsert {
                        kind: ConnectionKind::Page,
                        external_id: page.id,
                        label: page.name,
                        token: page.access_token,
                        // Derived from a long-lived user token: never expires.
                        expires_at: None,
                        data_access_expires_at: data_access,
                        scopes: scopes.to_vec(),
                        parent_id: Some(user.id.clone()),
                    },
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
        self.upsert(
            team_id,
            Upsert {
                kind: ConnectionKind::SystemUser,
                label: label.unwrap_or_else(|| format!("System user {external_id}")),
                external_id,
                token: token.clone(),
                expires_at: info.expires_at,
                data_access_expires_at: info.data_access_expires_at,
                scopes: info.scopes,
                parent_id: None,
            },
        )
        .await
    }

    /// Inserts or updates the connection with this identity (provider, kind,
    /// external id, team). A successful (re)connect clears every failure.
    pub(super) async fn upsert(
        &self,
        team_id: Option<String>,
        u: Upsert,
    ) -> Result<Arc<Connection>, TokenError> {
        let now = self.now();
        let secrets = StoredSecrets {
            access_token: self.store.encrypt(&u.token)?,
            refresh_token: None,
        };
        let existing = self.store.list().into_iter().find(|c| {
            c.provider == Provider::Facebook
                && c.kind == u.kind
                && c.external_id == u.external_id
                && c.team_id == team_id
        });
        let stored = match existing {
            Some(c) => {
                self.store
                    .update(&c.id, move |c| {
                        c.label = u.label;
                        c.secrets = secrets;
                        c.expires_at = u.expires_at;
                        c.data_access_expires_at = u.data_access_expires_at;
                        c.scopes = u.scopes;
                        c.parent_id = u.parent_id;
                        c.last_refreshed_at = Some(now);
                        c.next_refresh_at = None;
                        c.consecutive_failures = 0;
                        c.last_error = None;
                        c.reauth_required = false;
                    })
                    .await?
            }
            None => {
                let mut c = Connection::new(
                    Provider::Facebook,
                    u.kind,
                    u.external_id,
                    u.label,
                    secrets,
                    now,
                );
                c.team_id = team_id;
                c.expires_at = u.expires_at;
                c.data_access_expires_at = u.data_access_expires_at;
                c.scopes = u.scopes;
                c.parent_id = u.parent_id;
                c.last_refreshed_at = Some(now);
                self.store.put(c).await?
            }
        };
        self.announce(&stored).await;
        Ok(self.store.get(&stored.id).unwrap_or(stored))
    }

    /// Re-exchanges a user token while it is valid, verifies the new one, and
    /// re-derives its page tokens.
    pub(super) async fn refresh_facebook_user(
        &self,
        conn: &Connection,
    ) -> Result<Arc<Connection>, TokenError> {
        let graph = self.graph()?;
        let token = self.store.decrypt(&conn.secrets.access_token)?;
        let attempt = async {
            let grant = self.upstream(|| graph.exchange_long_lived(&token)).await?;
            let info = self
                .upstream(|| graph.debug_token(&grant.access_token))
                .await?;
            if !info.is_valid {
                return Err(invalid_token_error(&info));
            }
            let pages = self
                .upstream(|| graph.accounts(&grant.access_token))
                .await?;
            Ok((grant, info, pages))
        }
        .await;
        let (grant, info, pages) = match attempt {
            Ok(v) => v,
            Err(e) => {
                self.record_failure(&conn.id, &e).await?;
                return Err(e.into());
            }
        };
        let now = self.now();
        let secrets = StoredSecrets {
            access_token: self.store.encrypt(&grant.access_token)?,
            refresh_token: None,
        };
        let expires_at = info
            .expires_at
            .or_else(|| grant.expires_in.map(|s| now + Duration::seconds(s)));
        let data_access = info.data_access_expires_at;
        let scopes = info.scopes.clone();
        let user = self
            .store
            .update(&conn.id, move |c| {
                c.secrets = secrets;
                c.expires_at = expires_at;
                c.data_access_expires_at = data_access;
                c.scopes = scopes;
                c.last_refreshed_at = Some(now);
                c.next_refresh_at = None;
                c.consecutive_failures = 0;
                c.last_error = None;
                c.reauth_required = false;
            })
            .await?;
        self.announce(&user).await;
        self.store_pages(&user, pages, data_access, &info.scopes)
            .await?;
        self.get(&user.id)
    }

    /// Checks a stored token with `debug_token` and records what it says.
    pub async fn validate(&self, id: &str) -> Result<Arc<Connection>, TokenError> {
        let conn = self.get(id)?;
        let graph = self.graph()?;
        let token = self.store.decrypt(&conn.secrets.access_token)?;
        let info = match self.upstream(|| graph.debug_token(&token)).await {
            Ok(info) if info.is_valid => info,
            Ok(info) => {
                let e = invalid_token_error(&info);
                self.record_failure(id, &e).await?;
                return Err(e.into());
            }
            Err(e) => {
                self.record_failure(id, &e).await?;
                return Err(e.into());
            }
        };
        let now = self.now();
        let updated = self
            .store
            .update(id, move |c| {
                c.expires_at = info.expires_at;
                if info.data_access_expires_at.is_some() {
                    c.data_access_expires_at = info.data_access_expires_at;
                }
                if !info.scopes.is_empty() {
                    c.scopes = info.scopes;
                }
                if c.kind != ConnectionKind::User {
                    c.last_refreshed_at = Some(now);
                }
                c.next_refresh_at = None;
                c.consecutive_failures = 0;
                c.last_error = None;
                c.reauth_required = false;
            })
            .await?;
        self.announce(&updated).await;
        self.get(id)
    }

    /// `debug_token` for a stored connection, as Facebook reports it.
    pub async fn debug_facebook_token(&self, id: &str) -> Result<DebugInfo, TokenError> {
        let conn = self.get(id)?;
        let graph = self.graph()?;
        let token = self.store.decrypt(&conn.secrets.access_token)?;
        Ok(self.upstream(|| graph.debug_token(&token)).await?)
    }

    /// The dialog URL asking again for declined permissions.
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
