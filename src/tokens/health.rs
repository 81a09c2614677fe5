//! Health of a connection, computed from its stored facts and the configured
//! windows (never stored, so never stale), and the staged expiry warnings.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::store::{Connection, ConnectionKind, ErrorClass};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Healthy,
    ExpiringSoon,
    NeedsRefresh,
    Degraded,
    Expired,
    CannotRefresh,
    ReauthRequired,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::ExpiringSoon => "expiring_soon",
            Health::NeedsRefresh => "needs_refresh",
            Health::Degraded => "degraded",
            Health::Expired => "expired",
            Health::CannotRefresh => "cannot_refresh",
            Health::ReauthRequired => "reauth_required",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(text.to_string())).ok()
    }

    /// Whether a token can still be handed out or used.
    pub fn is_usable(self) -> bool {
        !matches!(
            self,
            Health::Expired | Health::CannotRefresh | Health::ReauthRequired
        )
    }
}

/// The windows health is judged by.
#[derive(Debug, Clone)]
pub struct HealthPolicy {
    /// A user token is re-exchanged once it has less than this left.
    pub refresh_before: Duration,
    /// Warning stages in days, largest first (e.g. 14, 7, 1).
    pub warning_days: Vec<i64>,
}

impl HealthPolicy {
    pub fn new(refresh_before_days: i64, mut warning_days: Vec<i64>) -> Self {
        warning_days.sort_unstable_by(|a, b| b.cmp(a));
        Self {
            refresh_before: Duration::days(refresh_before_days),
            warning_days,
        }
    }
}

/// A staged warning: what lapses, and the stage (days) it is within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Warning {
    pub what: &'static str,
    pub stage_days: i64,
    pub at: DateTime<Utc>,
}

pub fn health(conn: &Connection, now: DateTime<Utc>, policy: &HealthPolicy) -> Health {
    if conn.reauth_required {
        return Health::ReauthRequired;
    }
    if conn.data_access_expires_at.is_some_and(|t| t <= now)
        || conn.refresh_token_expires_at.is_some_and(|t| t <= now)
    {
        return Health::CannotRefresh;
    }
    if conn.expires_at.is_some_and(|t| t <= now) {
        return Health::Expired;
    }
    let failing = conn.consecutive_failures > 0
        && conn
            .last_error
            .as_ref()
            .is_some_and(|e| matches!(e.class, ErrorClass::Transient | ErrorClass::RateLimited));
    if failing {
        return Health::Degraded;
    }
    let refreshable_soon = conn.kind == ConnectionKind::User
        && conn
            .expires_at
            .is_some_and(|t| t - now < policy.refresh_before);
    if refreshable_soon || conn.next_refresh_at.is_some_and(|t| t <= now) {
        return Health::NeedsRefresh;
    }
    if warning(conn, now, policy).is_some() {
        return Health::ExpiringSoon;
    }
    Health::Healthy
}

/// The most urgent staged warning, if the token or data access lapses within
/// a warning stage.
pub fn warning(conn: &Connection, now: DateTime<Utc>, policy: &HealthPolicy) -> Option<Warning> {
    let candidates = [
        ("token", conn.expires_at),
        ("data_access", conn.data_access_expires_at),
        ("refresh_token", conn.refresh_token_expires_at),
    ];
    candidates
        .into_iter()
        .filter_map(|(what, at)| {
            let at = at?;
            let left = at - now;
            if left <= Duration::zero() {
                return None;
            }
            // The smallest stage the remaining time falls within.
            let stage = policy
                .warning_days
                .iter()
                .rev()
                .find(|d| left <= Duration::days(**d))?;
            Some(Warning {
                what,
                stage_days: *stage,
                at,
            })
        })
        .min_by_key(|w| w.at)
}

/// What the webhook was last told about a connection.
pub fn alert_state(conn: &Connection, now: DateTime<Utc>, policy: &HealthPolicy) -> String {
    if conn.reauth_required {
        return "reauth_required".into();
    }
    match warning(conn, now, policy) {
        Some(w) => format!("expiry_warning:{}:{}", w.what, w.stage_days),
        None => "ok".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{EncryptedSecret, LastError, Provider, StoredSecrets};

    fn conn(kind: ConnectionKind) -> Connection {
        Connection::new(
            Provider::Facebook,
            kind,
            "1",
            "t",
            StoredSecrets {
                access_token: EncryptedSecret("x".into()),
                refresh_token: None,
            },
            Utc::now(),
        )
    }

    #[test]
    fn health_follows_the_facts_and_windows() {
        let now = Utc::now();
        let p = HealthPolicy::new(30, vec![1, 14, 7]);
        let mut c = conn(ConnectionKind::User);
        c.expires_at = Some(now + Duration::days(50));
        c.data_access_expires_at = Some(now + Duration::days(80));
        assert_eq!(health(&c, now, &p), Health::Healthy);
        c.expires_at = Some(now + Duration::days(20));
        assert_eq!(health(&c, now, &p), Health::NeedsRefresh);
        c.expires_at = Some(now - Duration::seconds(1));
        assert_eq!(health(&c, now, &p), Health::Expired);
        c.data_access_expires_at = Some(now - Duration::seconds(1));
        assert_eq!(health(&c, now, &p), Health::CannotRefresh);
        c.reauth_required = true;
        assert_eq!(health(&c, now, &p), Health::ReauthRequired);

        let mut page = conn(ConnectionKind::Page);
        page.data_access_expires_at = Some(now + Duration::days(6));
        assert_eq!(health(&page, now, &p), Health::ExpiringSoon);
        let w = warning(&page, now, &p).unwrap();
        assert_eq!((w.what, w.stage_days), ("data_access", 7));
        assert_eq!(alert_state(&page, now, &p), "expiry_warning:data_access:7");
        page.consecutive_failures = 1;
        page.last_error = Some(LastError {
            class: ErrorClass::Transient,
            code: Some(2),
            subcode: None,
            message: "x".into(),
            at: now,
        });
        assert_eq!(health(&page, now, &p), Health::Degraded);
    }
}
