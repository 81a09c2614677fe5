//! Cross-provider token endpoints (including the one response that may carry
//! a token value: the audited hand-out to services that call the platform),
//! and the helpers every provider's handlers share.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::answers::{ConnectionList, ObjectOf, RefreshResult, RunEnvelope, RunStarted};
use super::auth::Caller;
use super::error::ApiError;
use super::examples as ex;
use super::extract::ApiQuery;
use super::schemas::responses as r;
use super::state::AppState;
use crate::access::Scope;
use crate::audit::AuditEntry;
use crate::domain::{Connection, ConnectionKind, Health, Provider};
use crate::tokens::{ConnectionFilter, Need, RefreshRun, SweepFilter};

/// `GET /tokens/{id}/access-token`.
#[utoipa::path(
    get,
    path = "/tokens/{id}/access-token",
    operation_id = "tokens_access_token",
    tags = ["tokens"],
    summary = "Hand out a usable access token",
    description = "The one response that carries a token value: refreshed first when due, and audited. Scope `tokens:use` (implied by no other scope).",
    params(("id" = String, Path, description = "The connection id", example = "conn_8f3a2c")),
    responses(
        (status = 200, description = "OK", body = AccessTokenResponse, example = json!(ex::access_token())),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited),
        (status = 404, response = r::NotFound), (status = 409, response = r::Conflict), (status = 502, response = r::BadGateway), (status = 503, response = r::Unavailable)
    ),
    security(("api_key" = ["tokens:use"]), ("bearer" = ["tokens:use"])),
)]
pub async fn access_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AccessTokenResponse>, ApiError> {
    hand_out(&state, &caller, &id).await
}

/// `GET /facebook/pages/{page_id}/access-token`.
#[utoipa::path(
    get,
    path = "/facebook/pages/{page_id}/access-token",
    operation_id = "facebook_page_access_token",
    tags = ["facebook", "tokens"],
    summary = "Hand out a page access token",
    description = "The usable access token of the connection serving a Facebook page; audited. Scope `tokens:use`.",
    params(("page_id" = String, Path, description = "The Facebook page id", example = "104729381234567")),
    responses(
        (status = 200, description = "OK", body = AccessTokenResponse, example = json!(ex::access_token())),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited),
        (status = 404, response = r::NotFound), (status = 409, response = r::Conflict), (status = 502, response = r::BadGateway), (status = 503, response = r::Unavailable)
    ),
    security(("api_key" = ["tokens:use"]), ("bearer" = ["tokens:use"])),
)]
pub async fn page_access_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(page_id): Path<String>,
) -> Result<Json<AccessTokenResponse>, ApiError> {
    let conn = page_connection(&state, &caller, &page_id).await?;
    hand_out(&state, &caller, &conn.id).await
}

/// Hands out a token only once its audit record is durable: if the record
/// cannot be written the answer is 503 `audit_unavailable`, with no token.
async fn hand_out(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<Json<AccessTokenResponse>, ApiError> {
    caller.require(Scope::TokensUse)?;
    // The token goes to the caller, not to a platform: any provider will do.
    let need = Need::any("id", caller.teams());
    // A connection the caller may not see is answered 404 before any audit
    // line, so probing other teams' ids leaves no trace in their audit.
    state.tokens.connection_for(id, &need).await?;
    let result = state.tokens.token_for(id, &need).await;
    let audited = state
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
    // A refusal hands out nothing, so its own error stays the answer.
    let token = result?;
    audited?;
    let conn = &token.connection;
    Ok(Json(AccessTokenResponse {
        connection_id: conn.id.clone(),
        provider: conn.provider,
        kind: conn.kind,
        external_id: conn.external_id.clone(),
        access_token: token.access_token.expose().to_string(),
        expires_at: conn.expires_at,
        health: state.tokens.health(conn),
    }))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this provider.
    #[param(inline, value_type = Option<crate::api::schemas::filters::ProviderName>)]
    pub provider: Option<String>,
    /// Only this team's connections.
    pub team_id: Option<String>,
    /// Only this health.
    #[param(inline, value_type = Option<crate::api::schemas::filters::HealthName>)]
    pub health: Option<String>,
    /// Only this kind.
    #[param(inline, value_type = Option<crate::api::schemas::filters::KindName>)]
    pub kind: Option<String>,
}

pub fn parse_provider(text: &str) -> Result<Provider, ApiError> {
    serde_json::from_value(json!(text)).map_err(|_| {
        ApiError::bad_request("provider", "must be one of facebook, tiktok_shop, google")
    })
}

/// `GET /tokens`: connections of every provider (facts only).
#[utoipa::path(
    get,
    path = "/tokens",
    operation_id = "tokens_list",
    tags = ["tokens"],
    summary = "List connections of every provider",
    description = "Connections the key may see, of every provider: facts only, never token values. Scope `tokens:read`.",
    params(ListQuery),
    responses(
        (status = 200, description = "OK", body = ConnectionList, example = json!(ex::connection_list())),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited),
        (status = 400, response = r::BadRequest)
    ),
    security(("api_key" = ["tokens:read"]), ("bearer" = ["tokens:read"])),
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<ConnectionList>, ApiError> {
    let filter = ConnectionFilter {
        provider: q.provider.as_deref().map(parse_provider).transpose()?,
        kind: q.kind.as_deref().map(parse_kind).transpose()?,
        health: q.health.as_deref().map(parse_health).transpose()?,
        team_id: q.team_id,
        visible_teams: caller.teams().map(<[String]>::to_vec),
    };
    let conns = state.tokens.list(&filter).await?;
    Ok(Json(ConnectionList::of(&state.tokens, &conns)))
}

