//! `/tiktok/...`: connect a TikTok Shop, list integrations and their token
//! status (the seed's wording), refresh, health counts, scheduled refresh and
//! opt-in cleanup.

use std::sync::{Arc, LazyLock};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use regex::Regex;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::answers::{AuthUrlResponse, ObjectOf, RunEnvelope, RunStarted};
use super::auth::Caller;
use super::callback_page;
use super::error::ApiError;
use super::examples as ex;
use super::extract::{ApiJson, ApiQuery};
use super::facebook::SweepQuery;
use super::oauth_state::CallbackQuery;
use super::schemas::responses as r;
use super::state::AppState;
use super::tiktok_integration::{
    Integration, IntegrationEnvelope, IntegrationList, IntegrationRefresh, envelope, integration,
};
use super::tokens::{run_sweep, visible};
use crate::domain::{Connection, Health, Provider};
use crate::providers::tiktok::{TiktokClient, connect};
use crate::tokens::ConnectionFilter;

fn client(state: &AppState) -> Result<&Arc<TiktokClient>, ApiError> {
    Ok(state.registry.tiktok()?)
}

/// A redirect URI a caller may pass: http(s), a host name (its last label
/// starts with a letter, so it never parses as a number) or an IPv4 address,
/// a port up to
/// 65535 and a plain path. `AuthUrlQuery` states the same pattern in the
/// spec (a test holds them equal): what it allows is what is accepted.
const REDIRECT_URI_PATTERN: &str = "^https?://(([A-Za-z0-9-]+\\.)*[A-Za-z][A-Za-z0-9-]*|((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9]))(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[A-Za-z0-9._~/-]*)?$";

fn redirect_uri_allowed(uri: &str) -> bool {
    static RE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(REDIRECT_URI_PATTERN).expect("valid pattern"));
    RE.is_match(uri) && reqwest::Url::parse(uri).is_ok()
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuthUrlQuery {
    /// The team the connection will belong to.
    pub team_id: Option<String>,
    /// Where TikTok sends the seller back (an absolute http(s) URL with a host
    /// name, optional port and path); default: the configured URI.
    #[param(
        pattern = "^https?://(([A-Za-z0-9-]+\\.)*[A-Za-z][A-Za-z0-9-]*|((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9]))(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[A-Za-z0-9._~/-]*)?$"
    )]
    pub redirect_uri: Option<String>,
}

/// `GET /tiktok/auth/url`.
#[utoipa::path(
    get,
    path = "/tiktok/auth/url",
    operation_id = "tiktok_auth_url",
    tags = ["tiktok"],
    summary = "TikTok Shop authorization URL",
    description = "The seller authorization URL with a signed, single-use `state`; TikTok redirects to `/tiktok/auth/callback`. Scope `tokens:admin`.",
    params(AuthUrlQuery),
    responses(
        (status = 200, description = "OK", body = AuthUrlResponse, example = json!(ex::tiktok_auth_url())),
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
    let client = client(&state)?;
    if q.redirect_uri
        .as_deref()
        .is_some_and(|uri| !redirect_uri_allowed(uri))
    {
        return Err(ApiError::bad_request(
            "redirect_uri",
            "must be an absolute http(s) URL with a host name, an optional port (up to 65535) and a path without query",
        ));
    }
    let redirect = q
        .redirect_uri
        .unwrap_or_else(|| state.settings.tiktok.redirect_uri.clone());
    let (oauth_state, expires_at) = state
        .oauth
        .issue(
            Provider::TiktokShop,
            q.team_id,
            Some(redirect.clone()),
            None,
            state.tokens.now(),
        )
        .await?;
    Ok(Json(AuthUrlResponse {
        url: client.authorize_url(&oauth_state, &redirect),
        state: oauth_state,
        state_expires_at: expires_at,
    }))
}

