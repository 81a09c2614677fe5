//! `/google/...`: connect Google Ads (consent with offline access), and its
//! campaigns and campaign metrics (JSON and CSV).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use super::answers::{AuthUrlResponse, ConnectionEnvelope};
use super::auth::Caller;
use super::callback_page;
use super::error::ApiError;
use super::examples as ex;
use super::extract::{ApiJson, ApiQuery};
use super::insights::{RefreshQuery, access, cached_answer};
use super::oauth_state::CallbackQuery;
use super::schemas::{self as s, responses as r};
use super::state::AppState;
use crate::domain::Provider;
use crate::insights::google::{GoogleCampaignsQuery, GoogleMetricsRequest};
use crate::providers::google::{GoogleOAuth, connect};

fn oauth(state: &AppState) -> Result<&Arc<GoogleOAuth>, ApiError> {
    Ok(state.registry.google()?)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuthUrlQuery {
    /// The team the connection will belong to.
    pub team_id: Option<String>,
    /// The Google Ads customer the connection is for.
    #[param(pattern = "^[0-9]+(-[0-9]+)*$")]
    pub customer_id: Option<String>,
}

/// `GET /google/auth/url`: consent with offline access and a signed state.
#[utoipa::path(
    get,
    path = "/google/auth/url",
    operation_id = "google_auth_url",
    tags = ["google"],
    summary = "Google consent URL",
    description = "The consent URL with offline access and a signed, single-use `state`; Google redirects to `/google/auth/callback`. Scope `tokens:admin`.",
    params(AuthUrlQuery),
    responses(
        (status = 200, description = "OK", body = AuthUrlResponse, example = json!(ex::google_auth_url())),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited),
        (status = 400, response = r::BadRequest), (status = 503, response = r::Unavailable)
    ),
    security(("api_key" = ["tokens:admin"]), ("bearer" = ["tokens:admin"])),
)]
pub async fn auth_url(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuthUrlQuery>,
) -> Result<Json<AuthUrlResponse>, ApiError> {
    caller.require_team(q.team_id.as_deref())?;
    let oauth = oauth(&state)?;
    let customer = q.customer_id.map(|c| c.replace('-', ""));
    if customer
        .as_ref()
        .is_some_and(|c| c.is_empty() || !c.chars().all(|d| d.is_ascii_digit()))
    {
        return Err(ApiError::bad_request(
            "customer_id",
            "must be digits (dashes allowed)",
        ));
    }
    let (oauth_state, expires_at) = state
        .oauth
        .issue(
            Provider::Google,
            q.team_id,
            None,
            customer,
            state.tokens.now(),
        )
        .await?;
    let url = oauth.consent_url(
        &state.settings.google.redirect_uri,
        &oauth_state,
        &state.settings.google.scopes,
    );
    Ok(Json(AuthUrlResponse {
        url,
        state: oauth_state,
        state_expires_at: expires_at,
    }))
}

/// `GET /google/auth/callback`: public; the signed state authenticates it.
#[utoipa::path(
    get,
    path = "/google/auth/callback",
    operation_id = "google_auth_callback",
    tags = ["google"],
    summary = "Google OAuth callback",
    description = "Where the browser comes back from consent. Public: the signed `state` is its authentication. Stores the Google Ads connection. A client whose `Accept` names `text/html` (a browser) gets a small page saying what was connected, or the error in words, with a link to `/dashboard`; any other client gets JSON.",
    params(CallbackQuery),
    responses(
        (status = 200, description = "OK: JSON, or the page for a browser", content((ConnectionEnvelope = "application/json", example = json!(ex::google_connection())), (String = "text/html", example = json!(callback_page::EXAMPLE)))),
        (status = 400, response = r::BadRequest), (status = 403, response = r::Forbidden), (status = 409, response = r::Conflict), (status = 422, response = r::Unprocessable), (status = 502, response = r::BadGateway), (status = 503, response = r::Unavailable)
    ),
)]
pub async fn auth_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<CallbackQuery>,
) -> Response {
    let outcome = connect_from_callback(&state, q).await;
    callback_page::answer(&headers, "Google Ads", outcome)
}

