//! Per-key rate limiting (tower-governor): each API key has its own bucket;
//! requests without a key share one. Over the limit: 429 with Retry-After in
//! our error envelope.

use axum::body::Body;
use axum::response::IntoResponse;
use tower_governor::GovernorError;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::KeyExtractor;

use super::auth::{digest, presented_key};
use super::error::ApiError;
use crate::config::ApiSettings;

/// Keys requests by the SHA-256 of their API key (never the key itself).
#[derive(Debug, Clone, Copy)]
pub struct ApiKeyExtractor;

impl KeyExtractor for ApiKeyExtractor {
    type Key = [u8; 32];

    fn extract<T>(&self, req: &axum::http::Request<T>) -> Result<Self::Key, GovernorError> {
        Ok(presented_key(req.headers()).map_or([0u8; 32], digest))
    }
}

pub type Layer = tower_governor::GovernorLayer<
    ApiKeyExtractor,
    governor::middleware::NoOpMiddleware<governor::clock::QuantaInstant>,
    Body,
>;

pub fn layer(settings: &ApiSettings) -> Layer {
    let config = GovernorConfigBuilder::default()
        .key_extractor(ApiKeyExtractor)
        .period(std::time::Duration::from_nanos(
            1_000_000_000 / settings.rate_limit_per_second,
        ))
        .burst_size(settings.rate_limit_burst)
        .finish()
        .expect("rate and burst are validated at load");
    tower_governor::GovernorLayer::new(config).error_handler(|e| match e {
        GovernorError::TooManyRequests { wait_time, .. } => ApiError::RateLimited {
            retry_after_secs: wait_time,
        }
        .into_response(),
        other => ApiError::Internal(format!("rate limiter: {other}")).into_response(),
    })
}