/// `GET /tiktok/auth/callback`: public; the signed state authenticates it.
#[utoipa::path(
    get,
    path = "/tiktok/auth/callback",
    operation_id = "tiktok_auth_callback",
    tags = ["tiktok"],
    summary = "TikTok Shop OAuth callback",
    description = "Where the seller comes back. Public: the signed `state` is its authentication. Stores the shop and answers with the integration. A client whose `Accept` names `text/html` (a browser) gets a small page saying what was connected, or the error in words, with a link to `/dashboard`; any other client gets JSON.",
    params(CallbackQuery),
    responses(
        (status = 200, description = "OK: JSON, or the page for a browser", content((IntegrationEnvelope = "application/json", example = json!(ex::integration())), (String = "text/html", example = json!(callback_page::EXAMPLE)))),
        (status = 400, response = r::BadRequest), (status = 403, response = r::Forbidden), (status = 409, response = r::Conflict), (status = 422, response = r::Unprocessable), (status = 502, response = r::BadGateway), (status = 503, response = r::Unavailable)
    ),
)]
pub async fn auth_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<CallbackQuery>,
) -> Response {
    let outcome = connect_from_callback(&state, q).await;
    callback_page::answer(&headers, "TikTok Shop", outcome)
}

async fn connect_from_callback(
    state: &AppState,
    q: CallbackQuery,
) -> callback_page::Outcome<IntegrationEnvelope> {
    let now = state.tokens.now();
    let refused = "the seller did not authorize";
    let (code, payload) = q
        .accept(&state.oauth, Provider::TiktokShop, refused, now)
        .await?;
    let flow = connect::connect(client(state)?, &code, "code")
        .await
        .map_err(ApiError::from)?;
    let conn = state.tokens.connect_account(payload.t, flow).await?;
    Ok((envelope(&state.tokens, &conn), vec![conn]))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateIntegration {
    /// The TikTok Shop authorization code.
    #[schema(pattern = "^[^\\s]+$")]
    pub auth_code: String,
    /// The team the connection will belong to.
    pub team_id: Option<String>,
}

/// `POST /tiktok/integrations`: connect with an auth code.
#[utoipa::path(
    post,
    path = "/tiktok/integrations",
    operation_id = "tiktok_create_integration",
    tags = ["tiktok"],
    summary = "Connect a shop with an auth code",
    description = "Exchanges a TikTok Shop auth code for tokens and stores the integration. Scope `tokens:admin`.",
    request_body(content = CreateIntegration, example = json!(ex::create_integration_request())),
    responses(
        (status = 201, description = "Connected", body = IntegrationEnvelope, example = json!(ex::integration())),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited),
        (status = 400, response = r::BadRequest), (status = 409, response = r::Conflict), (status = 422, response = r::Unprocessable), (status = 502, response = r::BadGateway), (status = 503, response = r::Unavailable)
    ),
    security(("api_key" = ["tokens:admin"]), ("bearer" = ["tokens:admin"])),
)]
pub async fn create_integration(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateIntegration>,
) -> Result<(StatusCode, Json<IntegrationEnvelope>), ApiError> {
    caller.require_team(body.team_id.as_deref())?;
    if body.auth_code.trim().is_empty() || body.auth_code.chars().any(char::is_whitespace) {
        return Err(ApiError::bad_request(
            "auth_code",
            "must be a non-empty code without whitespace",
        ));
    }
    let flow = connect::connect(client(&state)?, &body.auth_code, "auth_code").await?;
    let conn = state.tokens.connect_account(body.team_id, flow).await?;
    Ok((StatusCode::CREATED, Json(envelope(&state.tokens, &conn))))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TeamQuery {
    /// Only this team's connections.
    pub team_id: Option<String>,
}

/// `GET /tiktok/integrations?team_id=`.
#[utoipa::path(
    get,
    path = "/tiktok/integrations",
    operation_id = "tiktok_list_integrations",
    tags = ["tiktok", "tokens"],
    summary = "List TikTok Shop integrations",
    description = "Integrations with their `token_status` (the seed's wording). Scope `tokens:read`.",
    params(TeamQuery),
    responses(
        (status = 200, description = "OK", body = IntegrationList, example = json!(ex::integration_list())),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited)
    ),
    security(("api_key" = ["tokens:read"]), ("bearer" = ["tokens:read"])),
)]
pub async fn list_integrations(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<TeamQuery>,
) -> Result<Json<IntegrationList>, ApiError> {
    let filter = ConnectionFilter {
        provider: Some(Provider::TiktokShop),
        team_id: q.team_id,
        visible_teams: caller.teams().map(<[String]>::to_vec),
        ..ConnectionFilter::default()
    };
    let integrations: Vec<Integration> = state
        .tokens
        .list(&filter)
        .await?
        .iter()
        .map(|c| integration(&state.tokens, c))
        .collect();
    Ok(Json(IntegrationList {
        count: integrations.len() as u64,
        integrations,
    }))
}

