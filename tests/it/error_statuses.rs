//! Upstream failures answer by whose mistake they are (docs/api.md,
//! "Upstream errors"): a caller's wrong id, missing permission or bad code is
//! 4xx; 502 only when the platform fails.

use serde_json::{Value, json};
use tokenkeeper::simulator::DEMO_CUSTOMER_ID;

use crate::fb_support::*;

/// An analyst's campaign metrics of ad account `act_111`.
async fn act_111_metrics(fb: &FbApp) -> (u16, Value) {
    let request = json!({ "ad_account_id": "act_111",
            "date_range": { "start_date": "2026-06-01", "end_date": "2026-06-10" },
            "metrics": ["impressions", "clicks"], "level": "campaign" });
    fb.post("/facebook/campaign_metrics", ANALYST_KEY, request)
        .await
}

/// A connected user who can see ad account `act_111` (with no campaigns).
async fn user_with_account(fb: &FbApp) {
    let answer = fb.connect_user(0, None).await;
    let user = connection_of_kind(&answer, "user")["external_id"]
        .as_str()
        .unwrap()
        .to_string();
    fb.sim
        .control(
            "/_sim/ad_accounts",
            json!({ "id": "111", "user_ids": [user], "campaigns": [] }),
        )
        .await;
}

/// The `state` of a fresh authorization URL of `provider`.
async fn state_for(fb: &FbApp, provider: &str) -> String {
    let body = fb.get_ok(&format!("/{provider}/auth/url"), ADMIN_KEY).await;
    body["state"].as_str().unwrap().to_string()
}

async fn callback(fb: &FbApp, provider: &str, code: &str) -> (u16, Value) {
    let state = state_for(fb, provider).await;
    fb.call(
        reqwest::Method::GET,
        &format!("/{provider}/auth/callback?state={state}&code={code}"),
        None,
        None,
    )
    .await
}

#[tokio::test]
async fn an_ad_account_the_platform_does_not_know_is_404_with_its_words() {
    let fb = FbApp::start().await;
    fb.connect_user(0, None).await;
    let (status, body) = act_111_metrics(&fb).await;
    assert_error(status, &body, 404, "not_found");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("does not exist"), "{message}");
    assert!(message.contains("100/33"), "{message}");
    fb.stop().await;
}

#[tokio::test]
async fn a_graph_permission_error_is_403_naming_it_and_a_platform_that_keeps_failing_is_502() {
    // (the Graph error of act_111's reads, status, code, a word the message names)
    let cases = [
        (
            json!({ "http_status": 403, "code": 200,
                    "message": "(#200) Requires ads_read permission to manage the object" }),
            403,
            "permission_missing",
            Some("ads_read"),
        ),
        (
            json!({ "http_status": 500, "code": 2, "message": "Service temporarily unavailable" }),
            502,
            "upstream_error",
            None,
        ),
    ];
    for (error, expected, code, word) in cases {
        let fb = FbApp::start().await;
        user_with_account(&fb).await;
        fb.sim
            .fault(json!({ "path": "/act_111", "error": error }))
            .await;
        let (status, body) = act_111_metrics(&fb).await;
        assert_error(status, &body, expected, code);
        if let Some(word) = word {
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains(word), "{body}");
        }
        fb.stop().await;
    }
}

#[tokio::test]
async fn a_google_customer_the_login_cannot_reach_is_403_permission_missing() {
    let fb = FbApp::start().await;
    fb.connect_demo_google().await;
    let (status, body) = fb
        .get("/google/campaigns?customer_id=9999999999", ADMIN_KEY)
        .await;
    assert_error(status, &body, 403, "permission_missing");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("USER_PERMISSION_DENIED"),
        "{body}"
    );
    fb.stop().await;
}

#[tokio::test]
async fn a_google_not_found_is_404() {
    let fb = FbApp::start().await;
    fb.connect_demo_google().await;
    fb.sim
        .fault(
            json!({ "path": "googleAds:searchStream", "error": { "http_status": 404, "code": 5,
            "error_code": { "requestError": "RESOURCE_NOT_FOUND" } } }),
        )
        .await;
    let (status, body) = fb
        .get(
            &format!("/google/campaigns?customer_id={DEMO_CUSTOMER_ID}"),
            ADMIN_KEY,
        )
        .await;
    assert_error(status, &body, 404, "not_found");
    fb.stop().await;
}

#[tokio::test]
async fn a_malformed_code_is_422_naming_code_for_every_provider() {
    let fb = FbApp::start().await;
    for provider in ["facebook", "tiktok", "google"] {
        let (status, body) = callback(&fb, provider, "not-a-real-code").await;
        assert_eq!(status, 422, "{provider}: {body}");
        assert_eq!(body["error"]["code"], "validation_failed", "{provider}");
        assert_eq!(body["error"]["field"], "code", "{provider}");
    }
    fb.stop().await;
}

#[tokio::test]
async fn a_junk_token_handed_in_is_422_naming_access_token() {
    let fb = FbApp::start().await;
    let junk = "EAA-junk-token-that-the-simulator-never-issued-0123";
    for path in ["/facebook/auth/exchange", "/facebook/business-tokens"] {
        let (status, body) = fb
            .post(path, ADMIN_KEY, json!({ "access_token": junk }))
            .await;
        assert_eq!(status, 422, "{path}: {body}");
        assert_eq!(body["error"]["field"], "access_token", "{path}");
        assert!(
            !body.to_string().contains(junk),
            "{path}: the token is not echoed"
        );
    }
    fb.stop().await;
}

#[tokio::test]
async fn a_stored_connection_whose_token_fails_stays_409_reauth_required() {
    let fb = FbApp::start().await;
    let answer = fb.connect_user(0, None).await;
    let id = connection_id(&answer, "user");
    fb.sim
        .fault(
            json!({ "path": "/oauth/access_token", "error": { "code": 190, "subcode": 460,
            "message": "password changed" } }),
        )
        .await;
    let (status, body) = fb.force_refresh(&id).await;
    assert_error(status, &body, 409, "reauth_required");
    fb.stop().await;
}

#[tokio::test]
async fn a_bad_tiktok_auth_code_in_a_body_is_422_naming_auth_code() {
    let fb = FbApp::start().await;
    let (status, body) = fb
        .post(
            "/tiktok/integrations",
            ADMIN_KEY,
            json!({ "auth_code": "not-a-real-code" }),
        )
        .await;
    assert_field_error(status, &body, 422, "auth_code");
    fb.stop().await;
}
