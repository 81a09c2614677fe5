//! `jobs.json`: the record of every export job, replaced atomically on each
//! status change.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::model::ExportJob;
use crate::atomic_file::write_atomic;
use crate::export::ExportError;

pub(super) const FILE_NAME: &str = "jobs.json";
const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Ledger<J> {
    format: u32,
    jobs: J,
}

/// Reads the jobs; a missing file is an empty ledger.
pub(super) fn load(path: &Path) -> Result<Vec<ExportJob>, ExportError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ExportError::io(path, e)),
    };
    let corrupt = |reason: String| ExportError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let ledger: Ledger<Vec<ExportJob>> =
        serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    if ledger.format != FORMAT {
        return Err(corrupt(format!(
            "format {} is not supported (this build reads {FORMAT})",
            ledger.format
        )));
    }
    Ok(ledger.jobs)
}

/// Replaces the file with `jobs`.
pub(super) fn save(path: &Path, jobs: &[ExportJob]) -> Result<(), ExportError> {
    let bytes = serde_json::to_vec_pretty(&Ledger {
        format: FORMAT,
        jobs,
    })
    .map_err(|e| ExportError::io(path, std::io::Error::other(e)))?;
    write_atomic(path, &bytes).map_err(|e| ExportError::io(path, e))
}
