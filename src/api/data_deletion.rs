//! Meta's Data Deletion Request callback (wire-spec 11.1) and the status
//! page its answer points the user to. `POST
//! /facebook/webhooks/data-deletion` is public: the `signed_request` is its
//! authentication; `GET /facebook/data-deletion/{code}` is public too: the
//! user follows the link Meta shows, and the unguessable code is all it
//! needs (the page names no user).

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::callback_page::{accepts_html, escape, shell};
use super::error::ApiError;
use super::facebook_webhooks::{SignedRequestForm, verified};
use super::schemas::responses as r;
use super::state::AppState;
use crate::domain::{DeletionRequest, DeletionStatus, Provider};

/// The answer Meta requires: exactly these two fields.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletionAnswer {
    /// The request's status page, shown to the user.
    pub url: String,
    /// The code the user is shown, also in the page's address.
    pub confirmation_code: String,
}

#[utoipa::path(
    post,
    path = "/facebook/webhooks/data-deletion",
    operation_id = "facebook_webhook_data_deletion",
    tags = ["facebook"],
    summary = "Facebook Data Deletion Request callback",
    description = "Meta calls it when a user asks for their data to be deleted (set it as the app's Data deletion request URL). Public: the form field `signed_request`, signed with the app secret (checked as for the Deauthorize callback), is its authentication. Deletes the user's connection and every page derived from it (one `connection.deleted` webhook each, without revoking: the platform asked), the cached insights answers and the exports read with their tokens, and records the request in the audit log. Answers with the status page's URL (on the origin of `facebook.redirect_uri`) and the confirmation code, the JSON Meta requires. The same request twice gets the same code and deletes nothing more. A missing or bad `signed_request` is 400 and deletes nothing.",
    request_body(content = SignedRequestForm, content_type = "application/x-www-form-urlencoded",
        example = json!({"signed_request": "vlXgu64BQGFSQrY0ZcJBZASMvYvTHu9GQ0YM9rjPSso.eyJhbGdvcml0aG0iOiJITUFDLVNIQTI1NiIsImlzc3VlZF9hdCI6MTI5MTgzNjgwMCwidXNlcl9pZCI6IjIxODQ3MSJ9"})),
    responses(
        (status = 200, description = "Verified; the user's data is deleted", body = DeletionAnswer,
            example = json!({"url": "https://tokenkeeper.example.com/facebook/data-deletion/5f2b9c0e41d7a3b86c1e09fa", "confirmation_code": "5f2b9c0e41d7a3b86c1e09fa"})),
        (status = 400, response = r::BadRequest), (status = 503, response = r::Unavailable)
    ),
)]
pub async fn data_deletion(
    State(state): State<AppState>,
    form: Result<Form<SignedRequestForm>, FormRejection>,
) -> Result<axum::Json<DeletionAnswer>, ApiError> {
    let signed = verified(&state, form)?;
    let request = state
        .erasure
        .erase_user(Provider::Facebook, &signed.user_id, signed.issued_at)
        .await?;
    Ok(axum::Json(DeletionAnswer {
        url: status_url(&state.settings.facebook.redirect_uri, &request.code),
        confirmation_code: request.code,
    }))
}

/// The status page's address: on the public origin the OAuth redirect URI
/// names (the address Meta already reaches this service at).
fn status_url(redirect_uri: &str, code: &str) -> String {
    let origin = reqwest::Url::parse(redirect_uri)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    format!("{origin}/facebook/data-deletion/{code}")
}

/// A request's status, for a client that does not ask for HTML.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletionStatusView {
    pub confirmation_code: String,
    /// `received` (in progress) or `completed`.
    pub status: DeletionStatus,
    pub received_at: chrono::DateTime<chrono::Utc>,
    #[schema(required = true)]
    pub completed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Connections deleted (with their tokens).
    pub connections: usize,
    /// Cached insights answers removed.
    pub cached_answers: usize,
    /// Exports (jobs and files) deleted.
    pub exports: usize,
}

impl From<&DeletionRequest> for DeletionStatusView {
    fn from(r: &DeletionRequest) -> Self {
        Self {
            confirmation_code: r.code.clone(),
            status: r.status,
            received_at: r.received_at,
            completed_at: r.completed_at,
            connections: r.connection_ids.len(),
            cached_answers: r.cached_answers,
            exports: r.exports,
        }
    }
}

