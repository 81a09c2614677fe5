//! When a provider's sweep runs, as configured (an interval or a cron
//! expression) and as parsed. Configuration validates a schedule with it and
//! the scheduler runs by it, so it sits below both.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// When one provider's sweep runs: an interval or a cron expression.
#[derive(Debug, Clone, Deserialize)]
pub struct ProviderSchedule {
    #[serde(default)]
    pub every_secs: Option<u64>,
    #[serde(default)]
    pub cron: Option<String>,
}

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
