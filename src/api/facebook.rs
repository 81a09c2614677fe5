//! `/facebook/...`: list and inspect tokens, refresh, permissions, and the
//! internal scheduled refresh (connecting is in `facebook_connect`). The
//! request and answer bodies are in `facebook_bodies`.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;

use super::answers::{ConnectionEnvelope, ConnectionList, RefreshResult, RunEnvelope, RunStarted};
use super::auth::Caller;
use super::disconnect::{DisconnectQuery, Disconnected, disconnect_visible, has_derived_example};
use super::error::ApiError;
use super::examples as ex;
use super::extract::ApiQuery;
use super::facebook_bodies::{
    DebugTokenError, DebugTokenResponse, PageTokenStatus, PermissionCheck,
};
use super::schemas::responses as r;
use super::state::AppState;
use super::tokens::{
    page_connection, parse_health, parse_kind, refresh_visible, run_sweep, visible,
};
use crate::access::Scope;
use crate::domain::Provider;
use crate::providers::facebook::lifecycle::invalid_token_error;
use crate::tokens::{ConnectionFilter, Need, TokenError};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this team's connections.
    pub team_id: Option<String>,
    /// Only this health.
    #[param(inline, value_type = Option<crate::api::schemas::filters::HealthName>)]
    pub health: Option<String>,
    /// Only this kind.
    #[param(inline, value_type = Option<crate::api::schemas::filters::KindName>)]
    pub kind: Option<String>,
}

/// `GET /facebook/tokens`: connections' facts, never token values.
#[utoipa::path(
    get,
    path = "/facebook/tokens",
    operation_id = "facebook_list_tokens",
    tags = ["facebook", "tokens"],
    summary = "List Facebook connections",
    description = "Facebook connections the key may see: facts only, never token values. Scope `tokens:read`.",
    params(ListQuery),
    responses(
        (status = 200, description = "OK", body = ConnectionList, example = json!(ex::connection_list())),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited),
        (status = 400, response = r::BadRequest)
    ),
    security(("api_key" = ["tokens:read"]), ("bearer" = ["tokens:read"])),
)]
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<ConnectionList>, ApiError> {
    let filter = ConnectionFilter {
        provider: Some(Provider::Facebook),
        kind: q.kind.as_deref().map(parse_kind).transpose()?,
        health: q.health.as_deref().map(parse_health).transpose()?,
        team_id: q.team_id,
        visible_teams: caller.teams().map(<[String]>::to_vec),
    };
    let conns = state.tokens.list(&filter).await?;
    Ok(Json(ConnectionList::of(&state.tokens, &conns)))
}

/// `GET /facebook/tokens/{id}`.
#[utoipa::path(
    get,
    path = "/facebook/tokens/{id}",
    operation_id = "facebook_get_token",
    tags = ["facebook", "tokens"],
    summary = "One connection",
    description = "A connection's facts. Scope `tokens:read`.",
    params(("id" = String, Path, description = "The connection id", example = "conn_8f3a2c")),
    responses(
        (status = 200, description = "OK", body = ConnectionEnvelope, example = json!(ex::connection())),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited),
        (status = 404, response = r::NotFound), (status = 422, response = r::WrongConnection)
    ),
    security(("api_key" = ["tokens:read"]), ("bearer" = ["tokens:read"])),
)]
pub async fn get_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ConnectionEnvelope>, ApiError> {
    let conn = visible(&state, &caller, "id", &id, Some(Provider::Facebook)).await?;
    Ok(Json(ConnectionEnvelope::of(&state.tokens, &conn)))
}

