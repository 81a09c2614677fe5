//! Which backend keeps the tokens, and how: the JSON files (the default) or
//! PostgreSQL, whose connection string comes from the environment only.

use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;

/// Where the connections live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// `tokens.json` and its journal in `data_dir`: one instance.
    Json,
    /// A PostgreSQL database (`TOKENKEEPER_DATABASE_URL`): any number.
    Postgres,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PostgresSettings {
    /// Connections in each instance's pool.
    pub max_connections: u32,
    /// How long a query waits for a pooled connection before failing.
    pub acquire_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StoreSettings {
    pub backend: StoreBackend,
    pub postgres: PostgresSettings,
    pub data_dir: PathBuf,
    pub backup_count: usize,
    pub backup_interval_secs: u64,
    pub commit_window_ms: u64,
    pub journal_max_mib: u64,
}

impl StoreSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::new("store.data_dir", "must not be empty"));
        }
        Ok(())
    }
}
