//! The simulator's platform pushes (`/_sim/callbacks/...`), received by a
//! plain HTTP server and checked here against the platforms' formats with
//! signatures computed by hand.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::fb_support::{WebhookReceiver, eventually};
use crate::sim_support::Sim;

fn hmac(key: &str, message: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// The form's one field, `signed_request`, as signature and payload. Both
/// are base64url, which a form does not escape.
fn signed_request(form: &str) -> (&str, &str) {
    let value = form
        .strip_prefix("signed_request=")
        .unwrap_or_else(|| panic!("{form}"));
    assert!(
        value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
        "one field, unescaped: {form}"
    );
    value.split_once('.').unwrap()
}

/// The `n`th delivery the receiver got, once it is there.
async fn delivery(receiver: &WebhookReceiver, n: usize) -> crate::fb_support::Delivery {
    eventually("the push", || receiver.events().get(n).cloned()).await
}

#[tokio::test]
async fn a_tiktok_push_is_the_documented_envelope_signed_with_app_key_and_body() {
    let sim = Sim::start().await;
    let receiver = WebhookReceiver::start().await;
    let shop = sim
        .control("/_sim/tiktok/shops", json!({"seller_name": "Pushed"}))
        .await;
    let answer = sim
        .control(
            "/_sim/callbacks/tiktok",
            json!({"url": receiver.url, "type": 7, "open_id": shop["open_id"],
                   "timestamp": 1_644_412_885, "expires_in_days": 5}),
        )
        .await;
    assert_eq!(answer["status"], 200, "{answer}");
    assert_eq!(answer["body"], "ok", "the target's answer: {answer}");

    let got = delivery(&receiver, 0).await;
    let c = &sim.config;
    let expected = hex::encode(hmac(
        &c.tiktok_app_secret,
        &format!("{}{}", c.tiktok_app_key, got.body),
    ));
    assert_eq!(got.headers["authorization"], expected.as_str());
    assert_eq!(got.headers["content-type"], "application/json");
    let body = got.json();
    assert_eq!(body, answer["sent"], "the answer shows what was sent");
    assert_eq!(body["type"], 7);
    assert_eq!(body["shop_id"], shop["shop_id"]);
    assert_eq!(body["timestamp"], 1_644_412_885);
    assert!(body["tts_notification_id"].is_string(), "{body}");
    assert_eq!(
        body["data"]["expiration_time"],
        (1_644_412_885 + 5 * 86_400).to_string(),
        "a string, as in TikTok's example"
    );
    assert!(
        body["data"]["message"]
            .as_str()
            .unwrap()
            .contains("expiring in 5 days"),
        "{body}"
    );

    // A deauthorization by shop id, badly signed on request.
    sim.control(
        "/_sim/callbacks/tiktok",
        json!({"url": receiver.url, "type": 6, "shop_id": "7494049642642441621", "bad_signature": true}),
    )
    .await;
    let got = delivery(&receiver, 1).await;
    let good = hex::encode(hmac(
        &c.tiktok_app_secret,
        &format!("{}{}", c.tiktok_app_key, got.body),
    ));
    assert_ne!(got.headers["authorization"], good.as_str());
    let body = got.json();
    assert_eq!(
        (&body["type"], &body["shop_id"]),
        (&json!(6), &json!("7494049642642441621"))
    );
    assert!(
        body["data"]["message"]
            .as_str()
            .unwrap()
            .contains("deauthorized")
    );
}

#[tokio::test]
async fn a_facebook_signed_request_is_signed_with_the_app_secret() {
    let sim = Sim::start().await;
    let receiver = WebhookReceiver::start().await;
    let answer = sim
        .control(
            "/_sim/callbacks/facebook",
            json!({"url": receiver.url, "user_id": "218471", "issued_at": 1_291_836_800}),
        )
        .await;
    assert_eq!(answer["status"], 200, "{answer}");
    let got = delivery(&receiver, 0).await;
    assert_eq!(
        got.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    let (sig, payload) = signed_request(&got.body);
    let expected = URL_SAFE_NO_PAD.encode(hmac(&sim.config.fb_app_secret, payload));
    assert_eq!(sig, expected);
    let payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(payload["algorithm"], "HMAC-SHA256");
    assert_eq!(payload["user_id"], "218471");
    assert_eq!(payload["issued_at"], 1_291_836_800);

    sim.control(
        "/_sim/callbacks/facebook",
        json!({"url": receiver.url, "user_id": "218471", "bad_signature": true}),
    )
    .await;
    let got = delivery(&receiver, 1).await;
    let (sig, payload) = signed_request(&got.body);
    assert_ne!(
        sig,
        URL_SAFE_NO_PAD.encode(hmac(&sim.config.fb_app_secret, payload))
    );
}

#[tokio::test]
async fn a_push_without_a_shop_or_to_nowhere_is_refused() {
    let sim = Sim::start().await;
    // A port that was free a moment ago: nothing answers there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let nowhere = format!("http://{closed}/x");
    for (body, status) in [
        (
            json!({"url": "http://127.0.0.1:9/x", "type": 6}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"url": "http://127.0.0.1:9/x", "type": 6, "open_id": "nobody"}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"url": "ftp://127.0.0.1/x", "type": 6, "shop_id": "1"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"url": nowhere, "type": 6, "shop_id": "1"}),
            StatusCode::BAD_GATEWAY,
        ),
    ] {
        let r = sim.post_json("/_sim/callbacks/tiktok", &body).await;
        assert_eq!(r.status(), status, "{body}");
        let answer: Value = r.json().await.unwrap();
        assert!(answer["error"]["message"].is_string(), "{answer}");
    }
}
