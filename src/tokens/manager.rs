//! The TokenManager: the one place that reads, refreshes and records tokens.
//! Any caller that needs a token gets a fresh one or a typed error, never an
//! expired token.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::TokenError;
use super::health::{self, HealthPolicy};
use super::lifecycle::{Lifecycles, TokenLifecycle, Upstream};
use super::need::Need;
use super::retry::RetryPolicy;
use super::single_flight::SingleFlight;
use super::sweep::Runs;
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::domain::{
    Connection, ConnectionFacts, ConnectionKind, ErrorClass, Health, LastError, Provider,
    StoredSecrets,
};
use crate::notify::{Event, Notifier};
use crate::providers::UpstreamError;
use crate::providers::facebook::GraphClient;
use crate::secret::Secret;
use crate::store::ConnectionStore;

/// What a connect, registration or derivation stores.
#[derive(Debug, Clone)]
pub struct Upsert {
    pub provider: Provider,
    pub kind: ConnectionKind,
    pub external_id: String,
    pub label: String,
    pub token: Secret,
    pub refresh_token: Option<Secret>,
    pub expires_at: Option<DateTime<Utc>>,
    pub refresh_token_expires_at: Option<DateTime<Utc>>,
    pub data_access_expires_at: Option<DateTime<Utc>>,
    pub scopes: Vec<String>,
    pub parent_id: Option<String>,
}

/// A token handed to a caller that must call the platform itself.
#[derive(Debug, Clone)]
pub struct ValidToken {
    pub connection: Arc<Connection>,
    pub access_token: Secret,
}

pub struct TokenManager {
    pub(super) store: Arc<dyn ConnectionStore>,
    pub(super) clock: SharedClock,
    pub(super) settings: Arc<Settings>,
    pub(super) graph: Option<Arc<GraphClient>>,
    pub(super) notifier: Notifier,
    /// Health windows of every provider, configured or not.
    policies: HashMap<Provider, HealthPolicy>,
    /// The providers whose app credentials are configured.
    lifecycles: Lifecycles,
    pub(super) upstream: Upstream,
    pub(super) flights: SingleFlight<Result<Arc<Connection>, TokenError>>,
    pub(super) runs: Runs,
}

impl TokenManager {
    pub fn new(
        store: Arc<dyn ConnectionStore>,
        runs_file: Option<std::path::PathBuf>,
        clock: SharedClock,
        settings: Arc<Settings>,
        graph: Option<Arc<GraphClient>>,
        lifecycles: Lifecycles,
        notifier: Notifier,
    ) -> Self {
        let policies = super::policies(&settings);
        let upstream = Upstream::new(
            RetryPolicy::from(&settings.refresh),
            settings.refresh.concurrency,
        );
        let runs = match runs_file {
            Some(file) => Runs::open(file, settings.refresh.runs_kept),
            None => Runs::new(settings.refresh.runs_kept),
        };
        Self {
            store,
            clock,
            settings,
            graph,
            notifier,
            policies,
            lifecycles,
            upstream,
            flights: SingleFlight::default(),
            runs,
        }
    }

    /// One upstream call with the manager's retries and concurrency bound.
    pub(super) async fn upstream<T, F, Fut>(&self, call: F) -> Result<T, UpstreamError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, UpstreamError>>,
    {
        self.upstream.run(call).await
    }

    pub fn policy(&self, provider: Provider) -> &HealthPolicy {
        &self.policies[&provider]
    }

