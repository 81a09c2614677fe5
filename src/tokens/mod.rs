//! The token lifecycle: health, connect, refresh (single-flight, retried),
//! validation, sweeps, and the notifications they trigger.

mod facebook;
pub mod health;
mod manager;
pub mod retry;
pub mod single_flight;
pub mod sweep;

pub use health::{Health, HealthPolicy};
pub use manager::{ConnectionFilter, TokenManager, ValidToken};
pub use sweep::{RefreshRun, RunError, SweepFilter};

use crate::providers::UpstreamError;
use crate::store::StoreError;

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
    #[error("{0}")]
    NotConfigured(String),
    #[error("store: {0}")]
    Store(String),
}

impl From<StoreError> for TokenError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(id) => TokenError::NotFound(id),
            other => TokenError::Store(other.to_string()),
        }
    }
}
