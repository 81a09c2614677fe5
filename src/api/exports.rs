//! CSV downloads: the `_csv` twins of the insights endpoints (streamed) and
//! async exports (`/exports`), readable only by the key that created them or
//! the admin key.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::ApiError;
use super::examples as ex;
use super::extract::{ApiJson, ApiQuery};
use super::insights::access;
use super::schemas::responses as r;
use super::state::AppState;
use crate::access::{ADMIN_KEY_ID, Scope};
use crate::export::jobs::{ExportJob, ExportStatus};
use crate::insights::business::BusinessQuery;
use crate::insights::campaigns::CampaignMetricsRequest;
use crate::insights::export_source::{ACCESS_PARAM, leading_columns};
use crate::insights::posts::PageMetricsQuery;

/// Streams the rows of insights endpoint `kind` as a CSV attachment.
pub async fn csv(
    state: &AppState,
    caller: &Caller,
    kind: &str,
    params: Value,
) -> Result<Response, ApiError> {
    caller.require(Scope::InsightsRead)?;
    let rows = state.insights.rows(&access(caller), kind, params).await?;
    let stream = futures::stream::iter(rows.into_iter().map(Ok));
    let spool_dir = state.settings.store.data_dir.join("exports").join("spool");
    tokio::fs::create_dir_all(&spool_dir)
        .await
        .map_err(|e| ApiError::Internal(format!("creating {}: {e}", spool_dir.display())))?;
    let spooled = crate::export::csv::spool(stream, leading_columns(kind), &spool_dir).await?;
    let date = state.tokens.now().format("%Y%m%d");
    Ok(spooled.into_response(&format!("{kind}-{date}.csv")))
}

/// Query parameters of a GET endpoint as JSON (for the shared row source).
fn query_params(q: Map<String, Value>) -> Value {
    Value::Object(q.into_iter().filter(|(k, _)| k != "refresh").collect())
}

#[utoipa::path(
    get,
    path = "/facebook/post_metrics_csv",
    operation_id = "facebook_post_metrics_csv",
    tags = ["facebook", "exports"],
    summary = "GET /facebook/post_metrics as CSV",
    description = "The rows of `GET /facebook/post_metrics` as a CSV attachment (streamed from a spool file). Takes the same parameters. Scope `insights:read`.",
    params(PageMetricsQuery),
    responses(
        (status = 200, description = "CSV attachment", body = String, content_type = "text/csv", example = json!(ex::CSV)),
        r::Refused, r::CallFailed
    ),
    security(("api_key" = ["insights:read"]), ("bearer" = ["insights:read"])),
)]
pub async fn post_metrics_csv(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<Map<String, Value>>,
) -> Result<Response, ApiError> {
    csv(&state, &caller, "post_metrics", query_params(q)).await
}

#[utoipa::path(
    get,
    path = "/facebook/reel_metrics_csv",
    operation_id = "facebook_reel_metrics_csv",
    tags = ["facebook", "exports"],
    summary = "GET /facebook/reel_metrics as CSV",
    description = "The rows of `GET /facebook/reel_metrics` as a CSV attachment (streamed from a spool file). Takes the same parameters. Scope `insights:read`.",
    params(PageMetricsQuery),
    responses(
        (status = 200, description = "CSV attachment", body = String, content_type = "text/csv", example = json!(ex::CSV)),
        r::Refused, r::CallFailed
    ),
    security(("api_key" = ["insights:read"]), ("bearer" = ["insights:read"])),
)]
pub async fn reel_metrics_csv(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<Map<String, Value>>,
) -> Result<Response, ApiError> {
    csv(&state, &caller, "reel_metrics", query_params(q)).await
}

#[utoipa::path(
    get,
    path = "/facebook/business_post_insights_csv",
    operation_id = "facebook_business_post_insights_csv",
    tags = ["facebook", "exports"],
    summary = "GET /facebook/business_post_insights as CSV",
    description = "The rows of `GET /facebook/business_post_insights` as a CSV attachment (streamed from a spool file). Takes the same parameters. Scope `insights:read`.",
    params(BusinessQuery),
    responses(
        (status = 200, description = "CSV attachment", body = String, content_type = "text/csv", example = json!(ex::CSV)),
        r::Refused, r::CallFailed
    ),
    security(("api_key" = ["insights:read"]), ("bearer" = ["insights:read"])),
)]
pub async fn business_post_insights_csv(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<Map<String, Value>>,
) -> Result<Response, ApiError> {
    csv(&state, &caller, "business_post_insights", query_params(q)).await
}

