//! `POST /facebook/webhooks/deauthorize`: Meta's Deauthorize callback, sent
//! when a user removes the app, and the `signed_request` check it shares
//! with the Data Deletion callback (`data_deletion.rs`). Public: the
//! `signed_request`, signed with the app secret, is its authentication
//! (wire-spec 11.1).

use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::ApiError;
use super::schemas::responses as r;
use super::state::AppState;
use crate::audit::AuditEntry;
use crate::domain::Provider;
use crate::providers::facebook::signed_request::{self, SignedRequest};

/// The form Meta posts.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SignedRequestForm {
    /// `<signature>.<payload>`, base64url, signed with the app secret.
    pub signed_request: Option<String>,
}

/// What the callback did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Deauthorized {
    /// The app-scoped user id the request names.
    pub user_id: String,
    /// Connections flagged `reauth_required` now (the user's and those
    /// derived from it); 0 when they already were, or none is stored.
    pub flagged: usize,
}

#[utoipa::path(
    post,
    path = "/facebook/webhooks/deauthorize",
    operation_id = "facebook_webhook_deauthorize",
    tags = ["facebook"],
    summary = "Facebook Deauthorize callback",
    description = "Meta calls it when a user removes the app (set it as the app's Deauthorize callback URL). Public: the form field `signed_request`, signed with the app secret (HMAC-SHA256, checked in constant time, issued within the last hour), is its authentication. Flags the user's connection and every page derived from it `reauth_required` at once, with one `connection.reauth_required` webhook each, and records the callback in the audit log. The same request twice changes nothing more, and neither does one older than a reconnection. A missing or bad `signed_request` is 400 and changes nothing.",
    request_body(content = SignedRequestForm, content_type = "application/x-www-form-urlencoded",
        example = json!({"signed_request": "vlXgu64BQGFSQrY0ZcJBZASMvYvTHu9GQ0YM9rjPSso.eyJhbGdvcml0aG0iOiJITUFDLVNIQTI1NiIsImlzc3VlZF9hdCI6MTI5MTgzNjgwMCwidXNlcl9pZCI6IjIxODQ3MSJ9"})),
    responses(
        (status = 200, description = "Verified and applied", body = Deauthorized, example = json!({"user_id": "218471", "flagged": 3})),
        (status = 400, response = r::BadRequest), (status = 503, response = r::Unavailable)
    ),
)]
pub async fn deauthorize(
    State(state): State<AppState>,
    form: Result<Form<SignedRequestForm>, FormRejection>,
) -> Result<axum::Json<Deauthorized>, ApiError> {
    let verified = verified(&state, form)?;
    let flagged = state
        .tokens
        .revoked_upstream(Provider::Facebook, &verified.user_id, verified.issued_at)
        .await?;
    for conn in &flagged {
        let entry = AuditEntry {
            at: state.tokens.now(),
            action: "facebook.deauthorize",
            key_id: "facebook".into(),
            connection_id: conn.id.clone(),
            outcome: "reauth_required".into(),
        };
        if let Err(e) = state.audit.record(entry).await {
            tracing::error!(error = %e, "the deauthorize callback could not be audited");
        }
    }
    tracing::info!(user = %verified.user_id, flagged = flagged.len(), "Facebook deauthorize callback");
    Ok(axum::Json(Deauthorized {
        user_id: verified.user_id,
        flagged: flagged.len(),
    }))
}

/// The posted `signed_request`, verified with the app secret (400 naming
/// `signed_request` when missing, malformed, badly signed or stale; 503
/// when Facebook is not configured).
pub(super) fn verified(
    state: &AppState,
    form: Result<Form<SignedRequestForm>, FormRejection>,
) -> Result<SignedRequest, ApiError> {
    // The client must be configured: its app secret signs the request.
    state.registry.facebook()?;
    let secret = state
        .settings
        .secrets
        .fb_app_secret
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("FB_APP_SECRET is not set".into()))?;
    let field = "signed_request";
    let signed = match form {
        Ok(Form(SignedRequestForm {
            signed_request: Some(s),
        })) => s,
        Ok(_) => return Err(ApiError::bad_request(field, "signed_request is missing")),
        Err(e) => return Err(ApiError::bad_request(field, e.body_text())),
    };
    signed_request::verify(&signed, secret, state.tokens.now())
        .map_err(|e| ApiError::bad_request(field, format!("signed_request {e}")))
}
