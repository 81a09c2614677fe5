//! The JSON answers that handlers of several providers share: the
//! envelopes around a connection's facts (`domain::ConnectionFacts`), OAuth dialog URLs,
//! refresh outcomes and sweeps. Each type is both what the handler returns
//! and its schema in the OpenAPI document. An `Option` marked `required`
//! is always present (`null` when unset).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use utoipa::ToSchema;

use crate::domain::{Connection, ConnectionFacts};
use crate::tokens::{RefreshRun, TokenManager};

/// `{"connection": facts}`.
#[derive(Serialize, ToSchema)]
pub struct ConnectionEnvelope {
    pub connection: ConnectionFacts,
}

impl ConnectionEnvelope {
    pub fn of(tokens: &TokenManager, conn: &Connection) -> Self {
        Self {
            connection: tokens.facts(conn),
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
            connections: conns.iter().map(|c| tokens.facts(c)).collect(),
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
