//! Refreshing one connection: renew it when its provider can, else validate
//! it upstream, and record the outcome. Each outcome is one store write: the
//! connection, its alert state and any connections derived from it together.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::alerts::alerting;
use super::error::TokenError;
use super::held_lease::HeldLease;
use super::manager::TokenManager;
use crate::domain::{Connection, ConnectionKind, ErrorClass, Health, LastError};
use crate::providers::UpstreamError;
use crate::providers::lifecycle::Held;
use crate::store::crypto::{Binding, Field};
use crate::store::{StoreError, Write, WriteGuard};

/// How often a refresh waiting for another holder's lease looks again.
const LEASE_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// What waiting for a connection's lease ended with.
enum Acquired {
    Lease(HeldLease),
    /// Another holder refreshed the connection after the request arrived.
    RefreshedElsewhere(Arc<Connection>),
}

impl TokenManager {
    /// Whether a connection should be refreshed now (without force).
    pub fn is_due(&self, conn: &Connection) -> bool {
        self.is_due_with(conn, self.health(conn))
    }

    /// [`TokenManager::is_due`] for a connection whose health is known.
    pub(super) fn is_due_with(&self, conn: &Connection, health: Health) -> bool {
        match health {
            Health::NeedsRefresh => true,
            Health::Degraded => conn.next_refresh_at.is_none_or(|t| t <= self.now()),
            _ => false,
        }
    }

    /// Refreshes a connection if due (or always with `force`). Concurrent
    /// calls for one connection share one upstream refresh, and a refresh
    /// holds the connection's lease, so that no other instance runs one
    /// meanwhile.
    pub async fn refresh(&self, id: &str, force: bool) -> Result<Arc<Connection>, TokenError> {
        let requested_at = self.now();
        let conn = self.get(id).await?;
        self.refresh_from(&conn, force, requested_at, None).await
    }

    /// [`TokenManager::refresh`] of a connection a sweep claimed: `conn` as
    /// the claim read it, and its lease, which the refresh uses and then
    /// gives back.
    pub(super) async fn refresh_claimed(
        &self,
        conn: &Connection,
        force: bool,
        lease: HeldLease,
    ) -> Result<Arc<Connection>, TokenError> {
        self.refresh_from(conn, force, self.now(), Some(lease))
            .await
    }

    async fn refresh_from(
        &self,
        conn: &Connection,
        force: bool,
        requested_at: DateTime<Utc>,
        claimed: Option<HeldLease>,
    ) -> Result<Arc<Connection>, TokenError> {
        // A derived connection (a Facebook page) is renewed through the
        // connection it was derived from, while that one can be.
        let parent = match conn.parent_id.as_deref() {
            Some(p) if self.registry.spec(conn.provider).is_derived(conn.kind) => {
                self.store.get(p).await?
            }
            _ => None,
        };
        if let Some(parent) = parent
            && !parent.reauth_required
        {
            if let Some(lease) = claimed {
                lease.give_back().await;
            }
            self.refresh_one(&parent.id, force, requested_at, None)
                .await?;
            return self.get(&conn.id).await;
        }
        self.refresh_one(&conn.id, force, requested_at, claimed)
            .await
    }

    async fn refresh_one(
        &self,
        id: &str,
        force: bool,
        requested_at: DateTime<Utc>,
        claimed: Option<HeldLease>,
    ) -> Result<Arc<Connection>, TokenError> {
        // Taken by this call's refresh if it runs one; a call that joins
        // another's refresh gives it back.
        let claimed = std::sync::Mutex::new(claimed);
        let result = self
            .flights
            .run(id, || async {
                let taken = claimed.lock().expect("claimed lease").take();
                let lease = match taken {
                    Some(lease) => lease,
                    None => match self.acquire(id, requested_at).await? {
                        Acquired::Lease(lease) => lease,
                        Acquired::RefreshedElsewhere(conn) => return Ok(conn),
                    },
                };
                let result = self.refresh_leased(id, force, requested_at, &lease).await;
                lease.give_back().await;
                result
            })
            .await;
        let unused = claimed.into_inner().expect("claimed lease");
        if let Some(lease) = unused {
            lease.give_back().await;
        }
        result
    }

