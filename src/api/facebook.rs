//! `/facebook/...`: connect, list and inspect tokens, refresh, permissions,
//! business tokens, and the internal scheduled refresh.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::{Caller, Scope};
use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery, check_token_input};
use crate::secret::Secret;
use crate::store::{Connection, ConnectionKind, Provider};
use crate::tokens::{ConnectionFilter, Health, SweepFilter};

#[derive(Debug, Deserialize)]
pub struct TeamQuery {
    pub team_id: Option<String>,
}

/// `GET /facebook/auth/url`: the Login dialog URL with a signed, single-use state.
pub async fn auth_url(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<TeamQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::TokensAdmin)?;
    caller.require_team(q.team_id.as_deref())?;
    let now = state.tokens.now();
    let (oauth_state, expires_at) = state.oauth.issue("facebook", q.team_id, None, None, now);
    let scopes = &state.settings.facebook.scopes;
    let url = state
        .tokens
        .facebook_dialog_url(&oauth_state, scopes, false)?;
    Ok(Json(
        json!({ "url": url, "state": oauth_state, "state_expires_at": expires_at }),
    ))
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// `GET /facebook/auth/callback`: the browser comes back from the dialog.
/// Public: the signed state is its authentication.
pub async fn auth_callback(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<CallbackQuery>,
) -> Result<Json<Value>, ApiError> {
    if let Some(error) = q.error {
        return Err(ApiError::bad_request(
            "error",
            format!(
                "Facebook did not grant access: {error}{}",
                q.error_description
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ),
        ));
    }
    let oauth_state = q
        .state
        .ok_or_else(|| ApiError::bad_request("state", "is required"))?;
    let code = q
        .code
        .ok_or_else(|| ApiError::bad_request("code", "is required"))?;
    let payload = state
        .oauth
        .accept(&oauth_state, "facebook", state.tokens.now())?;
    let connections = state
        .tokens
        .connect_facebook_code(&code, &state.settings.facebook.redirect_uri, payload.t)
        .await?;
    Ok(Json(connected(&state, &connections)))
}

#[derive(Debug, Deserialize)]
pub struct ExchangeBody {
    pub access_token: String,
    pub team_id: Option<String>,
}

/// `POST /facebook/auth/exchange`: connect from a short-lived user token.
pub async fn auth_exchange(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ExchangeBody>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::TokensAdmin)?;
    caller.require_team(body.team_id.as_deref())?;
    check_token_input("access_token", &body.access_token)?;
    let connections = state
        .tokens
        .connect_facebook_user_token(&Secret::new(body.access_token), body.team_id)
        .await?;
    Ok(Json(connected(&state, &connections)))
}

#[derive(Debug, Deserialize)]
pub struct BusinessTokenBody {
    pub access_token: String,
    pub label: Option<String>,
    pub team_id: Option<String>,
}

/// `POST /facebook/business-tokens`: register a system-user token.
pub async fn register_business_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<BusinessTokenBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(Scope::TokensAdmin)?;
    caller.require_team(body.team_id.as_deref())?;
    check_token_input("access_token", &body.access_token)?;
    let conn = state
        .tokens
        .register_facebook_business_token(&Secret::new(body.access_token), body.label, body.team_id)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "connection": state.tokens.facts(&conn) })),
    ))
}

fn connected(state: &AppState, connections: &[Arc<Connection>]) -> Value {
    json!({
        "connected": connections.len(),
        "connections": connections.iter().map(|c| state.tokens.facts(c)).collect::<Vec<_>>(),
    })
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub team_id: Option<String>,
    pub health: Option<String>,
    pub kind: Option<String>,
}

/// `GET /facebook/tokens`: connections' facts, never token values.
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::TokensRead)?;
    let filter = ConnectionFilter {
        provider: Some(Provider::Facebook),
        kind: q.kind.as_deref().map(parse_kind).transpose()?,
        health: q.health.as_deref().map(parse_health).transpose()?,
        team_id: q.team_id,
        visible_teams: caller.teams().map(<[String]>::to_vec),
    };
    let items: Vec<Value> = state
        .tokens
        .list(&filter)
        .iter()
        .map(|c| state.tokens.facts(c))
        .collect();
    Ok(Json(json!({ "count": items.len(), "connections": items })))
}

pub fn parse_kind(text: &str) -> Result<ConnectionKind, ApiError> {
    serde_json::from_value(json!(text)).map_err(|_| {
        ApiError::bad_request("kind", "must be one of user, page, system_user, shop, ads")
    })
}

pub fn parse_health(text: &str) -> Result<Health, ApiError> {
    Health::parse(text).ok_or_else(|| {
        ApiError::bad_request(
            "health",
            "must be one of healthy, expiring_soon, needs_refresh, degraded, expired, cannot_refresh, reauth_required",
        )
    })
}

/// A connection the caller may see, or 404 (never revealing other teams').
pub fn visible(state: &AppState, caller: &Caller, id: &str) -> Result<Arc<Connection>, ApiError> {
    state
        .tokens
        .get(id)
        .ok()
        .filter(|c| caller.can_see(c.team_id.as_deref()))
        .ok_or_else(|| ApiError::NotFound(format!("connection {id} not found")))
}

/// `GET /facebook/tokens/{id}`.
pub async fn get_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::TokensRead)?;
    let conn = visible(&state, &caller, &id)?;
    Ok(Json(json!({ "connection": state.tokens.facts(&conn) })))
}

