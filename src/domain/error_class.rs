//! How an upstream failure is classified, and the record of the last one a
//! connection saw.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The class of an upstream failure, decided from error codes only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(description = "The class of an upstream failure.")]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    Transient,
    RateLimited,
    PermissionMissing,
    ReauthRequired,
    InvalidRequest,
    /// The object asked for does not exist, or the token cannot see it
    /// (Graph 100/33, Google `NOT_FOUND`): the caller named something wrong.
    NotFound,
}

/// The last failure seen for a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LastError {
    pub class: ErrorClass,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subcode: Option<i64>,
    pub message: String,
    pub at: DateTime<Utc>,
}
