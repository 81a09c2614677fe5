//! How the TikTok endpoints show an integration: a connection's facts plus
//! its `token_status` in the seed's wording, and the envelopes around it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{Connection, ConnectionFacts, Health};
use crate::tokens::TokenManager;

/// The seed's token status words.
#[derive(Serialize, ToSchema)]
pub enum TokenStatusLabel {
    Healthy,
    #[serde(rename = "Expiring Soon")]
    ExpiringSoon,
    #[serde(rename = "Needs Refresh")]
    NeedsRefresh,
    Degraded,
    Expired,
    #[serde(rename = "Cannot Refresh")]
    CannotRefresh,
    #[serde(rename = "Reauth Required")]
    ReauthRequired,
}

impl From<Health> for TokenStatusLabel {
    fn from(h: Health) -> Self {
        match h {
            Health::Healthy => Self::Healthy,
            Health::ExpiringSoon => Self::ExpiringSoon,
            Health::NeedsRefresh => Self::NeedsRefresh,
            Health::Degraded => Self::Degraded,
            Health::Expired => Self::Expired,
            Health::CannotRefresh => Self::CannotRefresh,
            Health::ReauthRequired => Self::ReauthRequired,
        }
    }
}

/// A TikTok Shop integration's token status, in the seed's wording.
#[derive(Serialize, ToSchema)]
pub struct TokenStatus {
    pub status: TokenStatusLabel,
    pub is_access_token_expired: bool,
    pub is_refresh_token_expired: bool,
    pub needs_refresh: bool,
    pub can_refresh: bool,
    #[schema(required = true)]
    pub access_token_expires_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub refresh_token_expires_at: Option<DateTime<Utc>>,
}

/// A TikTok Shop connection's facts plus its `token_status`.
#[derive(Serialize, ToSchema)]
pub struct Integration {
    #[serde(flatten)]
    pub facts: ConnectionFacts,
    pub token_status: TokenStatus,
}

/// `{"integration": ...}`.
#[derive(Serialize, ToSchema)]
pub struct IntegrationEnvelope {
    pub integration: Integration,
}

#[derive(Serialize, ToSchema)]
pub struct IntegrationList {
    pub count: u64,
    pub integrations: Vec<Integration>,
}

#[derive(Serialize, ToSchema)]
pub struct IntegrationRefresh {
    pub refreshed: bool,
    pub integration: Integration,
}

/// An integration with its token status, as the seed's `token_status`.
pub fn integration(tokens: &TokenManager, c: &Connection) -> Integration {
    let now = tokens.now();
    let health = tokens.health(c);
    Integration {
        facts: tokens.facts(c),
        token_status: TokenStatus {
            status: health.into(),
            is_access_token_expired: c.expires_at.is_some_and(|t| t <= now),
            is_refresh_token_expired: c.refresh_token_expires_at.is_some_and(|t| t <= now),
            needs_refresh: health == Health::NeedsRefresh,
            can_refresh: !matches!(health, Health::CannotRefresh | Health::ReauthRequired)
                && c.secrets.refresh_token.is_some(),
            access_token_expires_at: c.expires_at,
            refresh_token_expires_at: c.refresh_token_expires_at,
        },
    }
}

pub fn envelope(tokens: &TokenManager, c: &Connection) -> IntegrationEnvelope {
    IntegrationEnvelope {
        integration: integration(tokens, c),
    }
}
