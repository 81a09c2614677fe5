//! The one place where errors become HTTP responses:
//! `{"error": {"code": "...", "message": "...", "field": "..."}}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use axum::extract::rejection::{JsonRejection, QueryRejection};

use crate::export::ExportError;
use crate::insights::InsightsError;
use crate::insights::metrics::BadMetric;
use crate::store::{ErrorClass, StoreError};
use crate::tokens::TokenError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest {
        field: Option<String>,
        message: String,
    },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A sweep is already running; names it.
    #[error("a refresh run is already in progress: {0}")]
    RunInProgress(String),
    /// The connection must be reconnected by its user.
    #[error("{0}")]
    ReauthRequired(String),
    /// The token or its data access lapsed and the platform cannot extend it.
    #[error("{0}")]
    CannotRefresh(String),
    #[error("{message}")]
    Unprocessable { field: String, message: String },
    /// Metrics that cannot be used, each named with why and its replacement.
    #[error("{0}")]
    BadMetrics(String, Vec<BadMetric>),
    #[error("rate limit exceeded, retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// The client did not send its request body in time.
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0}")]
    Upstream(String),
    #[error("{0}")]
    Unavailable(String),
    /// The service did not answer within `server.request_timeout_secs`.
    #[error("{0}")]
    TimedOut(String),
    /// The cause is logged; the body stays generic.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(field: &str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            field: Some(field.to_string()),
            message: message.into(),
        }
    }

    pub fn unprocessable(field: &str, message: impl Into<String>) -> Self {
        ApiError::Unprocessable {
            field: field.to_string(),
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_)
            | ApiError::RunInProgress(_)
            | ApiError::ReauthRequired(_)
            | ApiError::CannotRefresh(_) => StatusCode::CONFLICT,
            ApiError::Unprocessable { .. } | ApiError::BadMetrics(..) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable(_) | ApiError::TimedOut(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::RunInProgress(_) => "run_in_progress",
            ApiError::ReauthRequired(_) => "reauth_required",
            ApiError::CannotRefresh(_) => "cannot_refresh",
            ApiError::Unprocessable { .. } => "validation_failed",
            ApiError::BadMetrics(..) => "invalid_metrics",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::RequestTimeout(_) => "request_timeout",
            ApiError::Upstream(_) => "upstream_error",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::TimedOut(_) => "timeout",
            ApiError::Internal(_) => "internal_error",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Internal(cause) => {
                tracing::error!(error = %cause, "internal error");
                "internal error; see the service log".to_string()
            }
            other => other.to_string(),
        };
        let mut error = json!({ "code": self.code(), "message": message });
        match &self {
            ApiError::BadRequest {
                field: Some(field), ..
            }
            | ApiError::Unprocessable { field, .. } => {
                error["field"] = json!(field);
            }
            ApiError::BadMetrics(_, metrics) => {
                error["field"] = json!("metrics");
                error["metrics"] = json!(metrics);
            }
            ApiError::RunInProgress(run_id) => {
                error["run_id"] = json!(run_id);
            }
            _ => {}
        }
        let mut response = (status, Json(json!({ "error": error }))).into_response();
        if let ApiError::RateLimited { retry_after_secs } = self {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs.max(1)),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(id) => ApiError::NotFound(format!("connection {id} not found")),
            e @ StoreError::VersionConflict { .. } => ApiError::Conflict(e.to_string()),
            e @ (StoreError::Closed | StoreError::WriteFailed(_)) => {
                tracing::error!(error = %e, "store unavailable");
                ApiError::Unavailable("the token store is not writable; see the service log".into())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(err: TokenError) -> Self {
        match err {
            TokenError::NotFound(id) => ApiError::NotFound(format!("connection {id} not found")),
            e @ TokenError::ReauthRequired { .. } => ApiError::ReauthRequired(e.to_string()),
            e @ TokenError::CannotRefresh { .. } => ApiError::CannotRefresh(e.to_string()),
            TokenError::Upstream(u) => match u.class {
                ErrorClass::ReauthRequired => ApiError::ReauthRequired(format!(
                    "the platform rejected the token; the user must reconnect: {u}"
                )),
                _ => ApiError::Upstream(u.to_string()),
            },
            TokenError::Invalid { field, message } => ApiError::Unprocessable { field, message },
            TokenError::NotConfigured(m) => ApiError::Unavailable(m),
            TokenError::Store(m) => {
                tracing::error!(error = %m, "store failure");
                ApiError::Unavailable("the token store is not writable; see the service log".into())
            }
        }
    }
}

impl From<InsightsError> for ApiError {
    fn from(err: InsightsError) -> Self {
        match err {
            InsightsError::Invalid { field, message } => ApiError::Unprocessable { field, message },
            e @ InsightsError::BadMetrics(_) => {
                let text = e.to_string();
                match e {
                    InsightsError::BadMetrics(list) => ApiError::BadMetrics(text, list),
                    _ => unreachable!(),
                }
            }
            InsightsError::NoConnection(m) => ApiError::NotFound(m),
            InsightsError::Token(t) => t.into(),
            InsightsError::Upstream(u) => TokenError::Upstream(u).into(),
            e @ InsightsError::ReportFailed(_) => ApiError::Upstream(e.to_string()),
        }
    }
}

impl From<ExportError> for ApiError {
    fn from(err: ExportError) -> Self {
        match err {
            ExportError::UnknownKind { kind } => {
                ApiError::unprocessable("kind", format!("unknown export kind '{kind}'"))
            }
            ExportError::InvalidParams { field, message } => {
                ApiError::Unprocessable { field, message }
            }
            ExportError::NotFound(id) => ApiError::NotFound(format!("export {id} not found")),
            ExportError::Source(m) => ApiError::Upstream(m),
            ExportError::Closed => {
                ApiError::Unavailable("the export service is shutting down".into())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        ApiError::BadRequest {
            field: None,
            message: r.body_text(),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest {
            field: None,
            message: r.body_text(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_its_status() {
        let cases = [
            (ApiError::bad_request("x", "m"), 400),
            (ApiError::Unauthorized("m".into()), 401),
            (ApiError::Forbidden("m".into()), 403),
            (ApiError::NotFound("m".into()), 404),
            (ApiError::Conflict("m".into()), 409),
            (ApiError::unprocessable("x", "m"), 422),
            (
                ApiError::RateLimited {
                    retry_after_secs: 3,
                },
                429,
            ),
            (ApiError::RequestTimeout("m".into()), 408),
            (ApiError::Upstream("m".into()), 502),
            (ApiError::Unavailable("m".into()), 503),
            (ApiError::TimedOut("m".into()), 503),
            (ApiError::Internal("m".into()), 500),
        ];
        for (err, status) in cases {
            assert_eq!(err.into_response().status().as_u16(), status);
        }
    }
}
