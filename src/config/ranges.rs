//! Every numeric key against its allowed range, in one table, so that no
//! value can overflow or divide by zero further in (`rate_limit_per_second`
//! feeds a division, counts size pools and buffers, durations become timers).
//! A new numeric key gets its line here; a unit test walks
//! `config/default.toml` and fails for any numeric key left out. The rules
//! that are more than a range live with their section.

use super::check::{DAY_SECS, HOUR_MS, check_fields, check_order, check_range};
use super::{ConfigError, Settings};

impl Settings {
    pub(super) fn check_ranges(&self) -> Result<(), ConfigError> {
        check_fields!("server", self.server, {
            shutdown_timeout_secs: 0..=3600,
            header_read_timeout_secs: 1..=3600,
            body_read_timeout_secs: 1..=3600,
            idle_timeout_secs: 1..=3600,
            request_timeout_secs: 1..=86_400,
            max_connections: 1..=1_000_000,
        });
        check_fields!("store", self.store, {
            backup_count: 1..=1000,
            backup_interval_secs: 0..=365 * DAY_SECS,
            // A longer window delays every acknowledgement.
            commit_window_ms: 0..=1000,
            journal_max_mib: 0..=1_048_576,
        });
        check_fields!("store.postgres", self.store.postgres, {
            max_connections: 1..=1000,
            acquire_timeout_secs: 1..=600,
        });
        check_fields!("facebook", self.facebook, {
            request_timeout_secs: 1..=600,
            page_limit: 1..=1000,
            usage_slow_pct: 0.0..=100.0,
            usage_pause_pct: 0.0..=100.0,
        });
        check_order(
            ("facebook.usage_slow_pct", self.facebook.usage_slow_pct),
            ("facebook.usage_pause_pct", self.facebook.usage_pause_pct),
        )?;
        check_fields!("facebook", self.facebook, {
            usage_pause_secs: 0..=3600,
            // Long-lived user tokens last about 60 days.
            refresh_before_days: 0..=60,
        });
        for days in &self.facebook.warning_days {
            check_range("facebook.warning_days", *days, 0..=60)?;
        }
        check_fields!("refresh", self.refresh, {
            jitter_secs: 0..=DAY_SECS,
            concurrency: 1..=1000,
            max_attempts: 1..=100,
            base_delay_ms: 0..=HOUR_MS,
            max_delay_ms: 0..=HOUR_MS,
        });
        check_order(
            ("refresh.base_delay_ms", self.refresh.base_delay_ms),
            ("refresh.max_delay_ms", self.refresh.max_delay_ms),
        )?;
        check_fields!("refresh", self.refresh, {
            max_retry_wait_secs: 0..=3600,
            runs_kept: 0..=10_000,
            lease_secs: 1..=DAY_SECS,
        });
        check_fields!("auth", self.auth, { state_ttl_secs: 1..=86_400 });
        // 10^6 per second keeps the limiter's period (10^9 / rate ns) above zero.
        check_fields!("api", self.api, {
            rate_limit_per_second: 1..=1_000_000,
            rate_limit_burst: 1..=1_000_000,
            failed_auth_per_client_per_minute: 1..=1_000_000,
            failed_auth_per_second: 1..=1_000_000,
            failed_auth_max_clients: 1..=10_000_000,
        });
        check_fields!("notifications", self.notifications, {
            timeout_secs: 1..=300,
            keep_days: 1..=365,
        });
        check_fields!("insights", self.insights, {
            async_after_days: 0..=1200,
            async_poll_initial_ms: 1..=600_000,
            async_poll_max_ms: 1..=600_000,
        });
        check_order(
            (
                "insights.async_poll_initial_ms",
                self.insights.async_poll_initial_ms,
            ),
            (
                "insights.async_poll_max_ms",
                self.insights.async_poll_max_ms,
            ),
        )?;
        check_fields!("insights", self.insights, {
            async_timeout_secs: 1..=DAY_SECS,
            concurrency: 1..=100,
            cache_ttl_secs: 0..=7 * DAY_SECS,
            // Meta keeps 37 months of ads insights.
            max_months_back: 1..=37,
        });
        check_fields!("exports", self.exports, {
            retention_hours: 1..=8760,
            concurrency: 1..=64,
        });
        check_fields!("tiktok", self.tiktok, {
            refresh_before_secs: 0..=30 * 86_400,
            expiring_soon_secs: 0..=30 * 86_400,
            cleanup_after_days: 0..=3650,
        });
        // Google access tokens live about an hour.
        check_fields!("google", self.google, { refresh_before_secs: 0..=3600 });
        for (name, schedule) in self.schedules.by_provider() {
            if let Some(every) = schedule.every_secs {
                check_range(
                    &format!("schedules.{name}.every_secs"),
                    every,
                    1..=31 * DAY_SECS,
                )?;
            }
        }
        Ok(())
    }
}
