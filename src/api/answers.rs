//! The JSON answers that handlers of several providers share: a
//! connection's facts and the envelopes around them, OAuth dialog URLs,
//! refresh outcomes and sweeps. Each type is both what the handler returns
//! and its schema in the OpenAPI document. An `Option` marked `required`
//! is always present (`null` when unset).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use utoipa::ToSchema;

use super::schemas as s;
use crate::domain::{Connection, ConnectionKind, Health, LastError, Provider};
use crate::tokens::{RefreshRun, TokenManager};

/// A connection's facts (`TokenManager::facts`): never a token value.
#[derive(Serialize, ToSchema)]
pub struct ConnectionFacts {
    pub id: String,
    #[schema(value_type = s::ProviderSchema)]
    pub provider: Provider,
    #[schema(value_type = s::ConnectionKindSchema)]
    pub kind: ConnectionKind,
    /// Facebook user or page id, TikTok open_id, Google customer id.
    pub external_id: String,
    #[schema(required = true)]
    pub team_id: Option<String>,
    pub label: String,
    #[schema(value_type = s::HealthSchema)]
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
    #[schema(required = true, value_type = Option<s::LastErrorSchema>)]
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
    /// The facts of `conn`, with its health as the manager computes it now.
    pub fn of(tokens: &TokenManager, conn: &Connection) -> Self {
        Self {
            id: conn.id.clone(),
            provider: conn.provider,
            kind: conn.kind,
            external_id: conn.external_id.clone(),
            team_id: conn.team_id.clone(),
            label: conn.label.clone(),
            health: tokens.health(conn),
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

    /// The facts of each of `conns`, in order.
    pub fn all(tokens: &TokenManager, conns: &[Arc<Connection>]) -> Vec<Self> {
        conns.iter().map(|c| Self::of(tokens, c)).collect()
    }
}

/// `{"connection": facts}`.
#[derive(Serialize, ToSchema)]
pub struct ConnectionEnvelope {
    pub connection: ConnectionFacts,
}

impl ConnectionEnvelope {
    pub fn of(tokens: &TokenManager, conn: &Connection) -> Self {
        Self {
            connection: ConnectionFacts::of(tokens, conn),
        }
    }
}

/// Connections stored by a connect flow.
#[derive(Serialize, ToSchema)]
pub struct ConnectedResponse {
    pub connected: u64,
    pub connections: Vec<ConnectionFacts>,
}

/// A listing of connections.
#[derive(Serialize, ToSchema)]
pub struct ConnectionList {
    pub count: u64,
    pub connections: Vec<ConnectionFacts>,
}

impl ConnectionList {
    pub fn of(tokens: &TokenManager, conns: &[Arc<Connection>]) -> Self {
        Self {
            count: conns.len() as u64,
            connections: ConnectionFacts::all(tokens, conns),
        }
    }
}

/// An OAuth dialog URL with its signed, single-use state.
#[derive(Serialize, ToSchema)]
pub struct AuthUrlResponse {
    pub url: String,
    pub state: String,
    pub state_expires_at: DateTime<Utc>,
}

/// The outcome of a refresh.
#[derive(Serialize, ToSchema)]
pub struct RefreshResult {
    /// Whether a new token was obtained (false: not due, nothing changed).
    pub refreshed: bool,
    pub connection: ConnectionFacts,
}

/// `{"run": ...}`.
#[derive(Serialize, ToSchema)]
pub struct RunEnvelope {
    #[schema(value_type = s::RefreshRunSchema)]
    pub run: RefreshRun,
}

/// A sweep started without waiting (`wait=false`).
#[derive(Serialize, ToSchema)]
pub struct RunStarted {
    pub run_id: String,
    /// Always `running`.
    pub status: String,
}

/// A JSON object whose keys keep the order they were added in (a map type
/// would sort them, or need a dependency for insertion order).
pub struct ObjectOf<V>(pub Vec<(&'static str, V)>);

impl<V: Serialize> Serialize for ObjectOf<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}
