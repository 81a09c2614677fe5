//! Meta's usage headers (wire-spec 3): what one response says about each
//! budget Meta counts calls against. `X-App-Usage` is the app's budget,
//! `X-Business-Use-Case-Usage` one business object's (page, ad account,
//! business) per use case, `X-Ad-Account-Usage` one ad account's,
//! `X-Page-Usage` the calling page token's. The throttle that acts on them is
//! in `throttle`.

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;

/// Where a usage figure came from; ad-account and page figures are tied
/// to the call that received them.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    App,
    Business { id: String, use_case: String },
    AdAccount,
    Page,
}

/// One usage figure: the highest percentage of one header entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub source: Source,
    pub pct: f64,
    /// `estimated_time_to_regain_access` (minutes in the header), if non-zero.
    pub regain: Option<Duration>,
}

/// What one response's headers say about our budgets.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Usage {
    pub readings: Vec<Reading>,
}

impl Usage {
    /// The highest percentage over every usage field seen.
    pub fn max_pct(&self) -> f64 {
        self.readings.iter().map(|r| r.pct).fold(0.0, f64::max)
    }

    /// The longest regain time any entry gave.
    pub fn regain(&self) -> Option<Duration> {
        self.readings.iter().filter_map(|r| r.regain).max()
    }
}

/// Reads every usage header present; values are JSON strings whose numbers
/// may be integers or floats. Unparseable headers are skipped.
pub fn parse(headers: &HeaderMap) -> Option<Usage> {
    let json = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| serde_json::from_str::<Value>(v).ok())
    };
    let mut usage = Usage::default();
    let mut seen = false;
    let percentages = ["call_count", "total_cputime", "total_time"];
    for (name, source) in [("x-app-usage", Source::App), ("x-page-usage", Source::Page)] {
        if let Some(v) = json(name) {
            seen = true;
            usage.readings.push(Reading {
                source,
                pct: max_of(&v, &percentages),
                regain: None,
            });
        }
    }
    // `reset_time_duration` is the time to a full reset, not a regain time.
    for (name, keys) in [
        ("x-ad-account-usage", &["acc_id_util_pct"][..]),
        (
            "x-fb-ads-insights-throttle",
            &["app_id_util_pct", "acc_id_util_pct"][..],
        ),
    ] {
        if let Some(v) = json(name) {
            seen = true;
            usage.readings.push(Reading {
                source: Source::AdAccount,
                pct: max_of(&v, keys),
                regain: None,
            });
        }
    }
    // {"<object id>": [{"type", "call_count", ..., "estimated_time_to_regain_access"}]}
    if let Some(Value::Object(objects)) = json("x-business-use-case-usage") {
        seen = true;
        for (id, entries) in objects {
            for entry in entries.as_array().into_iter().flatten() {
                let use_case = entry["type"].as_str().unwrap_or("unknown").to_string();
                let regain = entry["estimated_time_to_regain_access"]
                    .as_f64()
                    .filter(|m| *m > 0.0)
                    .map(|minutes| Duration::from_secs_f64(minutes * 60.0));
                usage.readings.push(Reading {
                    source: Source::Business {
                        id: id.clone(),
                        use_case,
                    },
                    pct: max_of(entry, &percentages),
                    regain,
                });
            }
        }
    }
    seen.then_some(usage)
}

fn max_of(v: &Value, keys: &[&str]) -> f64 {
    keys.iter()
        .filter_map(|k| v.get(*k).and_then(Value::as_f64))
        .fold(0.0, f64::max)
}

/// Headers from static pairs, for the tests here and in `throttle`.
#[cfg(test)]
pub(super) fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, reqwest::header::HeaderValue::from_static(v));
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_percentage_and_regain_time_win() {
        let h = headers(&[
            (
                "x-app-usage",
                r#"{"call_count":28,"total_cputime":25,"total_time":25}"#,
            ),
            (
                "x-business-use-case-usage",
                r#"{"111":[{"type":"ads_insights","call_count":95,"total_cputime":20,"total_time":20,"estimated_time_to_regain_access":2}]}"#,
            ),
            (
                "x-ad-account-usage",
                r#"{"acc_id_util_pct":9.67,"reset_time_duration":0}"#,
            ),
        ]);
        let u = parse(&h).unwrap();
        assert_eq!(u.max_pct(), 95.0);
        assert_eq!(u.regain(), Some(Duration::from_secs(120)));
        assert!(u.readings.contains(&Reading {
            source: Source::Business {
                id: "111".into(),
                use_case: "ads_insights".into()
            },
            pct: 95.0,
            regain: Some(Duration::from_secs(120)),
        }));
        assert!(parse(&HeaderMap::new()).is_none());
    }
}
