//! Google over HTTP: the consent page, the OAuth `/token` and `/revoke`
//! endpoints, Ads `googleAds:searchStream`, and the `/_sim/google` control
//! calls.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Sim;
use super::consent::found;
use super::control::{DialogUser, body_or_default};
use super::errors::ControlError;
use super::faults::ErrorSpec;
use super::gaql::{self, QueryError};
use super::google::{
    ADWORDS_SCOPE, AdsAccessError, ConsentRequest, NewCampaign, OAuthError, date_of, request_id,
};
use super::providers::gate;
use super::wire::parse_form;

/// Rows per searchStream batch, as Google streams them.
const BATCH_ROWS: usize = 10_000;

const SEARCH_STREAM_KEY: &str = "/customers/{id}/googleAds:searchStream";

pub(crate) fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/o/oauth2/v2/auth", get(consent))
        .route("/token", post(token))
        .route("/revoke", post(revoke_token))
        // Explicit, so it never reaches the Graph fallback's `/{vN.M}/…`.
        .route(
            "/{version}/customers/{customer_id}/googleAds:searchStream",
            post(search_stream),
        )
        .route("/_sim/google/users", post(create_user))
        .route("/_sim/google/users/{id}/consent", post(consent_direct))
        .route("/_sim/google/dialog_user", post(set_dialog_user))
        .route("/_sim/google/revoke", post(revoke))
        .route("/_sim/google/customers", post(upsert_customer))
}

/// Query parameters, then form (or flat JSON) body parameters.
fn params(uri: &Uri, body: &[u8]) -> HashMap<String, String> {
    let mut map: HashMap<String, String> = parse_form(uri.query().unwrap_or_default())
        .into_iter()
        .collect();
    if let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) {
        for (k, v) in object {
            if let Value::String(s) = v {
                map.insert(k, s);
            }
        }
    } else if let Ok(form) = std::str::from_utf8(body) {
        map.extend(parse_form(form));
    }
    map
}

fn oauth_response(status: u16, error: &str, description: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let body = json!({"error": error, "error_description": description});
    (status, Json(body)).into_response()
}

fn oauth_error(e: &OAuthError) -> Response {
    oauth_response(e.status(), e.error(), &e.to_string())
}

/// A fault rule's error in OAuth style; `oauth_error` defaults to
/// `invalid_grant`.
fn oauth_fault(spec: &ErrorSpec) -> Response {
    let error = spec.oauth_error.as_deref().unwrap_or("invalid_grant");
    let description = spec.message.clone().unwrap_or_else(|| {
        if error == "invalid_grant" {
            "Token has been expired or revoked.".into()
        } else {
            "Simulated error".into()
        }
    });
    oauth_response(spec.http_status, error, &description)
}

async fn consent(State(sim): State<Arc<Sim>>, uri: Uri) -> Response {
    if let Some(spec) = gate(&sim, "/o/oauth2/v2/auth", uri.path()).await {
        return oauth_fault(&spec);
    }
    let params = params(&uri, &[]);
    let get = |k: &str| params.get(k).map(String::as_str);
    let request = ConsentRequest {
        client_id: get("client_id"),
        redirect_uri: get("redirect_uri"),
        response_type: get("response_type"),
        scope: get("scope"),
        access_type: get("access_type"),
        state: get("state"),
    };
    let now = sim.now();
    let location = sim.providers().google.consent(request, now);
    match location {
        Ok(location) => found(&location)
            .unwrap_or_else(|| oauth_response(400, "invalid_request", "Invalid redirect_uri")),
        Err(e) => oauth_error(&e),
    }
}

/// `client_id`/`client_secret` from the body, or from HTTP Basic auth.
fn client_credentials(
    params: &HashMap<String, String>,
    headers: &HeaderMap,
) -> (Option<String>, Option<String>) {
    if params.contains_key("client_id") {
        return (
            params.get("client_id").cloned(),
            params.get("client_secret").cloned(),
        );
    }
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok());
    match basic.as_deref().and_then(|b| b.split_once(':')) {
        Some((id, secret)) => (Some(id.to_string()), Some(secret.to_string())),
        None => (None, None),
    }
}

async fn token(State(sim): State<Arc<Sim>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let params = params(&uri, &body);
    let grant = params.get("grant_type").map_or("none", String::as_str);
    if let Some(spec) = gate(&sim, &format!("/token:{grant}"), uri.path()).await {
        return oauth_fault(&spec);
    }
    let get = |k: &str| params.get(k).map(String::as_str);
    let (client_id, client_secret) = client_credentials(&params, &headers);
    let now = sim.now();
    let mut providers = sim.providers();
    let google = &mut providers.google;
    let answer = google
        .check_client(client_id.as_deref(), client_secret.as_deref())
        .and_then(|()| match grant {
            "authorization_code" => google.exchange_code(get("code"), get("redirect_uri"), now),
            "refresh_token" => google.refresh(get("refresh_token"), now),
            other => Err(OAuthError::UnsupportedGrantType(
                if other == "none" { "" } else { other }.to_string(),
            )),
        });
    match answer {
        Ok(body) => Json(body).into_response(),
        Err(e) => oauth_error(&e),
    }
}

