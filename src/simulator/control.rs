//! The `/_sim` control API (JSON, no auth): seed users and businesses, log
//! users in, revoke, lapse data access, move the clock, read stats and the
//! revocations the platforms carried out, set faults.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Sim;
use super::errors::ControlError;
use super::faults::FaultSpec;
use super::state::{DEFAULT_REVOKE_SUBCODE, NewPage};

/// Most users one bulk seed may create.
const MAX_BULK_USERS: usize = 1_000_000;

pub(crate) fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/_sim/users", post(create_users))
        .route("/_sim/users/{id}/login", post(login))
        .route("/_sim/dialog_user", post(set_dialog_user))
        .route("/_sim/businesses", post(create_business))
        .route("/_sim/revoke", post(revoke))
        .route("/_sim/lapse_data_access", post(lapse_data_access))
        .route("/_sim/clock", get(clock).post(advance_clock))
        .route("/_sim/app", get(app_settings).post(set_app_settings))
        .route("/_sim/stats", get(stats).delete(reset_stats))
        .route("/_sim/revocations", get(revocations))
        .route(
            "/_sim/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let status = match self {
            ControlError::NotFound(_) => StatusCode::NOT_FOUND,
            ControlError::Conflict(_) => StatusCode::CONFLICT,
            ControlError::Invalid(_) => StatusCode::BAD_REQUEST,
            ControlError::Unreachable(_) => StatusCode::BAD_GATEWAY,
        };
        (
            status,
            Json(json!({"error": {"message": self.to_string()}})),
        )
            .into_response()
    }
}

/// An optional JSON body: empty means all defaults.
pub(crate) fn body_or_default<T: for<'de> Deserialize<'de> + Default>(
    body: &Bytes,
) -> Result<T, ControlError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ControlError::Invalid(format!("bad JSON body: {e}")))
}

#[derive(Debug, Default, Deserialize)]
struct NewUsers {
    id: Option<String>,
    name: Option<String>,
    scopes: Option<Vec<String>>,
    #[serde(default)]
    pages: Vec<NewPage>,
    count: Option<usize>,
    #[serde(default)]
    pages_per_user: usize,
}

