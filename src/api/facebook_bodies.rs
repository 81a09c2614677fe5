//! The request and answer bodies of the `/facebook/...` endpoints; each type
//! is also its schema in the OpenAPI document. An `Option` marked `required`
//! is always present (`null` when unset).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{ConnectionFacts, Health};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ExchangeBody {
    /// The token to store; checked for plausibility, never logged.
    #[schema(
        min_length = 20,
        max_length = 4096,
        pattern = "^[^\\s\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    pub access_token: String,
    /// The team the connection will belong to.
    pub team_id: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct BusinessTokenBody {
    /// The token to store; checked for plausibility, never logged.
    #[schema(
        min_length = 20,
        max_length = 4096,
        pattern = "^[^\\s\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    pub access_token: String,
    /// A name to show for the connection.
    pub label: Option<String>,
    /// The team the connection will belong to.
    pub team_id: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ExtendBody {
    /// Permissions to ask for again; default: the configured scopes.
    pub scopes: Option<Vec<String>>,
    /// The team the connection will belong to.
    pub team_id: Option<String>,
}

/// The token status of a Facebook page's connection.
#[derive(Serialize, ToSchema)]
pub struct PageTokenStatus {
    pub page_id: String,
    pub health: Health,
    pub usable: bool,
    pub reauth_required: bool,
    pub connection: ConnectionFacts,
}

/// What Facebook's `debug_token` says of a connection's token.
#[derive(Serialize, ToSchema)]
pub struct DebugTokenResponse {
    pub connection_id: String,
    pub is_valid: bool,
    #[serde(rename = "type")]
    #[schema(required = true)]
    pub token_type: Option<String>,
    #[schema(required = true)]
    pub app_id: Option<String>,
    #[schema(required = true)]
    pub user_id: Option<String>,
    #[schema(required = true)]
    pub profile_id: Option<String>,
    #[schema(required = true)]
    pub expires_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub data_access_expires_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub issued_at: Option<DateTime<Utc>>,
    pub scopes: Vec<String>,
    #[schema(required = true)]
    pub error: Option<DebugTokenError>,
}

/// `data.error` of an invalid token.
#[derive(Serialize, ToSchema)]
pub struct DebugTokenError {
    pub code: i64,
    #[schema(required = true)]
    pub subcode: Option<i64>,
    pub message: String,
}

/// Granted against required permissions.
#[derive(Serialize, ToSchema)]
pub struct PermissionCheck {
    pub connection_id: String,
    pub granted: Vec<String>,
    pub required: Vec<String>,
    pub missing: Vec<String>,
    pub ok: bool,
}

/// A dialog URL asking again for permissions (`auth_type=rerequest`).
#[derive(Serialize, ToSchema)]
pub struct ExtendPermissionsResponse {
    pub url: String,
    pub state: String,
    pub state_expires_at: DateTime<Utc>,
    pub scopes: Vec<String>,
}
