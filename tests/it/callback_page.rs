//! The OAuth callbacks end on a page a person can read when a browser lands
//! there, and keep their JSON for every other client.

use serde_json::{Value, json};
use tokenkeeper::simulator::DEMO_CUSTOMER_ID;

use crate::fb_support::*;

const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// Follows `auth_url_path`'s consent page back to `callback_path`, calling
/// the callback with `accept` (none: reqwest's default).
async fn land_on_callback(
    fb: &FbApp,
    auth_url_path: &str,
    callback_path: &str,
    accept: Option<&str>,
) -> Answer {
    let query = fb.consent_query(auth_url_path).await;
    call(fb, &format!("{callback_path}?{query}"), accept).await
}

/// A browser's landing on the callback: a 200 HTML page that links to the
/// dashboard.
async fn landed_page(fb: &FbApp, auth_url_path: &str, callback_path: &str) -> Answer {
    let page = land_on_callback(fb, auth_url_path, callback_path, Some(BROWSER_ACCEPT)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.content_type.starts_with("text/html"),
        "{}",
        page.content_type
    );
    assert!(page.body.contains("href=\"/dashboard\""), "{}", page.body);
    page
}

async fn call(fb: &FbApp, path_and_query: &str, accept: Option<&str>) -> Answer {
    let mut req = fb.app.client.get(fb.url(path_and_query));
    if let Some(accept) = accept {
        req = req.header("Accept", accept);
    }
    let r = req.send().await.unwrap();
    Answer {
        status: r.status().as_u16(),
        content_type: r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default(),
        body: r.text().await.unwrap(),
    }
}

/// A dialog user with two named pages.
async fn dialog_user_with_pages(fb: &FbApp) {
    let user = fb.sim.create_user(json!({ "name": "Ada Lovelace", "pages": [{ "name": "Café <Nord>" }, { "name": "Bakery South" }] })).await;
    fb.sim
        .control("/_sim/dialog_user", json!({ "user_id": user["id"] }))
        .await;
}

#[tokio::test]
async fn a_browser_landing_on_the_facebook_callback_sees_the_connected_pages_and_a_dashboard_link()
{
    let fb = FbApp::start().await;
    dialog_user_with_pages(&fb).await;
    let page = landed_page(&fb, "/facebook/auth/url", "/facebook/auth/callback").await;
    assert!(page.body.contains("Connected to Facebook"), "{}", page.body);
    assert!(page.body.contains("Ada Lovelace"), "{}", page.body);
    assert!(
        page.body.contains("Café &lt;Nord&gt;"),
        "names are escaped: {}",
        page.body
    );
    assert!(page.body.contains("Bakery South"), "{}", page.body);
    assert!(!page.body.contains("EAAB"), "no token in the page");
    assert!(!page.body.contains("access_token"), "no token in the page");
    fb.stop().await;
}

#[tokio::test]
async fn a_browser_with_a_bad_state_sees_the_error_in_words_with_a_4xx() {
    let fb = FbApp::start().await;
    for callback in [
        "/facebook/auth/callback",
        "/tiktok/auth/callback",
        "/google/auth/callback",
    ] {
        let page = call(
            &fb,
            &format!("{callback}?state=forged.state&code=abc"),
            Some(BROWSER_ACCEPT),
        )
        .await;
        assert_eq!(page.status, 400, "{callback}: {}", page.body);
        assert!(page.content_type.starts_with("text/html"), "{callback}");
        assert!(
            page.body.contains("the OAuth state"),
            "{callback}: {}",
            page.body
        );
        assert!(
            page.body.contains("was not connected"),
            "{callback}: {}",
            page.body
        );
        assert!(page.body.contains("href=\"/dashboard\""), "{callback}");
    }
    fb.stop().await;
}

#[tokio::test]
async fn a_browser_sees_the_connected_tiktok_shop_and_google_customer() {
    let fb = FbApp::start().await;
    fb.sim.dialog_shop("Lantern & Co").await;
    let page = landed_page(&fb, "/tiktok/auth/url", "/tiktok/auth/callback").await;
    assert!(page.body.contains("Lantern &amp; Co"), "{}", page.body);

    let google = format!("/google/auth/url?customer_id={DEMO_CUSTOMER_ID}");
    let page = landed_page(&fb, &google, "/google/auth/callback").await;
    assert!(page.body.contains(DEMO_CUSTOMER_ID), "{}", page.body);
    fb.stop().await;
}

#[tokio::test]
async fn a_client_that_does_not_ask_for_html_keeps_the_json() {
    let fb = FbApp::start().await;
    dialog_user_with_pages(&fb).await;
    for accept in [None, Some("application/json"), Some("*/*")] {
        let answer =
            land_on_callback(&fb, "/facebook/auth/url", "/facebook/auth/callback", accept).await;
        assert_eq!(answer.status, 200, "{accept:?}: {}", answer.body);
        assert!(
            answer.content_type.starts_with("application/json"),
            "{accept:?}"
        );
        assert_eq!(answer.json()["connected"], 3, "{accept:?}");
    }
    let answer = call(
        &fb,
        "/facebook/auth/callback?state=forged.state&code=abc",
        Some("application/json"),
    )
    .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"]["field"], "state");
    fb.stop().await;
}
