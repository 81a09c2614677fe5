//! Every error a client can meet comes in the `{"error": …}` envelope:
//! wrong methods, bodies, URIs and headers over their limits, and 429s
//! whose message agrees with their `Retry-After`.

use serde_json::{Value, json};

use crate::fb_support::*;

async fn error_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let body: Value = r.json().await.expect("a JSON error body");
    (status, body)
}

#[tokio::test]
async fn wrong_methods_and_oversized_requests_answer_in_the_envelope() {
    let fb = FbApp::start().await;
    let client = &fb.app.client;

    let r = client
        .delete(fb.url("/tokens"))
        .header("x-api-key", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_error(status, &body, 405, "method_not_allowed");

    let huge = json!({ "access_token": "x".repeat(3 * 1024 * 1024) });
    let r = client
        .post(fb.url("/facebook/auth/exchange"))
        .header("x-api-key", ADMIN_KEY)
        .json(&huge)
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_error(status, &body, 413, "payload_too_large");

    let r = client
        .get(fb.url(&format!("/tokens?team_id={}", "a".repeat(10_000))))
        .header("x-api-key", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_error(status, &body, 414, "uri_too_long");

    let r = client
        .get(fb.url("/tokens"))
        .header("x-api-key", ADMIN_KEY)
        .header("x-padding", "p".repeat(40_000))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_error(status, &body, 431, "headers_too_large");
    fb.stop().await;
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let fb = FbApp::start().await;
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let r = fb
            .app
            .client
            .get(fb.url("/tokens"))
            .header("authorization", format!("{scheme} {READER_KEY}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{scheme}");
    }
    fb.stop().await;
}

#[tokio::test]
async fn a_429_says_the_same_wait_as_its_retry_after_header() {
    let fb = FbApp::with_rate_limit(1, 1).await;
    let mut seen = None;
    for _ in 0..3 {
        let r = fb
            .app
            .client
            .get(fb.url("/tokens"))
            .header("x-api-key", READER_KEY)
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            let header = r.headers()["retry-after"].to_str().unwrap().to_string();
            let body: Value = r.json().await.unwrap();
            seen = Some((
                header,
                body["error"]["message"].as_str().unwrap().to_string(),
            ));
        }
    }
    let (header, message) = seen.expect("a 429");
    assert!(
        message.contains(&format!("retry after {header} s")),
        "{message} vs Retry-After {header}"
    );
    fb.stop().await;
}
