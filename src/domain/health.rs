//! The health states of a connection. Computing them from a connection's
//! facts and a provider's windows is the token layer's job
//! (`tokens::health`); this is only the vocabulary.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Health of a connection, computed from its facts (never stored).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[schema(description = "How usable a connection is now.")]
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
