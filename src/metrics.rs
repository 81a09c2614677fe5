//! Prometheus metrics (docs/metrics.md): the process-wide recorder, the
//! helpers the service records through, and the rendering of a scrape with
//! the gauges computed from the store at that time. The `/metrics` handler
//! and the HTTP middleware live in the HTTP layer (`api::metrics_endpoint`);
//! this module knows nothing of HTTP, so every layer may record through it.
//!
//! Labels are fixed vocabularies or templates (provider, outcome, route
//! template, endpoint template): never a token, a key, an id or a raw path.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::domain::{Connection, ErrorClass, Health, Provider};

pub const REFRESH_ATTEMPTS: &str = "tokenkeeper_refresh_attempts_total";
pub const UPSTREAM_DURATION: &str = "tokenkeeper_upstream_request_duration_seconds";
pub const CONNECTIONS: &str = "tokenkeeper_connections";
pub const SOONEST_EXPIRY: &str = "tokenkeeper_seconds_until_soonest_expiry";
pub const SOONEST_LAPSE: &str = "tokenkeeper_seconds_until_soonest_lapse";
pub const SWEEP_DURATION: &str = "tokenkeeper_sweep_duration_seconds";
pub const SWEEP_LAST_SUCCESS: &str = "tokenkeeper_sweep_last_success_timestamp_seconds";
pub const SWEEPS: &str = "tokenkeeper_sweeps_total";
pub const RATE_LIMIT_USAGE: &str = "tokenkeeper_rate_limit_usage_percent";
pub const WEBHOOK_DELIVERIES: &str = "tokenkeeper_webhook_deliveries_total";
pub const HTTP_REQUESTS: &str = "tokenkeeper_http_requests_total";
pub const HTTP_DURATION: &str = "tokenkeeper_http_request_duration_seconds";

const HEALTHS: [Health; 7] = [
    Health::Healthy,
    Health::ExpiringSoon,
    Health::NeedsRefresh,
    Health::Degraded,
    Health::Expired,
    Health::CannotRefresh,
    Health::ReauthRequired,
];
const REFRESH_OUTCOMES: [&str; 5] = [
    "refreshed",
    "checked",
    "failed",
    "reauth_required",
    "rate_limited",
];
const WEBHOOK_OUTCOMES: [&str; 4] = ["delivered", "refused", "unreachable", "gave_up"];
const SWEEP_OUTCOMES: [&str; 2] = ["succeeded", "failed"];

const UPSTREAM_BUCKETS: &[f64] = &[0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
const HTTP_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const SWEEP_BUCKETS: &[f64] = &[
    0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder on first call and returns its handle.
/// The recorder is global by nature of the `metrics` facade; several
/// applications in one process (tests) share it, so its counters are
/// cumulative across them. Values computed from one application's store are
/// rendered per scrape instead (see [`render`]).
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = [
            (UPSTREAM_DURATION, UPSTREAM_BUCKETS),
            (HTTP_DURATION, HTTP_BUCKETS),
            (SWEEP_DURATION, SWEEP_BUCKETS),
        ]
        .into_iter()
        .fold(PrometheusBuilder::new(), |b, (name, buckets)| {
            b.set_buckets_for_metric(Matcher::Full(name.into()), buckets)
                .expect("bucket lists are not empty")
        });
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!(
                "another metrics recorder is installed: /metrics shows only store gauges"
            );
        }
        describe();
        handle
    })
}

/// HELP texts and zero-valued series, so every family and outcome is present
/// from the first scrape (rates and alerts need the series to exist).
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        REFRESH_ATTEMPTS,
        "Upstream refresh or validation attempts of stored connections, by outcome."
    );
    describe_histogram!(
        UPSTREAM_DURATION,
        "Duration of one upstream HTTP call, by provider and endpoint template."
    );
    describe_histogram!(SWEEP_DURATION, "Duration of one sweep.");
    describe_gauge!(
        SWEEP_LAST_SUCCESS,
        "Unix time at which the last sweep without failures finished."
    );
    describe_counter!(
        SWEEPS,
        "Finished sweeps: succeeded (no failures) or failed (at least one)."
    );
    describe_counter!(
        WEBHOOK_DELIVERIES,
        "Webhook delivery attempts (refused, unreachable) and events (delivered, gave_up)."
    );
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests served, by route template, method and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        "Time to produce an HTTP response (headers), by route template and method."
    );
    for provider in Provider::ALL {
        for outcome in REFRESH_OUTCOMES {
            metrics::counter!(REFRESH_ATTEMPTS, "provider" => provider.as_str(), "outcome" => outcome)
                .increment(0);
        }
    }
    for outcome in SWEEP_OUTCOMES {
        metrics::counter!(SWEEPS, "outcome" => outcome).increment(0);
    }
    for outcome in WEBHOOK_OUTCOMES {
        metrics::counter!(WEBHOOK_DELIVERIES, "outcome" => outcome).increment(0);
    }
}

