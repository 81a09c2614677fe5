//! Liveness and readiness probes.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiError;
use super::examples as ex;
use super::schemas::responses as r;
use super::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct Liveness {
    /// Always `ok`.
    pub status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct StoreFacts {
    pub connections: u64,
    pub generation: u64,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// Always `ready`.
    pub status: &'static str,
    pub store: StoreFacts,
}

/// The process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tags = ["health"],
    summary = "Liveness",
    description = "The process is up. Public.",
    responses(
        (status = 200, description = "OK", body = Liveness, example = json!(ex::liveness()))
    ),
)]
pub async fn healthz() -> Json<Liveness> {
    Json(Liveness { status: "ok" })
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
        (status = 200, description = "Ready", body = Readiness, example = json!(ex::readiness())),
        (status = 503, response = r::Unavailable)
    ),
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Readiness>, ApiError> {
    let store = state
        .store
        .ready()
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(Json(Readiness {
        status: "ready",
        store: StoreFacts {
            connections: store.connections as u64,
            generation: store.generation,
        },
    }))
}
