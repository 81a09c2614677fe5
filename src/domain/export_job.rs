//! An async export job: what was asked, where it is in its life, and when
//! it and its file go. A record kept by the store's `ExportJobStore`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportStatus {
    Queued,
    Running,
    Completed,
    Failed,
}

impl ExportStatus {
    /// Completed or failed: nothing more will happen to the job.
    pub fn is_finished(self) -> bool {
        matches!(self, ExportStatus::Completed | ExportStatus::Failed)
    }
}

/// One async export, as the store keeps it and the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportJob {
    pub id: String,
    /// The insights endpoint, e.g. `post_metrics`.
    pub kind: String,
    /// The endpoint's parameters as JSON.
    pub params: serde_json::Value,
    /// Always `csv` for now.
    pub format: String,
    pub status: ExportStatus,
    /// Rows produced so far (the final count once completed).
    pub rows_written: u64,
    /// The number of rows in the file, once completed.
    pub row_count: Option<u64>,
    /// Why the job failed.
    pub error: Option<String>,
    /// The id of the API key that asked for the export.
    pub owner: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// When the job and its file are removed (set when it finishes).
    pub expires_at: Option<DateTime<Utc>>,
    /// The name to download the file as, e.g. `post_metrics-1a2b3c4d.csv`.
    pub file_name: String,
    /// How many runs were started (a restart mid-run starts another).
    pub attempts: u32,
    /// The connections whose tokens the rows were read with (set when it
    /// completes): erasing one's data deletes the export.
    #[serde(default)]
    pub connection_ids: Vec<String>,
}