/// Counts one refresh (`ok_outcome` "refreshed") or validation ("checked")
/// attempt of a stored connection; a failure is counted by its class
/// (`failure` is `None` when the attempt succeeded).
pub fn refresh_attempt(provider: Provider, ok_outcome: &'static str, failure: Option<ErrorClass>) {
    let outcome = match failure {
        None => ok_outcome,
        Some(ErrorClass::ReauthRequired) => "reauth_required",
        Some(ErrorClass::RateLimited) => "rate_limited",
        Some(_) => "failed",
    };
    metrics::counter!(REFRESH_ATTEMPTS, "provider" => provider.as_str(), "outcome" => outcome)
        .increment(1);
}

/// Times one upstream call until dropped (so early returns count too).
#[must_use = "the call is timed until the guard is dropped"]
pub struct UpstreamTimer {
    provider: Provider,
    endpoint: String,
    started: Instant,
}

/// Starts timing a call to `path` (a template or a Graph path with ids).
pub fn upstream_timer(provider: Provider, path: &str) -> UpstreamTimer {
    UpstreamTimer {
        provider,
        endpoint: endpoint_template(provider, path),
        started: Instant::now(),
    }
}

impl Drop for UpstreamTimer {
    fn drop(&mut self) {
        metrics::histogram!(
            UPSTREAM_DURATION,
            "provider" => self.provider.as_str(),
            "endpoint" => std::mem::take(&mut self.endpoint)
        )
        .record(self.started.elapsed().as_secs_f64());
    }
}

/// The path without query and with ids replaced by `{id}`: numeric segments
/// (`123`, `123_456`), ad accounts (`act_123`), and for Graph the leading
/// object id, whatever it looks like (every Graph path but `/me…`,
/// `/oauth/…` and `/debug_token` starts with one).
pub fn endpoint_template(provider: Provider, path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let mut out = String::new();
    for (i, segment) in path.split('/').enumerate().skip(1) {
        let numeric = !segment.is_empty()
            && segment.bytes().any(|b| b.is_ascii_digit())
            && segment.bytes().all(|b| b.is_ascii_digit() || b == b'_');
        let account = segment
            .strip_prefix("act_")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        let graph_object = provider == Provider::Facebook
            && i == 1
            && !matches!(segment, "me" | "oauth" | "debug_token" | "");
        out.push('/');
        out.push_str(if numeric || account || graph_object {
            "{id}"
        } else {
            segment
        });
    }
    if out.is_empty() { "/".into() } else { out }
}

/// Records a finished sweep: its duration, its outcome, and the time of the
/// last one without failures.
pub fn sweep_finished(started: Instant, failures: u64, now: DateTime<Utc>) {
    metrics::histogram!(SWEEP_DURATION).record(started.elapsed().as_secs_f64());
    let outcome = if failures == 0 { "succeeded" } else { "failed" };
    metrics::counter!(SWEEPS, "outcome" => outcome).increment(1);
    if failures == 0 {
        metrics::gauge!(SWEEP_LAST_SUCCESS).set(now.timestamp() as f64);
    }
    // Keeps histogram buffers bounded when nobody scrapes.
    if let Some(handle) = HANDLE.get() {
        handle.run_upkeep();
    }
}

/// Counts a webhook outcome: delivered, refused, unreachable or gave_up.
pub fn webhook_delivery(outcome: &'static str) {
    metrics::counter!(WEBHOOK_DELIVERIES, "outcome" => outcome).increment(1);
}

