//! Graph throttling is scoped the way Meta scopes it, a request never waits
//! longer than `refresh.max_retry_wait_secs` inline, and paging keeps
//! `appsecret_proof` when the app requires it.

use std::time::Duration;

use serde_json::{Value, json};

use crate::fb_support::*;

/// Generous: a call that waited for another scope's pause (10 minutes)
/// would blow it, a call that did not wait is far inside it.
const DEADLINE: Duration = Duration::from_secs(20);

fn window() -> String {
    let today = chrono::Utc::now().date_naive();
    format!(
        "start_date={}&end_date={today}",
        today - chrono::Duration::days(30)
    )
}

/// A GET within the deadline: status, `Retry-After` and body.
async fn get(fb: &FbApp, path: &str, key: &str) -> (u16, Option<u64>, Value) {
    let request = fb
        .app
        .client
        .get(fb.url(path))
        .header("X-API-Key", key)
        .send();
    let r = tokio::time::timeout(DEADLINE, request)
        .await
        .unwrap_or_else(|_| panic!("GET {path} waited past the deadline"))
        .unwrap();
    let status = r.status().as_u16();
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (status, retry_after, r.json().await.unwrap())
}

fn pages_of(answer: &Value) -> Vec<(String, String)> {
    connections(answer)
        .filter(|c| c["kind"] == "page")
        .map(|c| {
            (
                c["external_id"].as_str().unwrap().to_string(),
                c["id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_throttled_page_holds_up_its_own_calls_only_and_answers_503_with_retry_after() {
    let fb = FbApp::start().await;
    let pages = pages_of(&fb.connect_user(2, None).await);
    let ((a, _), (b, b_connection)) = (&pages[0], &pages[1]);
    for page in [a, b] {
        fb.sim.seed_content(&page, "posts", 3).await;
    }
    // Page A is out of its Pages budget for 10 minutes, far beyond the
    // 2 s the test configuration lets a request wait.
    fb.sim
        .control(
            "/_sim/usage",
            json!({ "scope": "business", "id": a, "type": "pages", "pct": 100,
                    "estimated_time_to_regain_access": 10 }),
        )
        .await;
    let metrics = |page: &str| {
        format!(
            "/facebook/post_metrics?page_id={page}&metrics=post_clicks&refresh=true&{}",
            window()
        )
    };

    let (status, retry_after, body) = get(&fb, &metrics(a), ANALYST_KEY).await;
    assert_error(status, &body, 503, "upstream_rate_limited");
    let retry_after = retry_after.expect("a Retry-After header");
    assert!((590..=600).contains(&retry_after), "{retry_after}");

    // Asked again, the service answers from what it knows: no call is made.
    let listed = fb.sim.count("/{id}/published_posts").await;
    let (status, retry_after, body) = get(&fb, &metrics(a), ANALYST_KEY).await;
    assert_eq!(status, 503, "{body}");
    assert!(retry_after.is_some_and(|s| (500..=600).contains(&s)));
    assert_eq!(fb.sim.count("/{id}/published_posts").await, listed);

    // Page B's calls go through at once.
    let (status, _, body) = get(&fb, &metrics(b), ANALYST_KEY).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 3);
    let (status, _, body) = get(
        &fb,
        &format!("/facebook/debug_token?connection_id={b_connection}"),
        READER_KEY,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["is_valid"], true, "{body}");
    fb.stop().await;
}

#[tokio::test]
async fn a_force_refresh_throttled_beyond_max_retry_wait_answers_503_with_retry_after() {
    let fb = FbApp::start().await;
    let answer = fb.connect_user(1, None).await;
    let id = connection_id(&answer, "user");
    fb.sim
        .fault(json!({ "path": "/oauth/access_token",
            "error": { "code": 80004, "subcode": 2446079 },
            "estimated_time_to_regain_access": 3, "count": 10 }))
        .await;
    let request = fb
        .app
        .client
        .post(fb.url(&format!("/facebook/tokens/{id}/force-refresh")))
        .header("X-API-Key", ADMIN_KEY)
        .json(&json!({}))
        .send();
    let r = tokio::time::timeout(DEADLINE, request)
        .await
        .expect("the request does not wait out the 3 minutes")
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((170..=180).contains(&retry_after), "{retry_after}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_rate_limited");
    // One attempt: the platform's wait alone is beyond the bound.
    assert_eq!(
        fb.sim.count("/oauth/access_token:fb_exchange_token").await,
        2,
        "the connect's exchange and one refresh attempt"
    );
    fb.stop().await;
}

#[tokio::test]
async fn paging_works_when_the_app_requires_appsecret_proof() {
    let fb = FbApp::start_with(FbOptions {
        sim: tokenkeeper::simulator::SimConfig {
            fb_app_id: APP_ID.into(),
            fb_app_secret: APP_SECRET.into(),
            require_appsecret_proof: true,
            ..tokenkeeper::simulator::SimConfig::default()
        },
        ..FbOptions::default()
    })
    .await;
    // More pages than one page of /me/accounts (facebook.page_limit = 25).
    let answer = fb.connect_user(30, None).await;
    assert_eq!(pages_of(&answer).len(), 30, "{answer}");
    assert!(fb.sim.count("/me/accounts").await >= 2);
    let (status, _, body) = get(&fb, "/facebook/tokens", READER_KEY).await;
    assert_eq!(status, 200, "{body}");

    // Posts and reels page by 100.
    let (page, _) = &pages_of(&answer)[0];
    fb.sim.seed_content(&page, "posts", 120).await;
    fb.sim.seed_content(&page, "reels", 120).await;
    for (kind, metric) in [("post", "post_clicks"), ("reel", "blue_reels_play_count")] {
        let path = format!(
            "/facebook/{kind}_metrics?page_id={page}&metrics={metric}&{}",
            window()
        );
        let (status, _, body) = get(&fb, &path, ANALYST_KEY).await;
        assert_eq!(status, 200, "{kind}: {body}");
        assert_eq!(body["data"].as_array().unwrap().len(), 120, "{kind}");
    }
    assert!(fb.sim.count("/{id}/published_posts").await >= 2);
    assert!(fb.sim.count("/{id}/video_reels").await >= 2);
    fb.stop().await;
}
