//! Where and how the token store keeps its files.

use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Clone, Deserialize)]
pub struct StoreSettings {
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
