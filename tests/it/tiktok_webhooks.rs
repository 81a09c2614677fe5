//! TikTok Shop's webhook pushes as TikTok sends them: the documented JSON
//! envelope, signed here by hand (hex HMAC-SHA256 keyed by the app secret
//! of the app key followed by the raw body, in `Authorization`), not by the
//! service's own code.

use std::collections::HashMap;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::fb_support::{FbApp, READER_KEY, eventually};
use crate::helpers::TestApp;

/// The documented formula, computed independently of the service.
fn signature(app_key: &str, app_secret: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes()).unwrap();
    mac.update(app_key.as_bytes());
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The body signed with the simulator's (and so the service's) app.
fn signed(fb: &FbApp, body: &str) -> String {
    let c = &fb.sim.config;
    signature(&c.tiktok_app_key, &c.tiktok_app_secret, body)
}

/// POSTs `body` to the webhook with `authorization` (none: no header).
async fn push(app: &TestApp, body: &str, authorization: Option<&str>) -> (u16, Value) {
    let mut request = app
        .client
        .post(app.url("/tiktok/webhooks"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(a) = authorization {
        request = request.header("authorization", a);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// POSTs `body` signed as TikTok signs it.
async fn push_signed(fb: &FbApp, body: &str) -> (u16, Value) {
    push(&fb.app, body, Some(&signed(fb, body))).await
}

/// Pushes `body` signed and expects 200 with `changed` connections.
async fn expect_changed(fb: &FbApp, body: &str, changed: u64, why: &str) {
    let (status, answer) = push_signed(fb, body).await;
    assert_eq!(
        (status, answer["changed"].clone()),
        (200, json!(changed)),
        "{why}: {answer}"
    );
}

/// The envelope of Partner Center's examples, for `shop_id`, sent now.
fn envelope(fb: &FbApp, kind: i64, shop_id: &Value, data: Value) -> String {
    json!({
        "type": kind,
        "tts_notification_id": "7327112393057371910",
        "shop_id": shop_id,
        "timestamp": fb.clock_now().timestamp(),
        "data": data,
    })
    .to_string()
}

fn deauthorization(fb: &FbApp, shop_id: &Value) -> String {
    let message = "Shop_id {xxx} is deauthorized from your APP by merchant.";
    envelope(fb, 6, shop_id, json!({ "message": message }))
}

fn expiration(fb: &FbApp, shop_id: &Value, at: i64) -> String {
    let message = "Authorization of shop_id {xxx} is expiring in {x} days. Please direct the merchant to re-authorize.";
    let data = json!({ "message": message, "expiration_time": at.to_string() });
    envelope(fb, 7, shop_id, data)
}

/// A new simulator shop connected through the consent flow: the shop as
/// the simulator made it (with its `shop_id`) and the integration.
async fn connect(fb: &FbApp, name: &str) -> (Value, Value) {
    let shop = fb.sim.dialog_shop(name).await;
    let answer = fb
        .follow_consent("/tiktok/auth/url?team_id=team-a", "/tiktok/auth/callback")
        .await;
    let integration = answer["integration"].clone();
    assert_eq!(integration["external_id"], shop["open_id"], "{answer}");
    (shop, integration)
}

/// TikTok connections' facts by id, from `GET /tokens`.
async fn facts(fb: &FbApp) -> HashMap<String, Value> {
    let (_, list) = fb.get("/tokens?provider=tiktok_shop", READER_KEY).await;
    list["connections"]
        .as_array()
        .unwrap_or_else(|| panic!("{list}"))
        .iter()
        .map(|c| (c["id"].as_str().unwrap().to_string(), c.clone()))
        .collect()
}

fn id(integration: &Value) -> String {
    integration["id"].as_str().unwrap().to_string()
}

/// Audit lines of `action` naming `connection`.
fn audited(action: &str, connection: &str) -> usize {
    crate::helpers::logs()
        .contents()
        .lines()
        .filter(|l| l.contains(action) && l.contains(connection))
        .count()
}

#[tokio::test]
async fn a_signed_seller_deauthorization_flags_only_that_shops_connection_and_notifies_once() {
    let fb = FbApp::start().await;
    let (shop, removed) = connect(&fb, "Deauthorized Shop").await;
    let (other_shop, kept) = connect(&fb, "Kept Shop").await;
    let (removed, kept) = (id(&removed), id(&kept));
    let body = deauthorization(&fb, &shop["shop_id"]);
    let before = facts(&fb).await;

    // A wrong secret, a signature of another body, no header: 400 naming
    // the header, and nothing changes.
    let c = &fb.sim.config;
    let wrong = signature(&c.tiktok_app_key, "not-the-app-secret", &body);
    let other_body = signed(&fb, &deauthorization(&fb, &other_shop["shop_id"]));
    for (authorization, why) in [
        (Some(wrong.as_str()), "signature"),
        (Some(other_body.as_str()), "signature"),
        (Some("not hex"), "signature"),
        (None, "missing"),
    ] {
        let (status, answer) = push(&fb.app, &body, authorization).await;
        assert_eq!(status, 400, "{why}: {answer}");
        assert_eq!(answer["error"]["field"], "Authorization", "{answer}");
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(why),
            "{why}: {answer}"
        );
    }
    assert_eq!(facts(&fb).await, before, "a refused push changes nothing");

    let good = signed(&fb, &body);
    let (status, answer) = push(&fb.app, &body, Some(&good)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"type": 6, "event": "seller_deauthorization", "shop_id": shop["shop_id"], "changed": 1})
    );
    let after = facts(&fb).await;
    assert_eq!(after[&removed]["health"], "reauth_required", "{after:?}");
    assert_eq!(after[&removed]["last_error"]["class"], "reauth_required");
    assert_eq!(after[&kept]["health"], "healthy", "the other shop stays");
    let events = eventually("the reauth event", || {
        let events = fb.webhook.of_type("connection.reauth_required");
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["data"]["connection"]["id"], removed.as_str());

    // The same push again changes nothing: not even the record's version.
    let (status, answer) = push(&fb.app, &body, Some(&good)).await;
    assert_eq!((status, answer["changed"].clone()), (200, json!(0)));
    assert_eq!(facts(&fb).await, after);
    // A later change of the other shop is notified; the replay never was.
    let lapse = fb.clock_now().timestamp() + 3 * 86_400;
    let marker = expiration(&fb, &other_shop["shop_id"], lapse);
    let (status, _) = push_signed(&fb, &marker).await;
    assert_eq!(status, 200);
    eventually("the other shop's warning", || {
        (fb.webhook.of_type("connection.expiring").len() == 1).then_some(())
    })
    .await;
    assert_eq!(fb.webhook.of_type("connection.reauth_required").len(), 1);

    assert_eq!(audited("tiktok.deauthorize", &removed), 1, "audited once");
    assert_eq!(audited("tiktok.deauthorize", &kept), 0);
    fb.stop().await;
}

#[tokio::test]
async fn a_deauthorization_older_than_a_reconnection_changes_nothing() {
    let fb = FbApp::start().await;
    let (shop, integration) = connect(&fb, "Comes Back Shop").await;
    let body = deauthorization(&fb, &shop["shop_id"]);
    // TikTok's push is delayed; meanwhile the seller authorizes again.
    fb.advance_secs(5).await;
    fb.sim
        .control(
            "/_sim/tiktok/dialog_shop",
            json!({ "open_id": shop["open_id"] }),
        )
        .await;
    fb.follow_consent("/tiktok/auth/url?team_id=team-a", "/tiktok/auth/callback")
        .await;
    expect_changed(&fb, &body, 0, "a push older than the reconnection").await;
    assert_eq!(facts(&fb).await[&id(&integration)]["health"], "healthy");
    // One sent after the reconnection does flag it.
    let later = deauthorization(&fb, &shop["shop_id"]);
    expect_changed(&fb, &later, 1, "a push after the reconnection").await;
    fb.stop().await;
}

#[tokio::test]
async fn an_integration_whose_shops_were_not_listed_at_connect_learns_them_at_its_next_check() {
    let fb = FbApp::start().await;
    // The shop listing fails once, right after the code was exchanged.
    fb.sim
        .fault(json!({"path": "/api/v2/shop/get_authorized_shop", "error": {"code": 105001}, "count": 1}))
        .await;
    let (shop, integration) = connect(&fb, "Listed Later Shop").await;
    assert_eq!(integration["health"], "healthy", "the connect itself works");
    let body = deauthorization(&fb, &shop["shop_id"]);
    expect_changed(&fb, &body, 0, "no stored connection holds the shop yet").await;
    let run = fb.sweep("/tiktok/internal/scheduled-refresh").await;
    assert_eq!(run["run"]["counts"]["checked"], 1, "{run}");
    // Sent after the check (a push older than it would be passed over).
    let body = deauthorization(&fb, &shop["shop_id"]);
    expect_changed(&fb, &body, 1, "the shop learned at the check").await;
    fb.stop().await;
}

#[tokio::test]
async fn an_upcoming_authorization_expiration_raises_one_warning_stage() {
    let fb = FbApp::start().await;
    let (shop, integration) = connect(&fb, "Expiring Shop").await;
    let conn = id(&integration);
    let lapse = fb.clock_now().timestamp() + 5 * 86_400;
    let body = expiration(&fb, &shop["shop_id"], lapse);

    let (status, answer) = push_signed(&fb, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"type": 7, "event": "upcoming_authorization_expiration", "shop_id": shop["shop_id"], "changed": 1})
    );
    let after = facts(&fb).await;
    let lapses_at = chrono::DateTime::from_timestamp(lapse, 0).unwrap();
    assert_eq!(after[&conn]["health"], "expiring_soon", "{after:?}");
    assert_eq!(
        after[&conn]["data_access_expires_at"],
        json!(lapses_at),
        "the authorization's lapse is recorded"
    );
    let warnings = eventually("the expiry warning", || {
        let events = fb.webhook.of_type("connection.expiring");
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let warning = &warnings[0]["data"]["warning"];
    assert_eq!(warnings[0]["data"]["connection"]["id"], conn.as_str());
    assert_eq!(
        (&warning["what"], &warning["stage_days"]),
        (&json!("data_access"), &json!(7)),
        "{warning}"
    );
    assert_eq!(warning["lapses_at"], json!(lapses_at));

    // TikTok repeats it daily: the same date again changes nothing.
    let (status, answer) = push_signed(&fb, &body).await;
    assert_eq!((status, answer["changed"].clone()), (200, json!(0)));
    assert_eq!(facts(&fb).await, after);
    // A later change is notified; the repeat never was.
    let marker = deauthorization(&fb, &shop["shop_id"]);
    push_signed(&fb, &marker).await;
    eventually("the marker's reauth event", || {
        (fb.webhook.of_type("connection.reauth_required").len() == 1).then_some(())
    })
    .await;
    assert_eq!(fb.webhook.of_type("connection.expiring").len(), 1);
    assert_eq!(audited("tiktok.authorization_expiring", &conn), 1);
    fb.stop().await;
}

#[tokio::test]
async fn another_type_or_an_unknown_shop_is_acknowledged_and_changes_nothing() {
    let fb = FbApp::start().await;
    let (shop, _) = connect(&fb, "Order Shop").await;
    let before = facts(&fb).await;
    let order = envelope(
        &fb,
        1,
        &shop["shop_id"],
        json!({"order_id": "576684019603311365", "order_status": "AWAITING_SHIPMENT", "update_time": 1664095610}),
    );
    let (status, answer) = push_signed(&fb, &order).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"type": 1, "event": "ignored", "changed": 0}));
    let unknown = deauthorization(&fb, &json!("1111111111111111111"));
    expect_changed(&fb, &unknown, 0, "an unknown shop").await;
    // Signed, but a type 7 without its date: 400 naming the field.
    let dateless = envelope(&fb, 7, &shop["shop_id"], json!({"message": "?"}));
    let (status, answer) = push_signed(&fb, &dateless).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["field"], "data.expiration_time");
    assert_eq!(facts(&fb).await, before);
    fb.stop().await;
}

