//! A revoked token met outside a refresh (insights, debug) is recorded on
//! its connection at once: health, last error, hand-outs and one webhook.

use serde_json::json;

use crate::fb_support::*;

fn window() -> String {
    let today = chrono::Utc::now().date_naive();
    format!(
        "start_date={}&end_date={today}",
        today - chrono::Duration::days(30)
    )
}

/// A connected page with two posts whose token the platform then revoked
/// (subcode 460), unknown to the service: (connection id, page id).
async fn page_revoked_upstream(fb: &FbApp) -> (String, String) {
    let answer = fb.connect_user(1, None).await;
    let page = connection_of_kind(&answer, "page");
    let (id, page_id) = (
        page["id"].as_str().unwrap().to_string(),
        page["external_id"].as_str().unwrap().to_string(),
    );
    fb.sim.seed_content(&page_id, "posts", 2).await;
    fb.sim
        .revoke(json!({ "page_id": page_id, "subcode": 460 }))
        .await;
    (id, page_id)
}

#[tokio::test]
async fn a_token_revoked_during_an_insights_call_is_flagged_refused_and_notified_once() {
    let fb = FbApp::start().await;
    let (id, page_id) = page_revoked_upstream(&fb).await;

    for _ in 0..2 {
        let (status, body) = fb
            .get(
                &format!(
                    "/facebook/post_metrics?page_id={page_id}&refresh=true&{}",
                    window()
                ),
                ANALYST_KEY,
            )
            .await;
        assert_error(status, &body, 409, "reauth_required");
    }

    let conn = fb
        .get_ok(&format!("/facebook/tokens/{id}"), ADMIN_KEY)
        .await;
    let conn = &conn["connection"];
    assert_eq!(conn["health"], "reauth_required", "{conn}");
    assert_eq!(conn["reauth_required"], true);
    assert_eq!(conn["last_error"]["code"], 190, "{conn}");
    assert_eq!(conn["last_error"]["subcode"], 460, "{conn}");

    let (status, body) = fb
        .get(&format!("/tokens/{id}/access-token"), USER_KEY)
        .await;
    assert_eq!(status, 409, "the dead token is not handed out: {body}");
    assert!(body.get("access_token").is_none());

    let flagged = eventually("one reauth webhook", || {
        let events = fb.webhook.of_type("connection.reauth_required");
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(flagged.len(), 1, "{flagged:?}");
    assert_eq!(flagged[0]["data"]["connection"]["id"], id);
    fb.stop().await;
}

#[tokio::test]
async fn debug_token_reporting_a_revoked_token_flags_the_connection() {
    let fb = FbApp::start().await;
    let (id, _) = page_revoked_upstream(&fb).await;
    let info = fb
        .get_ok(
            &format!("/facebook/debug_token?connection_id={id}"),
            ADMIN_KEY,
        )
        .await;
    assert_eq!(info["is_valid"], false, "{info}");
    let (_, conn) = fb.get(&format!("/facebook/tokens/{id}"), ADMIN_KEY).await;
    assert_eq!(conn["connection"]["health"], "reauth_required", "{conn}");
    fb.stop().await;
}
