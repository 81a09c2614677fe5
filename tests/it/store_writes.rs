//! What a refresh costs the store: the renewed connection, its alert state
//! and the connections derived from it are one write.

use serde_json::json;

use crate::fb_support::{ADMIN_KEY, FbApp};

#[tokio::test]
async fn renewing_a_user_with_its_pages_is_one_store_write() {
    let fb = FbApp::start().await;
    let answer = fb.connect_user(3, None).await;
    let conns = answer["connections"].as_array().unwrap();
    let user = conns.iter().find(|c| c["kind"] == "user").unwrap();
    let page = conns.iter().find(|c| c["kind"] == "page").unwrap();

    for id in [&user["id"], &page["id"]] {
        let before = fb.app.store.stats();
        let (status, body) = fb
            .post(
                &format!("/facebook/tokens/{}/force-refresh", id.as_str().unwrap()),
                ADMIN_KEY,
                json!({}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["refreshed"], true);
        let after = fb.app.store.stats();
        // A page is renewed through its user: the same one write.
        assert_eq!(
            after.file_writes - before.file_writes,
            1,
            "store writes for one refresh of {id}"
        );
    }
    // The pages were written with the user: each has been renewed since
    // it was connected.
    let (_, list) = fb.get("/facebook/tokens", ADMIN_KEY).await;
    let list = list["connections"].as_array().unwrap();
    assert_eq!(list.len(), 4);
    for c in list {
        let connected = conns.iter().find(|x| x["id"] == c["id"]).unwrap();
        let at = |c: &serde_json::Value| {
            chrono::DateTime::parse_from_rfc3339(c["last_refreshed_at"].as_str().unwrap()).unwrap()
        };
        assert!(at(c) > at(connected), "{} not renewed: {c}", c["kind"]);
    }
}
