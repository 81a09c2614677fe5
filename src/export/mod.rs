//! Exports of insights rows: flattening nested rows into columns, CSV
//! spooling and streaming, and async export jobs kept in the job store.

pub mod csv;
mod error;
pub mod flatten;
pub mod jobs;
mod spool;

pub use self::csv::{Spooled, spool};
pub use error::ExportError;
pub use flatten::flatten;
pub use jobs::{ExportJob, ExportStatus, Exports, RowSource};

/// One insights row, as the insights endpoints return it in JSON.
pub type Row = serde_json::Map<String, serde_json::Value>;
