//! The platforms' pushes, sent on request: `/_sim/callbacks/...` builds the
//! event a platform would send, signs it with the simulator's app secret
//! (or wrongly, with `"bad_signature": true`), POSTs it to the URL in the
//! request and answers with what that URL answered. The signing here is the
//! simulator's own, written from the platforms' formats, not the service's.
//!
//! - `/_sim/callbacks/facebook`: a `signed_request` form (wire-spec 11.1),
//!   the one format of Meta's Deauthorize and Data Deletion callbacks, so
//!   the target URL says which callback it is.
//! - `/_sim/callbacks/tiktok`: a TikTok Shop webhook push (wire-spec 11.2):
//!   the JSON envelope, signed in the `Authorization` header as hex
//!   HMAC-SHA256(app secret, app key + body).
//!
//! A test tool: it posts wherever it is told, like the rest of `/_sim`,
//! which has no authentication.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;

use super::Sim;
use super::errors::ControlError;

/// The secret a `bad_signature` request signs with instead of the app's.
const WRONG_SECRET: &str = "not-the-app-secret";
/// TikTok's first notice comes 30 days before the authorization lapses.
const DEFAULT_EXPIRES_IN_DAYS: i64 = 30;

pub(crate) fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/_sim/callbacks/facebook", post(facebook))
        .route("/_sim/callbacks/tiktok", post(tiktok))
}

fn hmac_sha256(key: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// The app's secret, or a wrong one when asked for a bad signature.
fn signing_secret(secret: &str, bad: bool) -> &str {
    if bad { WRONG_SECRET } else { secret }
}

/// An http(s) URL to post to.
fn target(url: &str) -> Result<reqwest::Url, ControlError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| ControlError::Invalid(format!("url {url:?} is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ControlError::Invalid(format!("url {url:?} is not http(s)")));
    }
    Ok(parsed)
}

/// Sends `request` and answers with the target's status and body (JSON
/// when it is JSON, else its text).
async fn deliver(
    request: reqwest::RequestBuilder,
    sent: Value,
) -> Result<Json<Value>, ControlError> {
    let response = request
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| ControlError::Unreachable(format!("the target did not answer: {e}")))?;
    let status = response.status().as_u16();
    let text = response
        .text()
        .await
        .map_err(|e| ControlError::Unreachable(format!("the target's answer broke off: {e}")))?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok(Json(
        json!({ "status": status, "body": body, "sent": sent }),
    ))
}

fn client() -> Result<reqwest::Client, ControlError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ControlError::Unreachable(format!("no HTTP client: {e}")))
}

#[derive(Debug, Deserialize)]
struct FacebookCallback {
    url: String,
    user_id: String,
    /// Unix seconds; the simulator's now when absent.
    issued_at: Option<i64>,
    #[serde(default)]
    bad_signature: bool,
}

/// Meta's `signed_request`: `<sig>.<payload>`, both base64url without
/// padding, `sig = HMAC-SHA256(app secret, payload as sent)`.
async fn facebook(
    State(sim): State<Arc<Sim>>,
    Json(req): Json<FacebookCallback>,
) -> Result<Json<Value>, ControlError> {
    let url = target(&req.url)?;
    let issued_at = req.issued_at.unwrap_or_else(|| sim.now());
    // The shape of Meta's documented example.
    let payload = json!({
        "algorithm": "HMAC-SHA256",
        "expires": issued_at + 3600,
        "issued_at": issued_at,
        "user_id": req.user_id,
    });
    let encoded = URL_SAFE_NO_PAD.encode(payload.to_string());
    let secret = signing_secret(&sim.config.fb_app_secret, req.bad_signature);
    let signature = URL_SAFE_NO_PAD.encode(hmac_sha256(secret, &[encoded.as_bytes()]));
    let signed_request = format!("{signature}.{encoded}");
    let request = client()?
        .post(url)
        .form(&[("signed_request", signed_request.as_str())]);
    let sent = json!({ "signed_request": signed_request, "payload": payload });
    deliver(request, sent).await
}

#[derive(Debug, Deserialize)]
struct TiktokPush {
    url: String,
    /// The notification type: 6 seller deauthorization, 7 upcoming
    /// authorization expiration, or any other (sent with `data`).
    #[serde(rename = "type")]
    kind: i64,
    /// The shop, by TikTok's `shop_id`...
    shop_id: Option<String>,
    /// ... or by its seller's `open_id` (a simulator shop).
    open_id: Option<String>,
    /// Unix seconds; the simulator's now when absent.
    timestamp: Option<i64>,
    /// Type 7: when the authorization lapses (Unix seconds), or how many
    /// days after `timestamp` (30 when neither is given).
    expiration_time: Option<i64>,
    expires_in_days: Option<i64>,
    /// `data` for the other types (`{}` when absent).
    data: Option<Value>,
    #[serde(default)]
    bad_signature: bool,
}

/// The `shop_id` the push names: given, or that of the seller's shop.
fn shop_of(sim: &Sim, req: &TiktokPush) -> Result<String, ControlError> {
    match (&req.shop_id, &req.open_id) {
        (Some(shop), _) if !shop.is_empty() => Ok(shop.clone()),
        (_, Some(open_id)) => sim
            .providers()
            .tiktok
            .shops
            .get(open_id)
            .map(|shop| shop.shop_id.clone())
            .ok_or_else(|| ControlError::missing("shop", open_id)),
        _ => Err(ControlError::Invalid(
            "shop_id or open_id is required".into(),
        )),
    }
}

/// The envelope TikTok documents, with `data` as the Partner Center's
/// examples show it for types 6 and 7.
async fn tiktok(
    State(sim): State<Arc<Sim>>,
    Json(req): Json<TiktokPush>,
) -> Result<Json<Value>, ControlError> {
    let url = target(&req.url)?;
    let shop_id = shop_of(&sim, &req)?;
    let timestamp = req.timestamp.unwrap_or_else(|| sim.now());
    let data = match req.kind {
        6 => json!({
            "message": format!("Shop_id {shop_id} is deauthorized from your APP by merchant."),
        }),
        7 => {
            let days = req.expires_in_days.unwrap_or(DEFAULT_EXPIRES_IN_DAYS);
            let at = req.expiration_time.unwrap_or(timestamp + days * 86_400);
            let left = (at - timestamp).div_euclid(86_400);
            json!({
                "message": format!("Authorization of shop_id {shop_id} is expiring in {left} days. Please direct the merchant to re-authorize."),
                // A string, as in TikTok's example.
                "expiration_time": at.to_string(),
            })
        }
        _ => req.data.clone().unwrap_or_else(|| json!({})),
    };
    let notification_id: u64 = rand::random::<u64>() >> 1;
    let envelope = json!({
        "type": req.kind,
        "tts_notification_id": notification_id.to_string(),
        "shop_id": shop_id,
        "timestamp": timestamp,
        "data": data,
    });
    let body = envelope.to_string();
    let config = &sim.config;
    let secret = signing_secret(&config.tiktok_app_secret, req.bad_signature);
    let signature = hex::encode(hmac_sha256(
        secret,
        &[config.tiktok_app_key.as_bytes(), body.as_bytes()],
    ));
    let request = client()?
        .post(url)
        .header("content-type", "application/json")
        .header("authorization", signature)
        .body(body);
    deliver(request, envelope).await
}
