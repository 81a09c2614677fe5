//! The token lifecycle: health, connect, refresh (single-flight, retried),
//! validation, sweeps, and the notifications they trigger.

mod facebook;
mod gauges;
pub mod health;
pub mod lifecycle;
mod listing;
mod manager;
pub mod need;
pub mod retry;
mod runs_file;
pub mod single_flight;
pub mod sweep;

pub use health::HealthPolicy;
pub use listing::ConnectionFilter;
pub use manager::{TokenManager, Upsert, ValidToken};
pub use need::Need;
pub use runs_file::path_in as runs_file_in;
pub use sweep::{Plan, RefreshRun, RunError, SweepFilter};

use crate::providers::UpstreamError;
use crate::store::StoreError;

/// Health windows for every provider, from configuration.
pub fn policies(
    settings: &crate::config::Settings,
) -> std::collections::HashMap<crate::domain::Provider, HealthPolicy> {
    use crate::domain::Provider;
    use chrono::Duration;
    use health::RenewRule;
    let warn = settings.facebook.warning_days.clone();
    [
        (
            Provider::Facebook,
            crate::providers::facebook::lifecycle::policy(&settings.facebook),
        ),
        (
            Provider::TiktokShop,
            HealthPolicy::new(
                RenewRule::RefreshToken,
                Duration::seconds(settings.tiktok.refresh_before_secs),
                Some(Duration::seconds(settings.tiktok.expiring_soon_secs)),
                warn.clone(),
            ),
        ),
        (
            Provider::Google,
            HealthPolicy::new(
                RenewRule::RefreshToken,
                Duration::seconds(settings.google.refresh_before_secs),
                None,
                warn,
            ),
        ),
    ]
    .into_iter()
    .collect()
}

/// What can go wrong getting, connecting or refreshing a token. `Clone`, so
/// one refresh's result can be shared by every caller of a single flight.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    #[error("connection {0} not found")]
    NotFound(String),
    #[error("connection {id} must be reconnected: {reason}")]
    ReauthRequired { id: String, reason: String },
    #[error("connection {id} cannot be refreshed: {reason}")]
    CannotRefresh { id: String, reason: String },
    #[error("upstream: {0}")]
    Upstream(#[from] UpstreamError),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// The platform refused a credential the caller handed in (an OAuth
    /// code, a token to connect): the input is at fault, not a stored
    /// connection. `field` names it.
    #[error("{field}: the platform refused it: {source}")]
    InputRejected {
        field: String,
        source: Box<UpstreamError>,
    },
    /// The connection belongs to another platform, or is of a kind the
    /// operation cannot use: its token is not decrypted, nothing is sent.
    #[error("connection {id} is {found}; this operation needs {}", describe_expected(*.expected_provider, .expected_kinds))]
    WrongConnection {
        field: String,
        id: String,
        found: String,
        expected_provider: Option<crate::domain::Provider>,
        expected_kinds: Vec<crate::domain::ConnectionKind>,
    },
    #[error("{0}")]
    NotConfigured(String),
    #[error("store: {0}")]
    Store(String),
}

fn describe_expected(
    provider: Option<crate::domain::Provider>,
    kinds: &[crate::domain::ConnectionKind],
) -> String {
    Need {
        field: "",
        provider,
        kinds,
        teams: None,
    }
    .wanted()
}

impl TokenError {
    /// For `map_err` on the one upstream call that consumes the caller's
    /// `field`: its failure is the caller's input being refused.
    pub fn rejected_input(field: &'static str) -> impl Fn(UpstreamError) -> TokenError {
        move |source| TokenError::InputRejected {
            field: field.to_string(),
            source: Box::new(source),
        }
    }
}

impl From<StoreError> for TokenError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(id) => TokenError::NotFound(id),
            other => TokenError::Store(other.to_string()),
        }
    }
}