/// `GET /facebook/pages/{page_id}/token-status`.
#[utoipa::path(
    get,
    path = "/facebook/pages/{page_id}/token-status",
    operation_id = "facebook_page_token_status",
    tags = ["facebook", "tokens"],
    summary = "Token status of a page",
    description = "The health of the connection that serves a Facebook page, and whether it is usable. Scope `tokens:read`.",
    params(("page_id" = String, Path, description = "The Facebook page id", example = "104729381234567")),
    responses(
        (status = 200, description = "OK", body = PageTokenStatus, example = json!(ex::page_token_status())),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited),
        (status = 404, response = r::NotFound)
    ),
    security(("api_key" = ["tokens:read"]), ("bearer" = ["tokens:read"])),
)]
pub async fn page_token_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(page_id): Path<String>,
) -> Result<Json<PageTokenStatus>, ApiError> {
    let conn = page_connection(&state, &caller, &page_id).await?;
    let health = state.tokens.health(&conn);
    Ok(Json(PageTokenStatus {
        page_id,
        health,
        usable: health.is_usable(),
        reauth_required: conn.reauth_required,
        connection: state.tokens.facts(&conn),
    }))
}

/// `POST /facebook/tokens/{id}/refresh`: refresh if due.
#[utoipa::path(
    post,
    path = "/facebook/tokens/{id}/refresh",
    operation_id = "facebook_refresh_token",
    tags = ["facebook", "tokens"],
    summary = "Refresh if due",
    description = "Refreshes the connection if it is due (`refreshed: false` otherwise). Scope `tokens:refresh`.",
    params(("id" = String, Path, description = "The connection id", example = "conn_8f3a2c")),
    responses(
        (status = 200, description = "OK", body = RefreshResult, example = json!(ex::refresh_result())),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited),
        (status = 404, response = r::NotFound), (status = 409, response = r::Conflict), (status = 502, response = r::BadGateway), (status = 503, response = r::Unavailable), (status = 422, response = r::WrongConnection)
    ),
    security(("api_key" = ["tokens:refresh"]), ("bearer" = ["tokens:refresh"])),
)]
pub async fn refresh_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RefreshResult>, ApiError> {
    refresh_visible(&state, &caller, &id, Some(Provider::Facebook), false).await
}

/// `POST /facebook/tokens/{id}/force-refresh`: refresh now.
#[utoipa::path(
    post,
    path = "/facebook/tokens/{id}/force-refresh",
    operation_id = "facebook_force_refresh_token",
    tags = ["facebook", "tokens"],
    summary = "Refresh now",
    description = "Refreshes the connection now, due or not. Scope `tokens:refresh`.",
    params(("id" = String, Path, description = "The connection id", example = "conn_8f3a2c")),
    responses(
        (status = 200, description = "OK", body = RefreshResult, example = json!(ex::refresh_result())),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited),
        (status = 404, response = r::NotFound), (status = 409, response = r::Conflict), (status = 502, response = r::BadGateway), (status = 503, response = r::Unavailable), (status = 422, response = r::WrongConnection)
    ),
    security(("api_key" = ["tokens:refresh"]), ("bearer" = ["tokens:refresh"])),
)]
pub async fn force_refresh_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RefreshResult>, ApiError> {
    refresh_visible(&state, &caller, &id, Some(Provider::Facebook), true).await
}

