//! Insights reads (sync and async reports, the cache) and export jobs.

use serde::Deserialize;

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

#[derive(Debug, Clone, Deserialize)]
pub struct ExportSettings {
    pub retention_hours: u64,
    pub concurrency: usize,
}
