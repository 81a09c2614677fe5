//! `GET /metrics` and the middleware that counts and times every HTTP
//! request; what they record and render is `crate::metrics`.

use std::time::Instant;

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::auth::Caller;
use super::error::ApiError;
use super::state::AppState;
use crate::access::Scope;

/// Middleware: counts and times every request by its route template
/// (`unmatched` when no route matched), method and status.
pub async fn track_http(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_string();
    let method = match request.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    let started = Instant::now();
    let response = next.run(request).await;
    crate::metrics::http_request(route, method, response.status().as_str(), started.elapsed());
    response
}

/// `GET /metrics`: the recorder's families, then the gauges computed from
/// this application's store and clients.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tags = ["health"],
    summary = "Prometheus metrics",
    description = "Prometheus text format: refresh attempts, upstream latency, connections by health, \
soonest expiry, sweeps, rate-limit usage, webhook deliveries, HTTP requests (docs/metrics.md). \
Public unless `metrics.require_key` is set, then it needs a key with the `internal` scope.",
    responses(
        (status = 200, description = "Prometheus text exposition", content_type = "text/plain; version=0.0.4",
         body = String, example = "# TYPE tokenkeeper_connections gauge\ntokenkeeper_connections{provider=\"facebook\",health=\"healthy\"} 3\n"),
        (status = 401, response = super::schemas::responses::Unauthorized),
        (status = 403, response = super::schemas::responses::Forbidden)
    ),
)]
pub async fn scrape(State(state): State<AppState>, mut parts: Parts) -> Result<Response, ApiError> {
    if state.settings.metrics.require_key {
        Caller::from_request_parts(&mut parts, &state)
            .await?
            .require(Scope::Internal)?;
    }
    let body = crate::metrics::render(&state.tokens.gauges().await?);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response())
}
