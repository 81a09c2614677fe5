//! The HTTP interface: router, shared state, authentication, rate limiting,
//! and error mapping.

mod answers;
pub mod auth;
mod callback_page;
mod dashboard;
mod data_deletion;
mod disconnect;
pub mod error;
mod examples;
mod exports;
pub mod extract;
mod facebook;
mod facebook_bodies;
mod facebook_connect;
mod facebook_webhooks;
mod google;
mod health;
mod insights;
mod keys;
mod metrics_endpoint;
pub mod oauth_state;
pub mod openapi;
mod rate_limit;
mod request_limits;
pub mod schemas;
mod state;
mod tiktok;
mod tiktok_integration;
mod tiktok_webhooks;
pub mod timeouts;
mod tokens;
mod webhook_deliveries;

use axum::Router;
use axum::handler::Handler;
use axum::routing::{delete, get, post};

use crate::access::Scope;
use auth::{Scopes, needs};

pub use state::AppState;

// The scope each protected route declares, checked before its handler's
// extractors run: authorization comes before validation.
const READ: Scopes = &[Scope::TokensRead];
const REFRESH: Scopes = &[Scope::TokensRefresh];
const ADMIN: Scopes = &[Scope::TokensAdmin];
const USE: Scopes = &[Scope::TokensUse];
const INSIGHTS: Scopes = &[Scope::InsightsRead];
const EXPORTS: Scopes = &[Scope::Exports];
const INTERNAL: Scopes = &[Scope::Internal];
/// Run records: the internal key (cron) or a reader (dashboards).
const RUNS: Scopes = &[Scope::Internal, Scope::TokensRead];

