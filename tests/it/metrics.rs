//! `GET /metrics`: Prometheus text that parses, counters that move with a
//! sweep, gauges from the store, and the optional key.
//!
//! The recorder is process-wide and other tests run in the same process, so
//! counters are compared as deltas, and at least (not exactly) the expected
//! amount: a concurrent test may add to the same series.

use std::collections::{BTreeMap, HashMap, HashSet};

use reqwest::Method;

use crate::fb_support::*;

const FAMILIES: [(&str, &str); 12] = [
    ("tokenkeeper_refresh_attempts_total", "counter"),
    ("tokenkeeper_upstream_request_duration_seconds", "histogram"),
    ("tokenkeeper_connections", "gauge"),
    ("tokenkeeper_seconds_until_soonest_expiry", "gauge"),
    ("tokenkeeper_seconds_until_soonest_lapse", "gauge"),
    ("tokenkeeper_sweep_duration_seconds", "histogram"),
    ("tokenkeeper_sweep_last_success_timestamp_seconds", "gauge"),
    ("tokenkeeper_sweeps_total", "counter"),
    ("tokenkeeper_rate_limit_usage_percent", "gauge"),
    ("tokenkeeper_webhook_deliveries_total", "counter"),
    ("tokenkeeper_http_requests_total", "counter"),
    ("tokenkeeper_http_request_duration_seconds", "histogram"),
];

#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed exposition: HELP and TYPE lines by family, and every sample.
#[derive(Debug, Default)]
struct Scrape {
    helps: HashSet<String>,
    types: HashMap<String, String>,
    samples: Vec<Sample>,
}

impl Scrape {
    /// Sum of the samples named `name` whose labels include `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
            .sum()
    }

    /// The values of `label` on the samples named `name` that have `with`.
    fn label_values(&self, name: &str, label: &str, with: &[(&str, &str)]) -> HashSet<String> {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                with.iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .filter_map(|s| s.labels.get(label).cloned())
            .collect()
    }
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        t => t.parse().ok(),
    }
}

/// `{a="x",b="y"}` (already without the braces) into pairs, honouring
/// `\"`, `\\` and `\n` escapes.
fn parse_labels(text: &str, line: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once("=\"")
            .unwrap_or_else(|| panic!("label without =\" in {line:?}"));
        assert!(is_metric_name(key), "bad label name {key:?} in {line:?}");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    other => panic!("bad escape {other:?} in {line:?}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value in {line:?}"),
            }
        };
        assert!(
            labels.insert(key.to_string(), value).is_none(),
            "repeated label {key} in {line:?}"
        );
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    labels
}

/// Parses the text format strictly enough to catch malformed output: every
/// line is a comment, blank, or `name{labels} value [timestamp]` of a family
/// whose TYPE came first.
fn parse(text: &str) -> Scrape {
    let mut scrape = Scrape::default();
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut parts = comment.trim_start().splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("HELP"), Some(name), Some(_)) => {
                    assert!(is_metric_name(name), "{line:?}");
                    assert!(scrape.helps.insert(name.into()), "HELP twice: {line:?}");
                }
                (Some("TYPE"), Some(name), Some(kind)) => {
                    assert!(is_metric_name(name), "{line:?}");
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                        "{line:?}"
                    );
                    assert!(
                        scrape.types.insert(name.into(), kind.into()).is_none(),
                        "TYPE twice: {line:?}"
                    );
                }
                _ => {}
            }
            continue;
        }
        let (series, rest) = match line.find('{') {
            Some(_) => {
                let close = line.rfind('}').unwrap_or_else(|| panic!("{line:?}"));
                (&line[..close + 1], line[close + 1..].trim_start())
            }
            None => line.split_once(' ').unwrap_or_else(|| panic!("{line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (name, parse_labels(&labels[..labels.len() - 1], line)),
            None => (series, BTreeMap::new()),
        };
        assert!(is_metric_name(name), "bad metric name in {line:?}");
        let mut fields = rest.split_whitespace();
        let value = fields
            .next()
            .and_then(parse_value)
            .unwrap_or_else(|| panic!("bad value in {line:?}"));
        if let Some(ts) = fields.next() {
            assert!(ts.parse::<i64>().is_ok(), "bad timestamp in {line:?}");
        }
        assert!(fields.next().is_none(), "trailing text in {line:?}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| scrape.types.get(*f).map(String::as_str) == Some("histogram"))
            })
            .unwrap_or(name);
        assert!(
            scrape.types.contains_key(family),
            "sample before its TYPE: {line:?}"
        );
        scrape.samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    scrape
}

