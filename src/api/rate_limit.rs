//! Rate limits, applied after authentication (see `auth::Gate`).
//!
//! - Each key has its own bucket (tower-governor, keyed by the id of the key
//!   the request authenticated as, so there are never more buckets than
//!   configured keys).
//! - Failed authentications (no key, an unknown key) are counted per client
//!   address (IPv6 by /64, so one host cannot rotate through its prefix) and
//!   over all clients. No bucket is made for a presented key, so random keys
//!   cost no memory; the per-address table is pruned and capped.
//!
//! Over a limit: 429 with `Retry-After`, in our error envelope.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::response::IntoResponse;
use governor::clock::{Clock, DefaultClock, QuantaInstant};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, NotUntil, Quota, RateLimiter};
use tower_governor::GovernorError;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::KeyExtractor;

use super::auth::Caller;
use super::error::ApiError;
use crate::config::ApiSettings;

/// How often the per-address table drops addresses whose bucket is full again.
const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// Keys a request by the id of the key it authenticated as (set by
/// `auth::authenticate`, which runs before this layer).
#[derive(Debug, Clone, Copy)]
pub struct AuthenticatedKey;

impl KeyExtractor for AuthenticatedKey {
    type Key = String;

    fn extract<T>(&self, req: &axum::http::Request<T>) -> Result<Self::Key, GovernorError> {
        req.extensions()
            .get::<Caller>()
            .map(|c| c.key_id.clone())
            .ok_or(GovernorError::UnableToExtractKey)
    }
}

pub type PerKeyLayer = tower_governor::GovernorLayer<
    AuthenticatedKey,
    governor::middleware::NoOpMiddleware<QuantaInstant>,
    axum::body::Body,
>;

/// The per-key limit: `api.rate_limit_per_second` with `api.rate_limit_burst`.
pub fn per_key(settings: &ApiSettings) -> PerKeyLayer {
    let config = GovernorConfigBuilder::default()
        .key_extractor(AuthenticatedKey)
        .period(Duration::from_nanos(
            (1_000_000_000 / settings.rate_limit_per_second).max(1),
        ))
        .burst_size(settings.rate_limit_burst)
        .finish()
        .expect("rate and burst are validated at load");
    tower_governor::GovernorLayer::new(config).error_handler(|e| match e {
        GovernorError::TooManyRequests { wait_time, .. } => ApiError::RateLimited {
            retry_after_secs: wait_time.max(1),
        }
        .into_response(),
        other => ApiError::Internal(format!("rate limiter: {other}")).into_response(),
    })
}

/// The limits on failed authentication.
pub struct Limits {
    failed_per_client: DefaultKeyedRateLimiter<IpAddr>,
    failed_overall: DefaultDirectRateLimiter,
    max_clients: usize,
    last_prune: Mutex<Instant>,
    clock: DefaultClock,
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

impl Limits {
    /// Rates are validated at load.
    pub fn new(settings: &ApiSettings) -> Self {
        Self {
            failed_per_client: RateLimiter::keyed(Quota::per_minute(nonzero(
                settings.failed_auth_per_client_per_minute,
            ))),
            failed_overall: RateLimiter::direct(Quota::per_second(nonzero(
                settings.failed_auth_per_second,
            ))),
            max_clients: settings.failed_auth_max_clients,
            last_prune: Mutex::new(Instant::now()),
            clock: DefaultClock::default(),
        }
    }

    /// A failed authentication from `client` (unknown when the connection's
    /// address is not available).
    pub fn check_failure(&self, client: Option<IpAddr>) -> Result<(), ApiError> {
        if let Some(ip) = client {
            self.prune();
            // A full table fails closed: only failed authentications wait.
            if self.failed_per_client.len() >= self.max_clients {
                return Err(ApiError::RateLimited {
                    retry_after_secs: PRUNE_EVERY.as_secs().max(1),
                });
            }
            self.failed_per_client
                .check_key(&client_key(ip))
                .map_err(|e| self.limited(&e))?;
        }
        self.failed_overall.check().map_err(|e| self.limited(&e))
    }

    /// Drops addresses whose bucket is full again, at most once per
    /// [`PRUNE_EVERY`], so the table holds only recent offenders.
    fn prune(&self) {
        let Ok(mut last) = self.last_prune.try_lock() else {
            return;
        };
        if last.elapsed() >= PRUNE_EVERY {
            *last = Instant::now();
            self.failed_per_client.retain_recent();
            self.failed_per_client.shrink_to_fit();
        }
    }

    fn limited(&self, not_until: &NotUntil<QuantaInstant>) -> ApiError {
        let wait = not_until.wait_time_from(self.clock.now());
        ApiError::RateLimited {
            retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
        }
    }
}

/// The address a client is counted under: IPv4 as is (also when mapped into
/// IPv6), IPv6 by its /64 network.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(per_client: u32, overall: u32, max_clients: usize) -> ApiSettings {
        ApiSettings {
            rate_limit_per_second: 1,
            rate_limit_burst: 2,
            failed_auth_per_client_per_minute: per_client,
            failed_auth_per_second: overall,
            failed_auth_max_clients: max_clients,
            keys: Vec::new(),
        }
    }

    #[test]
    fn failures_are_limited_per_client_address_and_an_ipv6_host_cannot_rotate_its_prefix() {
        let limits = Limits::new(&settings(2, 1000, 100));
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert!(limits.check_failure(Some(a)).is_ok());
        assert!(limits.check_failure(Some(b)).is_ok());
        assert!(limits.check_failure(Some(a)).is_err(), "same /64");
        let other: IpAddr = "192.0.2.7".parse().unwrap();
        assert!(limits.check_failure(Some(other)).is_ok());
        assert_eq!(limits.failed_per_client.len(), 2);
    }

    #[test]
    fn failures_are_limited_overall_across_addresses() {
        let limits = Limits::new(&settings(1000, 3, 100));
        let results: Vec<bool> = (1..=5u8)
            .map(|i| {
                limits
                    .check_failure(Some(IpAddr::from([10, 0, 0, i])))
                    .is_ok()
            })
            .collect();
        assert_eq!(results, [true, true, true, false, false]);
    }

    #[test]
    fn a_full_address_table_answers_429_instead_of_growing() {
        let limits = Limits::new(&settings(1000, 1000, 3));
        for i in 1..=3u8 {
            assert!(
                limits
                    .check_failure(Some(IpAddr::from([10, 0, 0, i])))
                    .is_ok()
            );
        }
        let e = limits
            .check_failure(Some(IpAddr::from([10, 0, 0, 4])))
            .unwrap_err();
        assert!(matches!(e, ApiError::RateLimited { .. }));
        assert_eq!(limits.failed_per_client.len(), 3);
    }
}
