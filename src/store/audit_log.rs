//! The audit trail of token hand-outs, and its file implementation: JSON
//! lines in `<data_dir>/audit.log`. A record is durable (written and
//! fsynced) before `record` returns, so a token is never handed out without
//! its line on disk.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::audit::{AuditEntry, AuditError};

pub const AUDIT_FILE_NAME: &str = "audit.log";

/// Where audit records go; `record` returns once the entry is durable.
#[async_trait::async_trait]
pub trait AuditTrail: Send + Sync {
    async fn record(&self, entry: AuditEntry) -> Result<(), AuditError>;
}

/// The file implementation: JSON lines, appended and fsynced one at a time.
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
}

#[async_trait::async_trait]
impl AuditTrail for AuditLog {
    /// Appends one entry and fsyncs it (and logs it). Returns only once the
    /// line is on disk; an error means it may not be.
    async fn record(&self, entry: AuditEntry) -> Result<(), AuditError> {
        entry.log();
        let mut line = serde_json::to_vec(&entry).expect("entries serialize");
        line.push(b'\n');
        let _guard = self.lock.lock().await;
        let path = self.path.clone();
        let result = tokio::task::spawn_blocking(move || append_durably(&path, &line))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(format!("audit task failed: {e}"))));
        result.map_err(|source| {
            tracing::error!(error = %source, path = %self.path.display(), "audit log write failed");
            AuditError::File {
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
