//! TikTok Shop over HTTP: the authorize page, `token/get`, `token/refresh`,
//! `get_authorized_shop`, and the `/_sim/tiktok` control calls. Every answer
//! uses TikTok's envelope `{"code","message","data","request_id"}`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Sim;
use super::consent::found;
use super::control::body_or_default;
use super::errors::ControlError;
use super::faults::ErrorSpec;
use super::providers::gate;
use super::tiktok::{AuthorizeRequest, TikTokError, TokenRequest};
use super::wire::{parse_form, random_alnum};

pub(crate) fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/tiktok/authorize", get(authorize))
        // The legacy host's path; same page.
        .route("/oauth/authorize", get(authorize))
        .route("/api/v2/token/get", get(token_get))
        .route("/api/v2/token/refresh", get(token_refresh))
        .route("/api/v2/shop/get_authorized_shop", get(authorized_shop))
        .route("/_sim/tiktok/shops", post(create_shop))
        .route("/_sim/tiktok/shops/{open_id}/authorize", post(issue_tokens))
        .route("/_sim/tiktok/dialog_shop", post(set_dialog_shop))
        .route("/_sim/tiktok/revoke", post(revoke))
}

fn query(uri: &Uri) -> HashMap<String, String> {
    parse_form(uri.query().unwrap_or_default())
        .into_iter()
        .collect()
}

/// Like TikTok's: a timestamp and random upper-case characters.
fn request_id() -> String {
    format!(
        "{}{}",
        chrono::Utc::now().format("%Y%m%d%H%M%S"),
        random_alnum(18).to_uppercase()
    )
}

fn success(data: Value) -> Response {
    Json(json!({"code": 0, "message": "success", "request_id": request_id(), "data": data}))
        .into_response()
}

fn failure(status: StatusCode, code: i64, message: &str) -> Response {
    let body = json!({"code": code, "message": message, "data": null, "request_id": request_id()});
    (status, Json(body)).into_response()
}

fn error_response(error: &TikTokError) -> Response {
    failure(StatusCode::OK, error.code(), &error.to_string())
}

/// A fault rule's error in TikTok's style: HTTP 200 with the rule's `code`,
/// unless the rule asks for a 5xx (an outage rather than an API error).
fn fault_response(spec: &ErrorSpec) -> Response {
    let status = match StatusCode::from_u16(spec.http_status) {
        Ok(s) if s.is_server_error() => s,
        _ => StatusCode::OK,
    };
    let message = spec.message.clone().unwrap_or_else(|| {
        match spec.code {
            36_004_001 => "rt has expired",
            36_004_005 => "can not find related auth record",
            105_001 => "Invalid credentials",
            105_002 => "Expired credentials",
            _ => "Simulated error",
        }
        .to_string()
    });
    failure(status, spec.code, &message)
}

async fn authorize(State(sim): State<Arc<Sim>>, uri: Uri) -> Response {
    if let Some(spec) = gate(&sim, "/tiktok/authorize", uri.path()).await {
        return fault_response(&spec);
    }
    let params = query(&uri);
    let get = |k: &str| params.get(k).map(String::as_str);
    let request = AuthorizeRequest {
        app_key: get("app_key"),
        service_id: get("service_id"),
        redirect_uri: get("redirect_uri"),
        state: get("state"),
    };
    let now = sim.now();
    let location = sim.providers().tiktok.authorize(request, now);
    match location {
        Ok(location) => found(&location).unwrap_or_else(|| {
            failure(StatusCode::BAD_REQUEST, 36_004_003, "invalid redirect_uri")
        }),
        Err(e) => failure(StatusCode::BAD_REQUEST, e.code(), &e.to_string()),
    }
}

async fn token_get(State(sim): State<Arc<Sim>>, uri: Uri) -> Response {
    token_call(&sim, &uri, "/api/v2/token/get", "auth_code").await
}

