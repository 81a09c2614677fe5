//! `/facebook/auth/...`, `/facebook/business-tokens` and
//! `/facebook/extend-permissions`: connecting Facebook accounts. The flows
//! themselves are in `providers::facebook::connect`; these handlers check
//! the caller, run them, and store what they yield.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::answers::{AuthUrlResponse, ConnectedResponse, ConnectionEnvelope};
use super::auth::Caller;
use super::callback_page;
use super::error::ApiError;
use super::examples as ex;
use super::extract::{ApiJson, ApiQuery, check_token_input};
use super::facebook_bodies::{
    BusinessTokenBody, ExchangeBody, ExtendBody, ExtendPermissionsResponse,
};
use super::oauth_state::CallbackQuery;
use super::schemas::responses as r;
use super::state::AppState;
use crate::domain::{Connection, Provider};
use crate::providers::facebook::connect;
use crate::secret::Secret;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TeamQuery {
    /// The team the connection will belong to.
    pub team_id: Option<String>,
}

/// `GET /facebook/auth/url`: the Login dialog URL with a signed, single-use state.
#[utoipa::path(
    get,
    path = "/facebook/auth/url",
    operation_id = "facebook_auth_url",
    tags = ["facebook"],
    summary = "Facebook Login dialog URL",
    description = "The Facebook Login dialog URL with a signed, expiring, single-use `state`. Send the user there; Facebook redirects to `/facebook/auth/callback`. Scope `tokens:admin`.",
    params(TeamQuery),
    responses(
        (status = 200, description = "OK", body = AuthUrlResponse, example = json!(ex::facebook_auth_url())),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited),
        (status = 400, response = r::BadRequest), (status = 503, response = r::Unavailable)
    ),
    security(("api_key" = ["tokens:admin"]), ("bearer" = ["tokens:admin"])),
)]
pub async fn auth_url(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<TeamQuery>,
) -> Result<Json<AuthUrlResponse>, ApiError> {
    caller.require_team(q.team_id.as_deref())?;
    let now = state.tokens.now();
    let (oauth_state, expires_at) = state
        .oauth
        .issue(Provider::Facebook, q.team_id, None, None, now)
        .await?;
    let scopes = &state.settings.facebook.scopes;
    let url = dialog_url(&state, &oauth_state, scopes, false)?;
    Ok(Json(AuthUrlResponse {
        url,
        state: oauth_state,
        state_expires_at: expires_at,
    }))
}

/// `GET /facebook/auth/callback`: the browser comes back from the dialog.
/// Public: the signed state is its authentication.
#[utoipa::path(
    get,
    path = "/facebook/auth/callback",
    operation_id = "facebook_auth_callback",
    tags = ["facebook"],
    summary = "Facebook OAuth callback",
    description = "Where the browser comes back from the Login dialog. Public: the signed `state` is its authentication. Stores the user connection and one connection per page, and answers with their facts. A client whose `Accept` names `text/html` (a browser) gets a small page saying what was connected, or the error in words, with a link to `/dashboard`; any other client gets JSON.",
    params(CallbackQuery),
    responses(
        (status = 200, description = "OK: JSON, or the page for a browser", content((ConnectedResponse = "application/json", example = json!(ex::connected())), (String = "text/html", example = json!(callback_page::EXAMPLE)))),
        (status = 400, response = r::BadRequest), (status = 403, response = r::Forbidden), (status = 409, response = r::Conflict), (status = 422, response = r::Unprocessable), (status = 502, response = r::BadGateway), (status = 503, response = r::Unavailable)
    ),
)]
pub async fn auth_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<CallbackQuery>,
) -> Response {
    let outcome = connect_from_callback(&state, q).await;
    callback_page::answer(&headers, "Facebook", outcome)
}

async fn connect_from_callback(
    state: &AppState,
    q: CallbackQuery,
) -> callback_page::Outcome<ConnectedResponse> {
    let now = state.tokens.now();
    let refused = "Facebook did not grant access";
    let (code, payload) = q
        .accept(&state.oauth, Provider::Facebook, refused, now)
        .await?;
    let graph = state.registry.facebook().map_err(ApiError::from)?;
    let flow = connect::with_code(
        graph,
        state.tokens.upstream(),
        &code,
        &state.settings.facebook.redirect_uri,
        now,
    )
    .await
    .map_err(ApiError::from)?;
    let connections = state.tokens.connect(payload.t, flow).await?;
    Ok((connected(state, &connections), connections))
}

