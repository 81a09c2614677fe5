//! When and how connections are refreshed, and whom a change is announced to.

use serde::Deserialize;

use super::ConfigError;
use super::check::{DAY_SECS, HOUR_MS, check_fields, check_order, check_range, check_urls};
use crate::cadence::{Cadence, ProviderSchedule};

#[derive(Debug, Clone, Deserialize)]
pub struct RefreshSettings {
    pub jitter_secs: u64,
    pub enabled: bool,
    pub concurrency: usize,
    pub max_attempts: u32,
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
    pub max_retry_wait_secs: u64,
    pub runs_kept: usize,
}

impl RefreshSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_fields!("refresh", self, {
            jitter_secs: 0..=DAY_SECS,
            concurrency: 1..=1000,
            max_attempts: 1..=100,
            base_delay_ms: 0..=HOUR_MS,
            max_delay_ms: 0..=HOUR_MS,
        });
        check_order(
            ("refresh.base_delay_ms", self.base_delay_ms),
            ("refresh.max_delay_ms", self.max_delay_ms),
        )?;
        check_fields!("refresh", self, {
            max_retry_wait_secs: 0..=3600,
            runs_kept: 0..=10_000,
        });
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct NotificationSettings {
    pub webhook_url: String,
    pub max_attempts: u32,
    pub initial_backoff_ms: u64,
    pub timeout_secs: u64,
}

impl NotificationSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_fields!("notifications", self, {
            max_attempts: 1..=100,
            initial_backoff_ms: 0..=HOUR_MS,
            timeout_secs: 1..=300,
        });
        if self.webhook_url.is_empty() {
            return Ok(());
        }
        check_urls(&[("notifications.webhook_url", &self.webhook_url)])
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ScheduleSettings {
    pub timezone: String,
    pub facebook: ProviderSchedule,
    pub tiktok_shop: ProviderSchedule,
    pub google: ProviderSchedule,
}

impl ScheduleSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let schedules = [
            ("facebook", &self.facebook),
            ("tiktok_shop", &self.tiktok_shop),
            ("google", &self.google),
        ];
        for (name, schedule) in schedules {
            if let Some(every) = schedule.every_secs {
                check_range(
                    &format!("schedules.{name}.every_secs"),
                    every,
                    1..=31 * DAY_SECS,
                )?;
            }
        }
        if self.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(ConfigError::new(
                "schedules.timezone",
                format!("'{}' is not an IANA time zone", self.timezone),
            ));
        }
        for (name, schedule) in schedules {
            Cadence::parse(schedule)
                .map_err(|reason| ConfigError::new(format!("schedules.{name}"), reason))?;
        }
        Ok(())
    }
}
