//! (provider, kind, external id, team) identifies a connection: concurrent
//! connects of one account converge on one connection each.

use serde_json::{Value, json};

use crate::fb_support::*;

#[tokio::test]
async fn twenty_concurrent_connects_leave_one_user_connection_and_one_per_page() {
    let fb = FbApp::start().await;
    let user = fb
        .sim
        .create_user(
            json!({ "name": "Busy User", "pages": [{ "name": "North" }, { "name": "South" }] }),
        )
        .await;
    let token = fb.sim.login(user["id"].as_str().unwrap(), false).await;
    let connects = (0..20).map(|_| {
        fb.post(
            "/facebook/auth/exchange",
            ADMIN_KEY,
            json!({ "access_token": token, "team_id": "team-a" }),
        )
    });
    for (status, body) in futures::future::join_all(connects).await {
        assert_eq!(status, 200, "{body}");
    }
    let list = fb.get_ok("/facebook/tokens", ADMIN_KEY).await;
    let kinds: Vec<&str> = connections(&list)
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "user").count(), 1, "{list}");
    assert_eq!(kinds.iter().filter(|k| **k == "page").count(), 2, "{list}");
    let pages: Vec<&Value> = connections(&list).filter(|c| c["kind"] == "page").collect();
    let user_id = connections(&list).find(|c| c["kind"] == "user").unwrap()["id"].clone();
    assert!(pages.iter().all(|p| p["parent_id"] == user_id), "{list}");
    fb.stop().await;
}
