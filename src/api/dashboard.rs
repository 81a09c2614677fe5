//! The operator's health dashboard: a static page (HTML, CSS, a little
//! JavaScript) compiled into the binary. The page itself holds no data; it
//! asks for an API key and calls the JSON API with it, so it is public.

use axum::Router;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX_HTML: &str = include_str!("dashboard/index.html");
const DASHBOARD_CSS: &str = include_str!("dashboard/dashboard.css");
const DASHBOARD_JS: &str = include_str!("dashboard/dashboard.js");

/// Only our own files and our own API: no inline script, no third party, and
/// no framing, since the page handles an API key.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   img-src 'self'; connect-src 'self'; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

/// `GET /dashboard` and its two assets under `/dashboard/`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/dashboard", get(page))
        .route(
            "/dashboard/dashboard.css",
            get(|| asset("text/css; charset=utf-8", DASHBOARD_CSS)),
        )
        .route(
            "/dashboard/dashboard.js",
            get(|| asset("text/javascript; charset=utf-8", DASHBOARD_JS)),
        )
}

/// The dashboard page.
#[utoipa::path(
    get,
    path = "/dashboard",
    operation_id = "dashboard",
    tags = ["health"],
    summary = "Health dashboard",
    description = "An HTML page listing every connection with its health, banners for connections that \
need reconnecting or are about to lapse, and recent refresh runs. It asks for an API key once and keeps it \
in the browser session; it never shows token values.",
    responses((status = 200, description = "The page", content_type = "text/html", body = String,
               example = "<!doctype html>..."))
)]
pub async fn page() -> impl IntoResponse {
    asset("text/html; charset=utf-8", INDEX_HTML).await
}

async fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, content_type),
            // The files change with the binary; a stale page after an upgrade
            // would call the API the old way.
            (CACHE_CONTROL, "no-cache"),
            (CONTENT_SECURITY_POLICY, CSP),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
}
