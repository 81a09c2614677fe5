//! Storage: the [`ConnectionStore`] trait every caller goes through, and its
//! implementations: the encrypted JSON file store (one file of connections
//! whose secrets are JWE strings, written atomically with group commit,
//! locked against a second writer, checksummed and backed up), and the
//! PostgreSQL store that several instances share.

mod audit_log;
pub mod backup;
pub mod crypto;
mod deletions;
pub mod error;
mod export_jobs;
pub mod file;
pub mod integrity;
pub mod journal;
mod json_file;
mod leases;
mod ledger;
pub mod lock;
pub mod model;
mod nonces;
mod outbox;
pub mod postgres;
pub mod presence;
pub mod probe;
pub mod rotation;
mod runs;
pub mod secret_check;
mod secrets;
pub mod storage;
mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use audit_log::{AUDIT_FILE_NAME, AuditLog, AuditTrail};
pub use crypto::Cipher;
pub use deletions::{DELETIONS_FILE_NAME, DeletionStore, DeletionsFile};
pub use error::StoreError;
pub use export_jobs::{ExportFiles, ExportJobStore, FileReader, JOBS_FILE_NAME, RenderFile};
pub use json_file::JsonFileStore;
pub use model::Document;
pub use nonces::{MemoryNonces, Nonce, NonceError, NonceStore};
pub use outbox::{DeliveryFilter, OUTBOX_FILE_NAME, OutboxFile, OutboxStore};
pub use postgres::PgConnectionStore;
pub use presence::Presence;
pub use runs::{RUNS_FILE_NAME, RunStore, RunsFile};
pub use secrets::SecretBox;
pub use storage::{
    ConnectionStore, Edit, FencingToken, Lease, ListFilter, StoreStats, StoreSummary, Write,
    WriteGuard,
};

use crate::config::StoreSettings;

pub const STORE_FILE_NAME: &str = "tokens.json";

/// Where the store lives and how it writes.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub data_dir: PathBuf,
    pub backup_count: usize,
    pub backup_interval: Duration,
    pub commit_window: Duration,
    /// Compact the journal once it is this long (0: only at twice the
    /// snapshot's length).
    pub journal_max_bytes: u64,
}

impl From<&StoreSettings> for StoreOptions {
    fn from(s: &StoreSettings) -> Self {
        Self {
            data_dir: s.data_dir.clone(),
            backup_count: s.backup_count,
            backup_interval: Duration::from_secs(s.backup_interval_secs),
            commit_window: Duration::from_millis(s.commit_window_ms),
            journal_max_bytes: s.journal_max_mib * 1024 * 1024,
        }
    }
}

impl StoreOptions {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            backup_count: 5,
            backup_interval: Duration::from_secs(3600),
            commit_window: Duration::from_millis(2),
            journal_max_bytes: 0,
        }
    }

    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join(STORE_FILE_NAME)
    }
}

/// Verifies the store in `data_dir` without opening it for writing.
pub fn verify(data_dir: &Path, cipher: &Cipher) -> Result<backup::VerifyReport, StoreError> {
    let path = data_dir.join(STORE_FILE_NAME);
    if presence::check(data_dir)? == Presence::Fresh {
        return Err(StoreError::Corrupt {
            path,
            reason: "the file does not exist".into(),
        });
    }
    backup::verify_file(&path, cipher).map(|(_, report)| report)
}

/// Restores the store in `data_dir` from a backup (newest good one unless
/// `from` is given). Takes the store lock, so the service must be stopped.
pub fn restore(
    data_dir: &Path,
    from: Option<&Path>,
    cipher: &Cipher,
) -> Result<(PathBuf, backup::VerifyReport), StoreError> {
    let _lock = lock::StoreLock::acquire(data_dir)?;
    backup::restore(&data_dir.join(STORE_FILE_NAME), data_dir, from, cipher)
}
