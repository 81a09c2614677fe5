//! `/_sim` control calls for the insights side: seed ad accounts with
//! campaigns, fail report runs, seed page posts and reels, reject metrics.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Sim;
use super::ads::NewAdAccount;
use super::errors::ControlError;
use super::pages_insights::NewContent;

pub(crate) fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/_sim/ad_accounts", post(create_ad_account))
        .route("/_sim/ads/fail_reports", post(fail_reports))
        .route("/_sim/pages/{page_id}/posts", post(create_posts))
        .route("/_sim/pages/{page_id}/reels", post(create_reels))
        .route(
            "/_sim/metrics/reject",
            post(reject_metrics)
                .get(rejected_metrics)
                .delete(clear_rejected),
        )
}

async fn create_ad_account(
    State(sim): State<Arc<Sim>>,
    Json(req): Json<NewAdAccount>,
) -> Result<Response, ControlError> {
    let now = sim.now();
    let body = sim.world().seed_ad_account(req, now)?;
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Debug, Deserialize)]
struct FailReports {
    count: u64,
}

async fn fail_reports(State(sim): State<Arc<Sim>>, Json(req): Json<FailReports>) -> Json<Value> {
    let mut world = sim.world();
    world.insights.failing_reports += req.count;
    Json(json!({"failing_reports": world.insights.failing_reports}))
}

async fn create_posts(
    State(sim): State<Arc<Sim>>,
    Path(page_id): Path<String>,
    Json(req): Json<NewContent>,
) -> Result<Response, ControlError> {
    let now = sim.now();
    let ids = sim.world().seed_posts(&page_id, &req, now)?;
    Ok((StatusCode::CREATED, Json(json!({"ids": ids}))).into_response())
}

async fn create_reels(
    State(sim): State<Arc<Sim>>,
    Path(page_id): Path<String>,
    Json(req): Json<NewContent>,
) -> Result<Response, ControlError> {
    let now = sim.now();
    let ids = sim.world().seed_reels(&page_id, &req, now)?;
    Ok((StatusCode::CREATED, Json(json!({"ids": ids}))).into_response())
}

#[derive(Debug, Deserialize)]
struct Reject {
    metrics: Vec<String>,
}

async fn reject_metrics(State(sim): State<Arc<Sim>>, Json(req): Json<Reject>) -> Json<Value> {
    let mut world = sim.world();
    world.insights.rejected_metrics.extend(req.metrics);
    Json(rejected_list(&world.insights.rejected_metrics))
}

async fn rejected_metrics(State(sim): State<Arc<Sim>>) -> Json<Value> {
    Json(rejected_list(&sim.world().insights.rejected_metrics))
}

async fn clear_rejected(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let mut world = sim.world();
    let cleared = world.insights.rejected_metrics.len();
    world.insights.rejected_metrics.clear();
    Json(json!({ "cleared": cleared }))
}

fn rejected_list(set: &std::collections::HashSet<String>) -> Value {
    let mut list: Vec<&String> = set.iter().collect();
    list.sort();
    json!({ "rejected": list })
}
