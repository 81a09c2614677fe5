//! The TokenManager: the one place that reads, refreshes and records tokens.
//! Any caller that needs a token gets a fresh one or a typed error, never an
//! expired token. What differs by provider comes from the registry.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::alerts::alerting;
use super::error::TokenError;
use super::need::Need;
use super::single_flight::SingleFlight;
use super::sweep::Runs;
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::domain::{
    Connection, ConnectionFacts, ErrorClass, Health, HealthPolicy, StoredSecrets, policy,
};
use crate::notify::Notifier;
use crate::providers::UpstreamError;
use crate::providers::connect::{Connected, Upsert};
use crate::providers::lifecycle::{TokenLifecycle, Upstream};
use crate::providers::registry::Registry;
use crate::providers::retry::RetryPolicy;
use crate::store::crypto::{Binding, Field};
use crate::store::{ConnectionStore, Write};

/// A token handed to a caller that must call the platform itself.
#[derive(Debug, Clone)]
pub struct ValidToken {
    pub connection: Arc<Connection>,
    pub access_token: crate::secret::Secret,
}

pub struct TokenManager {
    pub(super) store: Arc<dyn ConnectionStore>,
    pub(super) clock: SharedClock,
    pub(super) settings: Arc<Settings>,
    pub(super) registry: Arc<Registry>,
    pub(super) notifier: Notifier,
    pub(super) upstream: Upstream,
    pub(super) flights: SingleFlight<Result<Arc<Connection>, TokenError>>,
    pub(super) runs: Runs,
    /// Who this instance is to the store's leases: one name per process, so
    /// that another instance, or this one after a restart, is another holder.
    pub(super) holder: String,
}

impl TokenManager {
    pub fn new(
        store: Arc<dyn ConnectionStore>,
        runs: Runs,
        clock: SharedClock,
        settings: Arc<Settings>,
        registry: Arc<Registry>,
        notifier: Notifier,
    ) -> Self {
        let upstream = Upstream::new(
            RetryPolicy::from(&settings.refresh),
            settings.refresh.concurrency,
        );
        Self {
            store,
            clock,
            settings,
            registry,
            notifier,
            upstream,
            flights: SingleFlight::default(),
            runs,
            holder: format!(
                "pid{}-{}",
                std::process::id(),
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            ),
        }
    }

