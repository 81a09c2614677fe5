//! The HTTP interface: router, shared state, authentication, rate limiting,
//! and error mapping.

pub mod auth;
mod callback_page;
mod dashboard;
pub mod error;
mod examples;
mod exports;
pub mod extract;
mod facebook;
mod google;
mod health;
mod insights;
pub mod oauth_state;
pub mod openapi;
mod rate_limit;
pub mod schemas;
mod tiktok;
mod tokens;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::audit::AuditLog;
use crate::config::Settings;
use crate::insights::InsightsService;
use crate::store::Store;
use crate::tokens::TokenManager;

/// Provider clients used by connect flows and insights outside the
/// TokenManager (each `None` when its credentials are not configured).
#[derive(Default)]
pub struct Connectors {
    pub tiktok: Option<Arc<crate::providers::tiktok::TiktokClient>>,
    pub google: Option<Arc<crate::providers::google::GoogleOAuth>>,
    pub google_ads: Option<Arc<crate::providers::google::ads::GoogleAds>>,
}

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub tokens: Arc<TokenManager>,
    pub insights: Arc<InsightsService>,
    pub next_runs: Arc<crate::scheduler::NextRuns>,
    pub exports: Arc<crate::export::jobs::Exports>,
    pub connectors: Arc<Connectors>,
    pub keys: Arc<auth::ApiKeys>,
    pub oauth: Arc<oauth_state::StateSigner>,
    pub audit: Arc<AuditLog>,
}

pub fn router(state: AppState) -> Router {
    let protected = Router::new()
        .route("/facebook/auth/url", get(facebook::auth_url))
        .route("/facebook/auth/exchange", post(facebook::auth_exchange))
        .route(
            "/facebook/business-tokens",
            post(facebook::register_business_token),
        )
        .route("/facebook/tokens", get(facebook::list_tokens))
        .route(
            "/facebook/tokens/{id}",
            get(facebook::get_token).delete(facebook::delete_token),
        )
        .route(
            "/facebook/tokens/{id}/refresh",
            post(facebook::refresh_token),
        )
        .route(
            "/facebook/tokens/{id}/force-refresh",
            post(facebook::force_refresh_token),
        )
        .route(
            "/facebook/pages/{page_id}/token-status",
            get(facebook::page_token_status),
        )
        .route(
            "/facebook/pages/{page_id}/access-token",
            get(tokens::page_access_token),
        )
        .route("/facebook/debug_token", get(facebook::debug_token))
        .route(
            "/facebook/check-permissions",
            get(facebook::check_permissions),
        )
        .route(
            "/facebook/extend-permissions",
            post(facebook::extend_permissions),
        )
        .route(
            "/facebook/internal/scheduled-refresh",
            post(facebook::scheduled_refresh),
        )
        .route(
            "/facebook/internal/refresh-runs/{run_id}",
            get(facebook::refresh_run),
        )
        .route("/tokens/{id}/access-token", get(tokens::access_token))
        .route(
            "/facebook/available_metrics",
            get(insights::available_metrics),
        )
        .route("/facebook/campaigns", get(insights::campaigns))
        .route(
            "/facebook/campaign_metrics",
            post(insights::campaign_metrics),
        )
        .route("/facebook/post_metrics", get(insights::post_metrics))
        .route("/facebook/reel_metrics", get(insights::reel_metrics))
        .route(
            "/facebook/business_post_insights",
            get(insights::business_post_insights),
        )
        .route(
            "/facebook/business_posts_and_reels_insights",
            get(insights::business_posts_and_reels_insights),
        )
        .route("/facebook/post_metrics_csv", get(exports::post_metrics_csv))
        .route("/facebook/reel_metrics_csv", get(exports::reel_metrics_csv))
        .route(
            "/facebook/business_post_insights_csv",
            get(exports::business_post_insights_csv),
        )
        .route(
            "/facebook/business_posts_and_reels_insights_csv",
            get(exports::business_posts_and_reels_insights_csv),
        )
        .route(
            "/facebook/campaign_metrics_csv",
            post(exports::campaign_metrics_csv),
        )
        .route("/tiktok/auth/url", get(tiktok::auth_url))
        .route(
            "/tiktok/integrations",
            get(tiktok::list_integrations).post(tiktok::create_integration),
        )
        .route(
            "/tiktok/integrations/{id}/status",
            get(tiktok::integration_status),
        )
        .route(
            "/tiktok/integrations/{id}/refresh",
            post(tiktok::refresh_integration),
        )
        .route("/tiktok/health", get(tiktok::health))
        .route(
            "/tiktok/internal/scheduled-refresh",
            post(tiktok::scheduled_refresh),
        )
        .route("/tiktok/internal/cleanup", post(tiktok::cleanup))
        .route("/google/auth/url", get(google::auth_url))
        .route("/google/campaigns", get(google::campaigns))
        .route("/google/campaign_metrics", post(google::campaign_metrics))
        .route(
            "/google/campaign_metrics_csv",
            post(google::campaign_metrics_csv),
        )
        .route("/tokens", get(tokens::list))
        .route("/tokens/health", get(tokens::health))
        .route("/tokens/{id}/refresh", post(tokens::refresh))
        .route(
            "/internal/scheduled-refresh",
            post(tokens::scheduled_refresh),
        )
        .route("/internal/refresh-runs", get(tokens::runs))
        .route(
            "/internal/refresh-runs/{run_id}",
            get(facebook::refresh_run),
        )
        .route("/exports", post(exports::create).get(exports::list))
        .route("/exports/{id}", get(exports::get))
        .route("/exports/{id}/download", get(exports::download))
        .route(
            "/facebook/check_business_pages_access",
            get(insights::check_business_pages_access),
        )
        .layer(rate_limit::layer(&state.settings.api));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(crate::metrics::scrape))
        .route("/facebook/auth/callback", get(facebook::auth_callback))
        .route("/tiktok/auth/callback", get(tiktok::auth_callback))
        .route("/google/auth/callback", get(google::auth_callback))
        .merge(dashboard::router())
        .merge(openapi::routes())
        .merge(protected)
        .fallback(|| async { error::ApiError::NotFound("no such endpoint".into()) })
        .layer(axum::middleware::from_fn(crate::metrics::track_http))
        .with_state(state)
}