async fn tiktok_connection(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<Arc<Connection>, ApiError> {
    visible(state, caller, "id", id, Some(Provider::TiktokShop)).await
}

/// `GET /tiktok/integrations/{id}/status`.
#[utoipa::path(
    get,
    path = "/tiktok/integrations/{id}/status",
    operation_id = "tiktok_integration_status",
    tags = ["tiktok", "tokens"],
    summary = "One integration's token status",
    description = "Scope `tokens:read`.",
    params(("id" = String, Path, description = "The integration (connection) id", example = "conn_tt41e0")),
    responses(
        (status = 200, description = "OK", body = IntegrationEnvelope, example = json!(ex::integration())),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited),
        (status = 404, response = r::NotFound)
    ),
    security(("api_key" = ["tokens:read"]), ("bearer" = ["tokens:read"])),
)]
pub async fn integration_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<IntegrationEnvelope>, ApiError> {
    let conn = tiktok_connection(&state, &caller, &id).await?;
    Ok(Json(envelope(&state.tokens, &conn)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ForceQuery {
    /// Refresh even when not due.
    pub force: Option<bool>,
}

/// `POST /tiktok/integrations/{id}/refresh?force=true`.
#[utoipa::path(
    post,
    path = "/tiktok/integrations/{id}/refresh",
    operation_id = "tiktok_refresh_integration",
    tags = ["tiktok", "tokens"],
    summary = "Refresh an integration",
    description = "Refreshes if due, or now with `force=true`. Scope `tokens:refresh`.",
    params(("id" = String, Path, description = "The integration (connection) id", example = "conn_tt41e0"), ForceQuery),
    responses(
        (status = 200, description = "OK", body = IntegrationRefresh, example = json!(ex::integration_refresh())),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited),
        (status = 400, response = r::BadRequest), (status = 404, response = r::NotFound), (status = 409, response = r::Conflict), (status = 502, response = r::BadGateway), (status = 503, response = r::Unavailable)
    ),
    security(("api_key" = ["tokens:refresh"]), ("bearer" = ["tokens:refresh"])),
)]
pub async fn refresh_integration(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ForceQuery>,
) -> Result<Json<IntegrationRefresh>, ApiError> {
    let before = tiktok_connection(&state, &caller, &id).await?;
    let after = state.tokens.refresh(&id, q.force.unwrap_or(false)).await?;
    Ok(Json(IntegrationRefresh {
        refreshed: after.last_refreshed_at != before.last_refreshed_at,
        integration: integration(&state.tokens, &after),
    }))
}

/// `GET /tiktok/health`: integrations counted by state (seed: getTokenHealthStatus).
#[utoipa::path(
    get,
    path = "/tiktok/health",
    operation_id = "tiktok_health",
    tags = ["tiktok", "tokens"],
    summary = "TikTok Shop integrations by health",
    description = "Every health with its count. Scope `tokens:read`.",
    responses(
        (status = 200, description = "OK", body = TiktokHealth, example = json!(ex::tiktok_health())),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited)
    ),
    security(("api_key" = ["tokens:read"]), ("bearer" = ["tokens:read"])),
)]
pub async fn health(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<TiktokHealth>, ApiError> {
    let filter = ConnectionFilter {
        provider: Some(Provider::TiktokShop),
        visible_teams: caller.teams().map(<[String]>::to_vec),
        ..ConnectionFilter::default()
    };
    let conns = state.tokens.list(&filter).await?;
    let mut counts = Vec::new();
    for h in [
        Health::Healthy,
        Health::ExpiringSoon,
        Health::NeedsRefresh,
        Health::Degraded,
        Health::Expired,
        Health::CannotRefresh,
        Health::ReauthRequired,
    ] {
        let n = conns.iter().filter(|c| state.tokens.health(c) == h).count();
        counts.push((h.as_str(), n as u64));
    }
    Ok(Json(TiktokHealth {
        total: conns.len() as u64,
        by_status: ObjectOf(counts),
    }))
}

/// `POST /tiktok/internal/scheduled-refresh`.
#[utoipa::path(
    post,
    path = "/tiktok/internal/scheduled-refresh",
    operation_id = "tiktok_scheduled_refresh",
    tags = ["tiktok", "internal"],
    summary = "Run a TikTok Shop sweep now",
    description = "Takes the internal key (scope `internal`). Answers with the run when `wait` (default), else 202 with its id.",
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
        Some(Provider::TiktokShop),
        q.wait.unwrap_or(true),
    )
    .await
}