#[utoipa::path(
    get,
    path = "/facebook/business_posts_and_reels_insights_csv",
    operation_id = "facebook_business_posts_and_reels_insights_csv",
    tags = ["facebook", "exports"],
    summary = "GET /facebook/business_posts_and_reels_insights as CSV",
    description = "The rows of `GET /facebook/business_posts_and_reels_insights` as a CSV attachment (streamed from a spool file). Takes the same parameters. Scope `insights:read`.",
    params(BusinessQuery),
    responses(
        (status = 200, description = "CSV attachment", body = String, content_type = "text/csv", example = json!(ex::CSV)),
        r::Refused, r::CallFailed
    ),
    security(("api_key" = ["insights:read"]), ("bearer" = ["insights:read"])),
)]
pub async fn business_posts_and_reels_insights_csv(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<Map<String, Value>>,
) -> Result<Response, ApiError> {
    csv(
        &state,
        &caller,
        "business_posts_and_reels_insights",
        query_params(q),
    )
    .await
}

#[utoipa::path(
    post,
    path = "/facebook/campaign_metrics_csv",
    operation_id = "facebook_campaign_metrics_csv",
    tags = ["facebook", "exports"],
    summary = "POST /facebook/campaign_metrics as CSV",
    description = "The rows of `POST /facebook/campaign_metrics` as a CSV attachment (streamed from a spool file). Takes the same parameters. Scope `insights:read`.",
    request_body(content = CampaignMetricsRequest, example = json!(ex::campaign_metrics_request())),
    responses(
        (status = 200, description = "CSV attachment", body = String, content_type = "text/csv", example = json!(ex::CSV)),
        r::Refused, r::CallFailed
    ),
    security(("api_key" = ["insights:read"]), ("bearer" = ["insights:read"])),
)]
pub async fn campaign_metrics_csv(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    csv(&state, &caller, "campaign_metrics", body).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateExport {
    /// The insights endpoint to export: post_metrics, reel_metrics, business_post_insights, business_posts_and_reels_insights, campaign_metrics, google_campaign_metrics.
    #[schema(inline, value_type = crate::api::schemas::filters::ExportKind)]
    pub kind: String,
    #[serde(default)]
    /// That endpoint's parameters (its query or body fields), as an object.
    #[schema(value_type = Object)]
    pub params: Value,
    /// Only `csv` (the default).
    #[schema(inline, value_type = Option<crate::api::schemas::filters::ExportFormat>)]
    pub format: Option<String>,
}

fn readable(caller: &Caller, job: &ExportJob) -> bool {
    caller.key_id == job.owner || caller.key_id == ADMIN_KEY_ID
}

// The job without the access limits it carries in `params`.
/// One async export (`export::jobs::ExportJob`, plus `download_url`).
#[derive(Serialize, ToSchema)]
#[schema(as = ExportJob)]
pub struct ExportView {
    pub id: String,
    /// The insights endpoint, e.g. `post_metrics`.
    pub kind: String,
    /// The endpoint's parameters.
    #[schema(value_type = HashMap<String, Value>)]
    pub params: Value,
    /// Always `csv` for now.
    pub format: String,
    pub status: ExportStatus,
    pub rows_written: u64,
    #[schema(required = true)]
    pub row_count: Option<u64>,
    #[schema(required = true)]
    pub error: Option<String>,
    /// The id of the API key that asked for the export.
    pub owner: String,
    pub created_at: DateTime<Utc>,
    #[schema(required = true)]
    pub started_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub finished_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub expires_at: Option<DateTime<Utc>>,
    pub file_name: String,
    pub attempts: u32,
    /// Present once completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
}

fn view(job: ExportJob) -> ExportView {
    let mut params = job.params;
    if let Some(p) = params.as_object_mut() {
        p.remove(ACCESS_PARAM);
    }
    let download_url =
        (job.status == ExportStatus::Completed).then(|| format!("/exports/{}/download", job.id));
    ExportView {
        id: job.id,
        kind: job.kind,
        params,
        format: job.format,
        status: job.status,
        rows_written: job.rows_written,
        row_count: job.row_count,
        error: job.error,
        owner: job.owner,
        created_at: job.created_at,
        started_at: job.started_at,
        finished_at: job.finished_at,
        expires_at: job.expires_at,
        file_name: job.file_name,
        attempts: job.attempts,
        download_url,
    }
}

/// `POST /exports`: 202 with the job.
#[utoipa::path(
    post,
    path = "/exports",
    operation_id = "exports_create",
    tags = ["exports"],
    summary = "Start an async export",
    description = "Queues an export of an insights endpoint (`kind`, e.g. `post_metrics`) with that endpoint's parameters; answers 202 with the job. Poll `GET /exports/{id}`, then download. Scope `exports`.",
    request_body(content = CreateExport, example = json!(ex::export_request())),
    responses(
        (status = 202, description = "Queued", body = ExportView, example = json!(ex::export_queued())),
        r::Refused,
        (status = 400, response = r::BadRequest), (status = 422, response = r::Unprocessable), (status = 503, response = r::Unavailable)
    ),
    security(("api_key" = ["exports"]), ("bearer" = ["exports"])),
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateExport>,
) -> Result<(StatusCode, Json<ExportView>), ApiError> {
    let mut params = match body.params {
        Value::Null => Value::Object(Map::new()),
        Value::Object(o) => Value::Object(o),
        _ => return Err(ApiError::bad_request("params", "must be an object")),
    };
    // The job reads with the creating key's team limits, whatever the caller sent.
    params[ACCESS_PARAM] = json!(caller.teams());
    let job = state
        .exports
        .create(
            &caller.key_id,
            &body.kind,
            params,
            body.format.as_deref().unwrap_or("csv"),
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(view(job))))
}