async fn revoke_token(State(sim): State<Arc<Sim>>, uri: Uri, body: Bytes) -> Response {
    if let Some(spec) = gate(&sim, "/revoke", uri.path()).await {
        return oauth_fault(&spec);
    }
    let params = params(&uri, &body);
    let token = params.get("token").map_or("", String::as_str);
    let revoked = sim.providers().google.revoke_any(token);
    match revoked {
        Some((user_id, token_type)) => {
            sim.record_revocation(json!({
                "platform": "google", "user_id": user_id, "token_type": token_type, "at": sim.now(),
            }));
            Json(json!({})).into_response()
        }
        None => oauth_response(400, "invalid_token", "Token expired or revoked"),
    }
}

/// Google's canonical status name and top-level message for an HTTP status.
fn canonical(status: u16) -> (&'static str, &'static str) {
    match status {
        400 => ("INVALID_ARGUMENT", "Request contains an invalid argument."),
        401 => (
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
        ),
        403 => ("PERMISSION_DENIED", "The caller does not have permission"),
        404 => ("NOT_FOUND", "Requested entity was not found."),
        429 => (
            "RESOURCE_EXHAUSTED",
            "Resource has been exhausted (e.g. check quota).",
        ),
        503 => ("UNAVAILABLE", "The service is currently unavailable."),
        _ => ("INTERNAL", "Internal error encountered."),
    }
}

/// The array-wrapped searchStream error with one GoogleAdsFailure error.
fn ads_error(version: &str, status: u16, error_code: Value, message: &str) -> Response {
    let (name, top) = canonical(status);
    let body = json!([{"error": {
        "code": status,
        "message": top,
        "status": name,
        "details": [{
            "@type": format!("type.googleapis.com/google.ads.googleads.{version}.errors.GoogleAdsFailure"),
            "errors": [{"errorCode": error_code, "message": message}],
            "requestId": request_id(),
        }],
    }}]);
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(body)).into_response()
}

fn access_error(version: &str, e: AdsAccessError) -> Response {
    let (status, kind, code, message) = match e {
        AdsAccessError::TokenInvalid => (
            401,
            "authenticationError",
            "OAUTH_TOKEN_INVALID",
            "The OAuth access token is invalid or missing.",
        ),
        AdsAccessError::TokenExpired => (
            401,
            "authenticationError",
            "OAUTH_TOKEN_EXPIRED",
            "The OAuth access token has expired.",
        ),
        AdsAccessError::TokenRevoked => (
            401,
            "authenticationError",
            "OAUTH_TOKEN_REVOKED",
            "The OAuth access token has been revoked.",
        ),
        AdsAccessError::DeveloperTokenMissing => (
            400,
            "requestError",
            "DEVELOPER_TOKEN_PARAMETER_MISSING",
            "The developer-token header is required for all requests.",
        ),
        AdsAccessError::DeveloperTokenNotApproved => (
            403,
            "authorizationError",
            "DEVELOPER_TOKEN_NOT_APPROVED",
            "The developer token is not approved for use with this account.",
        ),
        AdsAccessError::InvalidCustomerId => (
            400,
            "requestError",
            "INVALID_CUSTOMER_ID",
            "The customer id must be 10 digits without dashes.",
        ),
        AdsAccessError::PermissionDenied => (
            403,
            "authorizationError",
            "USER_PERMISSION_DENIED",
            "User doesn't have permission to access customer. Note: If you're accessing a client customer, the manager's customer id must be set in the 'login-customer-id' header. See https://developers.google.com/google-ads/api/docs/concepts/call-structure#cid",
        ),
    };
    ads_error(version, status, json!({ kind: code }), message)
}

fn query_error(version: &str, e: &QueryError) -> Response {
    ads_error(version, 400, json!({"queryError": e.code}), &e.message)
}

