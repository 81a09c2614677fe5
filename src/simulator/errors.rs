//! Graph error envelopes (`{"error":{message,type,code,error_subcode,fbtrace_id}}`)
//! and the control API's own small error type.

use serde_json::{Map, Value, json};

/// A Graph API error as Meta sends it. The HTTP status is part of the
/// simulated wire contract (wire-spec 2.2), so it lives here.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GraphError {
    pub status: u16,
    pub code: i64,
    pub subcode: Option<i64>,
    pub kind: String,
    pub message: String,
    pub is_transient: Option<bool>,
    /// `invalid_token` / `invalid_request` for the `WWW-Authenticate` header.
    pub challenge: Option<&'static str>,
    /// `error_user_title` and `error_user_msg`, when Meta sends them.
    pub user_text: Option<Box<(String, String)>>,
}

impl GraphError {
    pub fn new(status: u16, code: i64, kind: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            subcode: None,
            kind: kind.to_string(),
            message: message.into(),
            is_transient: None,
            challenge: None,
            user_text: None,
        }
    }

    pub fn with_subcode(mut self, subcode: i64) -> Self {
        self.subcode = Some(subcode);
        self
    }

    /// Code 100, an invalid or missing parameter.
    pub fn param(message: impl Into<String>) -> Self {
        Self::new(400, 100, "OAuthException", message)
    }

    /// Code 190: the token is invalid, expired or revoked.
    pub fn token(subcode: Option<i64>, message: impl Into<String>) -> Self {
        Self {
            subcode,
            challenge: Some("invalid_token"),
            ..Self::new(400, 190, "OAuthException", message)
        }
    }

    /// A token that is not one the simulator issued.
    pub fn unparseable_token() -> Self {
        Self::token(None, UNPARSEABLE)
    }

    /// No token at all on an endpoint that needs one.
    pub fn missing_token(code: i64, message: &str) -> Self {
        Self {
            challenge: Some("invalid_request"),
            ..Self::new(400, code, "OAuthException", message)
        }
    }

    /// Subcode 33: the object does not exist or the token cannot see it.
    pub fn unsupported_get(id: &str) -> Self {
        Self::param(format!(
            "Unsupported get request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api"
        ))
        .with_subcode(33)
    }

    pub fn client_id() -> Self {
        Self::new(
            400,
            101,
            "OAuthException",
            "Error validating application. Invalid application ID.",
        )
    }

    pub fn client_secret() -> Self {
        Self::new(
            400,
            101,
            "OAuthException",
            "Error validating client secret.",
        )
    }

    pub fn proof_missing() -> Self {
        Self::new(
            400,
            100,
            "GraphMethodException",
            "API calls from the server require an appsecret_proof argument",
        )
    }

    pub fn proof_invalid() -> Self {
        Self::new(
            400,
            100,
            "GraphMethodException",
            "Invalid appsecret_proof provided in the API argument",
        )
    }

    /// The `{"error":{…}}` body.
    pub fn body(&self, trace_id: &str) -> Value {
        let mut error = Map::new();
        error.insert("message".into(), json!(self.message));
        error.insert("type".into(), json!(self.kind));
        error.insert("code".into(), json!(self.code));
        if let Some(subcode) = self.subcode {
            error.insert("error_subcode".into(), json!(subcode));
        }
        if let Some(transient) = self.is_transient {
            error.insert("is_transient".into(), json!(transient));
        }
        if let Some((title, msg)) = self.user_text.as_deref() {
            error.insert("error_user_title".into(), json!(title));
            error.insert("error_user_msg".into(), json!(msg));
        }
        error.insert("fbtrace_id".into(), json!(trace_id));
        json!({ "error": error })
    }
}

pub(crate) const UNPARSEABLE: &str = "Invalid OAuth access token - Cannot parse access token";

/// Failures of `/_sim` control calls.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ControlError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    /// A URL the simulator was asked to call did not answer.
    #[error("{0}")]
    Unreachable(String),
}

impl ControlError {
    /// No `what` with this id, e.g. `missing("user", id)`.
    pub fn missing(what: &str, id: &str) -> Self {
        Self::NotFound(format!("no {what} {id}"))
    }
}
