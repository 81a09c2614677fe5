//! `/{user-id}/permissions`: what a user granted the app (GET), and the
//! revocation of the whole login (DELETE), which ends the user's session so
//! that its tokens and the page tokens derived from them stop working.
//!
//! Meta: "DELETE /{user-id}/permissions … must be made with a user access
//! token or an app access token for the current app"
//! (developers.facebook.com/docs/graph-api/reference/user/permissions/);
//! current Graph versions answer a DELETE with `{"success": true}`
//! (restfb/restfb#618, mobolic/facebook-sdk#411).

use axum::http::Method;
use serde_json::{Value, json};

use super::Sim;
use super::errors::GraphError;
use super::graph::{Params, check_proof};
use super::state::Caller;

/// The subcode a token of a user who removed the app fails with (wire-spec 2.3).
const NOT_AUTHORIZED: i64 = 458;

pub(crate) fn answer(
    sim: &Sim,
    method: &Method,
    user: &str,
    params: &Params,
) -> Result<Value, GraphError> {
    let Some(token) = params.token.as_deref() else {
        return Err(GraphError::missing_token(
            104,
            "An access token is required to request this resource.",
        ));
    };
    check_proof(sim, params, token)?;
    let now = sim.now();
    let mut world = sim.world();
    let caller = world.caller(token, now)?;
    // A user's own token (as `me` or by id) or the app's token may act.
    let user_id = match (&caller, user) {
        (Caller::User { user_id }, "me") => user_id.clone(),
        (Caller::User { user_id }, id) if user_id == id => user_id.clone(),
        (Caller::App, id) if world.users.contains_key(id) => id.to_string(),
        _ => return Err(unsupported(method, user)),
    };
    if *method == Method::DELETE {
        world
            .revoke_user(&user_id, NOT_AUTHORIZED)
            .expect("the caller's user exists");
        drop(world);
        let via = if matches!(caller, Caller::App) {
            "app_token"
        } else {
            "user_token"
        };
        sim.record_revocation(json!({
            "platform": "facebook", "user_id": user_id, "via": via, "at": now,
        }));
        return Ok(json!({"success": true}));
    }
    let data: Vec<Value> = world.users[&user_id]
        .scopes
        .iter()
        .map(|s| json!({"permission": s, "status": "granted"}))
        .collect();
    Ok(json!({ "data": data }))
}

/// Code 100/33, as Graph answers for an object the token cannot act on.
fn unsupported(method: &Method, id: &str) -> GraphError {
    let verb = if *method == Method::DELETE {
        "delete"
    } else {
        "get"
    };
    GraphError::param(format!(
        "Unsupported {verb} request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api"
    ))
    .with_subcode(33)
}
