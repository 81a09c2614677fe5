//! The one place where errors become HTTP responses:
//! `{"error": {"code": "...", "message": "...", "field": "..."}}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use axum::extract::rejection::{JsonRejection, QueryRejection};

use crate::audit::AuditError;
use crate::domain::ErrorClass;
use crate::erasure::ErasureError;
use crate::export::ExportError;
use crate::insights::InsightsError;
use crate::insights::metrics::BadMetric;
use crate::providers::connect::ConnectError;
use crate::providers::spec::NotConfigured;
use crate::store::StoreError;
use crate::tokens::{DisconnectError, TokenError};

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
    #[error("this endpoint does not take that method")]
    MethodNotAllowed,
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UriTooLong(String),
    #[error("{0}")]
    HeadersTooLarge(String),
    /// The platform refused for want of a permission (scope, role, access
    /// to the account); the message carries the platform's words naming it.
    #[error("{0}")]
    PermissionMissing(String),
    #[error("{0}")]
    Conflict(String),
    /// Deleting the connection alone would leave the connections derived
    /// from it behind; `derived` names them (id, kind, label).
    #[error("{message}")]
    HasDerived {
        message: String,
        derived: serde_json::Value,
    },
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
    /// The connection named by `field` is of another platform or kind than
    /// the operation needs; `expected` says which.
    #[error("{message}")]
    WrongConnection {
        field: String,
        message: String,
        expected: serde_json::Value,
    },
    /// Metrics that cannot be used, each named with why and its replacement.
    #[error("{0}")]
    BadMetrics(String, Vec<BadMetric>),
    #[error("rate limit exceeded, retry after {} s", (*.retry_after_secs).max(1))]
    RateLimited { retry_after_secs: u64 },
    /// The client did not send its request body in time.
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0}")]
    Upstream(String),
    /// The platform's rate limit for this call's scope (or our wait for it)
    /// outlasts what a request may wait inline.
    #[error("{message}")]
    UpstreamRateLimited {
        message: String,
        retry_after_secs: u64,
    },
    #[error("{0}")]
    Unavailable(String),
    /// A token hand-out whose audit record could not be made durable.
    #[error("{0}")]
    AuditUnavailable(String),
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
            ApiError::Forbidden(_) | ApiError::PermissionMissing(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UriTooLong(_) => StatusCode::URI_TOO_LONG,
            ApiError::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::Conflict(_)
            | ApiError::HasDerived { .. }
            | ApiError::RunInProgress(_)
            | ApiError::ReauthRequired(_)
            | ApiError::CannotRefresh(_) => StatusCode::CONFLICT,
            ApiError::Unprocessable { .. }
            | ApiError::WrongConnection { .. }
            | ApiError::BadMetrics(..) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable(_)
            | ApiError::AuditUnavailable(_)
            | ApiError::TimedOut(_)
            | ApiError::UpstreamRateLimited { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::PermissionMissing(_) => "permission_missing",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UriTooLong(_) => "uri_too_long",
            ApiError::HeadersTooLarge(_) => "headers_too_large",
            ApiError::Conflict(_) => "conflict",
            ApiError::HasDerived { .. } => "has_derived_connections",
            ApiError::RunInProgress(_) => "run_in_progress",
            ApiError::ReauthRequired(_) => "reauth_required",
            ApiError::CannotRefresh(_) => "cannot_refresh",
            ApiError::Unprocessable { .. } | ApiError::WrongConnection { .. } => {
                "validation_failed"
            }
            ApiError::BadMetrics(..) => "invalid_metrics",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::RequestTimeout(_) => "request_timeout",
            ApiError::Upstream(_) => "upstream_error",
            ApiError::UpstreamRateLimited { .. } => "upstream_rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::AuditUnavailable(_) => "audit_unavailable",
            ApiError::TimedOut(_) => "timeout",
            ApiError::Internal(_) => "internal_error",
        }
    }
}