async fn scrape(fb: &FbApp) -> Scrape {
    let r = fb.app.client.get(fb.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let content_type = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = r.text().await.unwrap();
    assert!(!text.contains("EAA"), "no token in the metrics");
    parse(&text)
}

#[tokio::test]
async fn metrics_are_prometheus_text_that_moves_with_a_sweep() {
    let fb = FbApp::start().await;
    fb.connect_user(2, None).await;
    let before = scrape(&fb).await;

    let body = fb.sweep("/facebook/internal/scheduled-refresh").await;
    let checked = body["run"]["counts"]["checked"].as_f64().unwrap_or(0.0);
    assert_eq!(checked, 3.0, "the user and its two pages: {body}");

    let after = scrape(&fb).await;
    for (family, kind) in FAMILIES {
        assert!(after.helps.contains(family), "no HELP for {family}");
        assert_eq!(
            after.types.get(family).map(String::as_str),
            Some(kind),
            "TYPE of {family}"
        );
    }
    let delta = |name: &str, labels: &[(&str, &str)]| {
        after.value(name, labels) - before.value(name, labels)
    };
    assert!(
        delta(
            "tokenkeeper_refresh_attempts_total",
            &[("provider", "facebook"), ("outcome", "checked")]
        ) >= checked,
        "every connection checked is counted"
    );
    assert!(delta("tokenkeeper_sweeps_total", &[]) >= 1.0);
    assert!(delta("tokenkeeper_sweep_duration_seconds_count", &[]) >= 1.0);
    assert!(after.value("tokenkeeper_sweep_last_success_timestamp_seconds", &[]) > 0.0);
    assert!(
        delta(
            "tokenkeeper_upstream_request_duration_seconds_count",
            &[("provider", "facebook"), ("endpoint", "/debug_token")]
        ) >= checked
    );
    assert!(
        delta(
            "tokenkeeper_http_requests_total",
            &[
                ("route", "/facebook/internal/scheduled-refresh"),
                ("method", "POST"),
                ("status", "200")
            ]
        ) >= 1.0
    );
    assert!(
        delta(
            "tokenkeeper_http_request_duration_seconds_count",
            &[("route", "/facebook/internal/scheduled-refresh")]
        ) >= 1.0
    );

    // Gauges come from this app's store, so they are exact.
    let connections = |health| {
        after.value(
            "tokenkeeper_connections",
            &[("provider", "facebook"), ("health", health)],
        )
    };
    assert_eq!(connections("healthy"), 3.0);
    assert_eq!(connections("reauth_required"), 0.0);
    assert_eq!(
        after.value("tokenkeeper_connections", &[("provider", "google")]),
        0.0
    );
    let soonest = after.value(
        "tokenkeeper_seconds_until_soonest_expiry",
        &[("provider", "facebook")],
    );
    assert!(
        soonest > 0.0 && soonest <= 90.0 * 86_400.0,
        "the user token or data access lapses within 90 days: {soonest}"
    );
    let usage = after.value(
        "tokenkeeper_rate_limit_usage_percent",
        &[("provider", "facebook")],
    );
    assert!((0.0..=100.0).contains(&usage), "{usage}");
    fb.stop().await;
}

#[tokio::test]
async fn http_metrics_are_labelled_by_route_template_never_by_raw_path() {
    let fb = FbApp::start().await;
    let answer = fb.connect_user(1, None).await;
    let user = connection_of_kind(&answer, "user");
    let id = user["id"].as_str().unwrap();
    let (status, _) = fb.get(&format!("/facebook/tokens/{id}"), ADMIN_KEY).await;
    assert_eq!(status, 200);
    let (status, _) = fb
        .call(Method::GET, "/no/such/path/12345", None, None)
        .await;
    assert_eq!(status, 404);

    let after = scrape(&fb).await;
    let routes = after.label_values("tokenkeeper_http_requests_total", "route", &[]);
    assert!(routes.contains("/facebook/tokens/{id}"), "{routes:?}");
    assert!(routes.contains("unmatched"), "{routes:?}");
    assert!(
        routes
            .iter()
            .all(|r| !r.contains(id) && !r.contains("12345")),
        "{routes:?}"
    );
    assert!(
        after.value(
            "tokenkeeper_http_requests_total",
            &[
                ("route", "/facebook/tokens/{id}"),
                ("method", "GET"),
                ("status", "200")
            ]
        ) >= 1.0
    );
    let endpoints = after.label_values(
        "tokenkeeper_upstream_request_duration_seconds_count",
        "endpoint",
        &[("provider", "facebook")],
    );
    assert!(endpoints.contains("/oauth/access_token"), "{endpoints:?}");
    assert!(endpoints.contains("/me/accounts"), "{endpoints:?}");
    assert!(
        endpoints
            .iter()
            .all(|e| !e.contains('?') && !e.chars().any(|c| c.is_ascii_digit())),
        "{endpoints:?}"
    );
    fb.stop().await;
}

#[tokio::test]
async fn metrics_need_an_internal_key_when_configured() {
    let fb = FbApp::start_with(FbOptions {
        extra_toml: "[metrics]\nrequire_key = true\n".into(),
        ..FbOptions::default()
    })
    .await;
    let (status, body) = fb.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = fb.get("/metrics", "not-a-key").await;
    assert_eq!(status, 403);
    let (status, _) = fb.get("/metrics", READER_KEY).await;
    assert_eq!(status, 403, "tokens:read is not enough");
    let (status, body) = fb.get("/metrics", INTERNAL_KEY).await;
    assert_eq!(status, 200);
    let text = body.as_str().unwrap();
    assert!(parse(text).types.contains_key("tokenkeeper_connections"));
    fb.stop().await;
}

/// The lapse alert of docs/metrics.md, as the test evaluates it.
const LAPSE_ALERT: &str = "tokenkeeper_seconds_until_soonest_lapse < 7 * 86400";
const LAPSE_THRESHOLD: f64 = 7.0 * 86_400.0;

fn lapse(scrape: &Scrape, provider: &str) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| {
            s.name == "tokenkeeper_seconds_until_soonest_lapse"
                && s.labels.get("provider").map(String::as_str) == Some(provider)
        })
        .map(|s| s.value)
}