/// `DELETE /facebook/tokens/{id}?revoke=&cascade=`.
#[utoipa::path(
    delete,
    path = "/facebook/tokens/{id}",
    operation_id = "facebook_delete_token",
    tags = ["facebook", "tokens"],
    summary = "Delete a connection",
    description = "Removes a Facebook connection and its secrets, as `DELETE /tokens/{id}` does (the same `revoke` and `cascade`; see there). `revoke=true` on a user connection calls Facebook `DELETE /{user-id}/permissions`, which ends its pages' tokens too; a page or business connection has no revocation of its own (`not_supported`). A user connection with pages is refused with 409 `has_derived_connections` naming them, unless `cascade=true`. 204 without `revoke` or `cascade`, else 200 with the deleted connections. Scope `tokens:admin`.",
    params(("id" = String, Path, description = "The connection id", example = "conn_8f3a2c"), DisconnectQuery),
    responses(
        (status = 200, description = "Deleted (with `revoke` or `cascade`)", body = Disconnected, example = json!({"deleted": [{"id": "conn_8f3a2c", "provider": "facebook", "kind": "page", "external_id": "104729381234567", "label": "Acme Coffee (page)", "parent_id": "conn_71bd09", "revocation": "not_supported", "reason": "a page token has no revocation of its own: Meta ends it with the login of the user it came from; disconnect that user connection with revoke=true (and cascade=true) to revoke the user and every page"}]})),
        (status = 204, description = "Deleted (neither `revoke` nor `cascade`)"),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited),
        (status = 400, response = r::BadRequest), (status = 404, response = r::NotFound),
        (status = 409, description = "The user connection has pages and `cascade` is not set (`has_derived_connections`); nothing was deleted", body = super::schemas::ErrorBody, example = json!(has_derived_example())),
        (status = 502, response = r::BadGateway), (status = 503, response = r::Unavailable), (status = 422, response = r::WrongConnection)
    ),
    security(("api_key" = ["tokens:admin"]), ("bearer" = ["tokens:admin"])),
)]
pub async fn delete_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DisconnectQuery>,
) -> Result<Response, ApiError> {
    disconnect_visible(&state, &caller, &id, Some(Provider::Facebook), &q).await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConnectionQuery {
    /// The connection to inspect.
    #[param(required = true, value_type = String)]
    pub connection_id: Option<String>,
    /// Comma-separated permissions to check; default: the configured scopes.
    pub required: Option<String>,
}

fn connection_id(q: &ConnectionQuery) -> Result<&str, ApiError> {
    q.connection_id
        .as_deref()
        .ok_or_else(|| ApiError::bad_request("connection_id", "is required"))
}

/// `GET /facebook/debug_token?connection_id=`: what Facebook says of the token.
#[utoipa::path(
    get,
    path = "/facebook/debug_token",
    operation_id = "facebook_debug_token",
    tags = ["facebook", "tokens"],
    summary = "What Facebook says of a token",
    description = "Calls Facebook `debug_token` for the connection's token. Scope `tokens:read`.",
    params(ConnectionQuery),
    responses(
        (status = 200, description = "OK", body = DebugTokenResponse, example = json!(ex::debug_token())),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited),
        (status = 400, response = r::BadRequest), (status = 404, response = r::NotFound), (status = 409, response = r::Conflict), (status = 502, response = r::BadGateway), (status = 503, response = r::Unavailable), (status = 422, response = r::WrongConnection)
    ),
    security(("api_key" = ["tokens:read"]), ("bearer" = ["tokens:read"])),
)]
pub async fn debug_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ConnectionQuery>,
) -> Result<Json<DebugTokenResponse>, ApiError> {
    let need = Need::of("connection_id", Provider::Facebook, &[], caller.teams());
    let stored = state
        .tokens
        .stored_token_for(connection_id(&q)?, &need)
        .await?;
    let conn = stored.connection;
    let graph = state.registry.facebook()?;
    // An error of the call itself is about the app token it is made with;
    // only `is_valid: false` speaks of the connection's token.
    let info = state
        .tokens
        .upstream()
        .run(|| graph.debug_token(&stored.access_token))
        .await
        .map_err(TokenError::from)?;
    if !info.is_valid {
        state
            .tokens
            .observe(&conn.id, &invalid_token_error(&info))
            .await;
    }
    Ok(Json(DebugTokenResponse {
        connection_id: conn.id.clone(),
        is_valid: info.is_valid,
        token_type: info.token_type,
        app_id: info.app_id,
        user_id: info.user_id,
        profile_id: info.profile_id,
        expires_at: info.expires_at,
        data_access_expires_at: info.data_access_expires_at,
        issued_at: info.issued_at,
        scopes: info.scopes,
        error: info.error.map(|(code, subcode, message)| DebugTokenError {
            code,
            subcode,
            message,
        }),
    }))
}