/// `POST /facebook/auth/exchange`: connect from a short-lived user token.
#[utoipa::path(
    post,
    path = "/facebook/auth/exchange",
    operation_id = "facebook_auth_exchange",
    tags = ["facebook"],
    summary = "Connect from a short-lived user token",
    description = "Exchanges a short-lived user token for a long-lived one and stores the user and its pages. A token that is empty, has whitespace or is implausibly short or long is refused with 400 naming `access_token`. Scope `tokens:admin`.",
    request_body(content = ExchangeBody, example = json!(ex::exchange_request())),
    responses(
        (status = 200, description = "OK", body = ConnectedResponse, example = json!(ex::connected())),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited),
        (status = 400, response = r::BadRequest), (status = 409, response = r::Conflict), (status = 422, response = r::Unprocessable), (status = 502, response = r::BadGateway), (status = 503, response = r::Unavailable)
    ),
    security(("api_key" = ["tokens:admin"]), ("bearer" = ["tokens:admin"])),
)]
pub async fn auth_exchange(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ExchangeBody>,
) -> Result<Json<ConnectedResponse>, ApiError> {
    caller.require_team(body.team_id.as_deref())?;
    check_token_input("access_token", &body.access_token)?;
    let flow = connect::user_token(
        state.registry.facebook()?,
        state.tokens.upstream(),
        &Secret::new(body.access_token),
        "access_token",
        state.tokens.now(),
    )
    .await?;
    let connections = state.tokens.connect(body.team_id, flow).await?;
    Ok(Json(connected(&state, &connections)))
}

/// `POST /facebook/business-tokens`: register a system-user token.
#[utoipa::path(
    post,
    path = "/facebook/business-tokens",
    operation_id = "facebook_register_business_token",
    tags = ["facebook"],
    summary = "Register a business (system-user) token",
    description = "Validates a system-user token with `debug_token` and stores it. Scope `tokens:admin`.",
    request_body(content = BusinessTokenBody, example = json!(ex::business_token_request())),
    responses(
        (status = 201, description = "Registered", body = ConnectionEnvelope, example = json!(ex::connection())),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited),
        (status = 400, response = r::BadRequest), (status = 409, response = r::Conflict), (status = 422, response = r::Unprocessable), (status = 502, response = r::BadGateway), (status = 503, response = r::Unavailable)
    ),
    security(("api_key" = ["tokens:admin"]), ("bearer" = ["tokens:admin"])),
)]
pub async fn register_business_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<BusinessTokenBody>,
) -> Result<(StatusCode, Json<ConnectionEnvelope>), ApiError> {
    caller.require_team(body.team_id.as_deref())?;
    check_token_input("access_token", &body.access_token)?;
    let flow = connect::business_token(
        state.registry.facebook()?,
        state.tokens.upstream(),
        &Secret::new(body.access_token),
        body.label,
    )
    .await?;
    let conn = state.tokens.connect_account(body.team_id, flow).await?;
    Ok((
        StatusCode::CREATED,
        Json(ConnectionEnvelope::of(&state.tokens, &conn)),
    ))
}

/// The Login dialog URL (with `auth_type=rerequest` to ask again for
/// declined permissions).
fn dialog_url(
    state: &AppState,
    oauth_state: &str,
    scopes: &[String],
    rerequest: bool,
) -> Result<String, ApiError> {
    Ok(state.registry.facebook()?.dialog_url(
        &state.settings.facebook.redirect_uri,
        oauth_state,
        scopes,
        rerequest,
    ))
}

fn connected(state: &AppState, connections: &[Arc<Connection>]) -> ConnectedResponse {
    ConnectedResponse {
        connected: connections.len() as u64,
        connections: connections.iter().map(|c| state.tokens.facts(c)).collect(),
    }
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
    let (oauth_state, expires_at) = state
        .oauth
        .issue(
            Provider::Facebook,
            body.team_id,
            None,
            None,
            state.tokens.now(),
        )
        .await?;
    let url = dialog_url(&state, &oauth_state, &scopes, true)?;
    Ok(Json(ExtendPermissionsResponse {
        url,
        state: oauth_state,
        state_expires_at: expires_at,
        scopes,
    }))
}