/// Counts and times one HTTP request by its route template (`unmatched`
/// when no route matched), method and status.
pub fn http_request(route: String, method: &'static str, status: &str, elapsed: Duration) {
    metrics::counter!(
        HTTP_REQUESTS,
        "route" => route.clone(),
        "method" => method,
        "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!(HTTP_DURATION, "route" => route, "method" => method)
        .record(elapsed.as_secs_f64());
}

/// The gauges computed from one application's connections at scrape time
/// (the recorder is process-wide, these are not).
#[derive(Debug)]
pub struct StoreGauges {
    now: DateTime<Utc>,
    counts: BTreeMap<(Provider, Health), u64>,
    soonest: BTreeMap<Provider, DateTime<Utc>>,
    // Per provider with connections: the soonest lapse only a user can
    // prevent, `None` while every connection renews itself indefinitely.
    lapse: BTreeMap<Provider, Option<DateTime<Utc>>>,
    facebook_usage_pct: Option<f64>,
}

impl StoreGauges {
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            now,
            counts: BTreeMap::new(),
            soonest: BTreeMap::new(),
            lapse: BTreeMap::new(),
            facebook_usage_pct: None,
        }
    }

    /// Counts one connection with its health and the soonest lapse only a
    /// user can prevent (`None` when it renews itself indefinitely).
    pub fn add(&mut self, conn: &Connection, health: Health, lapse_at: Option<DateTime<Utc>>) {
        let now = self.now;
        *self.counts.entry((conn.provider, health)).or_default() += 1;
        let entry = self.lapse.entry(conn.provider).or_insert(lapse_at);
        *entry = match (*entry, lapse_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let lapses = [
            conn.expires_at,
            conn.data_access_expires_at,
            conn.refresh_token_expires_at,
        ];
        for at in lapses.into_iter().flatten().filter(|at| *at > now) {
            let entry = self.soonest.entry(conn.provider).or_insert(at);
            *entry = (*entry).min(at);
        }
    }

    /// The highest usage percentage in Facebook's latest rate-limit headers.
    pub fn set_facebook_usage(&mut self, pct: f64) {
        self.facebook_usage_pct = Some(pct);
    }
}

/// A scrape in Prometheus text format: the recorder's families, then the
/// gauges computed from one application's store and clients.
pub fn render(gauges: &StoreGauges) -> String {
    let mut body = install().render();
    render_store_gauges(gauges, &mut body);
    body
}

fn family(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
}

fn render_store_gauges(gauges: &StoreGauges, out: &mut String) {
    let StoreGauges {
        now,
        counts,
        soonest,
        lapse,
        facebook_usage_pct,
    } = gauges;
    let now = *now;
    if !out.is_empty() && !out.ends_with("\n\n") {
        out.push('\n');
    }
    family(
        out,
        CONNECTIONS,
        "Stored connections by provider and health, at scrape time.",
    );
    for provider in Provider::ALL {
        for health in HEALTHS {
            let n = counts.get(&(provider, health)).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "{CONNECTIONS}{{provider=\"{}\",health=\"{}\"}} {n}",
                provider.as_str(),
                health.as_str()
            );
        }
    }
    out.push('\n');
    family(
        out,
        SOONEST_EXPIRY,
        "Seconds until the soonest future expiry (token, data access or refresh token) of a provider's connections.",
    );
    for (provider, at) in soonest {
        let secs = (*at - now).num_milliseconds() as f64 / 1000.0;
        let _ = writeln!(
            out,
            "{SOONEST_EXPIRY}{{provider=\"{}\"}} {secs}",
            provider.as_str()
        );
    }
    out.push('\n');
    family(
        out,
        SOONEST_LAPSE,
        "Seconds until the soonest lapse a user must act on among a provider's connections: 0 when one is already flagged or lapsed, +Inf when all renew themselves.",
    );
    for (provider, at) in lapse {
        let secs = match at {
            Some(at) => format!("{}", (*at - now).num_milliseconds().max(0) as f64 / 1000.0),
            None => "+Inf".into(),
        };
        let _ = writeln!(
            out,
            "{SOONEST_LAPSE}{{provider=\"{}\"}} {secs}",
            provider.as_str()
        );
    }
    out.push('\n');
    family(
        out,
        RATE_LIMIT_USAGE,
        "Highest usage percentage in the platform's latest rate-limit headers.",
    );
    if let Some(pct) = facebook_usage_pct {
        let _ = writeln!(out, "{RATE_LIMIT_USAGE}{{provider=\"facebook\"}} {pct}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_templates_have_no_ids_or_queries() {
        let fb = |p| endpoint_template(Provider::Facebook, p);
        assert_eq!(fb("/oauth/access_token"), "/oauth/access_token");
        assert_eq!(fb("/debug_token?input_token=x"), "/debug_token");
        assert_eq!(fb("/me/accounts"), "/me/accounts");
        assert_eq!(fb("/1234567/published_posts"), "/{id}/published_posts");
        assert_eq!(fb("/act_42/insights"), "/{id}/insights");
        assert_eq!(fb("/12_34/insights"), "/{id}/insights");
        assert_eq!(fb("/some-page-name/video_reels"), "/{id}/video_reels");
        assert_eq!(fb("/987"), "/{id}");
        let tt = endpoint_template(Provider::TiktokShop, "/api/v2/token/refresh");
        assert_eq!(tt, "/api/v2/token/refresh");
        let g = endpoint_template(Provider::Google, "/customers/{id}/googleAds:searchStream");
        assert_eq!(g, "/customers/{id}/googleAds:searchStream");
        assert_eq!(
            endpoint_template(Provider::Google, "/customers/123/x"),
            "/customers/{id}/x"
        );
    }
}
