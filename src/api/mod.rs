//! The HTTP interface: router, shared state, and error mapping.

pub mod error;
mod health;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::config::Settings;
use crate::store::Store;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Store,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(|| async { error::ApiError::NotFound("no such endpoint".into()) })
        .with_state(state)
}
