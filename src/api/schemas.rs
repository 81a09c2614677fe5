//! The OpenAPI shapes that are not a handler's own answer type: the error
//! envelope and the error responses every operation references, and the
//! Google Ads answers, which `insights/google.rs` still builds as
//! `serde_json::Value` (documentation-only: an `Option` marked `required` is
//! always present, `null` when unset; the others are left out when unset).

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::{ToResponse, ToSchema};

use crate::insights::answers::Summary;
use crate::insights::metrics::BadMetric;

/// The error envelope every failure uses.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `validation_failed`.
    pub code: String,
    pub message: String,
    /// The input at fault, when one is.
    pub field: Option<String>,
    /// With `invalid_metrics`: each refused metric, why, and its replacement.
    pub metrics: Option<Vec<BadMetric>>,
    /// With `run_in_progress`: the run already going.
    pub run_id: Option<String>,
    /// With a connection of another platform or kind: what the operation needs.
    pub expected: Option<ExpectedConnection>,
    /// With `has_derived_connections`: the connections derived from the
    /// one named, which a delete without `cascade=true` would leave behind.
    pub derived: Option<Vec<DerivedConnection>>,
}

/// A connection derived from another (a Facebook page from its user).
#[derive(Serialize, ToSchema)]
pub struct DerivedConnection {
    pub id: String,
    pub kind: String,
    pub label: String,
}

/// What an operation needs of the connection it was given.
#[derive(Serialize, ToSchema)]
pub struct ExpectedConnection {
    /// The platform its call goes to.
    pub provider: Option<String>,
    /// The kinds it can use; empty for any.
    pub kinds: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct GoogleCampaign {
    #[schema(required = true)]
    pub id: Option<String>,
    #[schema(required = true)]
    pub name: Option<String>,
    #[schema(required = true)]
    pub status: Option<String>,
}

/// A Google Ads customer's campaigns.
#[derive(Serialize, ToSchema)]
pub struct GoogleCampaignList {
    pub success: bool,
    pub count: u64,
    pub data: Vec<GoogleCampaign>,
}

/// Google Ads campaign metrics rows and totals.
#[derive(Serialize, ToSchema)]
pub struct GoogleMetricsAnswer {
    pub success: bool,
    pub message: String,
    pub data: Vec<HashMap<String, Value>>,
    pub summary: Summary,
}

/// The error responses, defined once and referenced by each operation.
pub mod responses {
    use super::*;
    use crate::api::examples::error;

