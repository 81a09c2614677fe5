//! `GET /internal/keys` and `POST /internal/keys/rotate`: which keys seal
//! the stored secrets, and re-sealing them all under the current key while
//! the service serves (the `keys` commands, for the JSON store the service
//! holds).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::ApiError;
use super::schemas::responses as r;
use super::state::AppState;
use crate::access::Scope;
use crate::store::ListFilter;
use crate::store::rotation::{self, RotationReport};
use crate::store::secret_check::{self, KeyCensus};

/// The keys that seal the stored secrets.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeysInUse {
    /// The current key's id: what secrets are sealed with.
    pub current: String,
    /// The previous keys' ids: secrets sealed with them still open.
    pub previous: Vec<String>,
    /// Secrets by the id of the key that sealed them.
    pub in_use: BTreeMap<String, usize>,
    /// Secrets sealed before secrets were bound to their records; a
    /// rotation binds them.
    pub unbound: usize,
}

/// A finished rotation.
#[derive(Debug, Serialize, ToSchema)]
pub struct Rotated {
    pub connections: usize,
    /// Connections whose secrets were sealed again.
    pub resealed: usize,
    /// The current key's id.
    pub key_id: String,
    /// Secrets by key after the rotation: only the current one unless
    /// another instance with another key wrote meanwhile.
    pub in_use: BTreeMap<String, usize>,
    pub unbound: usize,
}

fn keys_in_use(state: &AppState, census: KeyCensus) -> Result<KeysInUse, ApiError> {
    let cipher = state.store.secrets()?.cipher();
    Ok(KeysInUse {
        current: cipher.key_id().to_string(),
        previous: cipher
            .previous_ids()
            .into_iter()
            .map(str::to_string)
            .collect(),
        in_use: census.kids,
        unbound: census.unbound,
    })
}

/// `GET /internal/keys`.
#[utoipa::path(
    get,
    path = "/internal/keys",
    operation_id = "internal_keys",
    tags = ["internal"],
    summary = "Keys in use",
    description = "The configured keys (ids only, never a key) and how many stored secrets each seals. Takes the internal key (scope `internal`).",
    responses(
        (status = 200, description = "OK", body = KeysInUse, example = json!({
            "current": "k-3f9a1c2b7d10", "previous": ["k-0be4d2a9c811"],
            "in_use": {"k-3f9a1c2b7d10": 118, "k-0be4d2a9c811": 32}, "unbound": 0
        })),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited)
    ),
    security(("api_key" = ["internal"]), ("bearer" = ["internal"])),
)]
pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<KeysInUse>, ApiError> {
    caller.require(Scope::Internal)?;
    let all = state.store.list(&ListFilter::default()).await?;
    let census = secret_check::census(all.iter().map(|c| &**c));
    Ok(Json(keys_in_use(&state, census)?))
}

/// `POST /internal/keys/rotate`.
#[utoipa::path(
    post,
    path = "/internal/keys/rotate",
    operation_id = "internal_keys_rotate",
    tags = ["internal"],
    summary = "Re-seal every secret under the current key",
    description = "Re-seals, many at a time, every secret not sealed with the current key (or not yet bound to its record) while the service serves; refreshes go on. Answers when done; if the request times out the rotation goes on, and calling again resumes where it stands. 409 `conflict` while one is running. Takes the internal key (scope `internal`).",
    responses(
        (status = 200, description = "Done", body = Rotated, example = json!({
            "connections": 150, "resealed": 32, "key_id": "k-3f9a1c2b7d10",
            "in_use": {"k-3f9a1c2b7d10": 150}, "unbound": 0
        })),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited),
        (status = 409, response = r::Conflict)
    ),
    security(("api_key" = ["internal"]), ("bearer" = ["internal"])),
)]
pub async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Rotated>, ApiError> {
    caller.require(Scope::Internal)?;
    let Ok(running) = state.key_rotation.clone().try_lock_owned() else {
        return Err(ApiError::Conflict(
            "a key rotation is running; call again when it has finished".into(),
        ));
    };
    let store = state.store.clone();
    // Its own task: a request that times out or goes away does not stop it.
    let task = tokio::spawn(async move {
        let _running = running;
        rotation::rotate(&*store, rotation::DEFAULT_AT_ONCE, &|p| {
            tracing::debug!(resealed = p.resealed, of = p.to_reseal, "key rotation");
        })
        .await
    });
    let report: RotationReport = task
        .await
        .map_err(|e| ApiError::Internal(format!("the key rotation stopped: {e}")))??;
    tracing::info!(
        resealed = report.resealed,
        key = %report.key_id,
        "key rotation finished"
    );
    Ok(Json(Rotated {
        connections: report.connections,
        resealed: report.resealed,
        key_id: report.key_id,
        in_use: report.in_use.kids,
        unbound: report.in_use.unbound,
    }))
}
