//! Errors of the token store.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is corrupt: {reason}; the file was left untouched (see `tokenkeeper store restore`)"
    )]
    Corrupt { path: PathBuf, reason: String },
    /// A file of records beside the store (e.g. `jobs.json`) cannot be read.
    #[error("{path} is corrupt: {reason}; the file was left untouched")]
    CorruptRecord { path: PathBuf, reason: String },
    #[error(
        "{path} fails its checksum (expected {expected}, computed {actual}); the file was left untouched (see `tokenkeeper store restore`)"
    )]
    ChecksumMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error(
        "{path} is missing, but this folder held a store ({traces}); refusing to start with an empty store, whose writes would rotate the backups away: {remedy}"
    )]
    Missing {
        path: PathBuf,
        traces: String,
        remedy: String,
    },
    #[error(
        "{path} is a {kind}, not a store file; nothing was changed: `{restore}` moves it aside and restores the newest good backup"
    )]
    NotAFile {
        path: PathBuf,
        kind: &'static str,
        restore: String,
    },
    #[error(
        "{path} was written with key {stored}, but the configured key is {configured} and no previous key is {stored}: set the right TOKENKEEPER_ENCRYPTION_KEY (or add the old one to TOKENKEEPER_ENCRYPTION_PREVIOUS_KEYS); the file was left untouched"
    )]
    WrongKey {
        path: PathBuf,
        stored: String,
        configured: String,
    },
    #[error(
        "the database's secrets are sealed with key {stored}, which is neither the configured key ({configured}) nor in TOKENKEEPER_ENCRYPTION_PREVIOUS_KEYS: every instance needs the same keys; nothing was written"
    )]
    DatabaseKey { stored: String, configured: String },
    #[error("encryption key from {source_name}: {reason}")]
    Key { source_name: String, reason: String },
    #[error("the store in {dir} is locked by another process (pid {pid}); stop it first")]
    Locked { dir: PathBuf, pid: String },
    #[error("secret encryption: {0}")]
    Crypto(String),
    #[error(
        "a secret is sealed with key {kid}, which is neither TOKENKEEPER_ENCRYPTION_KEY nor in TOKENKEEPER_ENCRYPTION_PREVIOUS_KEYS: add that key as a previous key"
    )]
    UnknownKey { kid: String },
    /// A secret sealed for one connection sits in another's record.
    #[error(
        "connection {id}'s {field} was sealed for {sealed_for}: secrets were moved between records outside tokenkeeper, and it is not handed out"
    )]
    Misbound {
        id: String,
        field: &'static str,
        sealed_for: String,
    },
    /// A check of a whole store found these problems, one line each.
    #[error("{what} failed verification: {}", .problems.join("; "))]
    Unsound { what: String, problems: Vec<String> },
    /// A keyed checksum does not match: somebody without the key changed it.
    #[error("{what} was edited outside tokenkeeper (or damaged): {reason}; it was left untouched")]
    Tampered { what: String, reason: String },
    #[error("connection {0} not found")]
    NotFound(String),
    #[error("connection {id} is at version {current}, the update expected {expected}")]
    VersionConflict {
        id: String,
        expected: u64,
        current: u64,
    },
    #[error("connection {id} is leased to {holder} until {expires_at}")]
    Leased {
        id: String,
        holder: String,
        expires_at: chrono::DateTime<chrono::Utc>,
    },
    #[error(
        "connection {id} was leased again (fencing token {newest}) after the lease this write holds ({token})"
    )]
    StaleLease { id: String, token: u64, newest: u64 },
    /// A write of an export job by a run another runner has taken over.
    #[error("export job {0} was taken over by another run")]
    TakenOver(String),
    #[error("the store was opened read-only")]
    ReadOnly,
    /// The store does not take writes now; the text says why.
    #[error("{0}")]
    Unavailable(String),
    #[error("no usable backup: {0}")]
    NoBackup(String),
    #[error("the store is closed")]
    Closed,
    #[error("the store write failed: {0}")]
    WriteFailed(String),
    /// A PostgreSQL store's query failed; `operation` names what it was
    /// doing (never the database URL, whose password it may hold).
    #[error("database {operation}: {source}")]
    Database {
        operation: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// After a copy into the database, it does not hold exactly the
    /// records copied (other connections, or other versions of them).
    #[error(
        "the database does not hold exactly the copied store: {expected} connections copied, \
         {found} in the database, or their records differ; copy into an empty database"
    )]
    CopyMismatch { expected: usize, found: usize },
    #[error("database migration: {0}")]
    Migration(#[source] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// The error of a PostgreSQL store's `operation`; a closed pool is
    /// [`StoreError::Closed`], as for every other store.
    pub fn database(operation: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| match source {
            sqlx::Error::PoolClosed => StoreError::Closed,
            source => StoreError::Database { operation, source },
        }
    }

    pub fn io(path: &Path, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