    /// The request is malformed: bad JSON, a missing or implausible parameter.
    #[derive(ToResponse)]
    #[response(
        description = "Malformed request (`bad_request`)",
        example = json!(error("bad_request", "is required", Some("connection_id")))
    )]
    pub struct BadRequest(pub ErrorBody);

    #[derive(ToResponse)]
    #[response(
        description = "No API key (`unauthorized`)",
        example = json!(error("unauthorized", "an API key is required (X-API-Key or Authorization: Bearer)", None))
    )]
    pub struct Unauthorized(pub ErrorBody);

    #[derive(ToResponse)]
    #[response(
        description = "Unknown key, or the key lacks the scope or team (`forbidden`); or the platform refused for a missing permission, named in the message (`permission_missing`)",
        example = json!(error("forbidden", "the API key 'reporting' lacks the scope tokens:admin", None))
    )]
    pub struct Forbidden(pub ErrorBody);

    #[derive(ToResponse)]
    #[response(
        description = "Not found, or not visible to the key's teams; or the platform has no such object (`not_found`)",
        example = json!(error("not_found", "connection conn_8f3a not found", None))
    )]
    pub struct NotFound(pub ErrorBody);

    #[derive(ToResponse)]
    #[response(
        description = "Conflict: `conflict`, `run_in_progress`, `reauth_required` or `cannot_refresh`",
        example = json!(error("reauth_required", "connection conn_8f3a must be reconnected by its user", None))
    )]
    pub struct Conflict(pub ErrorBody);

    #[derive(ToResponse)]
    #[response(
        description = "Valid JSON that fails validation (`validation_failed`, `invalid_metrics`)",
        example = json!(error("validation_failed", "must not be before start_date", Some("date_range.end_date")))
    )]
    pub struct Unprocessable(pub ErrorBody);

    #[derive(ToResponse)]
    #[response(
        description = "The id names another platform's connection, or a kind this operation cannot use (`validation_failed`, with `field` and `expected`); no token was sent anywhere",
        example = json!({"error": {"code": "validation_failed", "message": "connection conn_8f3a2c is a google ads connection; this operation needs a facebook connection", "field": "id", "expected": {"provider": "facebook", "kinds": []}}})
    )]
    pub struct WrongConnection(pub ErrorBody);

    #[derive(ToResponse)]
    #[response(
        description = "Over the key's rate limit (`rate_limited`); see `Retry-After`",
        headers(("Retry-After" = u64, description = "Seconds to wait")),
        example = json!(error("rate_limited", "rate limit exceeded, retry after 3 s", None))
    )]
    pub struct RateLimited(pub ErrorBody);

    #[derive(ToResponse)]
    #[response(
        description = "The platform failed, answered garbage, or refused the request the service built (`upstream_error`)",
        example = json!(error("upstream_error", "Facebook answered 500 (code 2): An unexpected error has occurred", None))
    )]
    pub struct BadGateway(pub ErrorBody);

    #[derive(ToResponse)]
    #[response(
        description = "Not configured, store not writable, or shutting down (`unavailable`); a token hand-out whose audit record could not be written (`audit_unavailable`)",
        example = json!(error("unavailable", "the token store is not writable; see the service log", None))
    )]
    pub struct Unavailable(pub ErrorBody);
    // `Refused` and `CallFailed` are spec-only (never built): each lists a
    // group of the responses above that many operations share.

    /// The refusals every authenticated operation can answer: no key, a
    /// key without the scope, over the rate limit.
    #[derive(utoipa::IntoResponses)]
    #[allow(dead_code)]
    pub enum Refused {
        #[response(status = 401)]
        Unauthorized(#[ref_response] Unauthorized),
        #[response(status = 403)]
        Forbidden(#[ref_response] Forbidden),
        #[response(status = 429)]
        RateLimited(#[ref_response] RateLimited),
    }

    /// The failures of an operation that calls a platform with a
    /// connection's token.
    #[derive(utoipa::IntoResponses)]
    #[allow(dead_code)]
    pub enum CallFailed {
        #[response(status = 400)]
        BadRequest(#[ref_response] BadRequest),
        #[response(status = 404)]
        NotFound(#[ref_response] NotFound),
        #[response(status = 409)]
        Conflict(#[ref_response] Conflict),
        #[response(status = 422)]
        Unprocessable(#[ref_response] Unprocessable),
        #[response(status = 502)]
        BadGateway(#[ref_response] BadGateway),
        #[response(status = 503)]
        Unavailable(#[ref_response] Unavailable),
    }
}

/// The values query filters accept, for filters parsed from text
/// (`tokens::parse_*`): the domain's own enums where there is one, else
/// spec-only enums.
pub mod filters {
    pub type ProviderName = crate::domain::Provider;
    pub type KindName = crate::domain::ConnectionKind;
    pub type HealthName = crate::domain::Health;

    #[derive(utoipa::ToSchema)]
    #[schema(rename_all = "snake_case")]
    #[allow(dead_code)]
    pub enum ExportFormat {
        Csv,
    }

    #[derive(utoipa::ToSchema)]
    #[schema(rename_all = "snake_case")]
    #[allow(dead_code)]
    pub enum ExportKind {
        PostMetrics,
        ReelMetrics,
        BusinessPostInsights,
        BusinessPostsAndReelsInsights,
        CampaignMetrics,
        GoogleCampaignMetrics,
    }
}