/// Every route. Protected ones pass `auth::authenticate` (401/403/429),
/// then their declared scope (403), then their extractors (400/422).
pub fn router(state: AppState) -> Router {
    let timeouts = timeouts::Timeouts::from_settings(&state.settings.server);
    let protected = Router::new()
        .route(
            "/facebook/auth/url",
            get(facebook_connect::auth_url.layer(needs(ADMIN))),
        )
        .route(
            "/facebook/auth/exchange",
            post(facebook_connect::auth_exchange.layer(needs(ADMIN))),
        )
        .route(
            "/facebook/business-tokens",
            post(facebook_connect::register_business_token.layer(needs(ADMIN))),
        )
        .route(
            "/facebook/tokens",
            get(facebook::list_tokens.layer(needs(READ))),
        )
        .route(
            "/facebook/tokens/{id}",
            get(facebook::get_token.layer(needs(READ)))
                .delete(facebook::delete_token.layer(needs(ADMIN))),
        )
        .route(
            "/facebook/tokens/{id}/refresh",
            post(facebook::refresh_token.layer(needs(REFRESH))),
        )
        .route(
            "/facebook/tokens/{id}/force-refresh",
            post(facebook::force_refresh_token.layer(needs(REFRESH))),
        )
        .route(
            "/facebook/pages/{page_id}/token-status",
            get(facebook::page_token_status.layer(needs(READ))),
        )
        .route(
            "/facebook/pages/{page_id}/access-token",
            get(tokens::page_access_token.layer(needs(USE))),
        )
        .route(
            "/facebook/debug_token",
            get(facebook::debug_token.layer(needs(READ))),
        )
        .route(
            "/facebook/check-permissions",
            get(facebook::check_permissions.layer(needs(READ))),
        )
        .route(
            "/facebook/extend-permissions",
            post(facebook_connect::extend_permissions.layer(needs(ADMIN))),
        )
        .route(
            "/facebook/internal/scheduled-refresh",
            post(facebook::scheduled_refresh.layer(needs(INTERNAL))),
        )
        .route(
            "/facebook/internal/refresh-runs/{run_id}",
            get(facebook::refresh_run.layer(needs(INTERNAL))),
        )
        .route(
            "/tokens/{id}/access-token",
            get(tokens::access_token.layer(needs(USE))),
        )
        .route(
            "/facebook/available_metrics",
            get(insights::available_metrics.layer(needs(INSIGHTS))),
        )
        .route(
            "/facebook/campaigns",
            get(insights::campaigns.layer(needs(INSIGHTS))),
        )
        .route(
            "/facebook/campaign_metrics",
            post(insights::campaign_metrics.layer(needs(INSIGHTS))),
        )
        .route(
            "/facebook/post_metrics",
            get(insights::post_metrics.layer(needs(INSIGHTS))),
        )
        .route(
            "/facebook/reel_metrics",
            get(insights::reel_metrics.layer(needs(INSIGHTS))),
        )
        .route(
            "/facebook/business_post_insights",
            get(insights::business_post_insights.layer(needs(INSIGHTS))),
        )
        .route(
            "/facebook/business_posts_and_reels_insights",
            get(insights::business_posts_and_reels_insights.layer(needs(INSIGHTS))),
        )
        .route(
            "/facebook/post_metrics_csv",
            get(exports::post_metrics_csv.layer(needs(INSIGHTS))),
        )
        .route(
            "/facebook/reel_metrics_csv",
            get(exports::reel_metrics_csv.layer(needs(INSIGHTS))),
        )
        .route(
            "/facebook/business_post_insights_csv",
            get(exports::business_post_insights_csv.layer(needs(INSIGHTS))),
        )
        .route(
            "/facebook/business_posts_and_reels_insights_csv",
            get(exports::business_posts_and_reels_insights_csv.layer(needs(INSIGHTS))),
        )
        .route(
            "/facebook/campaign_metrics_csv",
            post(exports::campaign_metrics_csv.layer(needs(INSIGHTS))),
        )
        .route(
            "/tiktok/auth/url",
            get(tiktok::auth_url.layer(needs(ADMIN))),
        )
        .route(
            "/tiktok/integrations",
            get(tiktok::list_integrations.layer(needs(READ)))
                .post(tiktok::create_integration.layer(needs(ADMIN))),
        )
        .route(
            "/tiktok/integrations/{id}/status",
            get(tiktok::integration_status.layer(needs(READ))),
        )
        .route(
            "/tiktok/integrations/{id}/refresh",
            post(tiktok::refresh_integration.layer(needs(REFRESH))),
        )
        .route("/tiktok/health", get(tiktok::health.layer(needs(READ))))
        .route(
            "/tiktok/internal/scheduled-refresh",
            post(tiktok::scheduled_refresh.layer(needs(INTERNAL))),
        )
        .route(
            "/tiktok/internal/cleanup",
            post(tiktok::cleanup.layer(needs(INTERNAL))),
        )
        .route(
            "/google/auth/url",
            get(google::auth_url.layer(needs(ADMIN))),
        )
        .route(
            "/google/campaigns",
            get(google::campaigns.layer(needs(INSIGHTS))),
        )
        .route(
            "/google/campaign_metrics",
            post(google::campaign_metrics.layer(needs(INSIGHTS))),
        )
        .route(
            "/google/campaign_metrics_csv",
            post(google::campaign_metrics_csv.layer(needs(INSIGHTS))),
        )
        .route("/tokens", get(tokens::list.layer(needs(READ))))
        .route("/tokens/health", get(tokens::health.layer(needs(READ))))
        .route(
            "/tokens/{id}",
            delete(disconnect::delete.layer(needs(ADMIN))),
        )
        .route(
            "/tokens/{id}/refresh",
            post(tokens::refresh.layer(needs(REFRESH))),
        )
        .route(
            "/internal/scheduled-refresh",
            post(tokens::scheduled_refresh.layer(needs(INTERNAL))),
        )
        .route("/internal/keys", get(keys::status.layer(needs(INTERNAL))))
        .route(
            "/webhooks/deliveries",
            get(webhook_deliveries::list.layer(needs(INTERNAL))),
        )
        .route(
            "/webhooks/deliveries/{id}",
            get(webhook_deliveries::get.layer(needs(INTERNAL))),
        )
        .route(
            "/webhooks/deliveries/{id}/retry",
            post(webhook_deliveries::retry.layer(needs(INTERNAL))),
        )
        .route(
            "/internal/keys/rotate",
            post(keys::rotate.layer(needs(INTERNAL))),
        )
        .route(
            "/internal/refresh-runs",
            get(tokens::runs.layer(needs(RUNS))),
        )
        .route(
            "/internal/refresh-runs/{run_id}",
            get(facebook::refresh_run.layer(needs(INTERNAL))),
        )
        .route(
            "/exports",
            post(exports::create.layer(needs(EXPORTS))).get(exports::list.layer(needs(EXPORTS))),
        )
        .route("/exports/{id}", get(exports::get.layer(needs(EXPORTS))))
        .route(
            "/exports/{id}/download",
            get(exports::download.layer(needs(EXPORTS))),
        )
        .route(
            "/facebook/check_business_pages_access",
            get(insights::check_business_pages_access.layer(needs(INSIGHTS))),
        )
        // Outermost runs first: authenticate, then the key's own bucket.
        .layer(rate_limit::per_key(&state.settings.api))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics_endpoint::scrape))
        .route(
            "/facebook/auth/callback",
            get(facebook_connect::auth_callback),
        )
        .route(
            "/facebook/webhooks/deauthorize",
            post(facebook_webhooks::deauthorize),
        )
        .route(
            "/facebook/webhooks/data-deletion",
            post(data_deletion::data_deletion),
        )
        .route(
            "/facebook/data-deletion/{code}",
            get(data_deletion::status_page),
        )
        .route("/tiktok/auth/callback", get(tiktok::auth_callback))
        .route("/tiktok/webhooks", post(tiktok_webhooks::receive))
        .route("/google/auth/callback", get(google::auth_callback))
        .merge(dashboard::router())
        .merge(openapi::routes())
        .merge(protected)
        .fallback(|| async { error::ApiError::NotFound("no such endpoint".into()) })
        .method_not_allowed_fallback(|| async { error::ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn_with_state(
            timeouts,
            timeouts::limit,
        ))
        .layer(axum::middleware::from_fn(request_limits::check))
        .layer(axum::middleware::from_fn(metrics_endpoint::track_http))
        .with_state(state)
}
