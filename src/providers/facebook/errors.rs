//! The Graph error envelope and its classification by code and subcode
//! (wire-spec 2.3). Message text is never used to decide anything.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::super::UpstreamError;
use crate::domain::ErrorClass;
use crate::providers::redact::scrub;

/// `{"error": {...}}` as the Graph API sends it.
#[derive(Debug, Clone, Deserialize)]
pub struct GraphErrorBody {
    #[serde(default)]
    pub message: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    pub code: Option<i64>,
    pub error_subcode: Option<i64>,
    pub is_transient: Option<bool>,
    pub fbtrace_id: Option<String>,
}

/// Decides the class of a Graph error from its numbers alone.
pub fn classify(code: Option<i64>, subcode: Option<i64>, is_transient: Option<bool>) -> ErrorClass {
    if is_transient == Some(true) {
        return ErrorClass::Transient;
    }
    let Some(code) = code else {
        return ErrorClass::Transient;
    };
    match code {
        1 | 2 | -2 => ErrorClass::Transient,
        4 | 17 | 32 | 341 | 368 | 613 | 80000..=80014 => ErrorClass::RateLimited,
        10 | 200..=299 => ErrorClass::PermissionMissing,
        102 | 190 => ErrorClass::ReauthRequired,
        // 100/33: "Object with ID ... does not exist" (wire-spec 2.3).
        100 if subcode == Some(33) => ErrorClass::NotFound,
        // 100 and its other subcodes (1487534, 1504018, 36007, ...), 3, 506,
        // 3001, 2635: the request must change; retrying it cannot help.
        _ => ErrorClass::InvalidRequest,
    }
}

/// Builds the classified error from a response body (if it carries the
/// envelope) and the HTTP status.
pub fn from_response(
    endpoint: &str,
    status: u16,
    body: &Value,
    retry_after: Option<Duration>,
    sent_secrets: &[&str],
) -> UpstreamError {
    let parsed = body
        .get("error")
        .and_then(|e| serde_json::from_value::<GraphErrorBody>(e.clone()).ok());
    match parsed {
        Some(e) => {
            let class = classify(e.code, e.error_subcode, e.is_transient);
            UpstreamError {
                class,
                code: e.code,
                subcode: e.error_subcode,
                message: scrub(&e.message, sent_secrets),
                retry_after: if class == ErrorClass::RateLimited {
                    retry_after
                } else {
                    None
                },
                http_status: Some(status),
                endpoint: endpoint.to_string(),
            }
        }
        None => {
            let class = match status {
                429 => ErrorClass::RateLimited,
                500..=599 => ErrorClass::Transient,
                _ => ErrorClass::InvalidRequest,
            };
            UpstreamError {
                class,
                code: None,
                subcode: None,
                message: format!("HTTP {status} without a Graph error body"),
                retry_after,
                http_status: Some(status),
                endpoint: endpoint.to_string(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn codes_map_to_classes() {
        let c = |code, sub| classify(Some(code), sub, None);
        assert_eq!(c(190, Some(460)), ErrorClass::ReauthRequired);
        assert_eq!(c(190, None), ErrorClass::ReauthRequired);
        assert_eq!(c(102, None), ErrorClass::ReauthRequired);
        assert_eq!(c(2, None), ErrorClass::Transient);
        assert_eq!(c(1, None), ErrorClass::Transient);
        assert_eq!(c(4, Some(1504022)), ErrorClass::RateLimited);
        assert_eq!(c(80004, Some(2446079)), ErrorClass::RateLimited);
        assert_eq!(c(613, None), ErrorClass::RateLimited);
        assert_eq!(c(200, None), ErrorClass::PermissionMissing);
        assert_eq!(c(10, None), ErrorClass::PermissionMissing);
        assert_eq!(c(100, Some(33)), ErrorClass::NotFound);
        assert_eq!(c(100, Some(36007)), ErrorClass::InvalidRequest);
        assert_eq!(c(100, None), ErrorClass::InvalidRequest);
        // is_transient wins whatever the code.
        assert_eq!(classify(Some(100), None, Some(true)), ErrorClass::Transient);
    }

    #[test]
    fn envelope_is_parsed_and_sent_tokens_scrubbed() {
        let body = json!({"error": {"message": "bad EAAB-secret-token-1", "type": "OAuthException",
            "code": 190, "error_subcode": 463, "fbtrace_id": "A"}});
        let e = from_response("/me", 400, &body, None, &["EAAB-secret-token-1"]);
        assert_eq!(e.class, ErrorClass::ReauthRequired);
        assert_eq!((e.code, e.subcode), (Some(190), Some(463)));
        assert!(!e.message.contains("EAAB-secret"));
        let e = from_response("/me", 503, &json!("oops"), None, &[]);
        assert_eq!(e.class, ErrorClass::Transient);
    }
}
