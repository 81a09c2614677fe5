//! `/facebook/...` insights endpoints: campaigns, campaign metrics, post and
//! reel metrics, business-wide insights, page access checks. JSON here; the
//! `_csv` twins stream the same rows as CSV.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::{Caller, Scope};
use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery};
use crate::insights::campaigns::{CampaignMetricsRequest, CampaignsQuery};
use crate::insights::posts::{BusinessQuery, PageMetricsQuery};
use crate::insights::{Access, metrics};

#[derive(Debug, Deserialize)]
pub struct RefreshQuery {
    /// Bypass the cache.
    pub refresh: Option<bool>,
}

pub fn access(caller: &Caller) -> Access {
    Access {
        teams: caller.teams().map(<[String]>::to_vec),
    }
}

/// The cache key: endpoint, parameters, and what the caller may see.
fn key(endpoint: &str, params: &impl serde::Serialize, caller: &Caller) -> String {
    format!(
        "{endpoint}|{}|{:?}",
        serde_json::to_string(params).unwrap_or_default(),
        caller.teams()
    )
}

/// `GET /facebook/available_metrics`.
pub async fn available_metrics(caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::InsightsRead)?;
    Ok(Json(metrics::catalogue()))
}

/// `GET /facebook/campaigns`.
pub async fn campaigns(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<CampaignsQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::InsightsRead)?;
    Ok(Json(state.insights.campaigns(&access(&caller), &q).await?))
}

/// `POST /facebook/campaign_metrics`.
pub async fn campaign_metrics(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(r): ApiQuery<RefreshQuery>,
    ApiJson(body): ApiJson<CampaignMetricsRequest>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::InsightsRead)?;
    let k = key(
        "campaign_metrics",
        &json!({"ad_account_id": body.ad_account_id, "campaign_ids": body.campaign_ids,
        "date_range": [body.date_range.start_date, body.date_range.end_date], "metrics": body.metrics,
        "dimensions": body.dimensions, "level": body.level, "time_increment": body.time_increment,
        "connection_id": body.connection_id}),
        &caller,
    );
    let a = access(&caller);
    let value = state
        .insights
        .cached(&k, r.refresh.unwrap_or(false), || {
            state.insights.campaign_metrics(&a, &body)
        })
        .await?;
    Ok(Json(value))
}

#[derive(Debug, Deserialize, serde::Serialize)]
struct PageKey<'a> {
    page_id: &'a str,
    metrics: Option<&'a str>,
    start_date: &'a str,
    end_date: &'a str,
}

fn page_key<'a>(q: &'a PageMetricsQuery) -> PageKey<'a> {
    PageKey {
        page_id: &q.page_id,
        metrics: q.metrics.as_deref(),
        start_date: &q.start_date,
        end_date: &q.end_date,
    }
}

/// `GET /facebook/post_metrics`.
pub async fn post_metrics(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(r): ApiQuery<RefreshQuery>,
    ApiQuery(q): ApiQuery<PageMetricsQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::InsightsRead)?;
    let a = access(&caller);
    let k = key("post_metrics", &page_key(&q), &caller);
    Ok(Json(
        state
            .insights
            .cached(&k, r.refresh.unwrap_or(false), || {
                state.insights.post_metrics(&a, &q)
            })
            .await?,
    ))
}

/// `GET /facebook/reel_metrics`.
pub async fn reel_metrics(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(r): ApiQuery<RefreshQuery>,
    ApiQuery(q): ApiQuery<PageMetricsQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::InsightsRead)?;
    let a = access(&caller);
    let k = key("reel_metrics", &page_key(&q), &caller);
    Ok(Json(
        state
            .insights
            .cached(&k, r.refresh.unwrap_or(false), || {
                state.insights.reel_metrics(&a, &q)
            })
            .await?,
    ))
}

fn business_key(q: &BusinessQuery) -> Value {
    json!([
        q.connection_id,
        q.metrics,
        q.reel_metrics,
        q.start_date,
        q.end_date
    ])
}

/// `GET /facebook/business_post_insights`.
pub async fn business_post_insights(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(r): ApiQuery<RefreshQuery>,
    ApiQuery(q): ApiQuery<BusinessQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::InsightsRead)?;
    let a = access(&caller);
    let k = key("business_post_insights", &business_key(&q), &caller);
    Ok(Json(
        state
            .insights
            .cached(&k, r.refresh.unwrap_or(false), || {
                state.insights.business_insights(&a, &q, false)
            })
            .await?,
    ))
}

/// `GET /facebook/business_posts_and_reels_insights`.
pub async fn business_posts_and_reels_insights(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(r): ApiQuery<RefreshQuery>,
    ApiQuery(q): ApiQuery<BusinessQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::InsightsRead)?;
    let a = access(&caller);
    let k = key(
        "business_posts_and_reels_insights",
        &business_key(&q),
        &caller,
    );
    Ok(Json(
        state
            .insights
            .cached(&k, r.refresh.unwrap_or(false), || {
                state.insights.business_insights(&a, &q, true)
            })
            .await?,
    ))
}

/// `GET /facebook/check_business_pages_access`.
pub async fn check_business_pages_access(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<BusinessQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::InsightsRead)?;
    Ok(Json(
        state
            .insights
            .check_business_pages_access(&access(&caller), &q)
            .await?,
    ))
}