/// `GET /facebook/check-permissions?connection_id=&required=a,b`.
#[utoipa::path(
    get,
    path = "/facebook/check-permissions",
    operation_id = "facebook_check_permissions",
    tags = ["facebook", "tokens"],
    summary = "Granted against required permissions",
    description = "Compares the connection's granted permissions with `required` (comma-separated; default: the configured scopes). Scope `tokens:read`.",
    params(ConnectionQuery),
    responses(
        (status = 200, description = "OK", body = PermissionCheck, example = json!(ex::permission_check())),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited),
        (status = 400, response = r::BadRequest), (status = 404, response = r::NotFound), (status = 422, response = r::WrongConnection)
    ),
    security(("api_key" = ["tokens:read"]), ("bearer" = ["tokens:read"])),
)]
pub async fn check_permissions(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ConnectionQuery>,
) -> Result<Json<PermissionCheck>, ApiError> {
    let conn = visible(
        &state,
        &caller,
        "connection_id",
        connection_id(&q)?,
        Some(Provider::Facebook),
    )
    .await?;
    let required: Vec<String> = match &q.required {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        None => state.settings.facebook.scopes.clone(),
    };
    let missing: Vec<String> = required
        .iter()
        .filter(|s| !conn.scopes.contains(s))
        .cloned()
        .collect();
    Ok(Json(PermissionCheck {
        connection_id: conn.id.clone(),
        granted: conn.scopes.clone(),
        required,
        ok: missing.is_empty(),
        missing,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SweepQuery {
    /// Wait for the sweep to finish (default true); false answers 202 with the run id.
    pub wait: Option<bool>,
}

/// `POST /facebook/internal/scheduled-refresh`: run a sweep now.
#[utoipa::path(
    post,
    path = "/facebook/internal/scheduled-refresh",
    operation_id = "facebook_scheduled_refresh",
    tags = ["facebook", "internal"],
    summary = "Run a Facebook sweep now",
    description = "Refreshes every due Facebook connection and checks the others, as the scheduler does. Takes the internal key (scope `internal`). Answers with the run when `wait` (default), else 202 with its id; 409 `run_in_progress` names a sweep already running.",
    params(SweepQuery),
    responses(
        (status = 200, description = "The finished run", body = RunEnvelope, example = json!(ex::run())),
        (status = 202, description = "Started; poll the run", body = RunStarted, example = json!(ex::run_started())),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited),
        (status = 400, response = r::BadRequest), (status = 409, response = r::Conflict)
    ),
    security(("api_key" = ["internal"]), ("bearer" = ["internal"])),
)]
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

/// `GET /facebook/internal/refresh-runs/{run_id}`.
#[utoipa::path(
    get,
    path = "/facebook/internal/refresh-runs/{run_id}",
    operation_id = "facebook_refresh_run",
    tags = ["facebook", "internal"],
    summary = "One refresh run",
    description = "The record of one sweep. Takes the internal key (scope `internal`). The same run is served at `/internal/refresh-runs/{run_id}`.",
    params(("run_id" = String, Path, description = "The refresh run id", example = "run_5c1e")),
    responses(
        (status = 200, description = "OK", body = RunEnvelope, example = json!(ex::run())),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited),
        (status = 404, response = r::NotFound)
    ),
    security(("api_key" = ["internal"]), ("bearer" = ["internal"])),
)]
pub async fn refresh_run(
    State(state): State<AppState>,
    caller: Caller,
    Path(run_id): Path<String>,
) -> Result<Json<RunEnvelope>, ApiError> {
    caller.require(Scope::Internal)?;
    let run = state
        .tokens
        .find_run(&run_id)
        .await
        .ok_or_else(|| ApiError::NotFound(format!("refresh run {run_id} not found")))?;
    Ok(Json(RunEnvelope {
        run: run.seen_by(caller.teams()),
    }))
}
