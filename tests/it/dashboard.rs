//! What the dashboard reads besides the connections: the recent refresh
//! runs, which survive a restart with their team split intact.

use serde_json::Value;

use crate::fb_support::*;

fn runs(body: &Value) -> Vec<Value> {
    body["runs"].as_array().expect("a runs list").clone()
}

#[tokio::test]
async fn recent_refresh_runs_survive_a_restart_and_stay_split_by_team() {
    let fb = FbApp::start().await;
    fb.connect_user(1, None).await;
    fb.connect_shop("team-a", "Persisted Shop").await;
    let body = fb.sweep("/internal/scheduled-refresh").await;
    let run_id = body["run"]["id"].as_str().unwrap().to_string();

    let before = fb.get_ok("/internal/refresh-runs", ADMIN_KEY).await;
    let (_, team_before) = fb.get("/internal/refresh-runs", TEAM_A_KEY).await;

    let fb = fb.restart().await;
    let (status, after) = fb.get("/internal/refresh-runs", ADMIN_KEY).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(
        runs(&after),
        runs(&before),
        "the same runs, field for field"
    );
    assert_eq!(runs(&after)[0]["id"], run_id.as_str());
    assert_eq!(runs(&after)[0]["status"], "finished");
    assert_eq!(runs(&after)[0]["total"], 3, "a user, its page and a shop");

    let team_after = fb.get_ok("/internal/refresh-runs", TEAM_A_KEY).await;
    assert_eq!(runs(&team_after), runs(&team_before));
    assert_eq!(
        runs(&team_after)[0]["total"],
        1,
        "team-a sees only its shop"
    );
    fb.get_ok(&format!("/internal/refresh-runs/{run_id}"), ADMIN_KEY)
        .await;
    fb.stop().await;
}
