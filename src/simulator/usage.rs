//! Usage levels per Meta scope, set through `/_sim/usage`: the app
//! (`X-App-Usage`), one business object and use case
//! (`X-Business-Use-Case-Usage`), one ad account (`X-Ad-Account-Usage`).
//! A level only shows in the headers of calls of its own scope, and at 100 %
//! those calls fail with the scope's rate-limit error (wire-spec 2.3, 3).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Sim;
use super::errors::{ControlError, GraphError};

/// Meta's BUC error subcode (wire-spec 2.3).
const BUC_SUBCODE: i64 = 2446079;

/// One scope's usage: the percentage in every field and the regain time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub(crate) struct Level {
    pub pct: f64,
    pub regain_minutes: u64,
}

#[derive(Debug, Default)]
pub(crate) struct UsageLevels {
    app: Option<Level>,
    /// (object id, use case) → level.
    business: BTreeMap<(String, String), Level>,
    /// Ad account id (no `act_`) → level.
    ad_accounts: BTreeMap<String, Level>,
}

impl UsageLevels {
    pub fn app(&self) -> Option<Level> {
        self.app
    }

    pub fn business(&self, id: &str, use_case: &str) -> Option<Level> {
        self.business
            .get(&(id.to_string(), use_case.to_string()))
            .copied()
    }

    pub fn ad_account(&self, id: &str) -> Option<Level> {
        self.ad_accounts.get(id).copied()
    }

    /// The rate-limit error a call answers with when one of its scopes is
    /// at 100 %: the app's first, then its object's, then its ad account's.
    pub fn refusal(
        &self,
        object: Option<&(String, &'static str)>,
        ad_account: Option<&str>,
    ) -> Option<GraphError> {
        if self.app.is_some_and(|l| l.pct >= 100.0) {
            return Some(GraphError::new(
                400,
                4,
                "OAuthException",
                "(#4) Application request limit reached",
            ));
        }
        if let Some((id, use_case)) = object
            && self.business(id, use_case).is_some_and(|l| l.pct >= 100.0)
        {
            let (code, what) = buc_code(use_case);
            let message = format!(
                "(#{code}) There have been too many calls {what}. Wait a bit and try again. For more info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting."
            );
            return Some(
                GraphError::new(400, code, "OAuthException", message).with_subcode(BUC_SUBCODE),
            );
        }
        if let Some(id) = ad_account
            && self.ad_account(id).is_some_and(|l| l.pct >= 100.0)
        {
            return Some(
                GraphError::new(
                    400,
                    613,
                    "OAuthException",
                    "(#613) Calls to this api have exceeded the rate limit.",
                )
                .with_subcode(1487742),
            );
        }
        None
    }
}

/// BUC error codes by use case (wire-spec 2.3).
fn buc_code(use_case: &str) -> (i64, &'static str) {
    match use_case {
        "pages" => (80001, "to this Page account"),
        "instagram" => (80002, "to this Instagram account"),
        "custom_audience" => (80003, "to this ad-account"),
        "ads_management" => (80004, "to this ad-account"),
        "leadgen" => (80005, "to this Page account"),
        "messenger" => (80006, "to this Messenger account"),
        "whatsapp" => (80008, "to this WhatsApp Business account"),
        "catalog" => (80009, "to this catalog"),
        _ => (80000, "from this ad-account"),
    }
}

pub(crate) fn router() -> Router<Arc<Sim>> {
    Router::new().route("/_sim/usage", get(list).post(set).delete(clear))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ScopeKind {
    App,
    Business,
    AdAccount,
}

#[derive(Debug, Deserialize)]
struct SetUsage {
    scope: ScopeKind,
    /// The object (business) or ad account (with or without `act_`).
    id: Option<String>,
    /// The use case of a business object; `pages` by default.
    #[serde(rename = "type")]
    use_case: Option<String>,
    pct: f64,
    #[serde(default)]
    estimated_time_to_regain_access: u64,
}

async fn set(
    State(sim): State<Arc<Sim>>,
    Json(req): Json<SetUsage>,
) -> Result<Json<Value>, ControlError> {
    if !(req.pct.is_finite() && req.pct >= 0.0) {
        return Err(ControlError::Invalid("pct must be 0 or more".into()));
    }
    let level = Level {
        pct: req.pct,
        regain_minutes: req.estimated_time_to_regain_access,
    };
    let id = || {
        req.id
            .as_deref()
            .map(|id| id.trim_start_matches("act_").to_string())
            .filter(|id| !id.is_empty())
            .ok_or_else(|| ControlError::Invalid("id is required for this scope".into()))
    };
    let mut levels = sim.usage();
    match req.scope {
        ScopeKind::App => levels.app = Some(level),
        ScopeKind::Business => {
            let use_case = req.use_case.clone().unwrap_or_else(|| "pages".into());
            levels.business.insert((id()?, use_case), level);
        }
        ScopeKind::AdAccount => {
            levels.ad_accounts.insert(id()?, level);
        }
    }
    Ok(Json(listing(&levels)))
}

async fn list(State(sim): State<Arc<Sim>>) -> Json<Value> {
    Json(listing(&sim.usage()))
}

async fn clear(State(sim): State<Arc<Sim>>) -> Response {
    *sim.usage() = UsageLevels::default();
    StatusCode::NO_CONTENT.into_response()
}

fn listing(levels: &UsageLevels) -> Value {
    let entry = |scope: &str, id: Option<&str>, use_case: Option<&str>, l: &Level| {
        json!({"scope": scope, "id": id, "type": use_case, "pct": l.pct,
            "estimated_time_to_regain_access": l.regain_minutes})
    };
    let mut usage: Vec<Value> = levels
        .app
        .iter()
        .map(|l| entry("app", None, None, l))
        .collect();
    usage.extend(
        levels
            .business
            .iter()
            .map(|((id, t), l)| entry("business", Some(id), Some(t), l)),
    );
    usage.extend(
        levels
            .ad_accounts
            .iter()
            .map(|(id, l)| entry("ad_account", Some(id), None, l)),
    );
    json!({ "usage": usage })
}
