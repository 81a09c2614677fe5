//! `POST /tiktok/webhooks`: TikTok Shop's webhook pushes. Public: the
//! `Authorization` header, TikTok's signature of the body with the app
//! secret, is its authentication (wire-spec 11.2, `providers::tiktok::webhook`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiError;
use super::schemas::responses as r;
use super::state::AppState;
use crate::audit::AuditEntry;
use crate::domain::{Connection, Provider};
use crate::providers::tiktok::webhook::{self, Event, SIGNATURE_HEADER, WebhookError};
use crate::tokens::Subject;

/// What the push did. TikTok only needs the 200; the body is for people.
#[derive(Debug, Serialize, ToSchema)]
pub struct TiktokWebhookReceived {
    /// The notification's numeric `type`.
    #[serde(rename = "type")]
    pub kind: i64,
    /// `seller_deauthorization`, `upcoming_authorization_expiration`, or
    /// `ignored` for every other type.
    pub event: &'static str,
    /// The shop it names, for the two handled types.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shop_id: Option<String>,
    /// Connections changed now: flagged `reauth_required`, or given the
    /// authorization's expiry. 0 when they already were, or none holds the
    /// shop.
    pub changed: usize,
}

#[utoipa::path(
    post,
    path = "/tiktok/webhooks",
    operation_id = "tiktok_webhook",
    tags = ["tiktok"],
    summary = "TikTok Shop webhook",
    description = "Set it as the app's webhook URL in TikTok Shop Partner Center. Public: the `Authorization` header (TikTok's lower-case hex HMAC-SHA256 of the app key followed by the raw body, keyed by the app secret; checked in constant time) is its authentication. Type 6 (seller deauthorization) flags the connection holding the shop `reauth_required` at once, with one `connection.reauth_required` webhook; type 7 (upcoming authorization expiration) records `data.expiration_time` as the connection's data-access expiry, so the staged expiry warning (and its one webhook) follows. Both are audited (`tiktok.deauthorize`, `tiktok.authorization_expiring`). Any other type is acknowledged and ignored. The same push twice changes nothing more, and neither does one older than a reconnection. A missing or bad signature is 400 naming `Authorization` and changes nothing.",
    request_body(content = serde_json::Value, content_type = "application/json",
        example = json!({"type": 6, "tts_notification_id": "7327112393057371910", "shop_id": "7494049642642441621", "timestamp": 1644412885, "data": {"message": "Shop_id {xxx} is deauthorized from your APP by merchant."}})),
    responses(
        (status = 200, description = "Verified; applied or ignored", body = TiktokWebhookReceived,
            example = json!({"type": 6, "event": "seller_deauthorization", "shop_id": "7494049642642441621", "changed": 1})),
        (status = 400, response = r::BadRequest), (status = 503, response = r::Unavailable)
    ),
)]
pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<TiktokWebhookReceived>, ApiError> {
    // The client must be configured: its app key and secret sign the push.
    state.registry.tiktok()?;
    let secrets = &state.settings.secrets;
    let (Some(app_key), Some(app_secret)) = (
        secrets.tiktok_shop_app_key.as_deref(),
        secrets.tiktok_shop_app_secret.as_ref(),
    ) else {
        return Err(ApiError::Unavailable(
            "TIKTOK_SHOP_APP_KEY and TIKTOK_SHOP_APP_SECRET are not set".into(),
        ));
    };
    let signature = headers
        .get(SIGNATURE_HEADER)
        .map(|v| v.to_str().unwrap_or_default())
        .ok_or_else(|| {
            ApiError::bad_request(
                SIGNATURE_HEADER,
                "the Authorization header (TikTok Shop's signature) is missing",
            )
        })?;
    let now = state.tokens.now();
    let pushed =
        webhook::verify(&body, signature, app_key, app_secret, now).map_err(|e| match e {
            WebhookError::BadSignature => {
                ApiError::bad_request(SIGNATURE_HEADER, format!("the Authorization header {e}"))
            }
            WebhookError::Malformed { field, .. } => ApiError::bad_request(field, e.to_string()),
        })?;
    let id = pushed.notification_id.as_deref().unwrap_or("-");
    let provider = Provider::TiktokShop;
    let (event, shop_id, changed, action, outcome) = match &pushed.event {
        Event::SellerDeauthorization { shop_id } => {
            let flagged = state
                .tokens
                .subject_revoked(provider, Subject::Shop(shop_id), pushed.pushed_at)
                .await?;
            let e = "seller_deauthorization";
            (e, shop_id, flagged, "tiktok.deauthorize", "reauth_required")
        }
        Event::AuthorizationExpiring {
            shop_id,
            expires_at,
        } => {
            let changed = state
                .tokens
                .access_lapses_upstream(
                    provider,
                    Subject::Shop(shop_id),
                    *expires_at,
                    pushed.pushed_at,
                )
                .await?;
            let e = "upcoming_authorization_expiration";
            let outcome = "expires_at_recorded";
            (
                e,
                shop_id,
                changed,
                "tiktok.authorization_expiring",
                outcome,
            )
        }
        Event::Other => {
            tracing::debug!(kind = pushed.kind, notification = %id, "TikTok Shop webhook of a type not acted on");
            return Ok(axum::Json(TiktokWebhookReceived {
                kind: pushed.kind,
                event: "ignored",
                shop_id: None,
                changed: 0,
            }));
        }
    };
    audit(&state, action, outcome, &changed).await;
    tracing::info!(kind = pushed.kind, notification = %id, shop = %shop_id, changed = changed.len(), "TikTok Shop webhook");
    Ok(axum::Json(TiktokWebhookReceived {
        kind: pushed.kind,
        event,
        shop_id: Some(shop_id.clone()),
        changed: changed.len(),
    }))
}

/// One audit line per connection the push changed.
async fn audit(
    state: &AppState,
    action: &'static str,
    outcome: &str,
    changed: &[std::sync::Arc<Connection>],
) {
    for conn in changed {
        let entry = AuditEntry {
            at: state.tokens.now(),
            action,
            key_id: Provider::TiktokShop.as_str().into(),
            connection_id: conn.id.clone(),
            outcome: outcome.into(),
        };
        if let Err(e) = state.audit.record(entry).await {
            tracing::error!(error = %e, action, "a TikTok Shop webhook could not be audited");
        }
    }
}