    /// The name this instance leases connections under.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    pub(super) fn lease_ttl(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.settings.refresh.lease_secs)
    }

    /// Upstream calls with the manager's retries and concurrency bound, for
    /// connect flows and reads that use a token from here.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub fn policy(&self, provider: crate::domain::Provider) -> &HealthPolicy {
        self.registry.policy(provider)
    }

    pub(super) fn lifecycle(
        &self,
        provider: crate::domain::Provider,
    ) -> Result<&Arc<dyn TokenLifecycle>, TokenError> {
        Ok(self.registry.lifecycle(provider)?)
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn health(&self, conn: &Connection) -> Health {
        policy::health(conn, self.now(), self.policy(conn.provider))
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
        let conn = self.connection_for(id, need).await?;
        self.valid_token(conn).await
    }

    /// The stored token of `id`, as it is (not refreshed), for a call that
    /// asks the platform about the token itself. Checked as `token_for`.
    pub async fn stored_token_for(
        &self,
        id: &str,
        need: &Need<'_>,
    ) -> Result<ValidToken, TokenError> {
        let connection = self.connection_for(id, need).await?;
        let access_token = self.store.secrets()?.access_token(&connection)?;
        Ok(ValidToken {
            connection,
            access_token,
        })
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

    /// Inserts or updates the connection with this identity (provider, kind,
    /// external id, team). A successful (re)connect clears every failure.
    pub async fn upsert(
        &self,
        team_id: Option<String>,
        u: Upsert,
    ) -> Result<Arc<Connection>, TokenError> {
        let (write, before) = self.upsert_write(team_id, u)?;
        let stored = self.store.write_all(vec![write]).await?;
        let stored = stored.into_iter().next().expect("one write, one record");
        self.announce(&stored, before).await;
        Ok(stored)
    }

    /// Stores what a connect flow yielded: the account, then (in one more
    /// write) the connections derived from it. The account comes first.
    pub async fn connect(
        &self,
        team_id: Option<String>,
        connected: Connected,
    ) -> Result<Vec<Arc<Connection>>, TokenError> {
        let account = self.upsert(team_id, connected.account).await?;
        let mut stored = vec![account.clone()];
        stored.extend(
            self.upsert_derived(&account, connected.derived, Vec::new())
                .await?,
        );
        Ok(stored)
    }

    /// [`TokenManager::connect`], answering with the account.
    pub async fn connect_account(
        &self,
        team_id: Option<String>,
        connected: Connected,
    ) -> Result<Arc<Connection>, TokenError> {
        let stored = self.connect(team_id, connected).await?;
        Ok(stored.into_iter().next().expect("the account comes first"))
    }

    /// `first` and the upserts of `derived` (children of `parent`) as one
    /// write; the records as stored, in that order.
    pub(super) async fn upsert_derived(
        &self,
        parent: &Connection,
        derived: Vec<crate::providers::lifecycle::Derived>,
        first: Vec<(Write, super::alerts::Before)>,
    ) -> Result<Vec<Arc<Connection>>, TokenError> {
        let mut writes = first;
        for d in derived {
            let u = Upsert {
                provider: parent.provider,
                kind: d.kind,
                external_id: d.external_id,
                label: d.label,
                token: d.token,
                refresh_token: None,
                expires_at: d.expires_at,
                refresh_token_expires_at: None,
                data_access_expires_at: d.data_access_expires_at,
                scopes: d.scopes,
                parent_id: Some(parent.id.clone()),
                shop_ids: None,
            };
            writes.push(self.upsert_write(parent.team_id.clone(), u)?);
        }
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let (writes, befores): (Vec<_>, Vec<_>) = writes.into_iter().unzip();
        let stored = self.store.write_all(writes).await?;
        self.announce_all(stored.iter().map(|c| &**c).zip(befores))
            .await;
        Ok(stored)
    }

    /// The write of an upsert, sealed; the same account connected again (or
    /// twice at once) updates its one record, since the store matches the
    /// natural key atomically.
    fn upsert_write(
        &self,
        team_id: Option<String>,
        u: Upsert,
    ) -> Result<(Write, super::alerts::Before), TokenError> {
        let now = self.now();
        let secrets = self.store.secrets()?;
        let bound = |field| {
            Binding::new(
                u.provider,
                u.kind,
                &u.external_id,
                team_id.as_deref(),
                field,
            )
        };
        let access_token = secrets.seal(&u.token, &bound(Field::AccessToken))?;
        let refresh_token =
            secrets.seal_optional(u.refresh_token.as_ref(), &bound(Field::RefreshToken))?;
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
        let (edit, before) = alerting(&self.registry, now, move |c| {
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
            if let Some(shops) = u.shop_ids {
                c.shop_ids = shops;
            }
            c.last_refreshed_at = Some(now);
            c.next_refresh_at = None;
            c.consecutive_failures = 0;
            c.last_error = None;
            c.reauth_required = false;
        });
        Ok((
            Write::Upsert {
                new: Box::new(new),
                edit,
            },
            before,
        ))
    }

    /// A valid token of `conn`, refreshed first when due (callers go
    /// through [`TokenManager::token_for`]).
    async fn valid_token(&self, mut conn: Arc<Connection>) -> Result<ValidToken, TokenError> {
        let health = self.health(&conn);
        match health {
            Health::ReauthRequired => {
                return Err(TokenError::ReauthRequired {
                    id: conn.id.clone(),
                    reason: reason_of(&conn),
                });
            }
            Health::Expired | Health::CannotRefresh => {
                return Err(TokenError::CannotRefresh {
                    id: conn.id.clone(),
                    reason: format!("the connection is {}", health.as_str()),
                });
            }
            Health::NeedsRefresh | Health::Degraded if self.is_due_with(&conn, health) => {
                let id = conn.id.clone();
                match self.refresh(&id, false).await {
                    Ok(fresh) => conn = fresh,
                    Err(e) => {
                        let current = self.get(&id).await?;
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
        let access_token = self.store.secrets()?.access_token(&conn)?;
        Ok(ValidToken {
            connection: conn,
            access_token,
        })
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
