//! The audit log of token hand-outs: who got which connection's token, when,
//! and the outcome. JSON lines in `<data_dir>/audit.log`; never the token.
//! A record is durable (written and fsynced) before `record` returns, so a
//! token is never handed out without its line on disk.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::Mutex;

pub const AUDIT_FILE_NAME: &str = "audit.log";

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

pub struct AuditLog {
    path: Arc<PathBuf>,
    /// One append at a time, so lines never interleave.
    lock: Mutex<()>,
}

impl AuditLog {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            path: Arc::new(data_dir.join(AUDIT_FILE_NAME)),
            lock: Mutex::new(()),
        }
    }

    /// Appends one entry and fsyncs it (and logs it). Returns only once the
    /// line is on disk; an error means it may not be.
    pub async fn record(&self, entry: AuditEntry) -> Result<(), AuditError> {
        tracing::info!(target: "audit", action = entry.action, key = %entry.key_id,
            connection = %entry.connection_id, outcome = %entry.outcome, "audit");
        let mut line = serde_json::to_vec(&entry).expect("entries serialize");
        line.push(b'\n');
        let _guard = self.lock.lock().await;
        let path = self.path.clone();
        let result = tokio::task::spawn_blocking(move || append_durably(&path, &line))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(format!("audit task failed: {e}"))));
        result.map_err(|source| {
            tracing::error!(error = %source, path = %self.path.display(), "audit log write failed");
            AuditError {
                path: self.path.to_path_buf(),
                source,
            }
        })
    }
}

/// Appends `line` and syncs it; a file created here also gets its folder
/// synced, or the file itself could vanish in a crash.
fn append_durably(path: &Path, line: &[u8]) -> std::io::Result<()> {
    let created = !path.exists();
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(line)?;
    file.sync_data()?;
    if created && let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}
