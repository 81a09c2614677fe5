//! `GET /webhooks/deliveries`, `GET /webhooks/deliveries/{id}` and
//! `POST /webhooks/deliveries/{id}/retry`: the outbound webhook events, how
//! their delivery went, and sending one again. A team key sees only the
//! events about its teams' connections.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::ApiError;
use super::extract::ApiQuery;
use super::schemas::responses as r;
use super::state::AppState;
use crate::domain::{Delivery, DeliveryStatus};
use crate::store::DeliveryFilter;

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// One event and its delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// The event's id, sent as `webhook-id` on every attempt.
    pub id: String,
    /// The event type, e.g. `connection.reauth_required`.
    #[serde(rename = "type")]
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// The HTTP status of the last answer; none when the receiver did not
    /// answer (or no attempt was made yet).
    pub last_status: Option<u16>,
    /// Why the last attempt failed: `HTTP 503`, `timed out`, `connection failed`.
    pub last_error: Option<String>,
    pub connection_id: Option<String>,
    pub team_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// The body as sent (only on `GET /webhooks/deliveries/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub payload: Option<serde_json::Value>,
}

impl DeliveryView {
    fn of(d: Delivery, with_payload: bool) -> Self {
        let payload = with_payload.then(|| serde_json::from_str(&d.payload).unwrap_or_default());
        Self {
            id: d.id,
            event_type: d.event_type,
            status: d.status,
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            connection_id: d.connection_id,
            team_id: d.team_id,
            created_at: d.created_at,
            last_attempt_at: d.last_attempt_at,
            next_attempt_at: d.next_attempt_at,
            delivered_at: d.delivered_at,
            payload,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    /// Newest first.
    pub deliveries: Vec<DeliveryView>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// Only deliveries in this state: `pending`, `delivered` or `exhausted`.
    #[param(inline, value_type = Option<DeliveryStatus>)]
    pub status: Option<String>,
    /// Only events of this type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub event_type: Option<String>,
    /// Only events about this connection.
    pub connection_id: Option<String>,
    /// At most this many (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

fn notifier_on(state: &AppState) -> Result<&crate::notify::Notifier, ApiError> {
    if state.notifier.is_enabled() {
        Ok(&state.notifier)
    } else {
        Err(ApiError::Conflict(
            "no webhook is configured: set notifications.webhook_url".into(),
        ))
    }
}

/// The delivery `id`, if the caller may see it.
async fn visible(state: &AppState, caller: &Caller, id: &str) -> Result<Delivery, ApiError> {
    let found = notifier_on(state)?.delivery(id).await?;
    found
        .filter(|d| {
            caller
                .teams()
                .is_none_or(|ts| d.team_id.as_ref().is_some_and(|t| ts.contains(t)))
        })
        .ok_or_else(|| ApiError::NotFound(format!("no webhook delivery {id}")))
}

fn delivery_example() -> serde_json::Value {
    serde_json::json!({
        "id": "msg_2b1f0c9a6e4d4b7f9a3c5d8e1f2a3b4c",
        "type": "connection.reauth_required",
        "status": "pending",
        "attempts": 2,
        "last_status": 503,
        "last_error": "HTTP 503",
        "connection_id": "conn_8f3a2c",
        "team_id": "team-a",
        "created_at": "2026-12-03T08:00:00Z",
        "last_attempt_at": "2026-12-03T08:00:05Z",
        "next_attempt_at": "2026-12-03T08:05:06Z",
        "delivered_at": null
    })
}

/// `GET /webhooks/deliveries`.
#[utoipa::path(
    get,
    path = "/webhooks/deliveries",
    operation_id = "webhook_deliveries",
    tags = ["internal"],
    summary = "Webhook events and their delivery",
    description = "The outbound webhook events, newest first: each one's status (`pending`, `delivered`, `exhausted`), attempts, last answer and next attempt. A team key sees only the events about its teams' connections. 409 when no webhook is configured. Scope `internal`.",
    params(DeliveryQuery),
    responses(
        (status = 200, description = "OK", body = DeliveryList,
            example = json!({"deliveries": [delivery_example()]})),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited),
        (status = 400, response = r::BadRequest), (status = 409, response = r::Conflict)
    ),
    security(("api_key" = ["internal"]), ("bearer" = ["internal"])),
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<DeliveryQuery>,
) -> Result<Json<DeliveryList>, ApiError> {
    let status = q
        .status
        .as_deref()
        .map(|s| {
            DeliveryStatus::parse(s).ok_or_else(|| {
                ApiError::bad_request("status", "must be one of pending, delivered, exhausted")
            })
        })
        .transpose()?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request("limit", "must be 1 to 1000"));
    }
    let filter = DeliveryFilter {
        status,
        event_type: q.event_type,
        teams: caller.teams().map(<[String]>::to_vec),
        connection_id: q.connection_id,
        limit,
    };
    let found = notifier_on(&state)?
        .deliveries(&filter)
        .await?
        .unwrap_or_default();
    Ok(Json(DeliveryList {
        deliveries: found
            .into_iter()
            .map(|d| DeliveryView::of(d, false))
            .collect(),
    }))
}

