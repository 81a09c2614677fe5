//! `/facebook/...` insights endpoints: campaigns, campaign metrics, post and
//! reel metrics, business-wide insights, page access checks. JSON here; the
//! `_csv` twins stream the same rows as CSV.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;

use super::auth::Caller;
use super::error::ApiError;
use super::examples as ex;
use super::extract::{ApiJson, ApiQuery};
use super::schemas::responses as r;
use super::state::AppState;
use crate::access::Scope;
use crate::insights::Access;
use crate::insights::answers::{
    BusinessInsightsAnswer, CampaignList, CampaignMetricsAnswer, PageInsightsAnswer, PagesAccess,
};
use crate::insights::business::{BusinessQuery, PagesAccessQuery};
use crate::insights::campaigns::{CampaignMetricsRequest, CampaignsQuery};
use crate::insights::metrics::{self, MetricsCatalogue};
use crate::insights::posts::PageMetricsQuery;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RefreshQuery {
    /// Bypass the cache.
    pub refresh: Option<bool>,
}

pub fn access(caller: &Caller) -> Access {
    Access {
        teams: caller.teams().map(<[String]>::to_vec),
    }
}

/// An insights answer for `caller`, from the cache unless `refresh`; the
/// cache key is the endpoint, its parameters and what the caller may see.
pub async fn cached_answer<T, F, Fut>(
    state: &AppState,
    caller: &Caller,
    endpoint: &str,
    params: &impl serde::Serialize,
    refresh: Option<bool>,
    compute: F,
) -> Result<Json<T>, ApiError>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
    F: FnOnce(Access) -> Fut,
    Fut: std::future::Future<Output = Result<T, crate::insights::InsightsError>>,
{
    caller.require(Scope::InsightsRead)?;
    let key = format!(
        "{endpoint}|{}|{:?}",
        serde_json::to_string(params).unwrap_or_default(),
        caller.teams()
    );
    let access = access(caller);
    let value = state
        .insights
        .cached(&key, refresh.unwrap_or(false), || compute(access))
        .await?;
    Ok(Json(value))
}

/// `GET /facebook/available_metrics`.
#[utoipa::path(
    get,
    path = "/facebook/available_metrics",
    operation_id = "facebook_available_metrics",
    tags = ["facebook", "insights"],
    summary = "The metric registry",
    description = "Which metrics campaigns, posts, reels and pages accept, the breakdowns, and each retired metric with its replacement. Scope `insights:read`.",
    responses(
        (status = 200, description = "OK", body = MetricsCatalogue, example = json!(ex::metrics_catalogue())),
        r::Refused
    ),
    security(("api_key" = ["insights:read"]), ("bearer" = ["insights:read"])),
)]
pub async fn available_metrics(caller: Caller) -> Result<Json<MetricsCatalogue>, ApiError> {
    caller.require(Scope::InsightsRead)?;
    Ok(Json(metrics::catalogue()))
}

/// `GET /facebook/campaigns`.
#[utoipa::path(
    get,
    path = "/facebook/campaigns",
    operation_id = "facebook_campaigns",
    tags = ["facebook", "insights"],
    summary = "An ad account's campaigns",
    description = "Campaigns of an ad account, paged with `after`. Scope `insights:read`.",
    params(CampaignsQuery),
    responses(
        (status = 200, description = "OK", body = CampaignList, example = json!(ex::campaign_list())),
        r::Refused, r::CallFailed
    ),
    security(("api_key" = ["insights:read"]), ("bearer" = ["insights:read"])),
)]
pub async fn campaigns(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<CampaignsQuery>,
) -> Result<Json<CampaignList>, ApiError> {
    Ok(Json(state.insights.campaigns(&access(&caller), &q).await?))
}

/// `POST /facebook/campaign_metrics`.
#[utoipa::path(
    post,
    path = "/facebook/campaign_metrics",
    operation_id = "facebook_campaign_metrics",
    tags = ["facebook", "insights"],
    summary = "Campaign insights",
    description = "Rows and totals for a date range; long ranges run as an async report. Retired or unknown metrics are refused with 422 `invalid_metrics`, each named with its replacement. Cached; `refresh=true` bypasses the cache. Scope `insights:read`.",
    params(RefreshQuery),
    request_body(content = CampaignMetricsRequest, example = json!(ex::campaign_metrics_request())),
    responses(
        (status = 200, description = "OK", body = CampaignMetricsAnswer, example = json!(ex::campaign_metrics())),
        r::Refused, r::CallFailed
    ),
    security(("api_key" = ["insights:read"]), ("bearer" = ["insights:read"])),
)]
pub async fn campaign_metrics(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(r): ApiQuery<RefreshQuery>,
    ApiJson(body): ApiJson<CampaignMetricsRequest>,
) -> Result<Json<CampaignMetricsAnswer>, ApiError> {
    let (insights, body) = (&state.insights, &body);
    cached_answer(
        &state,
        &caller,
        "campaign_metrics",
        body,
        r.refresh,
        |a| async move { insights.campaign_metrics(&a, body).await },
    )
    .await
}