async fn token_refresh(State(sim): State<Arc<Sim>>, uri: Uri) -> Response {
    token_call(&sim, &uri, "/api/v2/token/refresh", "refresh_token").await
}

/// `token/get` and `token/refresh` differ only in the credential parameter.
async fn token_call(sim: &Sim, uri: &Uri, stat_key: &str, credential: &str) -> Response {
    if let Some(spec) = gate(sim, stat_key, uri.path()).await {
        return fault_response(&spec);
    }
    let params = query(uri);
    let get = |k: &str| params.get(k).map(String::as_str);
    let request = TokenRequest {
        app_key: get("app_key"),
        app_secret: get("app_secret"),
        grant_type: get("grant_type"),
        credential: get(credential),
    };
    let now = sim.now();
    let mut providers = sim.providers();
    let pair = if credential == "auth_code" {
        providers.tiktok.exchange_code(request, now)
    } else {
        providers.tiktok.refresh(request, now)
    };
    match pair {
        Ok(pair) => success(pair.data()),
        Err(e) => error_response(&e),
    }
}

async fn authorized_shop(State(sim): State<Arc<Sim>>, uri: Uri, headers: HeaderMap) -> Response {
    if let Some(spec) = gate(&sim, "/api/v2/shop/get_authorized_shop", uri.path()).await {
        return fault_response(&spec);
    }
    let token = headers
        .get("x-tts-access-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let now = sim.now();
    let providers = sim.providers();
    match providers.tiktok.authorized_shop(token, now) {
        Ok(shop) => success(json!({"shops": [{
            "id": shop.shop_id,
            "name": shop.seller_name,
            "region": shop.region,
            "cipher": shop.cipher,
        }]})),
        Err(e) => error_response(&e),
    }
}

#[derive(Debug, Default, Deserialize)]
struct NewShop {
    open_id: Option<String>,
    seller_name: Option<String>,
    region: Option<String>,
}

async fn create_shop(State(sim): State<Arc<Sim>>, body: Bytes) -> Result<Response, ControlError> {
    let req: NewShop = body_or_default(&body)?;
    let mut providers = sim.providers();
    let tiktok = &mut providers.tiktok;
    let open_id = tiktok.create_shop(req.open_id, req.seller_name, req.region)?;
    let shop = &tiktok.shops[&open_id];
    let body = json!({
        "open_id": open_id,
        "seller_name": shop.seller_name,
        "region": shop.region,
        "shop_id": shop.shop_id,
        "shop_cipher": shop.cipher,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Debug, Default, Deserialize)]
struct IssueTokens {
    access_expires_in_secs: Option<i64>,
    refresh_expires_in_secs: Option<i64>,
}

async fn issue_tokens(
    State(sim): State<Arc<Sim>>,
    Path(open_id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ControlError> {
    let req: IssueTokens = body_or_default(&body)?;
    let now = sim.now();
    let pair = sim.providers().tiktok.issue_direct(
        &open_id,
        req.access_expires_in_secs,
        req.refresh_expires_in_secs,
        now,
    )?;
    Ok(Json(pair.data()))
}

#[derive(Debug, Deserialize)]
struct DialogShop {
    open_id: Option<String>,
}

async fn set_dialog_shop(
    State(sim): State<Arc<Sim>>,
    Json(req): Json<DialogShop>,
) -> Result<Json<Value>, ControlError> {
    sim.providers()
        .tiktok
        .set_dialog_shop(req.open_id.clone())?;
    Ok(Json(json!({"open_id": req.open_id})))
}

#[derive(Debug, Deserialize)]
struct RevokeShop {
    open_id: String,
}

async fn revoke(
    State(sim): State<Arc<Sim>>,
    Json(req): Json<RevokeShop>,
) -> Result<Json<Value>, ControlError> {
    sim.providers().tiktok.revoke(&req.open_id)?;
    Ok(Json(json!({"revoked": true, "open_id": req.open_id})))
}
