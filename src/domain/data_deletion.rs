//! A platform's request to erase a user's data (Meta's Data Deletion
//! callback), as kept for its status page: by confirmation code, with what
//! was erased. The user's platform id is not kept: the record outlives
//! the data it is about.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::provider::Provider;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeletionStatus {
    /// Recorded; the erasure has not finished (it is redone when the
    /// platform sends the request again).
    Received,
    /// Everything held about the user is erased.
    Completed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionRequest {
    /// What the user is shown, and the status page's address names.
    pub code: String,
    pub provider: Provider,
    pub received_at: DateTime<Utc>,
    pub status: DeletionStatus,
    pub completed_at: Option<DateTime<Utc>>,
    /// The connections deleted (the user's and those derived from it):
    /// what the cache and the exports are erased by, again if the request
    /// is sent again before it completed.
    pub connection_ids: Vec<String>,
    /// Cached insights answers removed.
    pub cached_answers: usize,
    /// Exports (jobs and files) deleted.
    pub exports: usize,
}

impl DeletionRequest {
    pub fn received(code: String, provider: Provider, at: DateTime<Utc>) -> Self {
        Self {
            code,
            provider,
            received_at: at,
            status: DeletionStatus::Received,
            completed_at: None,
            connection_ids: Vec::new(),
            cached_answers: 0,
            exports: 0,
        }
    }
}
