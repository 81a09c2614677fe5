//! `DELETE /tokens/{id}` (any provider) and the implementation it shares
//! with `DELETE /facebook/tokens/{id}`: delete a connection, optionally
//! revoking its grant at the platform first (`revoke=true`) and deleting the
//! connections derived from it (`cascade=true`), each deletion audited.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::ApiError;
use super::extract::ApiQuery;
use super::schemas::responses as r;
use super::state::AppState;
use super::tokens::visible;
use crate::audit::AuditEntry;
use crate::domain::{ConnectionKind, Provider};
use crate::tokens::{Disconnect, Removed, Revocation};

/// `revoke` and `cascade`, each `true` or `false` (default `false`); read as
/// text and parsed by [`flag`], so that a bad value is refused naming its
/// parameter.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DisconnectQuery {
    /// Revoke the app's grant at the platform before deleting: Facebook
    /// `DELETE /{user-id}/permissions` for a user connection, Google's token
    /// revocation for an Ads connection. TikTok Shop has no revocation call
    /// (`not_supported`). If the platform fails, nothing is deleted (502).
    #[param(value_type = Option<bool>)]
    pub revoke: Option<String>,
    /// Delete the connections derived from this one too (a Facebook user's
    /// pages). Without it, a connection that has any is refused with 409
    /// `has_derived_connections`, naming them.
    #[param(value_type = Option<bool>)]
    pub cascade: Option<String>,
}

/// `true`/`false` (any case; `1`/`0` too), else 400 naming `field`.
fn flag(field: &str, value: Option<&str>) -> Result<bool, ApiError> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(_) => Err(ApiError::bad_request(field, "must be true or false")),
    }
}

/// What became of a deleted connection's grant at its platform.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RevocationOutcome {
    /// The platform revoked the grant.
    Revoked,
    /// The platform already rejected the token (Graph 190, Google
    /// `invalid_token`): as good as revoked.
    AlreadyInvalid,
    /// The platform has no way to revoke it; `reason` says what to do.
    NotSupported,
    /// `revoke` was not asked for: deleted here only.
    NotRequested,
}

impl From<Revocation> for RevocationOutcome {
    fn from(r: Revocation) -> Self {
        match r {
            Revocation::Revoked => RevocationOutcome::Revoked,
            Revocation::AlreadyInvalid => RevocationOutcome::AlreadyInvalid,
            Revocation::NotSupported => RevocationOutcome::NotSupported,
            Revocation::NotRequested => RevocationOutcome::NotRequested,
        }
    }
}

/// One deleted connection.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedConnection {
    pub id: String,
    pub provider: Provider,
    pub kind: ConnectionKind,
    pub external_id: String,
    pub label: String,
    /// For a derived connection: the one it was derived from.
    #[schema(required = true)]
    pub parent_id: Option<String>,
    pub revocation: RevocationOutcome,
    /// Why, for `already_invalid`, `not_supported` and a derived
    /// connection revoked with its parent; else `null`.
    #[schema(required = true)]
    pub reason: Option<String>,
}

/// The connections a disconnect deleted: the one named first, then those
/// derived from it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Disconnected {
    pub deleted: Vec<DeletedConnection>,
}

fn disconnected_example() -> Value {
    json!({"deleted": [
        {"id": "conn_71bd09", "provider": "facebook", "kind": "user", "external_id": "10158812345678901",
         "label": "Jane Doe", "parent_id": null, "revocation": "revoked", "reason": null},
        {"id": "conn_8f3a2c", "provider": "facebook", "kind": "page", "external_id": "104729381234567",
         "label": "Acme Coffee (page)", "parent_id": "conn_71bd09", "revocation": "revoked",
         "reason": "revoked with the user connection conn_71bd09 it was derived from"}
    ]})
}

/// The 409 of a user connection with pages, for the document.
pub(super) fn has_derived_example() -> Value {
    json!({"error": {"code": "has_derived_connections",
        "message": "connection conn_71bd09 has 1 connection(s) derived from it (page conn_8f3a2c \"Acme Coffee (page)\"): add cascade=true to delete them with it, or delete them first",
        "derived": [{"id": "conn_8f3a2c", "kind": "page", "label": "Acme Coffee (page)"}]}})
}

