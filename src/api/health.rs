//! Liveness and readiness probes.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;

/// The process is up.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The store is loaded and writable.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.store.health().map_err(ApiError::Unavailable)?;
    let doc = state.store.snapshot();
    Ok(Json(json!({
        "status": "ready",
        "store": { "connections": doc.connections.len(), "generation": doc.generation }
    })))
}
