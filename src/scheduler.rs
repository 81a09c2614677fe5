//! The background refresh schedules: per provider an interval or a cron
//! expression (in a configured time zone); sweeps never overlap (a due sweep
//! waits for a running one); the next run of each is visible.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::config::{ProviderSchedule, Settings};
use crate::domain::Provider;
use crate::tokens::{SweepFilter, TokenManager};

/// When a provider's sweep runs.
#[derive(Debug, Clone)]
pub enum Cadence {
    Every(Duration),
    Cron(Box<cron::Schedule>),
}

impl Cadence {
    pub fn parse(s: &ProviderSchedule) -> Result<Self, String> {
        match (&s.every_secs, &s.cron) {
            (Some(_), Some(_)) => Err("set either every_secs or cron, not both".into()),
            (None, None) => Err("set every_secs or cron".into()),
            (Some(0), None) => Err("every_secs must be at least 1".into()),
            (Some(secs), None) => Ok(Cadence::Every(Duration::from_secs(*secs))),
            (None, Some(expr)) => {
                // Operators write 5 fields; the cron crate wants seconds first.
                let full = if expr.split_whitespace().count() == 5 {
                    format!("0 {expr}")
                } else {
                    expr.clone()
                };
                cron::Schedule::from_str(&full)
                    .map(|s| Cadence::Cron(Box::new(s)))
                    .map_err(|e| format!("'{expr}' is not a cron expression: {e}"))
            }
        }
    }

    /// The next run after `now`.
    pub fn next_after(
        &self,
        now: DateTime<Utc>,
        tz: chrono_tz::Tz,
        jitter_secs: u64,
    ) -> DateTime<Utc> {
        match self {
            Cadence::Every(every) => {
                let jitter = if jitter_secs == 0 {
                    0
                } else {
                    rand::random_range(0..=jitter_secs)
                };
                now + chrono::Duration::from_std(*every + Duration::from_secs(jitter))
                    .unwrap_or_default()
            }
            Cadence::Cron(schedule) => schedule
                .after(&now.with_timezone(&tz))
                .next()
                .map_or(now + chrono::Duration::days(1), |t| t.with_timezone(&Utc)),
        }
    }
}

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