/// `GET /webhooks/deliveries/{id}`.
#[utoipa::path(
    get,
    path = "/webhooks/deliveries/{id}",
    operation_id = "webhook_delivery",
    tags = ["internal"],
    summary = "One webhook event",
    description = "One outbound event, with the body sent on every attempt. Scope `internal`.",
    params(("id" = String, Path, description = "The event id (`webhook-id`)", example = "msg_2b1f0c9a6e4d4b7f9a3c5d8e1f2a3b4c")),
    responses(
        (status = 200, description = "OK", body = DeliveryView, example = json!(with_payload(delivery_example()))),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited),
        (status = 404, response = r::NotFound), (status = 409, response = r::Conflict)
    ),
    security(("api_key" = ["internal"]), ("bearer" = ["internal"])),
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DeliveryView>, ApiError> {
    let d = visible(&state, &caller, &id).await?;
    Ok(Json(DeliveryView::of(d, true)))
}

fn with_payload(mut d: serde_json::Value) -> serde_json::Value {
    d["payload"] = serde_json::json!({
        "type": "connection.reauth_required",
        "timestamp": "2026-12-03T08:00:00.000Z",
        "data": {"connection": {"id": "conn_8f3a2c", "provider": "facebook", "kind": "page",
                                "external_id": "1122334455", "team_id": "team-a",
                                "health": "reauth_required"}}
    });
    d
}

/// `POST /webhooks/deliveries/{id}/retry`.
#[utoipa::path(
    post,
    path = "/webhooks/deliveries/{id}/retry",
    operation_id = "webhook_delivery_retry",
    tags = ["internal"],
    summary = "Send a webhook event again",
    description = "Queues the event for an attempt now, whatever its status (an exhausted one gets a fresh schedule of retries); the attempts so far are kept and the `webhook-id` is the same. Answers 202 with the delivery as queued. Scope `internal`.",
    params(("id" = String, Path, description = "The event id (`webhook-id`)", example = "msg_2b1f0c9a6e4d4b7f9a3c5d8e1f2a3b4c")),
    responses(
        (status = 202, description = "Queued", body = DeliveryView, example = json!(delivery_example())),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited),
        (status = 404, response = r::NotFound), (status = 409, response = r::Conflict)
    ),
    security(("api_key" = ["internal"]), ("bearer" = ["internal"])),
)]
pub async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<DeliveryView>), ApiError> {
    visible(&state, &caller, &id).await?;
    let queued = state
        .notifier
        .retry(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no webhook delivery {id}")))?;
    tracing::info!(id = %id, "webhook delivery queued again by request");
    Ok((StatusCode::ACCEPTED, Json(DeliveryView::of(queued, false))))
}
