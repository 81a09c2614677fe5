//! The background refresh schedules: per provider an interval or a cron
//! expression (in a configured time zone); sweeps never overlap (a due sweep
//! waits for a running one); the next run of each is visible.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::cadence::Cadence;
use crate::config::Settings;
use crate::domain::Provider;
use crate::tokens::{SweepFilter, TokenManager};

/// The next scheduled run of each provider.
#[derive(Debug, Default)]
pub struct NextRuns(Mutex<HashMap<Provider, DateTime<Utc>>>);

impl NextRuns {
    pub fn get(&self) -> HashMap<Provider, DateTime<Utc>> {
        self.0.lock().expect("next runs lock").clone()
    }

    fn set(&self, provider: Provider, at: DateTime<Utc>) {
        self.0.lock().expect("next runs lock").insert(provider, at);
    }
}

/// Starts one schedule per provider.
pub fn spawn(
    tokens: Arc<TokenManager>,
    settings: &Settings,
    next_runs: Arc<NextRuns>,
    cancel: CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let tz: chrono_tz::Tz = settings
        .schedules
        .timezone
        .parse()
        .unwrap_or(chrono_tz::UTC);
    let jitter = settings.refresh.jitter_secs;
    [
        (Provider::Facebook, &settings.schedules.facebook),
        (Provider::TiktokShop, &settings.schedules.tiktok_shop),
        (Provider::Google, &settings.schedules.google),
    ]
    .into_iter()
    .filter_map(|(provider, schedule)| Cadence::parse(schedule).ok().map(|c| (provider, c)))
    .map(|(provider, cadence)| {
        let tokens = tokens.clone();
        let next_runs = next_runs.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            loop {
                let now = tokens.now();
                let next = cadence.next_after(now, tz, jitter);
                next_runs.set(provider, next);
                let wait = (next - now).to_std().unwrap_or_default();
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
                // Never overlap: wait for a running sweep, then run.
                loop {
                    let filter = SweepFilter {
                        provider: Some(provider),
                        ..SweepFilter::default()
                    };
                    match tokens.start_sweep("schedule", filter) {
                        Ok((_, handle)) => {
                            let _ = handle.await;
                            break;
                        }
                        Err(_) => tokio::select! {
                            _ = cancel.cancelled() => return,
                            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                        },
                    }
                }
            }
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cadence::ProviderSchedule;
    use chrono::TimeZone;

    #[test]
    fn cron_runs_at_two_in_the_configured_zone() {
        let c = Cadence::parse(&ProviderSchedule {
            every_secs: None,
            cron: Some("0 2 * * *".into()),
        })
        .unwrap();
        let tz: chrono_tz::Tz = "Asia/Ho_Chi_Minh".parse().unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
        let next = c.next_after(now, tz, 0);
        // 02:00 in UTC+7 is 19:00 UTC the day before.
        assert_eq!(next, Utc.with_ymd_and_hms(2026, 11, 24, 19, 0, 0).unwrap());
        assert!(
            Cadence::parse(&ProviderSchedule {
                every_secs: Some(5),
                cron: Some("x".into())
            })
            .is_err()
        );
        assert!(
            Cadence::parse(&ProviderSchedule {
                every_secs: None,
                cron: Some("nope".into())
            })
            .is_err()
        );
        let every = Cadence::parse(&ProviderSchedule {
            every_secs: Some(60),
            cron: None,
        })
        .unwrap();
        assert_eq!(
            every.next_after(now, tz, 0),
            now + chrono::Duration::seconds(60)
        );
    }
}