async fn create_users(State(sim): State<Arc<Sim>>, body: Bytes) -> Result<Response, ControlError> {
    let req: NewUsers = body_or_default(&body)?;
    let now = sim.now();
    let mut world = sim.world();
    let page_summary = |world: &super::state::World, user_id: &str| -> Vec<Value> {
        world.users[user_id]
            .page_ids
            .iter()
            .map(|p| json!({"id": p, "name": world.pages[p].name}))
            .collect()
    };
    if let Some(count) = req.count {
        if count > MAX_BULK_USERS {
            return Err(ControlError::Invalid(format!(
                "count is at most {MAX_BULK_USERS}"
            )));
        }
        let mut users = Vec::with_capacity(count);
        for _ in 0..count {
            let pages = vec![NewPage::default(); req.pages_per_user];
            let id = world.create_user(None, None, req.scopes.clone(), pages, now)?;
            users.push(json!({"id": id, "pages": page_summary(&world, &id)}));
        }
        return Ok((StatusCode::CREATED, Json(json!({ "users": users }))).into_response());
    }
    let id = world.create_user(req.id, req.name, req.scopes, req.pages, now)?;
    let body = json!({
        "id": id,
        "name": world.users[&id].name,
        "pages": page_summary(&world, &id),
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Debug, Default, Deserialize)]
struct Login {
    #[serde(default)]
    long_lived: bool,
}

async fn login(
    State(sim): State<Arc<Sim>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ControlError> {
    let req: Login = body_or_default(&body)?;
    let now = sim.now();
    let (token, expires_in) = sim
        .world()
        .login(&id, req.long_lived, false, now)
        .ok_or_else(|| ControlError::NotFound(format!("no user {id}")))?;
    Ok(Json(
        json!({"access_token": token, "expires_in": expires_in}),
    ))
}

/// The user a dialog approves as (Facebook's and Google's).
#[derive(Debug, Deserialize)]
pub(crate) struct DialogUser {
    pub user_id: Option<String>,
}

/// `null` makes the dialog deny (`error=access_denied`).
async fn set_dialog_user(
    State(sim): State<Arc<Sim>>,
    Json(req): Json<DialogUser>,
) -> Result<Json<Value>, ControlError> {
    let mut world = sim.world();
    if let Some(id) = &req.user_id
        && !world.users.contains_key(id)
    {
        return Err(ControlError::NotFound(format!("no user {id}")));
    }
    world.dialog_user = req.user_id.clone();
    Ok(Json(json!({"user_id": req.user_id})))
}

#[derive(Debug, Deserialize)]
struct NewBusiness {
    id: Option<String>,
    name: Option<String>,
    #[serde(default)]
    page_ids: Vec<String>,
    /// Users who see the business in `/me/businesses`.
    #[serde(default)]
    user_ids: Vec<String>,
}

async fn create_business(
    State(sim): State<Arc<Sim>>,
    Json(req): Json<NewBusiness>,
) -> Result<Response, ControlError> {
    let now = sim.now();
    let mut world = sim.world();
    if let Some(user) = req.user_ids.iter().find(|u| !world.users.contains_key(*u)) {
        return Err(ControlError::NotFound(format!("no user {user}")));
    }
    let (id, name, system_user_id, token) =
        world.create_business(req.id, req.name, req.page_ids, now)?;
    world
        .insights
        .business_members
        .insert(id.clone(), req.user_ids);
    let body = json!({
        "id": id,
        "name": name,
        "system_user_id": system_user_id,
        "system_user_token": token,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Debug, Deserialize)]
struct Revoke {
    user_id: Option<String>,
    page_id: Option<String>,
    token: Option<String>,
    subcode: Option<i64>,
}

async fn revoke(
    State(sim): State<Arc<Sim>>,
    Json(req): Json<Revoke>,
) -> Result<Json<Value>, ControlError> {
    let subcode = req.subcode.unwrap_or(DEFAULT_REVOKE_SUBCODE);
    let mut world = sim.world();
    match (req.user_id, req.page_id, req.token) {
        (Some(user), None, None) => world.revoke_user(&user, subcode)?,
        (None, Some(page), None) => world.revoke_page(&page, subcode)?,
        (None, None, Some(token)) => world.revoke_token(&token, subcode)?,
        _ => {
            return Err(ControlError::Invalid(
                "give exactly one of user_id, page_id, token".into(),
            ));
        }
    }
    Ok(Json(json!({"revoked": true, "subcode": subcode})))
}

#[derive(Debug, Deserialize)]
struct Lapse {
    user_id: String,
}

async fn lapse_data_access(
    State(sim): State<Arc<Sim>>,
    Json(req): Json<Lapse>,
) -> Result<Json<Value>, ControlError> {
    let now = sim.now();
    sim.world().lapse_data_access(&req.user_id, now)?;
    Ok(Json(
        json!({"user_id": req.user_id, "data_access_expires_at": now}),
    ))
}

async fn clock(State(sim): State<Arc<Sim>>) -> Json<Value> {
    Json(json!({"now": sim.now()}))
}

#[derive(Debug, Deserialize)]
struct Advance {
    advance_secs: i64,
}

async fn advance_clock(State(sim): State<Arc<Sim>>, Json(req): Json<Advance>) -> Json<Value> {
    Json(json!({"now": sim.advance_clock(req.advance_secs)}))
}

/// The app's settings in the developer dashboard that change how Graph answers.
#[derive(Debug, Deserialize)]
struct AppSettings {
    require_appsecret_proof: Option<bool>,
}

async fn app_settings(State(sim): State<Arc<Sim>>) -> Json<Value> {
    Json(json!({"require_appsecret_proof": sim.requires_proof()}))
}

async fn set_app_settings(
    State(sim): State<Arc<Sim>>,
    Json(req): Json<AppSettings>,
) -> Json<Value> {
    if let Some(on) = req.require_appsecret_proof {
        sim.set_requires_proof(on);
    }
    Json(json!({"require_appsecret_proof": sim.requires_proof()}))
}

async fn stats(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let sorted: std::collections::BTreeMap<String, u64> =
        sim.stats().iter().map(|(k, v)| (k.clone(), *v)).collect();
    Json(json!(sorted))
}

/// The revocations the simulated platforms carried out, oldest first.
async fn revocations(State(sim): State<Arc<Sim>>) -> Json<Value> {
    Json(json!({"revocations": sim.revocations()}))
}

async fn reset_stats(State(sim): State<Arc<Sim>>) -> StatusCode {
    sim.stats().clear();
    StatusCode::NO_CONTENT
}

async fn list_faults(State(sim): State<Arc<Sim>>) -> Json<Value> {
    Json(json!({"faults": sim.faults().list()}))
}

async fn add_fault(
    State(sim): State<Arc<Sim>>,
    Json(spec): Json<FaultSpec>,
) -> Result<Response, ControlError> {
    let id = sim.faults().add(spec).map_err(ControlError::Invalid)?;
    Ok((StatusCode::CREATED, Json(json!({"id": id}))).into_response())
}

async fn clear_faults(State(sim): State<Arc<Sim>>) -> Json<Value> {
    Json(json!({"cleared": sim.faults().clear()}))
}