impl ApiError {
    /// The message a client may see: an internal cause stays in the log.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Internal(_) => "internal error; see the service log".to_string(),
            other => other.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Internal(cause) = &self {
            tracing::error!(error = %cause, "internal error");
        }
        let message = self.public_message();
        let mut error = json!({ "code": self.code(), "message": message });
        match &self {
            ApiError::BadRequest {
                field: Some(field), ..
            }
            | ApiError::Unprocessable { field, .. } => {
                error["field"] = json!(field);
            }
            ApiError::WrongConnection {
                field, expected, ..
            } => {
                error["field"] = json!(field);
                error["expected"] = expected.clone();
            }
            ApiError::BadMetrics(_, metrics) => {
                error["field"] = json!("metrics");
                error["metrics"] = json!(metrics);
            }
            ApiError::RunInProgress(run_id) => {
                error["run_id"] = json!(run_id);
            }
            ApiError::HasDerived { derived, .. } => {
                error["derived"] = derived.clone();
            }
            _ => {}
        }
        let mut response = (status, Json(json!({ "error": error }))).into_response();
        if let ApiError::RateLimited { retry_after_secs }
        | ApiError::UpstreamRateLimited {
            retry_after_secs, ..
        } = self
        {
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
            StoreError::Misbound {
                id,
                field,
                sealed_for,
            } => {
                // The account it was sealed for may be another team's.
                tracing::error!(%id, field, %sealed_for, "a secret sits in another connection's record");
                ApiError::Internal(format!(
                    "connection {id}'s {field} was sealed for another connection (moved outside tokenkeeper); it is not handed out"
                ))
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<AuditError> for ApiError {
    /// The cause (a file's I/O error, a failed insert) was logged where it
    /// happened.
    fn from(_: AuditError) -> Self {
        ApiError::AuditUnavailable(
            "the hand-out could not be recorded in the audit log, so no token was issued; see the service log".into(),
        )
    }
}

impl From<NotConfigured> for ApiError {
    fn from(e: NotConfigured) -> Self {
        ApiError::Unavailable(e.0)
    }
}

impl From<ConnectError> for ApiError {
    fn from(e: ConnectError) -> Self {
        TokenError::from(e).into()
    }
}

impl From<TokenError> for ApiError {
    fn from(err: TokenError) -> Self {
        match err {
            TokenError::NotFound(id) => ApiError::NotFound(format!("connection {id} not found")),
            e @ TokenError::ReauthRequired { .. } => ApiError::ReauthRequired(e.to_string()),
            e @ TokenError::CannotRefresh { .. } => ApiError::CannotRefresh(e.to_string()),
            TokenError::Upstream(u) => upstream(u, None),
            TokenError::InputRejected { field, source } => upstream(*source, Some(field)),
            TokenError::Invalid { field, message } => ApiError::Unprocessable { field, message },
            ref e @ TokenError::WrongConnection {
                ref field,
                expected_provider,
                ref expected_kinds,
                ..
            } => ApiError::WrongConnection {
                field: field.clone(),
                message: e.to_string(),
                expected: json!({ "provider": expected_provider, "kinds": expected_kinds }),
            },
            TokenError::NotConfigured(m) => ApiError::Unavailable(m),
            TokenError::Store(m) => {
                tracing::error!(error = %m, "store failure");
                ApiError::Unavailable("the token store is not writable; see the service log".into())
            }
        }
    }
}

/// The status of an upstream failure, by its class (decided from the
/// platform's codes; the table is in docs/api.md, "Upstream errors").
/// `input` names the caller's field when the refused call carried it (a code
/// or token handed in to connect); otherwise the call was made with a stored
/// connection.
fn upstream(u: crate::providers::UpstreamError, input: Option<String>) -> ApiError {
    match (u.class, input) {
        // Retries gave up (the wait would exceed the bound, or no attempt
        // was left): the caller retries after the platform's regain time,
        // else after a minute, Meta's floor (wire-spec 3).
        (ErrorClass::RateLimited, _) => ApiError::UpstreamRateLimited {
            retry_after_secs: u.retry_after.map_or(60, |d| d.as_secs_f64().ceil() as u64),
            message: format!("the platform's rate limit was reached: {u}"),
        },
        (ErrorClass::Transient, _) => ApiError::Upstream(u.to_string()),
        (ErrorClass::PermissionMissing, _) => ApiError::PermissionMissing(format!(
            "the platform refused for a missing permission: {u}"
        )),
        (
            ErrorClass::ReauthRequired | ErrorClass::InvalidRequest | ErrorClass::NotFound,
            Some(field),
        ) => ApiError::Unprocessable {
            message: format!("the platform refused the {field} handed in: {u}"),
            field,
        },
        (ErrorClass::ReauthRequired, None) => ApiError::ReauthRequired(format!(
            "the platform rejected the token; the user must reconnect: {u}"
        )),
        (ErrorClass::NotFound, None) => {
            ApiError::NotFound(format!("the platform has no such object: {u}"))
        }
        // The platform refused a request we built from validated input
        // (version, parameters): our side of the gateway is at fault.
        (ErrorClass::InvalidRequest, None) => ApiError::Upstream(u.to_string()),
    }
}

impl From<DisconnectError> for ApiError {
    fn from(err: DisconnectError) -> Self {
        match err {
            DisconnectError::Token(e) => e.into(),
            ref e @ DisconnectError::HasDerived { ref derived, .. } => ApiError::HasDerived {
                message: e.to_string(),
                derived: derived
                    .iter()
                    .map(|d| json!({ "id": d.id, "kind": d.kind, "label": d.label }))
                    .collect(),
            },
            // Whatever the platform's class (a caller's input was not
            // involved), the gateway failed: 502, or 503 with the wait
            // for a rate limit, as on every path (docs/api.md).
            ref e @ DisconnectError::RevocationFailed { ref source, .. } => match source.class {
                ErrorClass::RateLimited => ApiError::UpstreamRateLimited {
                    retry_after_secs: source
                        .retry_after
                        .map_or(60, |d| d.as_secs_f64().ceil() as u64),
                    message: e.to_string(),
                },
                _ => ApiError::Upstream(e.to_string()),
            },
        }
    }
}

impl From<ErasureError> for ApiError {
    fn from(err: ErasureError) -> Self {
        match err {
            ErasureError::Store(e) => e.into(),
            ErasureError::Disconnect(e) => e.into(),
            // Our own storage failed; Meta sends the request again.
            e @ ErasureError::Incomplete { .. } => ApiError::Internal(e.to_string()),
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
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::PayloadTooLarge(r.body_text());
        }
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
            (ApiError::PermissionMissing("m".into()), 403),
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
            (ApiError::AuditUnavailable("m".into()), 503),
            (
                ApiError::UpstreamRateLimited {
                    message: "m".into(),
                    retry_after_secs: 600,
                },
                503,
            ),
            (ApiError::TimedOut("m".into()), 503),
            (ApiError::Internal("m".into()), 500),
        ];
        for (err, status) in cases {
            assert_eq!(err.into_response().status().as_u16(), status);
        }
    }

    #[test]
    fn an_upstream_rate_limit_beyond_the_wait_bound_is_503_with_retry_after() {
        let mut u = crate::providers::UpstreamError::transient("/1/published_posts", "throttled");
        u.class = ErrorClass::RateLimited;
        u.retry_after = Some(std::time::Duration::from_millis(599_200));
        let response = ApiError::from(TokenError::Upstream(u.clone())).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "600");
        // Without the platform's regain time: Meta's one-minute floor.
        u.retry_after = None;
        let response = ApiError::from(TokenError::Upstream(u)).into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "60");
    }
}
