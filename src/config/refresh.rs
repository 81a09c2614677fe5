//! When and how connections are refreshed, and whom a change is announced to.

use serde::Deserialize;

use super::ConfigError;
use super::check::check_url_fields;
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
    /// How long a refresh holds its connection's lease: no other refresh of
    /// it, by this instance or another, starts meanwhile.
    pub lease_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NotificationSettings {
    pub webhook_url: String,
    /// The wait before each retry, in seconds: an event is attempted once,
    /// then once after each of these (each with jitter), then exhausted.
    pub retry_schedule_secs: Vec<f64>,
    pub timeout_secs: u64,
    /// How long delivered and exhausted events stay listed.
    pub keep_days: u64,
}

impl NotificationSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.retry_schedule_secs.len() > 20 {
            return Err(ConfigError::new(
                "notifications.retry_schedule_secs",
                format!("has {} retries; at most 20", self.retry_schedule_secs.len()),
            ));
        }
        for wait in &self.retry_schedule_secs {
            if !(0.0..=7.0 * 86_400.0).contains(wait) {
                return Err(ConfigError::new(
                    "notifications.retry_schedule_secs",
                    format!("has {wait}; each wait must be 0 to 604800 seconds"),
                ));
            }
        }
        if self.webhook_url.is_empty() {
            return Ok(());
        }
        check_url_fields!("notifications", self, [webhook_url])
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
    /// Each provider's schedule with its key under `schedules`.
    pub fn by_provider(&self) -> [(&'static str, &ProviderSchedule); 3] {
        [
            ("facebook", &self.facebook),
            ("tiktok_shop", &self.tiktok_shop),
            ("google", &self.google),
        ]
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(ConfigError::new(
                "schedules.timezone",
                format!("'{}' is not an IANA time zone", self.timezone),
            ));
        }
        for (name, schedule) in self.by_provider() {
            Cadence::parse(schedule)
                .map_err(|reason| ConfigError::new(format!("schedules.{name}"), reason))?;
        }
        Ok(())
    }
}