    pub(super) fn lifecycle(
        &self,
        provider: Provider,
    ) -> Result<&Arc<dyn TokenLifecycle>, TokenError> {
        self.lifecycles.get(&provider).ok_or_else(|| {
            TokenError::NotConfigured(format!(
                "{} is not configured (set its app credentials)",
                provider.as_str()
            ))
        })
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn health(&self, conn: &Connection) -> Health {
        health::health(conn, self.now(), self.policy(conn.provider))
    }

    pub async fn get(&self, id: &str) -> Result<Arc<Connection>, TokenError> {
        self.store
            .get(id)
            .await?
            .ok_or_else(|| TokenError::NotFound(id.to_string()))
    }

    /// The connection `id` if `need` allows it: not found when the caller may
    /// not see it, a wrong-connection error when it is of another platform
    /// or kind. Every operation that names a connection comes through here.
    pub async fn connection_for(
        &self,
        id: &str,
        need: &Need<'_>,
    ) -> Result<Arc<Connection>, TokenError> {
        let conn = self.get(id).await?;
        need.check(&conn)?;
        Ok(conn)
    }

    /// A valid token of `id` for the operation `need` describes, refreshed
    /// first when due. Nothing is decrypted unless `need` allows the
    /// connection, so a token never goes to another platform.
    pub async fn token_for(&self, id: &str, need: &Need<'_>) -> Result<ValidToken, TokenError> {
        self.connection_for(id, need).await?;
        self.get_valid_token(id).await
    }

    /// Records what the platform said of a connection's token on a path
    /// other than a refresh (insights, debug, hand-out checks): a
    /// reauth-class error flags the connection, keeps the error and notifies
    /// once per change. Other classes say nothing about the token itself.
    pub async fn observe(&self, id: &str, error: &UpstreamError) {
        if error.class != ErrorClass::ReauthRequired {
            return;
        }
        if let Err(e) = self.record_failure(id, error).await {
            tracing::warn!(connection = %id, error = %e, "could not record that the token was rejected");
        }
    }

    /// The Graph client, for callers that read insights with tokens from here.
    pub fn facebook_client(&self) -> Result<&GraphClient, TokenError> {
        self.graph()
    }

    pub(super) fn graph(&self) -> Result<&GraphClient, TokenError> {
        self.graph.as_deref().ok_or_else(|| {
            TokenError::NotConfigured(
                "Facebook is not configured: set FB_APP_ID and FB_APP_SECRET".into(),
            )
        })
    }

    /// Whether a connection should be refreshed now (without force).
    pub fn is_due(&self, conn: &Connection) -> bool {
        match self.health(conn) {
            Health::NeedsRefresh => true,
            Health::Degraded => conn.next_refresh_at.is_none_or(|t| t <= self.now()),
            _ => false,
        }
    }

    /// Refreshes a connection if due (or always with `force`). Concurrent
    /// calls for one connection share one upstream refresh.
    pub async fn refresh(&self, id: &str, force: bool) -> Result<Arc<Connection>, TokenError> {
        let requested_at = self.now();
        let conn = self.get(id).await?;
        // A page is refreshed through the user token it was derived from.
        let parent = match conn.parent_id.as_deref() {
            Some(p) if conn.provider == Provider::Facebook && conn.kind == ConnectionKind::Page => {
                self.store.get(p).await?
            }
            _ => None,
        };
        if let Some(parent) = parent
            && !parent.reauth_required
        {
            self.refresh_one(&parent.id, force, requested_at).await?;
            return self.get(id).await;
        }
        self.refresh_one(id, force, requested_at).await
    }

    async fn refresh_one(
        &self,
        id: &str,
        force: bool,
        requested_at: DateTime<Utc>,
    ) -> Result<Arc<Connection>, TokenError> {
        self.flights
            .run(id, || async {
                let conn = self.get(id).await?;
                // A refresh that finished after this request arrived answers it.
                if conn.last_refreshed_at.is_some_and(|t| t >= requested_at) {
                    return Ok(conn);
                }
                if !force && !self.is_due(&conn) {
                    return Ok(conn);
                }
                if matches!(self.health(&conn), Health::Expired | Health::CannotRefresh) {
                    return Err(TokenError::CannotRefresh {
                        id: conn.id.clone(),
                        reason: format!(
                            "the connection is {}: the platform cannot extend it, the user must reconnect",
                            self.health(&conn).as_str()
                        ),
                    });
                }
                self.refresh_connection(&conn).await
            })
            .await
    }

    /// Renews a renewable connection, or validates any other one.
    async fn refresh_connection(&self, conn: &Connection) -> Result<Arc<Connection>, TokenError> {
        if self.policy(conn.provider).renewable(conn) {
            self.renew(conn).await
        } else {
            self.validate(&conn.id).await
        }
    }

    async fn renew(&self, conn: &Connection) -> Result<Arc<Connection>, TokenError> {
        let lifecycle = self.lifecycle(conn.provider)?;
        let secrets = self.store.secrets()?;
        let access = secrets.open(&conn.secrets.access_token)?;
        let refresh = secrets.open_optional(conn.secrets.refresh_token.as_ref())?;
        let result = lifecycle.renew(&self.upstream, conn, access, refresh).await;
        crate::metrics::refresh_attempt(
            conn.provider,
            "refreshed",
            result.as_ref().err().map(|e| e.class),
        );
        let renewal = match result {
            Ok(r) => r,
            Err(e) => {
                self.record_failure(&conn.id, &e).await?;
                return Err(e.into());
            }
        };
        let now = self.now();
        let access_token = secrets.seal(&renewal.access_token)?;
        let refresh_token = secrets.seal_optional(renewal.refresh_token.as_ref())?;
        let mut r = renewal.clone();
        if r.expires_at.is_none() {
            r.expires_at = r.expires_in.map(|s| now + chrono::Duration::seconds(s));
        }
        let updated = self
            .store
            .edit(&conn.id, move |c| {
                c.secrets.access_token = access_token;
                if refresh_token.is_some() {
                    // Always keep the newest refresh token: some platforms rotate it.
                    c.secrets.refresh_token = refresh_token;
                }
                c.expires_at = r.expires_at;
                if r.refresh_token_expires_at.is_some() {
                    c.refresh_token_expires_at = r.refresh_token_expires_at;
                }
                if r.data_access_expires_at.is_some() {
                    c.data_access_expires_at = r.data_access_expires_at;
                }
                if let Some(scopes) = r.scopes {
                    c.scopes = scopes;
                }
                c.last_refreshed_at = Some(now);
                c.next_refresh_at = None;
                c.consecutive_failures = 0;
                c.last_error = None;
                c.reauth_required = false;
            })
            .await?;
        self.announce(&updated).await;
        for d in renewal.derived {
            self.upsert(
                updated.team_id.clone(),
                Upsert {
                    provider: updated.provider,
                    kind: d.kind,
                    external_id: d.external_id,
                    label: d.label,
                    token: d.token,
                    refresh_token: None,
                    expires_at: d.expires_at,
                    refresh_token_expires_at: None,
                    data_access_expires_at: d.data_access_expires_at,
                    scopes: d.scopes,
                    parent_id: Some(updated.id.clone()),
                },
            )
            .await?;
        }
        self.get(&updated.id).await
    }

    /// Checks a stored token upstream and records what the platform says.
    pub async fn validate(&self, id: &str) -> Result<Arc<Connection>, TokenError> {
        let conn = self.get(id).await?;
        let lifecycle = self.lifecycle(conn.provider)?;
        let token = self.store.secrets()?.open(&conn.secrets.access_token)?;
        let result = lifecycle.validate(&self.upstream, &conn, token).await;
        crate::metrics::refresh_attempt(
            conn.provider,
            "checked",
            result.as_ref().err().map(|e| e.class),
        );
        let v = match result {
            Ok(v) => v,
            Err(e) => {
                self.record_failure(id, &e).await?;
                return Err(e.into());
            }
        };
        let now = self.now();
        let updated = self
            .store
            .edit(id, move |c| {
                if let Some(expires_at) = v.expires_at {
                    c.expires_at = expires_at;
                }
                if v.data_access_expires_at.is_some() {
                    c.data_access_expires_at = v.data_access_expires_at;
                }
                if let Some(scopes) = v.scopes {
                    c.scopes = scopes;
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
        self.get(id).await
    }

    /// Inserts or updates the connection with this identity (provider, kind,
    /// external id, team). A successful (re)connect clears every failure.
    pub async fn upsert(
        &self,
        team_id: Option<String>,
        u: Upsert,
    ) -> Result<Arc<Connection>, TokenError> {
        let now = self.now();
        let secrets = self.store.secrets()?;
        let access_token = secrets.seal(&u.token)?;
        let refresh_token = secrets.seal_optional(u.refresh_token.as_ref())?;
        let mut new = Connection::new(
            u.provider,
            u.kind,
            u.external_id,
            u.label.clone(),
            StoredSecrets {
                access_token: access_token.clone(),
                refresh_token: None,
            },
            now,
        );
        new.team_id = team_id;
        // The same account connected again (or twice at once) updates its
        // one record: the writer matches the natural key atomically.
        let stored = self
            .store
            .upsert(
                new,
                Box::new(move |c| {
                    c.label = u.label;
                    c.secrets.access_token = access_token;
                    if refresh_token.is_some() {
                        c.secrets.refresh_token = refresh_token;
                    }
                    c.expires_at = u.expires_at;
                    c.refresh_token_expires_at = u.refresh_token_expires_at;
                    c.data_access_expires_at = u.data_access_expires_at;
                    c.scopes = u.scopes;
                    c.parent_id = u.parent_id;
                    c.last_refreshed_at = Some(now);
                    c.next_refresh_at = None;
                    c.consecutive_failures = 0;
                    c.last_error = None;
                    c.reauth_required = false;
                }),
            )
            .await?;
        self.announce(&stored).await;
        Ok(self.store.get(&stored.id).await?.unwrap_or(stored))
    }

    /// A valid token for `id`, refreshed first when due (callers go through
    /// [`TokenManager::token_for`]).
    async fn get_valid_token(&self, id: &str) -> Result<ValidToken, TokenError> {
        let mut conn = self.get(id).await?;
        match self.health(&conn) {
            Health::ReauthRequired => {
                return Err(TokenError::ReauthRequired {
                    id: conn.id.clone(),
                    reason: reason_of(&conn),
                });
            }
            Health::Expired | Health::CannotRefresh => {
                return Err(TokenError::CannotRefresh {
                    id: conn.id.clone(),
                    reason: format!("the connection is {}", self.health(&conn).as_str()),
                });
            }
            Health::NeedsRefresh | Health::Degraded if self.is_due(&conn) => {
                match self.refresh(id, false).await {
                    Ok(fresh) => conn = fresh,
                    Err(e) => {
                        let current = self.get(id).await?;
                        if !self.health(&current).is_usable() {
                            return Err(e);
                        }
                        // Still valid: hand out the current token rather than fail.
                        tracing::warn!(connection = %id, error = %e, "refresh before hand-out failed; the current token is still valid");
                        conn = current;
                    }
                }
            }
            _ => {}
        }
        let access_token = self.store.secrets()?.open(&conn.secrets.access_token)?;
        Ok(ValidToken {
            connection: conn,
            access_token,
        })
    }

    /// Records a failed upstream call on a connection: counts it, keeps the
    /// error, and flags reauth for reauth-class errors only.
    pub(super) async fn record_failure(
        &self,
        id: &str,
        error: &UpstreamError,
    ) -> Result<Arc<Connection>, TokenError> {
        let now = self.now();
        let last = LastError {
            class: error.class,
            code: error.code,
            subcode: error.subcode,
            message: error.message.clone(),
            at: now,
        };
        let retry_at = error
            .retry_after
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .map(|d| now + d);
        let updated = self
            .store
            .edit(id, move |c| {
                c.consecutive_failures += 1;
                if last.class == ErrorClass::ReauthRequired {
                    c.reauth_required = true;
                }
                c.last_error = Some(last);
                if retry_at.is_some() {
                    c.next_refresh_at = retry_at;
                }
            })
            .await?;
        self.announce(&updated).await;
        Ok(updated)
    }

    /// Sends a webhook event when a connection's alert state changed since
    /// the last one announced, and remembers the new state.
    pub(super) async fn announce(&self, conn: &Arc<Connection>) {
        let now = self.now();
        let policy = self.policy(conn.provider);
        let state = health::alert_state(conn, now, policy);
        let previous = conn.notified_state.as_deref().unwrap_or("ok");
        if previous == state {
            return;
        }
        let kind = if state == "reauth_required" {
            "connection.reauth_required"
        } else if previous == "reauth_required" {
            "connection.recovered"
        } else if state.starts_with("expiry_warning") {
            "connection.expiry_warning"
        } else {
            // A warning that cleared (e.g. after a reconnect): nothing to say,
            // just remember it.
            ""
        };
        if !kind.is_empty() {
            let mut data = json!({ "connection": self.facts(conn) });
            if let Some(w) = health::warning(conn, now, policy) {
                data["warning"] =
                    json!({ "what": w.what, "stage_days": w.stage_days, "lapses_at": w.at });
            }
            if let Some(e) = &conn.last_error {
                data["last_error"] = json!(e);
            }
            self.notifier.send(Event::new(kind, now, data));
        }
        let id = conn.id.clone();
        if let Err(e) = self
            .store
            .edit(&id, move |c| c.notified_state = Some(state))
            .await
        {
            tracing::warn!(connection = %id, error = %e, "could not record the notified state");
        }
    }

    /// A connection's facts as shown to API callers and webhooks: never a token.
    pub fn facts(&self, conn: &Connection) -> ConnectionFacts {
        ConnectionFacts::of(conn, self.health(conn))
    }

    pub async fn delete(&self, id: &str) -> Result<(), TokenError> {
        self.store.delete(id).await.map_err(TokenError::from)
    }
}

fn reason_of(conn: &Connection) -> String {
    match &conn.last_error {
        Some(e) => format!(
            "{} (code {}{})",
            e.message,
            e.code.map_or("-".into(), |c| c.to_string()),
            e.subcode.map_or(String::new(), |s| format!("/{s}"))
        ),
        None => "flagged for reconnection".into(),
    }
}
