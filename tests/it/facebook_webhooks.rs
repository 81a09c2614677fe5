//! Meta's Deauthorize callback as Meta sends it: a form with a
//! `signed_request` signed here by hand (HMAC-SHA256 with the app secret,
//! wire-spec 11.1), not by the service's own code.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::fb_support::{APP_SECRET, FbApp, READER_KEY, connection_of_kind, eventually};

pub(crate) fn signed_request(secret: &str, payload: &Value) -> String {
    let payload = URL_SAFE_NO_PAD.encode(payload.to_string());
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(payload.as_bytes());
    format!(
        "{}.{payload}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// Posts `body` as a form to the callback, with no API key.
async fn deauthorize(fb: &FbApp, body: String) -> (u16, Value) {
    post_form(fb, "/facebook/webhooks/deauthorize", body).await
}

/// Posts `body` as a form to `path`, with no API key, as Meta does.
pub(crate) async fn post_form(fb: &FbApp, path: &str, body: String) -> (u16, Value) {
    let response = fb
        .app
        .client
        .post(fb.app.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Health by connection id, from `GET /tokens`.
async fn health(fb: &FbApp) -> std::collections::HashMap<String, String> {
    let (_, list) = fb.get("/tokens?provider=facebook", READER_KEY).await;
    list["connections"]
        .as_array()
        .unwrap_or_else(|| panic!("{list}"))
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["health"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_deauthorize_callback_flags_the_user_and_its_pages_at_once_and_only_once() {
    let fb = FbApp::start().await;
    let removed = fb.connect_user(2, None).await;
    let kept = fb.connect_user(1, None).await;
    let user = connection_of_kind(&removed, "user");
    let now = chrono::Utc::now().timestamp();
    let payload = json!({
        "algorithm": "HMAC-SHA256",
        "issued_at": now,
        "user_id": user["external_id"],
    });
    let before = health(&fb).await;

    // A bad signature, a missing field, a stale request: 400, nothing changes.
    for (body, why) in [
        (
            format!(
                "signed_request={}",
                signed_request("not-the-app-secret", &payload)
            ),
            "signature",
        ),
        ("other=1".to_string(), "missing"),
        (
            format!(
                "signed_request={}",
                signed_request(
                    APP_SECRET,
                    &json!({"algorithm": "HMAC-SHA256", "issued_at": now - 7200, "user_id": user["external_id"]})
                )
            ),
            "issued at",
        ),
    ] {
        let (status, answer) = deauthorize(&fb, body).await;
        assert_eq!(status, 400, "{why}: {answer}");
        assert_eq!(answer["error"]["field"], "signed_request", "{answer}");
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(why),
            "{why}: {answer}"
        );
    }
    assert_eq!(
        health(&fb).await,
        before,
        "a refused callback changes nothing"
    );

    let body = format!("signed_request={}", signed_request(APP_SECRET, &payload));
    let (status, answer) = deauthorize(&fb, body.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["flagged"], 3, "the user and its two pages: {answer}");
    let after = health(&fb).await;
    let removed_ids: Vec<String> = removed["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    for (id, h) in &after {
        let expected = if removed_ids.contains(id) {
            "reauth_required"
        } else {
            "healthy"
        };
        assert_eq!(h, expected, "{id} in {after:?}; kept: {kept}");
    }
    let events = eventually("three reauth events", || {
        let events = fb.webhook.of_type("connection.reauth_required");
        (events.len() == 3).then_some(events)
    })
    .await;
    for e in &events {
        let id = e["data"]["connection"]["id"].as_str().unwrap().to_string();
        assert!(removed_ids.contains(&id), "{e}");
    }

    // The same callback again changes nothing and notifies nobody.
    let replay = body.clone();
    let (status, answer) = deauthorize(&fb, body).await;
    assert_eq!(
        (status, answer["flagged"].clone()),
        (200, json!(0)),
        "{answer}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(fb.webhook.of_type("connection.reauth_required").len(), 3);

    // The user connects again (in a later second than the removal); the old
    // callback replayed then flags nothing.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let token = fb
        .sim
        .login(user["external_id"].as_str().unwrap(), false)
        .await;
    fb.post_ok(
        "/facebook/auth/exchange",
        crate::fb_support::ADMIN_KEY,
        json!({ "access_token": token }),
    )
    .await;
    let (status, answer) = deauthorize(&fb, replay).await;
    assert_eq!(
        (status, answer["flagged"].clone()),
        (200, json!(0)),
        "{answer}"
    );
    assert!(
        health(&fb).await.values().all(|h| h == "healthy"),
        "a replay older than the reconnection flags nothing"
    );

    let logs = crate::helpers::logs().contents();
    for id in &removed_ids {
        assert!(
            logs.lines()
                .any(|l| l.contains("facebook.deauthorize") && l.contains(id.as_str())),
            "audited: {id}"
        );
    }
    fb.stop().await;
}
