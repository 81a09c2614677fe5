//! What callers and webhooks are shown of a connection: its facts and its
//! health, never a secret.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::connection::Connection;
use super::error_class::LastError;
use super::health::Health;
use super::provider::{ConnectionKind, Provider};

// An `Option` marked `required` is always present (`null` when unset).
/// A connection's facts (`TokenManager::facts`): never a token value.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConnectionFacts {
    pub id: String,
    pub provider: Provider,
    pub kind: ConnectionKind,
    /// Facebook user or page id, TikTok open_id, Google customer id.
    pub external_id: String,
    #[schema(required = true)]
    pub team_id: Option<String>,
    pub label: String,
    pub health: Health,
    /// `null`: the token does not expire.
    #[schema(required = true)]
    pub expires_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub refresh_token_expires_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub data_access_expires_at: Option<DateTime<Utc>>,
    pub scopes: Vec<String>,
    #[schema(required = true)]
    pub last_refreshed_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub next_refresh_at: Option<DateTime<Utc>>,
    pub consecutive_failures: u32,
    #[schema(required = true)]
    pub last_error: Option<LastError>,
    pub reauth_required: bool,
    /// For a page connection: the user connection it was derived from.
    #[schema(required = true)]
    pub parent_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Increments on every write of this record.
    pub version: u64,
}

impl ConnectionFacts {
    /// The facts of `conn`, with `health` as computed now.
    pub fn of(conn: &Connection, health: Health) -> Self {
        Self {
            id: conn.id.clone(),
            provider: conn.provider,
            kind: conn.kind,
            external_id: conn.external_id.clone(),
            team_id: conn.team_id.clone(),
            label: conn.label.clone(),
            health,
            expires_at: conn.expires_at,
            refresh_token_expires_at: conn.refresh_token_expires_at,
            data_access_expires_at: conn.data_access_expires_at,
            scopes: conn.scopes.clone(),
            last_refreshed_at: conn.last_refreshed_at,
            next_refresh_at: conn.next_refresh_at,
            consecutive_failures: conn.consecutive_failures,
            last_error: conn.last_error.clone(),
            reauth_required: conn.reauth_required,
            parent_id: conn.parent_id.clone(),
            created_at: conn.created_at,
            updated_at: conn.updated_at,
            version: conn.version,
        }
    }
}
