//! Insights reads (sync and async reports, the cache) and export jobs.

use serde::Deserialize;

use super::ConfigError;
use super::check::{DAY_SECS, check_fields, check_order};

#[derive(Debug, Clone, Deserialize)]
pub struct InsightsSettings {
    pub async_after_days: i64,
    pub async_poll_initial_ms: u64,
    pub async_poll_max_ms: u64,
    pub async_timeout_secs: u64,
    pub concurrency: usize,
    pub cache_ttl_secs: u64,
    pub max_months_back: u32,
}

impl InsightsSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_fields!("insights", self, {
            async_after_days: 0..=1200,
            async_poll_initial_ms: 1..=600_000,
            async_poll_max_ms: 1..=600_000,
        });
        check_order(
            ("insights.async_poll_initial_ms", self.async_poll_initial_ms),
            ("insights.async_poll_max_ms", self.async_poll_max_ms),
        )?;
        check_fields!("insights", self, {
            async_timeout_secs: 1..=DAY_SECS,
            concurrency: 1..=100,
            cache_ttl_secs: 0..=7 * DAY_SECS,
            // Meta keeps 37 months of ads insights.
            max_months_back: 1..=37,
        });
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ExportSettings {
    pub retention_hours: u64,
    pub concurrency: usize,
}

impl ExportSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_fields!("exports", self, {
            retention_hours: 1..=8760,
            concurrency: 1..=64,
        });
        Ok(())
    }
}
