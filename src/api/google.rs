//! `/google/...`: connect Google Ads (consent with offline access), and its
//! campaigns and campaign metrics (JSON and CSV).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::{Caller, Scope};
use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery};
use super::insights::{RefreshQuery, access};
use crate::insights::google::{GoogleCampaignsQuery, GoogleMetricsRequest};
use crate::providers::google::{GoogleOAuth, connect};

fn oauth(state: &AppState) -> Result<&Arc<GoogleOAuth>, ApiError> {
    state.connectors.google.as_ref().ok_or_else(|| {
        ApiError::Unavailable(
            "Google is not configured: set GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET".into(),
        )
    })
}

#[derive(Debug, Deserialize)]
pub struct AuthUrlQuery {
    pub team_id: Option<String>,
    /// The Google Ads customer the connection is for.
    pub customer_id: Option<String>,
}

/// `GET /google/auth/url`: consent with offline access and a signed state.
pub async fn auth_url(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuthUrlQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::TokensAdmin)?;
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
    let (oauth_state, expires_at) =
        state
            .oauth
            .issue("google", q.team_id, None, customer, state.tokens.now());
    let url = oauth.consent_url(
        &state.settings.google.redirect_uri,
        &oauth_state,
        &state.settings.google.scopes,
    );
    Ok(Json(
        json!({ "url": url, "state": oauth_state, "state_expires_at": expires_at }),
    ))
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

/// `GET /google/auth/callback`: public; the signed state authenticates it.
pub async fn auth_callback(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<CallbackQuery>,
) -> Result<Json<Value>, ApiError> {
    if let Some(error) = q.error {
        return Err(ApiError::bad_request(
            "error",
            format!("Google consent was not given: {error}"),
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
        .accept(&oauth_state, "google", state.tokens.now())?;
    let conn = connect::connect(
        &state.tokens,
        oauth(&state)?,
        &code,
        &state.settings.google.redirect_uri,
        payload.x,
        payload.t,
    )
    .await?;
    Ok(Json(json!({ "connection": state.tokens.facts(&conn) })))
}

/// `GET /google/campaigns?customer_id=`.
pub async fn campaigns(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<GoogleCampaignsQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::InsightsRead)?;
    Ok(Json(
        state
            .insights
            .google()?
            .campaigns(&access(&caller), &q)
            .await?,
    ))
}

/// `POST /google/campaign_metrics`.
pub async fn campaign_metrics(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(r): ApiQuery<RefreshQuery>,
    ApiJson(body): ApiJson<GoogleMetricsRequest>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::InsightsRead)?;
    let a = access(&caller);
    let key = format!(
        "google_campaign_metrics|{}|{}|{}|{:?}|{:?}|{:?}|{:?}|{:?}",
        body.customer_id,
        body.date_range.start_date,
        body.date_range.end_date,
        body.metrics,
        body.campaign_ids,
        body.dimensions,
        body.connection_id,
        caller.teams()
    );
    let insights = state.insights.clone();
    let value = state
        .insights
        .cached(&key, r.refresh.unwrap_or(false), || async move {
            insights.google()?.campaign_metrics(&a, &body).await
        })
        .await?;
    Ok(Json(value))
}

/// `POST /google/campaign_metrics_csv`.
pub async fn campaign_metrics_csv(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    super::exports::csv(&state, &caller, "google_campaign_metrics", body).await
}
