//! Health of a connection, computed from its stored facts and the configured
//! windows (never stored, so never stale), and the staged expiry warnings.

use crate::domain::{Connection, ConnectionKind, ErrorClass, Health};
use chrono::{DateTime, Duration, Utc};

/// Which connections of a provider can be renewed without the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenewRule {
    /// Facebook: a user token is re-exchanged while valid (no refresh token);
    /// once expired it cannot be.
    UserKind,
    /// TikTok Shop, Google: a refresh token renews the access token, even
    /// after it expired.
    RefreshToken,
}

/// The windows health is judged by, per provider.
#[derive(Debug, Clone)]
pub struct HealthPolicy {
    pub renew: RenewRule,
    /// A renewable token is refreshed once it has less than this left.
    pub refresh_before: Duration,
    /// An access token with less than this left counts as expiring soon.
    pub expiring_soon: Option<Duration>,
    /// Warning stages in days, largest first (e.g. 14, 7, 1).
    pub warning_days: Vec<i64>,
}

impl HealthPolicy {
    pub fn new(
        renew: RenewRule,
        refresh_before: Duration,
        expiring_soon: Option<Duration>,
        mut warning_days: Vec<i64>,
    ) -> Self {
        warning_days.sort_unstable_by(|a, b| b.cmp(a));
        Self {
            renew,
            refresh_before,
            expiring_soon,
            warning_days,
        }
    }

    pub fn renewable(&self, conn: &Connection) -> bool {
        match self.renew {
            RenewRule::UserKind => conn.kind == ConnectionKind::User,
            RenewRule::RefreshToken => conn.secrets.refresh_token.is_some(),
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
    let renewable = policy.renewable(conn);
    if conn.expires_at.is_some_and(|t| t <= now) {
        return if renewable && policy.renew == RenewRule::RefreshToken {
            Health::NeedsRefresh
        } else {
            Health::Expired
        };
    }
    let failing = conn.consecutive_failures > 0
        && conn
            .last_error
            .as_ref()
            .is_some_and(|e| matches!(e.class, ErrorClass::Transient | ErrorClass::RateLimited));
    if failing {
        return Health::Degraded;
    }
    let refreshable_soon = renewable
        && conn
            .expires_at
            .is_some_and(|t| t - now < policy.refresh_before);
    if refreshable_soon || conn.next_refresh_at.is_some_and(|t| t <= now) {
        return Health::NeedsRefresh;
    }
    let access_soon = policy
        .expiring_soon
        .is_some_and(|w| conn.expires_at.is_some_and(|t| t - now < w));
    if access_soon || warning(conn, now, policy).is_some() {
        return Health::ExpiringSoon;
    }
    Health::Healthy
}

/// The most urgent staged warning, if the token or data access lapses within
/// a warning stage.
pub fn warning(conn: &Connection, now: DateTime<Utc>, policy: &HealthPolicy) -> Option<Warning> {
    lapses(conn, policy)
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

/// The expiries only the user can renew: a token the service renews on its
/// own (with a refresh token) is not one; a Facebook user token is, since it
/// can be re-exchanged only while valid and never past its data access.
fn lapses(conn: &Connection, policy: &HealthPolicy) -> [(&'static str, Option<DateTime<Utc>>); 3] {
    let token = if policy.renewable(conn) && policy.renew == RenewRule::RefreshToken {
        None
    } else {
        conn.expires_at
    };
    [
        ("token", token),
        ("data_access", conn.data_access_expires_at),
        ("refresh_token", conn.refresh_token_expires_at),
    ]
}

/// When the connection stops working unless its user acts: `now` for one
/// already flagged or lapsed (it needs the user today), else the soonest
/// expiry only the user can renew; `None` when nothing lapses on a date.
pub fn lapse_at(
    conn: &Connection,
    now: DateTime<Utc>,
    policy: &HealthPolicy,
) -> Option<DateTime<Utc>> {
    if !health(conn, now, policy).is_usable() {
        return Some(now);
    }
    lapses(conn, policy)
        .into_iter()
        .filter_map(|(_, at)| at)
        .min()
        .map(|at| at.max(now))
}

/// What the webhook was last told about a connection.
pub fn alert_state(conn: &Connection, now: DateTime<Utc>, policy: &HealthPolicy) -> String {
    if conn.reauth_required {
        return "reauth_required".into();
    }
    // A refresh that failed after its retries, for a reason of its own: a
    // throttled app is paused and tried again, not each connection's alarm.
    if conn
        .last_error
        .as_ref()
        .is_some_and(|e| e.class != ErrorClass::RateLimited)
    {
        return "refresh_failed".into();
    }
    match warning(conn, now, policy) {
        Some(w) => format!("expiry_warning:{}:{}", w.what, w.stage_days),
        None => "ok".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EncryptedSecret, LastError, Provider, StoredSecrets};

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
        let p = HealthPolicy::new(
            RenewRule::UserKind,
            Duration::days(30),
            None,
            vec![1, 14, 7],
        );
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

#[cfg(test)]
mod refresh_token_tests {
    use super::*;
    use crate::domain::{EncryptedSecret, Provider, StoredSecrets};

    /// The TikTok Shop seed's windows: refresh within 5 minutes, expiring
    /// soon within 30.
    #[test]
    fn refresh_token_providers_follow_the_seed_windows() {
        let now = Utc::now();
        let p = HealthPolicy::new(
            RenewRule::RefreshToken,
            Duration::minutes(5),
            Some(Duration::minutes(30)),
            vec![14, 7, 1],
        );
        let mut c = Connection::new(
            Provider::TiktokShop,
            ConnectionKind::Shop,
            "o",
            "s",
            StoredSecrets {
                access_token: EncryptedSecret("a".into()),
                refresh_token: Some(EncryptedSecret("r".into())),
            },
            now,
        );
        c.refresh_token_expires_at = Some(now + Duration::days(300));
        c.expires_at = Some(now + Duration::minutes(4));
        assert_eq!(health(&c, now, &p), Health::NeedsRefresh);
        c.expires_at = Some(now + Duration::minutes(20));
        assert_eq!(health(&c, now, &p), Health::ExpiringSoon);
        c.expires_at = Some(now + Duration::days(6));
        assert_eq!(health(&c, now, &p), Health::Healthy);
        c.expires_at = Some(now - Duration::minutes(1));
        assert_eq!(
            health(&c, now, &p),
            Health::NeedsRefresh,
            "a refresh token renews an expired access token"
        );
        c.refresh_token_expires_at = Some(now - Duration::seconds(1));
        assert_eq!(health(&c, now, &p), Health::CannotRefresh);
    }

    #[test]
    fn a_lapse_is_what_only_the_user_can_renew() {
        let now = Utc::now();
        let p = HealthPolicy::new(
            RenewRule::RefreshToken,
            Duration::minutes(5),
            None,
            vec![14, 7, 1],
        );
        let mut c = Connection::new(
            Provider::Google,
            ConnectionKind::Ads,
            "c",
            "g",
            StoredSecrets {
                access_token: EncryptedSecret("a".into()),
                refresh_token: Some(EncryptedSecret("r".into())),
            },
            now,
        );
        c.expires_at = Some(now + Duration::minutes(59));
        assert_eq!(lapse_at(&c, now, &p), None, "an hourly token renews itself");
        c.refresh_token_expires_at = Some(now + Duration::days(365));
        assert_eq!(lapse_at(&c, now, &p), c.refresh_token_expires_at);
        c.reauth_required = true;
        assert_eq!(
            lapse_at(&c, now, &p),
            Some(now),
            "flagged: the user must act now"
        );
    }
}
