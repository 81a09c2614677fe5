//! Cross-provider token endpoints, including the one response that may carry
//! a token value: the audited hand-out to services that call the platform.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::AppState;
use super::auth::{Caller, Scope};
use super::error::ApiError;
use super::facebook::visible;
use crate::audit::AuditEntry;

/// `GET /tokens/{id}/access-token`.
pub async fn access_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    hand_out(&state, &caller, &id).await
}

/// `GET /facebook/pages/{page_id}/access-token`.
pub async fn page_access_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(page_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::TokensUse)?;
    let conn = state
        .tokens
        .find_page(&page_id, caller.teams())
        .ok_or_else(|| ApiError::NotFound(format!("no connection for page {page_id}")))?;
    hand_out(&state, &caller, &conn.id).await
}

async fn hand_out(state: &AppState, caller: &Caller, id: &str) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::TokensUse)?;
    visible(state, caller, id)?;
    let result = state.tokens.get_valid_token(id).await;
    state
        .audit
        .record(AuditEntry {
            at: state.tokens.now(),
            action: "access_token",
            key_id: caller.key_id.clone(),
            connection_id: id.to_string(),
            outcome: match &result {
                Ok(_) => "issued".to_string(),
                Err(e) => format!("refused: {e}"),
            },
        })
        .await;
    let token = result?;
    let conn = &token.connection;
    Ok(Json(json!({
        "connection_id": conn.id,
        "provider": conn.provider,
        "kind": conn.kind,
        "external_id": conn.external_id,
        "access_token": token.access_token.expose(),
        "expires_at": conn.expires_at,
        "health": state.tokens.health(conn),
    })))
}