/// `GET /tokens/health`: counts by provider and health, the soonest expiries,
/// and each provider's next scheduled sweep.
#[utoipa::path(
    get,
    path = "/tokens/health",
    operation_id = "tokens_health",
    tags = ["tokens"],
    summary = "Token health overview",
    description = "Counts by provider and health, the soonest expiries, each provider's next scheduled sweep and the sweep running now. Scope `tokens:read`.",
    responses(
        (status = 200, description = "OK", body = TokensHealth, example = json!(ex::tokens_health())),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited)
    ),
    security(("api_key" = ["tokens:read"]), ("bearer" = ["tokens:read"])),
)]
pub async fn health(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<TokensHealth>, ApiError> {
    let filter = ConnectionFilter {
        visible_teams: caller.teams().map(<[String]>::to_vec),
        ..ConnectionFilter::default()
    };
    let conns = state.tokens.list(&filter).await?;
    let next_runs = state.next_runs.get();
    let mut providers = Vec::new();
    for provider in Provider::ALL {
        let mine: Vec<_> = conns.iter().filter(|c| c.provider == provider).collect();
        let mut by_health: Vec<(&str, u64)> = Vec::new();
        for c in &mine {
            let h = state.tokens.health(c).as_str();
            match by_health.iter_mut().find(|(k, _)| *k == h) {
                Some((_, n)) => *n += 1,
                None => by_health.push((h, 1)),
            }
        }
        let mut soonest: Vec<_> = mine
            .iter()
            .filter_map(|c| {
                let at = [
                    c.expires_at,
                    c.data_access_expires_at,
                    c.refresh_token_expires_at,
                ]
                .into_iter()
                .flatten()
                .min()?;
                Some((at, c))
            })
            .collect();
        soonest.sort_by_key(|(at, _)| *at);
        let soonest_expiries = soonest
            .iter()
            .take(5)
            .map(|(at, c)| SoonestExpiry {
                id: c.id.clone(),
                label: c.label.clone(),
                team_id: c.team_id.clone(),
                lapses_at: *at,
                health: state.tokens.health(c),
            })
            .collect();
        providers.push((
            provider.as_str(),
            ProviderHealth {
                total: mine.len() as u64,
                by_health: ObjectOf(by_health),
                soonest_expiries,
                next_scheduled_run: next_runs.get(&provider).copied(),
            },
        ));
    }
    Ok(Json(TokensHealth {
        total: conns.len() as u64,
        providers: ObjectOf(providers),
        running_run: state.tokens.running_run(),
    }))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ForceQuery {
    /// Refresh even when not due.
    pub force: Option<bool>,
}

/// `POST /tokens/{id}/refresh?force=true`: any provider.
#[utoipa::path(
    post,
    path = "/tokens/{id}/refresh",
    operation_id = "tokens_refresh",
    tags = ["tokens"],
    summary = "Refresh a connection of any provider",
    description = "Refreshes if due, or now with `force=true`. Scope `tokens:refresh`.",
    params(("id" = String, Path, description = "The connection id", example = "conn_8f3a2c"), ForceQuery),
    responses(
        (status = 200, description = "OK", body = RefreshResult, example = json!(ex::refresh_result())),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited),
        (status = 400, response = r::BadRequest), (status = 404, response = r::NotFound), (status = 409, response = r::Conflict), (status = 502, response = r::BadGateway), (status = 503, response = r::Unavailable)
    ),
    security(("api_key" = ["tokens:refresh"]), ("bearer" = ["tokens:refresh"])),
)]
pub async fn refresh(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ForceQuery>,
) -> Result<Json<RefreshResult>, ApiError> {
    refresh_visible(&state, &caller, &id, None, q.force.unwrap_or(false)).await
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SweepQuery {
    /// Wait for the sweep to finish (default true); false answers 202 with the run id.
    pub wait: Option<bool>,
    /// Only this provider.
    #[param(inline, value_type = Option<crate::api::schemas::filters::ProviderName>)]
    pub provider: Option<String>,
}

/// `POST /internal/scheduled-refresh`: a sweep over every provider (or one).
#[utoipa::path(
    post,
    path = "/internal/scheduled-refresh",
    operation_id = "internal_scheduled_refresh",
    tags = ["internal", "tokens"],
    summary = "Run a sweep now",
    description = "A sweep over every provider (or `provider`), as the scheduler runs. Takes the internal key (scope `internal`). Answers with the run when `wait` (default), else 202 with its id; 409 `run_in_progress` names a sweep already running.",
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
    let provider = q.provider.as_deref().map(parse_provider).transpose()?;
    run_sweep(&state, &caller, provider, q.wait.unwrap_or(true)).await
}

