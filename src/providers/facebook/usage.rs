//! Meta's usage headers (X-App-Usage, X-Business-Use-Case-Usage,
//! X-Ad-Account-Usage, ...) and the throttle that slows calls down before the
//! limit is reached (wire-spec 3).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use serde_json::Value;

/// What one response's headers say about our budget.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Usage {
    /// The highest percentage over every usage field seen.
    pub max_pct: f64,
    /// `estimated_time_to_regain_access` (minutes in the header), if non-zero.
    pub regain: Option<Duration>,
}

const HEADERS: &[&str] = &[
    "x-app-usage",
    "x-page-usage",
    "x-ad-account-usage",
    "x-business-use-case-usage",
    "x-fb-ads-insights-throttle",
];

/// Reads every usage header present; values are JSON strings whose numbers
/// may be integers or floats.
pub fn parse(headers: &HeaderMap) -> Option<Usage> {
    let mut usage = Usage::default();
    let mut seen = false;
    for name in HEADERS {
        let Some(value) = headers.get(*name).and_then(|v| v.to_str().ok()) else {
            continue;
        };
        let Ok(json) = serde_json::from_str::<Value>(value) else {
            continue;
        };
        seen = true;
        visit(&json, &mut usage);
    }
    seen.then_some(usage)
}

fn visit(value: &Value, usage: &mut Usage) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v.as_f64()) {
                    ("estimated_time_to_regain_access", Some(minutes)) if minutes > 0.0 => {
                        let wait = Duration::from_secs_f64(minutes * 60.0);
                        usage.regain = Some(usage.regain.map_or(wait, |w| w.max(wait)));
                    }
                    (
                        "call_count" | "total_cputime" | "total_time" | "acc_id_util_pct"
                        | "app_id_util_pct",
                        Some(pct),
                    ) => usage.max_pct = usage.max_pct.max(pct),
                    _ => visit(v, usage),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| visit(v, usage)),
        _ => {}
    }
}

/// Slows callers down as usage nears the limit: above `slow_pct` each call
/// waits a little; above `pause_pct` calls pause for `pause`.
#[derive(Debug)]
pub struct Throttle {
    slow_pct: f64,
    pause_pct: f64,
    pause: Duration,
    state: Mutex<ThrottleState>,
}

#[derive(Debug, Default)]
struct ThrottleState {
    last_pct: f64,
    paused_until: Option<Instant>,
}

impl Throttle {
    pub fn new(slow_pct: f64, pause_pct: f64, pause: Duration) -> Self {
        Self {
            slow_pct,
            pause_pct,
            pause,
            state: Mutex::new(ThrottleState::default()),
        }
    }

    /// Records what a response said.
    pub fn observe(&self, usage: Usage) {
        let mut s = self.state.lock().expect("throttle lock");
        s.last_pct = usage.max_pct;
        if usage.max_pct >= self.pause_pct {
            let until = Instant::now() + usage.regain.unwrap_or(self.pause).max(self.pause);
            s.paused_until = Some(s.paused_until.map_or(until, |u| u.max(until)));
        }
    }

    /// The latest usage percentage seen.
    pub fn last_pct(&self) -> f64 {
        self.state.lock().expect("throttle lock").last_pct
    }

    /// How long the next call should wait.
    pub fn delay(&self) -> Duration {
        let s = self.state.lock().expect("throttle lock");
        if let Some(until) = s.paused_until {
            let now = Instant::now();
            if until > now {
                return until - now;
            }
        }
        if s.last_pct >= self.slow_pct && self.pause_pct > self.slow_pct {
            // Linear from 0 at slow_pct to 1 s at pause_pct.
            let f = (s.last_pct - self.slow_pct) / (self.pause_pct - self.slow_pct);
            return Duration::from_secs_f64(f.clamp(0.0, 1.0));
        }
        Duration::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn the_highest_percentage_and_regain_time_win() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-app-usage",
            HeaderValue::from_static(r#"{"call_count":28,"total_cputime":25,"total_time":25}"#),
        );
        h.insert(
            "x-business-use-case-usage",
            HeaderValue::from_static(
                r#"{"111":[{"type":"ads_insights","call_count":95,"total_cputime":20,"total_time":20,"estimated_time_to_regain_access":2}]}"#,
            ),
        );
        h.insert(
            "x-ad-account-usage",
            HeaderValue::from_static(r#"{"acc_id_util_pct":9.67,"reset_time_duration":0}"#),
        );
        let u = parse(&h).unwrap();
        assert_eq!(u.max_pct, 95.0);
        assert_eq!(u.regain, Some(Duration::from_secs(120)));
        assert!(parse(&HeaderMap::new()).is_none());
    }

    #[test]
    fn throttle_pauses_above_the_limit() {
        let t = Throttle::new(80.0, 95.0, Duration::from_millis(200));
        assert_eq!(t.delay(), Duration::ZERO);
        t.observe(Usage {
            max_pct: 90.0,
            regain: None,
        });
        assert!(t.delay() > Duration::ZERO && t.delay() <= Duration::from_secs(1));
        t.observe(Usage {
            max_pct: 99.0,
            regain: None,
        });
        assert!(t.delay() > Duration::from_millis(100));
    }
}
