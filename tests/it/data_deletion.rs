//! Meta's Data Deletion Request callback as Meta sends it (a form with a
//! `signed_request` signed here by hand, wire-spec 11.1), and the status
//! page its answer points the user to.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::facebook_webhooks::{post_form, signed_request};
use crate::fb_support::{
    ANALYST_KEY, APP_SECRET, FbApp, READER_KEY, connection_of_kind, eventually,
};

const CALLBACK: &str = "/facebook/webhooks/data-deletion";

fn ids(answer: &Value) -> Vec<String> {
    answer["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

fn page_id(answer: &Value) -> String {
    connection_of_kind(answer, "page")["external_id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn stored_ids(fb: &FbApp) -> Vec<String> {
    let (_, list) = fb.get("/tokens?provider=facebook", READER_KEY).await;
    ids(&list)
}

fn cache_dir(fb: &FbApp) -> PathBuf {
    fb.app.store.path().parent().unwrap().join("cache")
}

fn cached_entries(fb: &FbApp) -> usize {
    std::fs::read_dir(cache_dir(fb)).map_or(0, |d| d.count())
}

/// `GET path`, public, asking for HTML when `html`.
async fn open(fb: &FbApp, path: &str, html: bool) -> reqwest::Response {
    let request = fb.app.client.get(fb.url(path));
    let request = if html {
        request.header("accept", "text/html,application/xhtml+xml")
    } else {
        request
    };
    request.send().await.unwrap()
}

fn window() -> String {
    let today = chrono::Utc::now().date_naive();
    format!(
        "start_date={}&end_date={today}",
        today - chrono::Duration::days(30)
    )
}

/// A page's post metrics, read (and cached) through the API.
async fn read_posts(fb: &FbApp, page: &str) {
    fb.sim.seed_content(page, "posts", 3).await;
    fb.get_ok(
        &format!(
            "/facebook/post_metrics?page_id={page}&metrics=post_clicks&{}",
            window()
        ),
        ANALYST_KEY,
    )
    .await;
}

/// A completed export of a page's post metrics; its id.
async fn export_posts(fb: &FbApp, page: &str) -> String {
    let today = chrono::Utc::now().date_naive();
    let (status, job) = fb
        .post("/exports", ANALYST_KEY, json!({ "kind": "post_metrics", "format": "csv",
            "params": { "page_id": page, "metrics": ["post_clicks"],
                "start_date": (today - chrono::Duration::days(30)).to_string(), "end_date": today.to_string() } }))
        .await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let mut done = Value::Null;
    for _ in 0..500 {
        (_, done) = fb.get(&format!("/exports/{id}"), ANALYST_KEY).await;
        if done["status"] == "completed" || done["status"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(done["status"], "completed", "{done}");
    id
}

#[tokio::test]
async fn a_data_deletion_request_erases_the_user_its_pages_their_cached_insights_and_exports() {
    let fb = FbApp::start().await;
    let erased = fb.connect_user(2, None).await;
    let kept = fb.connect_user(1, None).await;
    let user = connection_of_kind(&erased, "user");
    let (erased_page, kept_page) = (page_id(&erased), page_id(&kept));
    read_posts(&fb, &erased_page).await;
    read_posts(&fb, &kept_page).await;
    assert_eq!(cached_entries(&fb), 2, "one cached answer per page");
    let erased_export = export_posts(&fb, &erased_page).await;
    let kept_export = export_posts(&fb, &kept_page).await;
    let payload = json!({
        "algorithm": "HMAC-SHA256",
        "issued_at": chrono::Utc::now().timestamp(),
        "user_id": user["external_id"],
    });

    // A bad signature: 400, nothing deleted.
    let forged = format!(
        "signed_request={}",
        signed_request("not-the-app-secret", &payload)
    );
    let (status, answer) = post_form(&fb, CALLBACK, forged).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["field"], "signed_request", "{answer}");
    assert_eq!(stored_ids(&fb).await.len(), 5);
    assert_eq!(cached_entries(&fb), 2);

    let body = format!("signed_request={}", signed_request(APP_SECRET, &payload));
    let (status, answer) = post_form(&fb, CALLBACK, body.clone()).await;
    assert_eq!(status, 200, "{answer}");
    let code = answer["confirmation_code"].as_str().unwrap().to_string();
    assert_eq!(
        answer,
        json!({
            "url": format!("http://localhost:8080/facebook/data-deletion/{code}"),
            "confirmation_code": code,
        }),
        "exactly the two fields Meta reads"
    );

    // Exactly the user's connections are gone, each announced.
    assert_eq!(stored_ids(&fb).await, ids(&kept), "the other user stays");
    let erased_ids = ids(&erased);
    let events = eventually("three deletion events", || {
        let events = fb.webhook.of_type("connection.deleted");
        (events.len() == 3).then_some(events)
    })
    .await;
    for e in &events {
        let id = e["data"]["connection"]["id"].as_str().unwrap();
        assert!(erased_ids.iter().any(|x| x == id), "{e}");
        assert_eq!(e["data"]["revocation"], "not_requested", "{e}");
    }
    // Their cached answer and export are gone; the other user's stay.
    assert_eq!(cached_entries(&fb), 1, "only the kept page's answer");
    let (status, _) = fb
        .get(&format!("/exports/{erased_export}"), ANALYST_KEY)
        .await;
    assert_eq!(status, 404);
    let (status, _) = fb
        .get(&format!("/exports/{kept_export}"), ANALYST_KEY)
        .await;
    assert_eq!(status, 200);

    // The same request again: the same answer, nothing more deleted.
    let (status, again) = post_form(&fb, CALLBACK, body).await;
    assert_eq!((status, &again), (200, &answer));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(fb.webhook.of_type("connection.deleted").len(), 3);

    // The status page, for the person who asked, and after a restart.
    let fb = fb.restart().await;
    let page = open(&fb, &format!("/facebook/data-deletion/{code}"), true).await;
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    for shown in [
        code.as_str(),
        "Completed",
        "3 connections",
        "1 cached report",
        "1 export deleted",
    ] {
        assert!(html.contains(shown), "{shown} in {html}");
    }
    let external = user["external_id"].as_str().unwrap();
    assert!(!html.contains(external), "the page names no user");
    let status_path = format!("/facebook/data-deletion/{code}");
    let (status, view) = fb
        .call(reqwest::Method::GET, &status_path, None, None)
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        (
            &view["status"],
            &view["connections"],
            &view["cached_answers"],
            &view["exports"]
        ),
        (&json!("completed"), &json!(3), &json!(1), &json!(1)),
        "{view}"
    );
    for unknown in ["0123456789abcdef01234567", "not-a-code"] {
        let r = open(&fb, &format!("/facebook/data-deletion/{unknown}"), false).await;
        assert_eq!(r.status(), 404, "{unknown}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{body}");
    }
    let r = open(
        &fb,
        "/facebook/data-deletion/0123456789abcdef01234567",
        true,
    )
    .await;
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("No data deletion request"));

    let logs = crate::helpers::logs().contents();
    for id in &erased_ids {
        assert!(
            logs.lines()
                .any(|l| l.contains("facebook.data_deletion") && l.contains(id.as_str())),
            "audited: {id}"
        );
    }
    fb.stop().await;
}

#[tokio::test]
async fn a_request_for_a_user_with_nothing_stored_completes_and_deletes_nothing() {
    let fb = FbApp::start().await;
    let kept = fb.connect_user(1, None).await;
    let payload = json!({
        "algorithm": "HMAC-SHA256",
        "issued_at": chrono::Utc::now().timestamp(),
        "user_id": "999000111",
    });
    let body = format!("signed_request={}", signed_request(APP_SECRET, &payload));
    let (status, answer) = post_form(&fb, CALLBACK, body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(stored_ids(&fb).await, ids(&kept));
    let path = answer["url"]
        .as_str()
        .unwrap()
        .strip_prefix("http://localhost:8080")
        .unwrap()
        .to_string();
    let html = open(&fb, &path, true).await.text().await.unwrap();
    assert!(html.contains("0 connections"), "{html}");
    fb.stop().await;
}

#[tokio::test]
async fn the_simulator_sends_a_data_deletion_request_that_the_service_carries_out() {
    let fb = FbApp::start().await;
    let erased = fb.connect_user(1, None).await;
    let user = connection_of_kind(&erased, "user");
    let answer = fb
        .sim
        .control(
            "/_sim/callbacks/facebook",
            json!({"url": fb.url(CALLBACK), "user_id": user["external_id"]}),
        )
        .await;
    assert_eq!(answer["status"], 200, "{answer}");
    let code = answer["body"]["confirmation_code"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"));
    assert_eq!(code.len(), 24, "{answer}");
    assert!(
        stored_ids(&fb).await.is_empty(),
        "the user and its page are gone"
    );
    let bad = fb
        .sim
        .control(
            "/_sim/callbacks/facebook",
            json!({"url": fb.url(CALLBACK), "user_id": "1", "bad_signature": true}),
        )
        .await;
    assert_eq!(bad["status"], 400, "{bad}");
    fb.stop().await;
}