async fn connect_from_callback(
    state: &AppState,
    q: CallbackQuery,
) -> callback_page::Outcome<ConnectionEnvelope> {
    let now = state.tokens.now();
    let refused = "Google consent was not given";
    let (code, payload) = q
        .accept(&state.oauth, Provider::Google, refused, now)
        .await?;
    let flow = connect::connect(
        oauth(state)?,
        &code,
        &state.settings.google.redirect_uri,
        payload.x,
        state.tokens.now(),
    )
    .await
    .map_err(ApiError::from)?;
    let conn = state.tokens.connect_account(payload.t, flow).await?;
    Ok((ConnectionEnvelope::of(&state.tokens, &conn), vec![conn]))
}

/// `GET /google/campaigns?customer_id=`.
#[utoipa::path(
    get,
    path = "/google/campaigns",
    operation_id = "google_campaigns",
    tags = ["google", "insights"],
    summary = "Google Ads campaigns",
    description = "A customer's campaigns. Scope `insights:read`.",
    params(GoogleCampaignsQuery),
    responses(
        (status = 200, description = "OK", body = s::GoogleCampaignList, example = json!(ex::google_campaigns())),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited),
        (status = 400, response = r::BadRequest), (status = 404, response = r::NotFound), (status = 409, response = r::Conflict), (status = 422, response = r::Unprocessable), (status = 502, response = r::BadGateway), (status = 503, response = r::Unavailable)
    ),
    security(("api_key" = ["insights:read"]), ("bearer" = ["insights:read"])),
)]
pub async fn campaigns(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<GoogleCampaignsQuery>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        state
            .insights
            .google()?
            .campaigns(&access(&caller), &q)
            .await?,
    ))
}

/// `POST /google/campaign_metrics`.
#[utoipa::path(
    post,
    path = "/google/campaign_metrics",
    operation_id = "google_campaign_metrics",
    tags = ["google", "insights"],
    summary = "Google Ads campaign metrics",
    description = "Rows and totals for a date range (cached; `refresh=true` bypasses the cache). Scope `insights:read`.",
    params(RefreshQuery),
    request_body(content = GoogleMetricsRequest, example = json!(ex::google_metrics_request())),
    responses(
        (status = 200, description = "OK", body = s::GoogleMetricsAnswer, example = json!(ex::google_metrics())),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited),
        (status = 400, response = r::BadRequest), (status = 404, response = r::NotFound), (status = 409, response = r::Conflict), (status = 422, response = r::Unprocessable), (status = 502, response = r::BadGateway), (status = 503, response = r::Unavailable)
    ),
    security(("api_key" = ["insights:read"]), ("bearer" = ["insights:read"])),
)]
pub async fn campaign_metrics(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(r): ApiQuery<RefreshQuery>,
    ApiJson(body): ApiJson<GoogleMetricsRequest>,
) -> Result<Json<Value>, ApiError> {
    let (insights, body) = (&state.insights, &body);
    cached_answer(
        &state,
        &caller,
        "google_campaign_metrics",
        body,
        r.refresh,
        |a| async move { insights.google()?.campaign_metrics(&a, body).await },
    )
    .await
}

/// `POST /google/campaign_metrics_csv`.
#[utoipa::path(
    post,
    path = "/google/campaign_metrics_csv",
    operation_id = "google_campaign_metrics_csv",
    tags = ["google", "exports"],
    summary = "Google Ads campaign metrics as CSV",
    description = "The rows of `POST /google/campaign_metrics` as a CSV attachment. Scope `insights:read`.",
    request_body(content = GoogleMetricsRequest, example = json!(ex::google_metrics_request())),
    responses(
        (status = 200, description = "CSV attachment", body = String, content_type = "text/csv", example = json!(ex::CSV)),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited),
        (status = 400, response = r::BadRequest), (status = 404, response = r::NotFound), (status = 409, response = r::Conflict), (status = 422, response = r::Unprocessable), (status = 502, response = r::BadGateway), (status = 503, response = r::Unavailable)
    ),
    security(("api_key" = ["insights:read"]), ("bearer" = ["insights:read"])),
)]
pub async fn campaign_metrics_csv(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    super::exports::csv(&state, &caller, "google_campaign_metrics", body).await
}
