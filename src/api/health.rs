//! Liveness and readiness probes.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::examples as ex;
use super::schemas::{self as s, responses as r};

/// The process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tags = ["health"],
    summary = "Liveness",
    description = "The process is up. Public.",
    responses(
        (status = 200, description = "OK", body = s::Liveness, example = json!(ex::liveness()))
    ),
)]
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The store is loaded and writable: probed by a small synced write in the
/// data folder (at most once a second), so readiness returns with the disk.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tags = ["health"],
    summary = "Readiness",
    description = "The store is loaded and its folder takes a write now (probed at most once a second). Public.",
    responses(
        (status = 200, description = "Ready", body = s::Readiness, example = json!(ex::readiness())),
        (status = 503, response = r::Unavailable)
    ),
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let store = state
        .store
        .ready()
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(Json(json!({
        "status": "ready",
        "store": { "connections": store.connections, "generation": store.generation }
    })))
}
