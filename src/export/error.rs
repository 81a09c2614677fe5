//! Errors of the export module.

use std::path::{Path, PathBuf};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// No insights endpoint has this name.
    #[error("unknown export kind {kind:?}")]
    UnknownKind { kind: String },
    /// A caller's mistake in the request; `field` names the parameter.
    #[error("{field}: {message}")]
    InvalidParams { field: String, message: String },
    /// The row source (insights, upstream platform) failed.
    #[error("{0}")]
    Source(String),
    /// No export job has this id.
    #[error("export {0} not found")]
    NotFound(String),
    /// The job store failed (its text says how).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The export service was shut down.
    #[error("the export service is shut down")]
    Closed,
}

impl ExportError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ExportError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ExportError::InvalidParams {
            field: field.to_string(),
            message: message.into(),
        }
    }
}