#[tokio::test]
async fn the_simulator_pushes_signed_events_that_the_service_applies() {
    let fb = FbApp::start().await;
    let (shop, integration) = connect(&fb, "Simulated Push Shop").await;
    let url = fb.url("/tiktok/webhooks");
    let refused = fb
        .sim
        .control(
            "/_sim/callbacks/tiktok",
            json!({"url": url, "type": 6, "open_id": shop["open_id"], "bad_signature": true}),
        )
        .await;
    assert_eq!(refused["status"], 400, "{refused}");
    assert_eq!(refused["body"]["error"]["field"], "Authorization");
    let applied = fb
        .sim
        .control(
            "/_sim/callbacks/tiktok",
            json!({"url": url, "type": 6, "open_id": shop["open_id"]}),
        )
        .await;
    assert_eq!(applied["status"], 200, "{applied}");
    assert_eq!(applied["body"]["changed"], 1, "{applied}");
    assert_eq!(applied["sent"]["shop_id"], shop["shop_id"]);
    assert_eq!(
        facts(&fb).await[&id(&integration)]["health"],
        "reauth_required"
    );
    fb.stop().await;
}

#[tokio::test]
async fn without_tiktok_credentials_the_webhook_is_unavailable() {
    let app = TestApp::spawn().await;
    let body = r#"{"type":6,"shop_id":"1","timestamp":1644412885,"data":{}}"#;
    let (status, answer) = push(&app, body, Some("00")).await;
    assert_eq!(status, 503, "{answer}");
    app.stop().await;
}