/// `POST /tiktok/internal/cleanup`: removes integrations expired for longer
/// than `tiktok.cleanup_after_days` (opt-in; seed: cleanupExpiredIntegrations).
#[utoipa::path(
    post,
    path = "/tiktok/internal/cleanup",
    operation_id = "tiktok_cleanup",
    tags = ["tiktok", "internal"],
    summary = "Remove long-expired integrations",
    description = "Removes integrations expired for longer than `tiktok.cleanup_after_days` (opt-in: 409 when off). Takes the internal key (scope `internal`).",
    responses(
        (status = 200, description = "OK", body = CleanupResult, example = json!(ex::cleanup())),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited),
        (status = 409, response = r::Conflict), (status = 503, response = r::Unavailable)
    ),
    security(("api_key" = ["internal"]), ("bearer" = ["internal"])),
)]
pub async fn cleanup(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<CleanupResult>, ApiError> {
    let days = state.settings.tiktok.cleanup_after_days;
    if days <= 0 {
        return Err(ApiError::Conflict(
            "cleanup is off: set tiktok.cleanup_after_days to enable it".into(),
        ));
    }
    let cutoff = state.tokens.now() - chrono::Duration::days(days);
    let filter = ConnectionFilter {
        provider: Some(Provider::TiktokShop),
        visible_teams: caller.teams().map(<[String]>::to_vec),
        ..ConnectionFilter::default()
    };
    let mut removed = Vec::new();
    for c in state.tokens.list(&filter).await? {
        let health = state.tokens.health(&c);
        let lapsed_since = c.refresh_token_expires_at.or(c.expires_at);
        if matches!(health, Health::Expired | Health::CannotRefresh)
            && lapsed_since.is_some_and(|t| t < cutoff)
        {
            state.tokens.delete(&c.id).await?;
            tracing::warn!(integration = %c.id, label = %c.label, "removed an integration expired for over {days} days");
            removed.push(RemovedIntegration {
                id: c.id.clone(),
                label: c.label.clone(),
                external_id: c.external_id.clone(),
                team_id: c.team_id.clone(),
                expired_at: lapsed_since,
            });
        }
    }
    Ok(Json(CleanupResult {
        removed: removed.len() as u64,
        integrations: removed,
        older_than_days: days,
    }))
}

/// TikTok Shop integrations counted by health.
#[derive(Serialize, ToSchema)]
pub struct TiktokHealth {
    pub total: u64,
    /// Every health, with its count (zero included).
    #[schema(value_type = BTreeMap<String, u64>)]
    pub by_status: ObjectOf<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct RemovedIntegration {
    pub id: String,
    pub label: String,
    pub external_id: String,
    #[schema(required = true)]
    pub team_id: Option<String>,
    #[schema(required = true)]
    pub expired_at: Option<DateTime<Utc>>,
}

/// What the opt-in cleanup removed.
#[derive(Serialize, ToSchema)]
pub struct CleanupResult {
    pub removed: u64,
    pub integrations: Vec<RemovedIntegration>,
    pub older_than_days: i64,
}

#[cfg(test)]
mod tests {
    use utoipa::IntoParams;

    use super::{AuthUrlQuery, REDIRECT_URI_PATTERN, redirect_uri_allowed};

    #[test]
    fn the_spec_states_the_redirect_rule_the_service_applies() {
        let params = AuthUrlQuery::into_params(|| None);
        let param = params
            .iter()
            .find(|p| p.name == "redirect_uri")
            .expect("redirect_uri is documented");
        let schema = serde_json::to_value(&param.schema).unwrap();
        assert_eq!(schema["pattern"], REDIRECT_URI_PATTERN);
    }

    #[test]
    fn redirect_uris_need_a_host_name_a_real_port_and_no_query() {
        for ok in [
            "https://app.example.com/tiktok/auth/callback",
            "http://localhost:8080/cb",
            "https://a.b:65535",
            "http://127.0.0.1:3000/cb",
        ] {
            assert!(redirect_uri_allowed(ok), "{ok}");
        }
        for bad in [
            "https://NBl.t85B00q:85380",
            "https://1.2.3.4.5/cb",
            "https://256.1.1.1/cb",
            "https://app.example.com/cb?next=x",
            "ftp://app.example.com/",
            "/relative",
        ] {
            assert!(!redirect_uri_allowed(bad), "{bad}");
        }
    }
}
