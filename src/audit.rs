//! The audit record of token hand-outs: who got which connection's token,
//! when, and the outcome; never the token. Where records are kept is the
//! store's business (`store::AuditTrail`).

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub action: &'static str,
    pub key_id: String,
    pub connection_id: String,
    pub outcome: String,
}

/// An audit record that could not be made durable.
#[derive(Debug, thiserror::Error)]
#[error("audit log {path}: {source}")]
pub struct AuditError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}