    /// The lease on `id`, waiting while another holder has it (at most one
    /// lease term), or the connection as that holder refreshed it.
    async fn acquire(&self, id: &str, requested_at: DateTime<Utc>) -> Result<Acquired, TokenError> {
        let ttl = self.lease_ttl();
        let give_up = tokio::time::Instant::now() + ttl;
        loop {
            match self.store.lease(id, &self.holder, ttl).await {
                Ok(lease) => {
                    return Ok(Acquired::Lease(HeldLease::new(lease, self.store.clone())));
                }
                Err(StoreError::Leased { .. }) if tokio::time::Instant::now() < give_up => {
                    tokio::time::sleep(LEASE_POLL).await;
                    let conn = self.get(id).await?;
                    if conn.last_refreshed_at.is_some_and(|t| t >= requested_at) {
                        return Ok(Acquired::RefreshedElsewhere(conn));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The refresh itself, under `lease`: decided on the connection as
    /// stored now, since another instance may have refreshed it meanwhile.
    async fn refresh_leased(
        &self,
        id: &str,
        force: bool,
        requested_at: DateTime<Utc>,
        lease: &HeldLease,
    ) -> Result<Arc<Connection>, TokenError> {
        let conn = match lease.claimed_record() {
            Some(conn) => conn.clone(),
            None => self.get(id).await?,
        };
        // A refresh that finished after this request arrived answers it.
        if conn.last_refreshed_at.is_some_and(|t| t >= requested_at) {
            return Ok(conn);
        }
        let health = self.health(&conn);
        if !force && !self.is_due_with(&conn, health) {
            return Ok(conn);
        }
        if matches!(health, Health::Expired | Health::CannotRefresh) {
            return Err(TokenError::CannotRefresh {
                id: conn.id.clone(),
                reason: format!(
                    "the connection is {}: the platform cannot extend it, the user must reconnect",
                    health.as_str()
                ),
            });
        }
        if self.policy(conn.provider).renewable(&conn) {
            self.renew(&conn, lease).await
        } else {
            self.check(conn).await
        }
    }

    /// Renews `conn`; the new secret is written only while `lease` is the
    /// newest on it, so a holder whose lease ran out writes nothing, and the
    /// write ends the lease.
    async fn renew(
        &self,
        conn: &Connection,
        lease: &HeldLease,
    ) -> Result<Arc<Connection>, TokenError> {
        let lifecycle = self.lifecycle(conn.provider)?;
        let secrets = self.store.secrets()?;
        let held = Held {
            access_token: secrets.access_token(conn)?,
            refresh_token: secrets.refresh_token(conn)?,
        };
        let result = lifecycle.renew(&self.upstream, held).await;
        let renewal = self.attempted(conn, "refreshed", result).await?;
        let now = self.now();
        let access_token = secrets.seal(
            &renewal.access_token,
            &Binding::of(conn, Field::AccessToken),
        )?;
        let refresh_token = secrets.seal_optional(
            renewal.refresh_token.as_ref(),
            &Binding::of(conn, Field::RefreshToken),
        )?;
        let expires_at = renewal.expires_at.or_else(|| {
            renewal
                .expires_in
                .map(|s| now + chrono::Duration::seconds(s))
        });
        let r = renewal.clone();
        let (edit, before) = alerting(&self.registry, now, move |c| {
            c.secrets.access_token = access_token;
            if refresh_token.is_some() {
                // Always keep the newest refresh token: some platforms rotate it.
                c.secrets.refresh_token = refresh_token;
            }
            c.expires_at = expires_at;
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
            cleared(c);
        });
        let this = Write::Update {
            id: conn.id.clone(),
            guard: WriteGuard::FencedLast(lease.fencing_token()),
            edit,
        };
        let stored = self
            .upsert_derived(conn, renewal.derived, vec![(this, before)])
            .await?;
        lease.ended_by_write();
        Ok(stored.into_iter().next().expect("the renewed connection"))
    }

    /// Checks a stored token upstream and records what the platform says.
    pub async fn validate(&self, id: &str) -> Result<Arc<Connection>, TokenError> {
        let conn = self.get(id).await?;
        self.check(conn).await
    }

    pub(super) async fn check(&self, conn: Arc<Connection>) -> Result<Arc<Connection>, TokenError> {
        let lifecycle = self.lifecycle(conn.provider)?;
        let token = self.store.secrets()?.access_token(&conn)?;
        let result = lifecycle.validate(&self.upstream, token).await;
        let v = self.attempted(&conn, "checked", result).await?;
        let now = self.now();
        self.write_one(&conn.id, now, move |c| {
            if let Some(expires_at) = v.expires_at {
                c.expires_at = expires_at;
            }
            if v.data_access_expires_at.is_some() {
                c.data_access_expires_at = v.data_access_expires_at;
            }
            if let Some(scopes) = v.scopes {
                c.scopes = scopes;
            }
            if let Some(shops) = v.shop_ids {
                c.shop_ids = shops;
            }
            if c.kind != ConnectionKind::User {
                c.last_refreshed_at = Some(now);
            }
            cleared(c);
        })
        .await
    }

    /// Counts an upstream attempt (`refreshed` or `checked`) and records a
    /// failure on the connection.
    async fn attempted<T>(
        &self,
        conn: &Connection,
        attempt: &'static str,
        result: Result<T, UpstreamError>,
    ) -> Result<T, TokenError> {
        crate::metrics::refresh_attempt(
            conn.provider,
            attempt,
            result.as_ref().err().map(|e| e.class),
        );
        match result {
            Ok(v) => Ok(v),
            Err(e) => {
                self.record_failure(&conn.id, &e).await?;
                Err(e.into())
            }
        }
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
        self.write_one(id, now, move |c| {
            c.consecutive_failures += 1;
            if last.class == ErrorClass::ReauthRequired {
                c.reauth_required = true;
            }
            c.last_error = Some(last);
            if retry_at.is_some() {
                c.next_refresh_at = retry_at;
            }
        })
        .await
    }

    /// One edit of `id` with its alert state, then its webhook event.
    pub(super) async fn write_one(
        &self,
        id: &str,
        now: DateTime<Utc>,
        edit: impl FnOnce(&mut Connection) + Send + 'static,
    ) -> Result<Arc<Connection>, TokenError> {
        let (edit, before) = alerting(&self.registry, now, edit);
        let updated = self.store.update(id, WriteGuard::Latest, edit).await?;
        self.announce(&updated, before).await;
        Ok(updated)
    }
}

/// A connection that just worked: no failure, nothing pending.
fn cleared(c: &mut Connection) {
    c.next_refresh_at = None;
    c.consecutive_failures = 0;
    c.last_error = None;
    c.reauth_required = false;
}
