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

impl AuditEntry {
    /// The entry in the service log too, whichever trail keeps it.
    pub fn log(&self) {
        tracing::info!(target: "audit", action = self.action, key = %self.key_id,
            connection = %self.connection_id, outcome = %self.outcome, "audit");
    }
}

/// An audit record that could not be made durable.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("audit table: {0}")]
    Database(#[source] sqlx::Error),
}