/// `GET /exports`: the caller's exports.
#[utoipa::path(
    get,
    path = "/exports",
    operation_id = "exports_list",
    tags = ["exports"],
    summary = "The caller's exports",
    description = "Exports created by the calling key (every export for the admin key). Scope `exports`.",
    responses(
        (status = 200, description = "OK", body = ExportList, example = json!(ex::export_list())),
        r::Refused
    ),
    security(("api_key" = ["exports"]), ("bearer" = ["exports"])),
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ExportList>, ApiError> {
    let owner = (caller.key_id != ADMIN_KEY_ID).then_some(caller.key_id.as_str());
    let exports: Vec<ExportView> = state
        .exports
        .list(owner)
        .await?
        .into_iter()
        .map(view)
        .collect();
    Ok(Json(ExportList {
        count: exports.len() as u64,
        exports,
    }))
}

// The caller's exports (every export for the admin key); each job as
// `GET /exports/{id}` shows it.
#[derive(Serialize, ToSchema)]
pub struct ExportList {
    pub count: u64,
    pub exports: Vec<ExportView>,
}

async fn job_for(state: &AppState, caller: &Caller, id: &str) -> Result<ExportJob, ApiError> {
    caller.require(Scope::Exports)?;
    state
        .exports
        .get(id)
        .await?
        .filter(|job| readable(caller, job))
        .ok_or_else(|| ApiError::NotFound(format!("export {id} not found")))
}

/// `GET /exports/{id}`: status, progress, rows, error.
#[utoipa::path(
    get,
    path = "/exports/{id}",
    operation_id = "exports_get",
    tags = ["exports"],
    summary = "One export",
    description = "Status, progress, rows and error; `download_url` once completed. Readable by the key that created it or the admin key. Scope `exports`.",
    params(("id" = String, Path, description = "The export id", example = "exp_1a2b3c4d")),
    responses(
        (status = 200, description = "OK", body = ExportView, example = json!(ex::export_completed())),
        r::Refused,
        (status = 404, response = r::NotFound)
    ),
    security(("api_key" = ["exports"]), ("bearer" = ["exports"])),
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ExportView>, ApiError> {
    Ok(Json(view(job_for(&state, &caller, &id).await?)))
}

/// `GET /exports/{id}/download`: the finished file.
#[utoipa::path(
    get,
    path = "/exports/{id}/download",
    operation_id = "exports_download",
    tags = ["exports"],
    summary = "Download a finished export",
    description = "The CSV file of a completed export; 409 while it is queued or running. Scope `exports`.",
    params(("id" = String, Path, description = "The export id", example = "exp_1a2b3c4d")),
    responses(
        (status = 200, description = "CSV attachment", body = String, content_type = "text/csv", example = json!(ex::CSV)),
        r::Refused,
        (status = 404, response = r::NotFound), (status = 409, response = r::Conflict)
    ),
    security(("api_key" = ["exports"]), ("bearer" = ["exports"])),
)]
pub async fn download(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = job_for(&state, &caller, &id).await?;
    let file = state
        .exports
        .open_file(&id)
        .await
        .map_err(|e| ApiError::Internal(format!("opening export {id}: {e}")))?
        .ok_or_else(|| {
            ApiError::Conflict(
                format!("export {id} is {:?}, not completed", job.status).to_lowercase(),
            )
        })?;
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/csv; charset=utf-8".to_string(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", job.file_name),
            ),
        ],
        body,
    )
        .into_response())
}