/// `GET /facebook/post_metrics`.
#[utoipa::path(
    get,
    path = "/facebook/post_metrics",
    operation_id = "facebook_post_metrics",
    tags = ["facebook", "insights"],
    summary = "Post insights of a page",
    description = "Metrics of each post of a page in a date range. A metric Facebook rejects is dropped and listed in `dropped_metrics`. Cached; `refresh=true` bypasses the cache. Scope `insights:read`.",
    params(RefreshQuery, PageMetricsQuery),
    responses(
        (status = 200, description = "OK", body = PageInsightsAnswer, example = json!(ex::page_insights())),
        r::Refused, r::CallFailed
    ),
    security(("api_key" = ["insights:read"]), ("bearer" = ["insights:read"])),
)]
pub async fn post_metrics(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(r): ApiQuery<RefreshQuery>,
    ApiQuery(q): ApiQuery<PageMetricsQuery>,
) -> Result<Json<PageInsightsAnswer>, ApiError> {
    let (insights, q) = (&state.insights, &q);
    cached_answer(
        &state,
        &caller,
        "post_metrics",
        q,
        r.refresh,
        |a| async move { insights.post_metrics(&a, q).await },
    )
    .await
}

/// `GET /facebook/reel_metrics`.
#[utoipa::path(
    get,
    path = "/facebook/reel_metrics",
    operation_id = "facebook_reel_metrics",
    tags = ["facebook", "insights"],
    summary = "Reel insights of a page",
    description = "Metrics of each reel of a page in a date range. Cached; `refresh=true` bypasses the cache. Scope `insights:read`.",
    params(RefreshQuery, PageMetricsQuery),
    responses(
        (status = 200, description = "OK", body = PageInsightsAnswer, example = json!(ex::page_insights())),
        r::Refused, r::CallFailed
    ),
    security(("api_key" = ["insights:read"]), ("bearer" = ["insights:read"])),
)]
pub async fn reel_metrics(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(r): ApiQuery<RefreshQuery>,
    ApiQuery(q): ApiQuery<PageMetricsQuery>,
) -> Result<Json<PageInsightsAnswer>, ApiError> {
    let (insights, q) = (&state.insights, &q);
    cached_answer(
        &state,
        &caller,
        "reel_metrics",
        q,
        r.refresh,
        |a| async move { insights.reel_metrics(&a, q).await },
    )
    .await
}

/// `GET /facebook/business_post_insights`.
#[utoipa::path(
    get,
    path = "/facebook/business_post_insights",
    operation_id = "facebook_business_post_insights",
    tags = ["facebook", "insights"],
    summary = "Post insights of every page of a business",
    description = "Posts of every page the business token reaches, read concurrently; a failing page is reported in `pages`, not fatal. Scope `insights:read`.",
    params(RefreshQuery, BusinessQuery),
    responses(
        (status = 200, description = "OK", body = BusinessInsightsAnswer, example = json!(ex::business_insights())),
        r::Refused, r::CallFailed
    ),
    security(("api_key" = ["insights:read"]), ("bearer" = ["insights:read"])),
)]
pub async fn business_post_insights(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(r): ApiQuery<RefreshQuery>,
    ApiQuery(q): ApiQuery<BusinessQuery>,
) -> Result<Json<BusinessInsightsAnswer>, ApiError> {
    let (insights, q) = (&state.insights, &q);
    cached_answer(
        &state,
        &caller,
        "business_post_insights",
        q,
        r.refresh,
        |a| async move { insights.business_insights(&a, q, false).await },
    )
    .await
}

/// `GET /facebook/business_posts_and_reels_insights`.
#[utoipa::path(
    get,
    path = "/facebook/business_posts_and_reels_insights",
    operation_id = "facebook_business_posts_and_reels_insights",
    tags = ["facebook", "insights"],
    summary = "Post and reel insights of every page of a business",
    description = "As `business_post_insights`, with reels (`reel_metrics`). Scope `insights:read`.",
    params(RefreshQuery, BusinessQuery),
    responses(
        (status = 200, description = "OK", body = BusinessInsightsAnswer, example = json!(ex::business_insights())),
        r::Refused, r::CallFailed
    ),
    security(("api_key" = ["insights:read"]), ("bearer" = ["insights:read"])),
)]
pub async fn business_posts_and_reels_insights(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(r): ApiQuery<RefreshQuery>,
    ApiQuery(q): ApiQuery<BusinessQuery>,
) -> Result<Json<BusinessInsightsAnswer>, ApiError> {
    let (insights, q) = (&state.insights, &q);
    cached_answer(
        &state,
        &caller,
        "business_posts_and_reels_insights",
        q,
        r.refresh,
        |a| async move { insights.business_insights(&a, q, true).await },
    )
    .await
}

/// `GET /facebook/check_business_pages_access`.
#[utoipa::path(
    get,
    path = "/facebook/check_business_pages_access",
    operation_id = "facebook_check_business_pages_access",
    tags = ["facebook", "insights"],
    summary = "Which pages' insights can be read",
    description = "Each page the business token reaches, whether its insights can be read, and why not. Scope `insights:read`.",
    params(PagesAccessQuery),
    responses(
        (status = 200, description = "OK", body = PagesAccess, example = json!(ex::pages_access())),
        r::Refused, r::CallFailed
    ),
    security(("api_key" = ["insights:read"]), ("bearer" = ["insights:read"])),
)]
pub async fn check_business_pages_access(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PagesAccessQuery>,
) -> Result<Json<PagesAccess>, ApiError> {
    Ok(Json(
        state
            .insights
            .check_business_pages_access(&access(&caller), &q)
            .await?,
    ))
}
