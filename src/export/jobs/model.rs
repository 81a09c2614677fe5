//! The seams of export jobs: the insights that feed them, and the store
//! that keeps them (the job record itself is in `domain`).

use std::path::PathBuf;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::BoxStream;

use crate::export::{ExportError, Row};
use crate::store::ExportJobStore;

/// Where an export service keeps its jobs and spools its rows.
#[derive(Clone)]
pub struct ExportsStorage {
    pub jobs: Arc<dyn ExportJobStore>,
    /// A local folder for the spool files of running jobs (the embedded
    /// store's folder, `<data_dir>/exports`, whose open removes leftovers).
    pub spool_dir: PathBuf,
}

/// An export's rows, and the connections whose tokens produced them (kept
/// with the job, so that erasing a connection's data finds its exports).
pub struct SourcedRows {
    pub connection_ids: Vec<String>,
    pub rows: BoxStream<'static, Result<Row, ExportError>>,
}

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
    ) -> BoxFuture<'static, Result<SourcedRows, ExportError>>;

    /// Columns that lead the CSV for this kind (e.g. date, page_id,
    /// post_id); may be empty.
    fn leading_columns(&self, kind: &str) -> Vec<String>;
}
