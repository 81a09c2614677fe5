//! The audit log of token hand-outs: who got which connection's token, when,
//! and the outcome. JSON lines in `<data_dir>/audit.log`; never the token.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub action: &'static str,
    pub key_id: String,
    pub connection_id: String,
    pub outcome: String,
}

pub struct AuditLog {
    path: PathBuf,
    lock: Mutex<()>,
}

impl AuditLog {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join("audit.log"),
            lock: Mutex::new(()),
        }
    }

    /// Appends one entry (and logs it). A failure to write is logged, not
    /// returned: the caller's request already happened.
    pub async fn record(&self, entry: AuditEntry) {
        tracing::info!(target: "audit", action = entry.action, key = %entry.key_id,
            connection = %entry.connection_id, outcome = %entry.outcome, "audit");
        let mut line = serde_json::to_vec(&entry).expect("entries serialize");
        line.push(b'\n');
        let _guard = self.lock.lock().await;
        let result = async {
            let mut file = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .await?;
            file.write_all(&line).await?;
            file.flush().await
        }
        .await;
        if let Err(e) = result {
            tracing::error!(error = %e, path = %self.path.display(), "audit log write failed");
        }
    }
}