/// `DELETE /tokens/{id}?revoke=&cascade=`: any provider.
#[utoipa::path(
    delete,
    path = "/tokens/{id}",
    operation_id = "tokens_delete",
    tags = ["tokens"],
    summary = "Disconnect a connection of any provider",
    description = "Deletes the connection and its secrets. With `revoke=true` the app's grant is revoked at the platform first: Facebook `DELETE /{user-id}/permissions` for a user connection (which ends its pages' tokens too); Google's OAuth revocation of the refresh token; TikTok Shop has no revocation call, so its connection is deleted here only (`not_supported`, with the reason). A Facebook page or business (system-user) connection has no revocation of its own (`not_supported`). A token the platform already rejects counts as revoked (`already_invalid`). If the platform is unreachable or fails otherwise, nothing is deleted: 502 (503 with `Retry-After` when rate limited). A connection others were derived from (a Facebook user and its pages) is refused with 409 `has_derived_connections` naming them, unless `cascade=true` deletes them together. With `revoke` or `cascade` the answer lists the deleted connections and each one's revocation outcome; without either it is 204 with no body. Each deletion is audited (`token.deleted`) and sends a `connection.deleted` webhook. Scope `tokens:admin`.",
    params(("id" = String, Path, description = "The connection id", example = "conn_71bd09"), DisconnectQuery),
    responses(
        (status = 200, description = "Deleted (with `revoke` or `cascade`)", body = Disconnected, example = json!(disconnected_example())),
        (status = 204, description = "Deleted (neither `revoke` nor `cascade`)"),
        (status = 401, response = r::Unauthorized), (status = 403, response = r::Forbidden), (status = 429, response = r::RateLimited),
        (status = 400, response = r::BadRequest), (status = 404, response = r::NotFound),
        (status = 409, description = "Connections are derived from it and `cascade` is not set (`has_derived_connections`); nothing was deleted", body = crate::api::schemas::ErrorBody, example = json!(has_derived_example())),
        (status = 502, response = r::BadGateway), (status = 503, response = r::Unavailable)
    ),
    security(("api_key" = ["tokens:admin"]), ("bearer" = ["tokens:admin"])),
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DisconnectQuery>,
) -> Result<Response, ApiError> {
    disconnect_visible(&state, &caller, &id, None, &q).await
}

/// Disconnects `id` if the caller may see it (and it is of `provider`,
/// when given): 204, or 200 with what was deleted when `revoke` or
/// `cascade` was asked for.
pub async fn disconnect_visible(
    state: &AppState,
    caller: &Caller,
    id: &str,
    provider: Option<Provider>,
    q: &DisconnectQuery,
) -> Result<Response, ApiError> {
    let options = Disconnect {
        revoke: flag("revoke", q.revoke.as_deref())?,
        cascade: flag("cascade", q.cascade.as_deref())?,
    };
    let conn = visible(state, caller, "id", id, provider).await?;
    let removed = state.tokens.disconnect(conn, options).await?;
    for r in &removed {
        audit(state, caller, r).await;
    }
    if !options.revoke && !options.cascade {
        // What this endpoint answered before it took parameters.
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let deleted = removed
        .into_iter()
        .map(|r| {
            let c = &r.connection;
            DeletedConnection {
                id: c.id.clone(),
                provider: c.provider,
                kind: c.kind,
                external_id: c.external_id.clone(),
                label: c.label.clone(),
                parent_id: c.parent_id.clone(),
                revocation: r.revocation.into(),
                reason: r.reason,
            }
        })
        .collect();
    Ok(Json(Disconnected { deleted }).into_response())
}

/// One audit line per deleted connection. The deletion is done: a line
/// that cannot be written is logged, and the answer stands.
async fn audit(state: &AppState, caller: &Caller, removed: &Removed) {
    let entry = AuditEntry {
        at: state.tokens.now(),
        action: "token.deleted",
        key_id: caller.key_id.clone(),
        connection_id: removed.connection.id.clone(),
        outcome: removed.revocation.as_str().to_string(),
    };
    if let Err(e) = state.audit.record(entry).await {
        tracing::error!(error = %e, connection = %removed.connection.id, "a deletion could not be audited");
    }
}
