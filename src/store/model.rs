//! The storage document: what the store file holds around the connections.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::Connection;

/// Everything in the store file, apart from the checksum envelope.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Document {
    /// Format of the document, for future migrations.
    pub format: u32,
    /// Id of the encryption key that wrote the secrets (and the document).
    pub key_id: String,
    /// Incremented on every file write.
    pub generation: u64,
    pub written_at: DateTime<Utc>,
    /// Connections by id, in a persistent map: a commit's copy shares every
    /// record and node it does not change, so it costs O(changes).
    pub connections: imbl::OrdMap<String, Arc<Connection>>,
}

pub const DOCUMENT_FORMAT: u32 = 1;

impl Document {
    pub fn empty(key_id: &str) -> Self {
        Self {
            format: DOCUMENT_FORMAT,
            key_id: key_id.to_string(),
            generation: 0,
            written_at: Utc::now(),
            connections: imbl::OrdMap::new(),
        }
    }
}