/// `GET /facebook/pages/{page_id}/token-status`.
pub async fn page_token_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(page_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::TokensRead)?;
    let conn = state
        .tokens
        .find_page(&page_id, caller.teams())
        .ok_or_else(|| ApiError::NotFound(format!("no connection for page {page_id}")))?;
    let health = state.tokens.health(&conn);
    Ok(Json(json!({
        "page_id": page_id,
        "health": health,
        "usable": health.is_usable(),
        "reauth_required": conn.reauth_required,
        "connection": state.tokens.facts(&conn),
    })))
}

async fn refresh(
    state: &AppState,
    caller: &Caller,
    id: &str,
    force: bool,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::TokensRefresh)?;
    let before = visible(state, caller, id)?;
    let after = state.tokens.refresh(id, force).await?;
    Ok(Json(json!({
        "refreshed": after.last_refreshed_at != before.last_refreshed_at,
        "connection": state.tokens.facts(&after),
    })))
}

/// `POST /facebook/tokens/{id}/refresh`: refresh if due.
pub async fn refresh_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    refresh(&state, &caller, &id, false).await
}

/// `POST /facebook/tokens/{id}/force-refresh`: refresh now.
pub async fn force_refresh_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    refresh(&state, &caller, &id, true).await
}

/// `DELETE /facebook/tokens/{id}`.
pub async fn delete_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Scope::TokensAdmin)?;
    visible(&state, &caller, &id)?;
    state.tokens.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
pub struct ConnectionQuery {
    pub connection_id: Option<String>,
    pub required: Option<String>,
}

fn connection_id(q: &ConnectionQuery) -> Result<&str, ApiError> {
    q.connection_id
        .as_deref()
        .ok_or_else(|| ApiError::bad_request("connection_id", "is required"))
}

/// `GET /facebook/debug_token?connection_id=`: what Facebook says of the token.
pub async fn debug_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ConnectionQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::TokensRead)?;
    let conn = visible(&state, &caller, connection_id(&q)?)?;
    let info = state.tokens.debug_facebook_token(&conn.id).await?;
    Ok(Json(json!({
        "connection_id": conn.id,
        "is_valid": info.is_valid,
        "type": info.token_type,
        "app_id": info.app_id,
        "user_id": info.user_id,
        "profile_id": info.profile_id,
        "expires_at": info.expires_at,
        "data_access_expires_at": info.data_access_expires_at,
        "issued_at": info.issued_at,
        "scopes": info.scopes,
        "error": info.error.map(|(code, subcode, message)| json!({"code": code, "subcode": subcode, "message": message})),
    })))
}

/// `GET /facebook/check-permissions?connection_id=&required=a,b`.
pub async fn check_permissions(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ConnectionQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::TokensRead)?;
    let conn = visible(&state, &caller, connection_id(&q)?)?;
    let required: Vec<String> = match &q.required {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        None => state.settings.facebook.scopes.clone(),
    };
    let missing: Vec<&String> = required
        .iter()
        .filter(|s| !conn.scopes.contains(s))
        .collect();
    Ok(Json(json!({
        "connection_id": conn.id,
        "granted": conn.scopes,
        "required": required,
        "missing": missing,
        "ok": missing.is_empty(),
    })))
}

#[derive(Debug, Deserialize)]
pub struct ExtendBody {
    pub scopes: Option<Vec<String>>,
    pub team_id: Option<String>,
}

/// `POST /facebook/extend-permissions`: a dialog URL that asks again for
/// declined permissions (`auth_type=rerequest`).
pub async fn extend_permissions(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ExtendBody>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::TokensAdmin)?;
    caller.require_team(body.team_id.as_deref())?;
    let scopes = body
        .scopes
        .unwrap_or_else(|| state.settings.facebook.scopes.clone());
    if scopes.is_empty() {
        return Err(ApiError::unprocessable(
            "scopes",
            "must name at least one permission",
        ));
    }
    let (oauth_state, expires_at) =
        state
            .oauth
            .issue("facebook", body.team_id, None, None, state.tokens.now());
    let url = state
        .tokens
        .facebook_dialog_url(&oauth_state, &scopes, true)?;
    Ok(Json(
        json!({ "url": url, "state": oauth_state, "state_expires_at": expires_at, "scopes": scopes }),
    ))
}

#[derive(Debug, Deserialize)]
pub struct SweepQuery {
    pub wait: Option<bool>,
}

/// `POST /facebook/internal/scheduled-refresh`: run a sweep now.
pub async fn scheduled_refresh(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<SweepQuery>,
) -> Result<Response, ApiError> {
    run_sweep(
        &state,
        &caller,
        Some(Provider::Facebook),
        q.wait.unwrap_or(true),
    )
    .await
}

/// Starts a sweep; answers with its summary, or 202 and its id when not waiting.
pub async fn run_sweep(
    state: &AppState,
    caller: &Caller,
    provider: Option<Provider>,
    wait: bool,
) -> Result<Response, ApiError> {
    caller.require(Scope::Internal)?;
    let filter = SweepFilter {
        provider,
        teams: caller.teams().map(<[String]>::to_vec),
        ..SweepFilter::default()
    };
    let (run_id, handle) = state
        .tokens
        .start_sweep("api", filter)
        .map_err(ApiError::RunInProgress)?;
    if !wait {
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "run_id": run_id, "status": "running" })),
        )
            .into_response());
    }
    let run = handle
        .await
        .map_err(|e| ApiError::Internal(format!("sweep task failed: {e}")))?;
    Ok(Json(json!({ "run": run })).into_response())
}

/// `GET /facebook/internal/refresh-runs/{run_id}`.
pub async fn refresh_run(
    State(state): State<AppState>,
    caller: Caller,
    Path(run_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Internal)?;
    let run = state
        .tokens
        .run(&run_id)
        .ok_or_else(|| ApiError::NotFound(format!("refresh run {run_id} not found")))?;
    Ok(Json(json!({ "run": run })))
}
