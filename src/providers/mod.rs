//! Upstream platform clients. Each one speaks its provider's wire format and
//! reports failures as an [`UpstreamError`] classified by error code, never by
//! message text.

pub mod connect;
pub mod facebook;
pub mod google;
pub mod lifecycle;
pub mod redact;
pub mod refresh_grant;
pub mod registry;
pub mod retry;
pub mod spec;
pub mod tiktok;
pub mod transport;

use std::time::Duration;

use crate::domain::ErrorClass;

/// A failed upstream call, with what callers act on.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{endpoint}: {} ({}): {message}", class_name(.class), code_text(.code, .subcode))]
pub struct UpstreamError {
    pub class: ErrorClass,
    pub code: Option<i64>,
    pub subcode: Option<i64>,
    /// The upstream's message, with any token we sent scrubbed out.
    pub message: String,
    /// How long the upstream asked us to wait, when it said.
    pub retry_after: Option<Duration>,
    pub http_status: Option<u16>,
    /// The endpoint path, without query parameters.
    pub endpoint: String,
}

impl UpstreamError {
    pub fn transient(endpoint: &str, message: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Transient,
            code: None,
            subcode: None,
            message: message.into(),
            retry_after: None,
            http_status: None,
            endpoint: endpoint.to_string(),
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self.class, ErrorClass::Transient | ErrorClass::RateLimited)
    }
}

pub fn class_name(class: &ErrorClass) -> &'static str {
    match class {
        ErrorClass::Transient => "transient",
        ErrorClass::RateLimited => "rate_limited",
        ErrorClass::PermissionMissing => "permission_missing",
        ErrorClass::ReauthRequired => "reauth_required",
        ErrorClass::InvalidRequest => "invalid_request",
        ErrorClass::NotFound => "not_found",
    }
}

fn code_text(code: &Option<i64>, subcode: &Option<i64>) -> String {
    match (code, subcode) {
        (Some(c), Some(s)) => format!("code {c}/{s}"),
        (Some(c), None) => format!("code {c}"),
        _ => "no code".into(),
    }
}
