//! `/facebook/debug_token`, `/facebook/check-permissions` and
//! `/facebook/extend-permissions`: what Facebook says of a connection's
//! token, its permissions against those required, and asking again for them.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::examples as ex;
use super::extract::{ApiJson, ApiQuery};
use super::schemas::responses as r;
use super::tokens::visible;
use crate::domain::Provider;
use crate::tokens::Need;

/// What Facebook's `debug_token` says of a connection's token.
#[derive(Serialize, ToSchema)]
pub struct DebugTokenResponse {
    pub connection_id: String,
    pub is_valid: bool,
    #[serde(rename = "type")]
    #[schema(required = true)]
    pub token_type: Option<String>,
    #[schema(required = true)]
    pub app_id: Option<String>,
    #[schema(required = true)]
    pub user_id: Option<String>,
    #[schema(required = true)]
    pub profile_id: Option<String>,
    #[schema(required = true)]
    pub expires_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub data_access_expires_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub issued_at: Option<DateTime<Utc>>,
    pub scopes: Vec<String>,
    #[schema(required = true)]
    pub error: Option<DebugTokenError>,
}

/// `data.error` of an invalid token.
#[derive(Serialize, ToSchema)]
pub struct DebugTokenError {
    pub code: i64,
    #[schema(required = true)]
    pub subcode: Option<i64>,
    pub message: String,
}

/// Granted against required permissions.
#[derive(Serialize, ToSchema)]
pub struct PermissionCheck {
    pub connection_id: String,
    pub granted: Vec<String>,
    pub required: Vec<String>,
    pub missing: Vec<String>,
    pub ok: bool,
}

/// A dialog URL asking again for permissions (`auth_type=rerequest`).
#[derive(Serialize, ToSchema)]
pub struct ExtendPermissionsResponse {
    pub url: String,
    pub state: String,
    pub state_expires_at: DateTime<Utc>,
    pub scopes: Vec<String>,
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
    let conn = state.tokens.connection_for(connection_id(&q)?, &need)?;
    let info = state.tokens.debug_facebook_token(&conn.id, &need).await?;
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
    )?;
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

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ExtendBody {
    /// Permissions to ask for again; default: the configured scopes.
    pub scopes: Option<Vec<String>>,
    /// The team the connection will belong to.
    pub team_id: Option<String>,
}

/// `POST /facebook/extend-permissions`: a dialog URL that asks again for
/// declined permissions (`auth_type=rerequest`).
#[utoipa::path(
    post,
    path = "/facebook/extend-permissions",
    operation_id = "facebook_extend_permissions",
    tags = ["facebook"],
    summary = "Ask again for declined permissions",
    description = "A Login dialog URL with `auth_type=rerequest` for `scopes` (default: the configured scopes). Scope `tokens:admin`.",
    request_body(content = ExtendBody, example = json!(ex::extend_request())),
    responses(
        (status = 200, description = "OK", body = ExtendPermissionsResponse, example = json!(ex::extend_permissions())),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited),
        (status = 400, response = r::BadRequest), (status = 422, response = r::Unprocessable), (status = 503, response = r::Unavailable)
    ),
    security(("api_key" = ["tokens:admin"]), ("bearer" = ["tokens:admin"])),
)]
pub async fn extend_permissions(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ExtendBody>,
) -> Result<Json<ExtendPermissionsResponse>, ApiError> {
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
    Ok(Json(ExtendPermissionsResponse {
        url,
        state: oauth_state,
        state_expires_at: expires_at,
        scopes,
    }))
}