/// `GET /internal/refresh-runs`: recent runs, newest first.
#[utoipa::path(
    get,
    path = "/internal/refresh-runs",
    operation_id = "internal_refresh_runs",
    tags = ["internal", "tokens"],
    summary = "Recent refresh runs",
    description = "Recent sweeps, newest first. Takes the internal key (scope `internal`) or `tokens:read`.",
    responses(
        (status = 200, description = "OK", body = RunList, example = json!(ex::runs())),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited)
    ),
    security(("api_key" = ["internal"]), ("bearer" = ["internal"]), ("api_key" = ["tokens:read"]), ("bearer" = ["tokens:read"])),
)]
pub async fn runs(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<RunList>, ApiError> {
    caller
        .require(Scope::Internal)
        .or_else(|_| caller.require(Scope::TokensRead))?;
    let runs: Vec<_> = state
        .tokens
        .recent_runs()
        .await
        .iter()
        .map(|r| r.seen_by(caller.teams()))
        .collect();
    Ok(Json(RunList { runs }))
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

/// The connection of a Facebook page id that the caller may see.
pub async fn page_connection(
    state: &AppState,
    caller: &Caller,
    page_id: &str,
) -> Result<Arc<Connection>, ApiError> {
    state
        .tokens
        .find_external(
            Provider::Facebook,
            ConnectionKind::Page,
            page_id,
            caller.teams(),
        )
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no connection for page {page_id}")))
}

/// The connection `id` for an operation on `provider`'s platform (`None`:
/// any platform): another team's is not found (never confirming it exists);
/// another platform's is refused with 422 naming `field`. Every handler that
/// takes a connection id comes through here, before any token is touched.
pub async fn visible(
    state: &AppState,
    caller: &Caller,
    field: &str,
    id: &str,
    provider: Option<Provider>,
) -> Result<Arc<Connection>, ApiError> {
    let need = Need {
        field,
        provider,
        kinds: &[],
        teams: caller.teams(),
    };
    Ok(state.tokens.connection_for(id, &need).await?)
}

/// Refreshes a visible connection; answers whether it was refreshed and its facts.
pub async fn refresh_visible(
    state: &AppState,
    caller: &Caller,
    id: &str,
    provider: Option<Provider>,
    force: bool,
) -> Result<Json<RefreshResult>, ApiError> {
    caller.require(Scope::TokensRefresh)?;
    let before = visible(state, caller, "id", id, provider).await?;
    let after = state.tokens.refresh(id, force).await?;
    Ok(Json(RefreshResult {
        refreshed: after.last_refreshed_at != before.last_refreshed_at,
        connection: state.tokens.facts(&after),
    }))
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
            Json(RunStarted {
                run_id,
                status: "running".into(),
            }),
        )
            .into_response());
    }
    let run = handle
        .await
        .map_err(|e| ApiError::Internal(format!("sweep task failed: {e}")))?;
    Ok(Json(RunEnvelope { run }).into_response())
}

/// A usable access token, handed out and audited.
#[derive(Serialize, ToSchema)]
pub struct AccessTokenResponse {
    pub connection_id: String,
    pub provider: Provider,
    pub kind: ConnectionKind,
    pub external_id: String,
    /// The token value itself: keep it out of logs.
    pub access_token: String,
    #[schema(required = true)]
    pub expires_at: Option<DateTime<Utc>>,
    pub health: Health,
}

/// Recent sweeps, newest first.
#[derive(Serialize, ToSchema)]
pub struct RunList {
    pub runs: Vec<RefreshRun>,
}

/// A connection whose token lapses soonest.
#[derive(Serialize, ToSchema)]
pub struct SoonestExpiry {
    pub id: String,
    pub label: String,
    #[schema(required = true)]
    pub team_id: Option<String>,
    pub lapses_at: DateTime<Utc>,
    pub health: Health,
}

/// One provider in `GET /tokens/health`.
#[derive(Serialize, ToSchema)]
pub struct ProviderHealth {
    pub total: u64,
    /// Connection counts by health; absent healths are not listed.
    #[schema(value_type = BTreeMap<String, u64>)]
    pub by_health: ObjectOf<u64>,
    pub soonest_expiries: Vec<SoonestExpiry>,
    #[schema(required = true)]
    pub next_scheduled_run: Option<DateTime<Utc>>,
}

/// Counts by provider and health.
#[derive(Serialize, ToSchema)]
pub struct TokensHealth {
    pub total: u64,
    /// Keyed by provider: `facebook`, `tiktok_shop`, `google`.
    #[schema(value_type = BTreeMap<String, ProviderHealth>)]
    pub providers: ObjectOf<ProviderHealth>,
    /// The id of the sweep running now.
    #[schema(required = true)]
    pub running_run: Option<String>,
}