/// A fault rule's error as searchStream sends it; `error_code` defaults by
/// status.
fn ads_fault(version: &str, spec: &ErrorSpec) -> Response {
    let error_code = spec
        .error_code
        .clone()
        .unwrap_or_else(|| match spec.http_status {
            401 => json!({"authenticationError": "OAUTH_TOKEN_INVALID"}),
            403 => json!({"authorizationError": "USER_PERMISSION_DENIED"}),
            429 => json!({"quotaError": "RESOURCE_EXHAUSTED"}),
            400 => json!({"requestError": "INVALID_INPUT"}),
            _ => json!({"internalError": "INTERNAL_ERROR"}),
        });
    let message = spec.message.as_deref().unwrap_or("Simulated error");
    ads_error(version, spec.http_status, error_code, message)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[derive(Debug, Deserialize)]
struct SearchRequest {
    query: String,
}

async fn search_stream(
    State(sim): State<Arc<Sim>>,
    Path((version, customer_id)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(spec) = gate(&sim, SEARCH_STREAM_KEY, uri.path()).await {
        return ads_fault(&version, &spec);
    }
    let known_version = version
        .strip_prefix('v')
        .is_some_and(super::google::is_digits);
    if !known_version {
        return ads_error(
            &version,
            404,
            json!({"requestError": "UNSUPPORTED_VERSION"}),
            "Unknown API version.",
        );
    }
    let bearer = header_str(&headers, "authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let developer_token = header_str(&headers, "developer-token");
    let login_customer_id = header_str(&headers, "login-customer-id");
    let now = sim.now();
    let today = date_of(now);
    let providers = sim.providers();
    let customer = match providers.google.ads_access(
        bearer,
        developer_token,
        &customer_id,
        login_customer_id,
        now,
    ) {
        Ok(customer) => customer,
        Err(e) => return access_error(&version, e),
    };
    let request: SearchRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            let e = QueryError {
                code: "QUERY_ERROR",
                message: format!("the body must be {{\"query\": \"…\"}}: {e}"),
            };
            return query_error(&version, &e);
        }
    };
    let query = match gaql::parse(&request.query, today) {
        Ok(q) => q,
        Err(e) => return query_error(&version, &e),
    };
    let rows = gaql::run(&query, &customer_id, customer, today);
    drop(providers);
    let mask: Vec<&str> = query.fields.iter().map(|f| f.mask()).collect();
    Json(batches(rows, &mask.join(","))).into_response()
}

/// Splits rows into batches of `BATCH_ROWS`; an empty result is one batch
/// without `results`. The last batch carries `queryResourceConsumption`.
fn batches(rows: Vec<Value>, mask: &str) -> Value {
    let request_id = request_id();
    let total = rows.len();
    let mut out: Vec<Value> = Vec::with_capacity(total / BATCH_ROWS + 1);
    let mut rows = rows.into_iter().peekable();
    loop {
        let chunk: Vec<Value> = rows.by_ref().take(BATCH_ROWS).collect();
        let mut batch = json!({"fieldMask": mask, "requestId": request_id});
        if !chunk.is_empty() {
            batch["results"] = Value::Array(chunk);
        }
        out.push(batch);
        if rows.peek().is_none() {
            break;
        }
    }
    if let Some(last) = out.last_mut() {
        last["queryResourceConsumption"] = json!(total.max(1).to_string());
    }
    Value::Array(out)
}

#[derive(Debug, Default, Deserialize)]
struct NewUser {
    id: Option<String>,
    email: Option<String>,
    #[serde(default)]
    customer_ids: Vec<String>,
}

async fn create_user(State(sim): State<Arc<Sim>>, body: Bytes) -> Result<Response, ControlError> {
    let req: NewUser = body_or_default(&body)?;
    let mut providers = sim.providers();
    let google = &mut providers.google;
    let id = google.create_user(req.id, req.email, req.customer_ids)?;
    let user = &google.users[&id];
    let body = json!({"id": id, "email": user.email, "customer_ids": user.customer_ids});
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn consent_direct(
    State(sim): State<Arc<Sim>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ControlError> {
    let now = sim.now();
    let (refresh, access, expires_in) = sim.providers().google.consent_direct(&id, now)?;
    Ok(Json(json!({
        "refresh_token": refresh,
        "access_token": access,
        "expires_in": expires_in,
        "scope": ADWORDS_SCOPE,
        "token_type": "Bearer",
    })))
}

async fn set_dialog_user(
    State(sim): State<Arc<Sim>>,
    Json(req): Json<DialogUser>,
) -> Result<Json<Value>, ControlError> {
    sim.providers()
        .google
        .set_dialog_user(req.user_id.clone())?;
    Ok(Json(json!({"user_id": req.user_id})))
}

#[derive(Debug, Deserialize)]
struct Revoke {
    refresh_token: Option<String>,
    user_id: Option<String>,
}

async fn revoke(
    State(sim): State<Arc<Sim>>,
    Json(req): Json<Revoke>,
) -> Result<Json<Value>, ControlError> {
    let mut providers = sim.providers();
    match (req.refresh_token, req.user_id) {
        (Some(token), None) => providers.google.revoke_refresh(&token)?,
        (None, Some(user)) => providers.google.revoke_user(&user)?,
        _ => {
            return Err(ControlError::Invalid(
                "give exactly one of refresh_token, user_id".into(),
            ));
        }
    }
    Ok(Json(json!({"revoked": true})))
}

#[derive(Debug, Deserialize)]
struct UpsertCustomer {
    id: String,
    manager_id: Option<String>,
    #[serde(default)]
    campaigns: Vec<NewCampaign>,
}

async fn upsert_customer(
    State(sim): State<Arc<Sim>>,
    Json(req): Json<UpsertCustomer>,
) -> Result<Response, ControlError> {
    let now = sim.now();
    let mut providers = sim.providers();
    let google = &mut providers.google;
    let created = google.upsert_customer(&req.id, req.manager_id, req.campaigns, now)?;
    let customer = &google.customers[&req.id];
    let campaigns: Vec<Value> = customer
        .campaigns
        .iter()
        .map(|c| {
            json!({
                "id": c.id.to_string(),
                "name": c.name,
                "status": c.status,
                "start_date": c.start_date,
                "end_date": c.end_date,
            })
        })
        .collect();
    let body = json!({"id": req.id, "manager_id": customer.manager_id, "campaigns": campaigns});
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(body)).into_response())
}
