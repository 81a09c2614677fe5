//! What an export job is, and the seam to the insights that feed it.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use crate::export::{ExportError, Row};

/// Where export rows come from: the insights endpoints, called in-process.
pub trait RowSource: Send + Sync + 'static {
    /// Checks an export request before it is accepted (unknown kind, bad
    /// params → an `ExportError` naming the field).
    fn validate(&self, kind: &str, params: &serde_json::Value) -> Result<(), ExportError>;

    /// The rows for insights endpoint `kind` with `params` (the same
    /// parameters its HTTP endpoint takes, as JSON, lists as arrays).
    fn rows(
        &self,
        kind: &str,
        params: serde_json::Value,
    ) -> BoxFuture<'static, Result<BoxStream<'static, Result<Row, ExportError>>, ExportError>>;

    /// Columns that lead the CSV for this kind (e.g. date, page_id,
    /// post_id); may be empty.
    fn leading_columns(&self, kind: &str) -> Vec<String>;
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

/// One async export, as kept in `jobs.json` and shown by the API.
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
}