#[tokio::test]
async fn the_lapse_alert_stays_silent_on_healthy_connections_and_fires_on_a_revoked_one() {
    let docs = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/metrics.md"),
    )
    .unwrap();
    assert!(
        docs.contains(LAPSE_ALERT),
        "docs/metrics.md alerts on {LAPSE_ALERT:?}"
    );

    let fb = FbApp::start().await;
    let answer = fb.connect_user(1, None).await;
    fb.connect_shop("team-a", "Lapse Shop").await;
    fb.connect_demo_google().await;

    let healthy = scrape(&fb).await;
    // Google's access token lapses within the hour and renews itself: the
    // old gauge counts it, the lapse gauge does not.
    let google_expiry = healthy.value(
        "tokenkeeper_seconds_until_soonest_expiry",
        &[("provider", "google")],
    );
    assert!(google_expiry <= 3_600.0, "{google_expiry}");
    for provider in ["facebook", "tiktok_shop", "google"] {
        let secs =
            lapse(&healthy, provider).unwrap_or_else(|| panic!("a lapse gauge for {provider}"));
        assert!(
            secs > 4.0 * LAPSE_THRESHOLD,
            "{provider}: {secs} s is not well above the alert's {LAPSE_THRESHOLD} s"
        );
    }
    assert_eq!(
        lapse(&healthy, "google"),
        Some(f64::INFINITY),
        "a Google refresh token has no fixed lapse"
    );

    let page = connection_of_kind(&answer, "page");
    fb.revoke_page_and_sweep(&page).await;

    let revoked = scrape(&fb).await;
    let facebook = lapse(&revoked, "facebook").expect("a lapse gauge for facebook");
    assert!(
        facebook < LAPSE_THRESHOLD,
        "the revoked page fires {LAPSE_ALERT}: {facebook}"
    );
    assert_eq!(facebook, 0.0, "a flagged connection needs its user now");
    for provider in ["tiktok_shop", "google"] {
        assert!(
            lapse(&revoked, provider).unwrap() > LAPSE_THRESHOLD,
            "{provider}"
        );
    }
    fb.stop().await;
}