/// The page, shortened, for the OpenAPI document.
const EXAMPLE: &str = "<!doctype html><html lang=\"en\"><head><title>Data deletion request · tokenkeeper</title></head><body><h1>Data deletion request</h1><p class=\"ok\">Completed on 2026-12-03 10:15 UTC: the data this service held about you is deleted.</p><ul><li>Confirmation code <code>5f2b9c0e41d7a3b86c1e09fa</code></li><li>Received on 2026-12-03 10:15 UTC</li><li>3 connections (with their access tokens) deleted</li><li>2 cached reports deleted</li><li>1 export deleted</li></ul></body></html>";

#[utoipa::path(
    get,
    path = "/facebook/data-deletion/{code}",
    operation_id = "facebook_data_deletion_status",
    tags = ["facebook"],
    summary = "A data deletion request's status page",
    description = "Where the Data Deletion callback's `url` points: the confirmation code, when the request was received, whether the deletion is complete and what was deleted. Public (the unguessable code is the link), and it names no user. A client whose `Accept` names `text/html` (the person Meta sends here) gets a small page, errors included; any other client gets JSON. An unknown code is 404.",
    params(("code" = String, Path, description = "The confirmation code the callback answered with")),
    responses(
        (status = 200, description = "OK: the page for a browser, or JSON", content(
            (String = "text/html", example = json!(EXAMPLE)),
            (DeletionStatusView = "application/json", example = json!({"confirmation_code": "5f2b9c0e41d7a3b86c1e09fa", "status": "completed", "received_at": "2026-12-03T10:15:02Z", "completed_at": "2026-12-03T10:15:02Z", "connections": 3, "cached_answers": 2, "exports": 1})))),
        (status = 404, response = r::NotFound), (status = 503, response = r::Unavailable)
    ),
)]
pub async fn status_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Response {
    let found = if is_code(&code) {
        state.erasure.request(&code).await
    } else {
        Ok(None)
    };
    let html = accepts_html(&headers);
    let title = "Data deletion request";
    match found {
        Ok(Some(request)) if html => Html(page(&request)).into_response(),
        Ok(Some(request)) => axum::Json(DeletionStatusView::from(&request)).into_response(),
        Ok(None) if html => (
            StatusCode::NOT_FOUND,
            Html(shell(
                title,
                "<p class=\"err\">No data deletion request has this confirmation code.</p>",
            )),
        )
            .into_response(),
        Ok(None) => {
            ApiError::NotFound("no data deletion request has this confirmation code".into())
                .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "reading a data deletion request failed");
            if html {
                let body =
                    "<p class=\"err\">The status cannot be shown right now; try again later.</p>";
                (StatusCode::SERVICE_UNAVAILABLE, Html(shell(title, body))).into_response()
            } else {
                ApiError::from(e).into_response()
            }
        }
    }
}

/// Codes are 24 lowercase hex digits; nothing else is looked up.
fn is_code(code: &str) -> bool {
    code.len() == 24 && code.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn page(request: &DeletionRequest) -> String {
    let when = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    let status = match (request.status, request.completed_at) {
        (DeletionStatus::Completed, Some(at)) => format!(
            "<p class=\"ok\">Completed on {}: the data this service held about you is deleted.</p>",
            when(at)
        ),
        _ => "<p>Received; the deletion is in progress.</p>".to_string(),
    };
    let count = |n: usize, one: &str, many: &str| match n {
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    };
    shell(
        "Data deletion request",
        &format!(
            "{status}<ul><li>Confirmation code <code>{}</code></li><li>Received on {}</li>\
             <li>{} deleted</li><li>{} deleted</li><li>{} deleted</li></ul>",
            escape(&request.code),
            when(request.received_at),
            count(
                request.connection_ids.len(),
                "connection (with its access token)",
                "connections (with their access tokens)"
            ),
            count(request.cached_answers, "cached report", "cached reports"),
            count(request.exports, "export", "exports"),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_url_is_on_the_redirect_uris_origin() {
        assert_eq!(
            status_url(
                "https://tk.example.com:8443/facebook/auth/callback?x=1",
                "ab"
            ),
            "https://tk.example.com:8443/facebook/data-deletion/ab"
        );
    }

    #[test]
    fn only_codes_are_looked_up() {
        assert!(is_code("5f2b9c0e41d7a3b86c1e09fa"));
        assert!(!is_code("5F2B9C0E41D7A3B86C1E09FA"));
        assert!(!is_code("../../etc/passwd"));
        assert!(!is_code("5f2b9c0e41d7a3b86c1e09f"));
    }
}
