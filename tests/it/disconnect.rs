//! Disconnecting: `DELETE /tokens/{id}` and `DELETE /facebook/tokens/{id}`
//! with `revoke` and `cascade`, against the simulator: the revocation
//! reaches the connection's own platform (and the platform then rejects the
//! token), a user with pages goes only with them, a failed revocation
//! deletes nothing, and each deletion is announced and audited.

use reqwest::Method;
use serde_json::{Value, json};
use tokenkeeper::simulator::{DEMO_CUSTOMER_ID, DEMO_GOOGLE_USER_ID};

use crate::fb_support::{
    ADMIN_KEY, APP_ID, APP_SECRET, FbApp, READER_KEY, TEAM_A_KEY, assert_error, assert_field_error,
    connection_id, connection_of_kind, eventually,
};
use crate::sim_support::NO_QUERY;

/// The stats key of the Graph call that revokes a login.
const GRAPH_REVOKE: &str = "DELETE /{user-id}/permissions";
/// The stats key of Google's revocation endpoint.
const GOOGLE_REVOKE: &str = "/revoke";

/// An admin's DELETE of `path`; the status and the raw body.
async fn delete(fb: &FbApp, path: &str, key: &str) -> (u16, String) {
    let r = fb
        .app
        .client
        .request(Method::DELETE, fb.url(path))
        .header("X-API-Key", key)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// The ids of every connection the reader sees.
async fn listed(fb: &FbApp) -> Vec<String> {
    let list = fb.get_ok("/tokens", READER_KEY).await;
    list["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

/// `deleted[].id` → `deleted[].revocation` of a disconnect answer.
fn outcomes(answer: &Value) -> Vec<(String, String)> {
    answer["deleted"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap().to_string(),
                d["revocation"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The revocations the simulated platforms carried out.
async fn revocations(fb: &FbApp) -> Vec<Value> {
    let r: Value = fb
        .sim
        .get("/_sim/revocations", NO_QUERY)
        .await
        .json()
        .await
        .unwrap();
    r["revocations"].as_array().unwrap().clone()
}

/// Connects a new simulator user with `pages` pages; the connect answer and
/// the user token the test holds (of the same login session).
async fn connect_user_with_token(fb: &FbApp, pages: usize) -> (Value, String) {
    let pages: Vec<Value> = (0..pages)
        .map(|i| json!({ "name": format!("Revocable Page {i}") }))
        .collect();
    let user = fb
        .sim
        .create_user(json!({ "name": "Revocable User", "pages": pages }))
        .await;
    let token = fb.sim.login(user["id"].as_str().unwrap(), false).await;
    let answer = fb
        .post_ok(
            "/facebook/auth/exchange",
            ADMIN_KEY,
            json!({ "access_token": token }),
        )
        .await;
    (answer, token)
}

/// What Graph's `debug_token` says of `token`, asked with the app token.
async fn debug_token(fb: &FbApp, token: &str) -> Value {
    let app_token = format!("{APP_ID}|{APP_SECRET}");
    let (status, body) = fb
        .sim
        .graph_json("/debug_token", &app_token, &[("input_token", token)])
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

#[tokio::test]
async fn revoking_a_facebook_user_asks_for_cascade_then_revokes_its_login_and_deletes_it_with_its_pages()
 {
    let fb = FbApp::start().await;
    let (answer, token) = connect_user_with_token(&fb, 2).await;
    let kept = fb.connect_user(1, None).await;
    let user = connection_id(&answer, "user");
    let ids: Vec<String> = crate::fb_support::connections(&answer)
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    let pages: Vec<&Value> = crate::fb_support::connections(&answer)
        .filter(|c| c["kind"] == "page")
        .collect();
    assert_eq!(pages.len(), 2);
    assert_eq!(debug_token(&fb, &token).await["is_valid"], true);

    // Without cascade: 409 naming the pages, nothing deleted or revoked.
    let (status, body) = delete(&fb, &format!("/tokens/{user}?revoke=true"), ADMIN_KEY).await;
    let refused = json_of(&body);
    assert_error(status, &refused, 409, "has_derived_connections");
    let named: Vec<(&str, &str)> = refused["error"]["derived"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["id"].as_str().unwrap(), d["label"].as_str().unwrap()))
        .collect();
    for page in &pages {
        let (id, label) = (
            page["id"].as_str().unwrap(),
            page["label"].as_str().unwrap(),
        );
        assert!(named.contains(&(id, label)), "{refused}");
        let message = refused["error"]["message"].as_str().unwrap();
        assert!(message.contains(id) && message.contains(label), "{message}");
    }
    assert_eq!(fb.sim.count(GRAPH_REVOKE).await, 0, "nothing revoked");
    let all = listed(&fb).await;
    assert!(ids.iter().all(|id| all.contains(id)), "nothing deleted");

    // With cascade: one revocation at Facebook, then the three go.
    let (status, body) = delete(
        &fb,
        &format!("/tokens/{user}?revoke=true&cascade=true"),
        ADMIN_KEY,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains("EAAB"), "no token in the answer: {body}");
    let deleted = json_of(&body);
    let got = outcomes(&deleted);
    assert_eq!(got[0], (user.clone(), "revoked".to_string()), "{deleted}");
    let mut got_ids: Vec<&String> = got.iter().map(|(id, _)| id).collect();
    let mut want: Vec<&String> = ids.iter().collect();
    got_ids.sort();
    want.sort();
    assert_eq!(got_ids, want, "{deleted}");
    assert!(got.iter().all(|(_, r)| r == "revoked"), "{deleted}");
    assert_eq!(fb.sim.count(GRAPH_REVOKE).await, 1);
    assert_eq!(fb.sim.count(GOOGLE_REVOKE).await, 0, "no token to Google");
    let arrived = revocations(&fb).await;
    assert_eq!(arrived.len(), 1, "{arrived:?}");
    let revoked_user = connection_of_kind(&answer, "user");
    assert_eq!(arrived[0]["platform"], "facebook");
    assert_eq!(arrived[0]["user_id"], revoked_user["external_id"]);
    assert_eq!(arrived[0]["via"], "user_token");

    // Facebook now rejects the user's login: Meta's "has not authorized".
    let info = debug_token(&fb, &token).await;
    assert_eq!(info["is_valid"], false, "{info}");
    assert_eq!(info["error"]["code"], 190, "{info}");
    assert_eq!(info["error"]["subcode"], 458, "{info}");

    let all = listed(&fb).await;
    assert!(ids.iter().all(|id| !all.contains(id)), "{all:?}");
    let other = connection_id(&kept, "user");
    assert!(all.contains(&other), "another user's connection stays");

    // One connection.deleted event per deleted connection, no token in any.
    let events = eventually("three connection.deleted events", || {
        let events = fb.webhook.of_type("connection.deleted");
        (events.len() == 3).then_some(events)
    })
    .await;
    for e in &events {
        let id = e["data"]["connection"]["id"].as_str().unwrap().to_string();
        assert!(ids.contains(&id), "{e}");
        assert_eq!(e["data"]["revocation"], "revoked", "{e}");
        assert!(!e.to_string().contains("EAAB"), "{e}");
    }
    let logs = crate::helpers::logs().contents();
    for id in &ids {
        assert!(
            logs.lines()
                .any(|l| l.contains("token.deleted") && l.contains(id.as_str())),
            "audited: {id}"
        );
    }
    assert!(!logs.contains(&token), "the token is never logged");
    fb.stop().await;
}

#[tokio::test]
async fn revoking_a_google_connection_revokes_its_refresh_token_at_google_only() {
    let fb = FbApp::start().await;
    let connected = fb.connect_demo_google().await;
    let id = connected["connection"]["id"].as_str().unwrap().to_string();
    let facebook = fb.connect_user(1, None).await;
    let before = fb.sim.count("/token:refresh_token").await;

    let (status, body) = delete(&fb, &format!("/tokens/{id}?revoke=true"), ADMIN_KEY).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        !body.contains("ya29.") && !body.contains("1//0"),
        "no token in the answer: {body}"
    );
    let deleted = json_of(&body);
    assert_eq!(outcomes(&deleted), [(id.clone(), "revoked".to_string())]);
    assert_eq!(deleted["deleted"][0]["provider"], "google");
    assert_eq!(deleted["deleted"][0]["external_id"], DEMO_CUSTOMER_ID);

    assert_eq!(fb.sim.count(GOOGLE_REVOKE).await, 1);
    assert_eq!(fb.sim.count(GRAPH_REVOKE).await, 0, "no token to Facebook");
    assert_eq!(
        fb.sim.count("/token:refresh_token").await,
        before,
        "revoked as it was, not refreshed first"
    );
    let arrived = revocations(&fb).await;
    assert_eq!(arrived.len(), 1, "{arrived:?}");
    assert_eq!(arrived[0]["platform"], "google");
    assert_eq!(arrived[0]["user_id"], DEMO_GOOGLE_USER_ID);
    assert_eq!(arrived[0]["token_type"], "refresh_token");
    assert!(!listed(&fb).await.contains(&id));
    assert!(
        listed(&fb)
            .await
            .contains(&connection_id(&facebook, "user"))
    );
    let events = eventually("a connection.deleted event", || {
        let events = fb.webhook.of_type("connection.deleted");
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(events[0]["data"]["connection"]["id"], id.as_str());
    fb.stop().await;
}

#[tokio::test]
async fn googles_revoke_endpoint_in_the_simulator_ends_the_refresh_token() {
    let fb = FbApp::start().await;
    let grant = fb
        .sim
        .control(
            &format!("/_sim/google/users/{DEMO_GOOGLE_USER_ID}/consent"),
            json!({}),
        )
        .await;
    let refresh = grant["refresh_token"].as_str().unwrap();
    let access = grant["access_token"].as_str().unwrap();
    let refresh_grant = |token: &str| {
        let config = &fb.sim.config;
        [
            ("grant_type", "refresh_token".to_string()),
            ("refresh_token", token.to_string()),
            ("client_id", config.google_client_id.clone()),
            ("client_secret", config.google_client_secret.clone()),
        ]
    };
    let (status, _) = fb.sim.post_form("/token", &refresh_grant(refresh)).await;
    assert_eq!(status, 200);
    // Revoking the access token revokes the refresh token it came from.
    let (status, body) = fb.sim.post_form("/revoke", &[("token", access)]).await;
    assert_eq!((status.as_u16(), body), (200, json!({})));
    let (status, body) = fb.sim.post_form("/token", &refresh_grant(refresh)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    // Once revoked, revoking again is Google's `invalid_token`.
    let (status, body) = fb.sim.post_form("/revoke", &[("token", refresh)]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_token");
    fb.stop().await;
}

#[tokio::test]
async fn a_tiktok_shop_is_deleted_here_only_and_the_answer_says_why() {
    let fb = FbApp::start().await;
    let shop = fb.connect_shop("team-a", "Revoke Shop").await;
    let id = shop["id"].as_str().unwrap().to_string();
    let stats = fb.sim.stats().await;

    let (status, body) = delete(&fb, &format!("/tokens/{id}?revoke=true"), TEAM_A_KEY).await;
    assert_eq!(status, 200, "{body}");
    let deleted = json_of(&body);
    assert_eq!(
        outcomes(&deleted),
        [(id.clone(), "not_supported".to_string())]
    );
    let reason = deleted["deleted"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("TikTok Shop has no API call that revokes a token"),
        "{reason}"
    );
    assert_eq!(fb.sim.stats().await, stats, "no upstream call at all");
    assert!(revocations(&fb).await.is_empty());
    let list = fb.get_ok("/tiktok/integrations", ADMIN_KEY).await;
    assert!(!list.to_string().contains(&id), "{list}");
    fb.stop().await;
}

#[tokio::test]
async fn a_failed_revocation_is_502_and_deletes_nothing_until_it_succeeds() {
    let fb = FbApp::start().await;
    let (answer, token) = connect_user_with_token(&fb, 1).await;
    let user = connection_id(&answer, "user");
    let ids: Vec<String> = crate::fb_support::connections(&answer)
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    fb.sim
        .fault(json!({ "path": "/permissions", "error": { "http_status": 500, "code": 2, "is_transient": true } }))
        .await;

    let path = format!("/facebook/tokens/{user}?revoke=true&cascade=true");
    let (status, body) = delete(&fb, &path, ADMIN_KEY).await;
    let failed = json_of(&body);
    assert_error(status, &failed, 502, "upstream_error");
    let message = failed["error"]["message"].as_str().unwrap();
    assert!(message.contains("nothing was deleted"), "{message}");
    assert!(!body.contains(&token));
    assert!(
        fb.sim.count(GRAPH_REVOKE).await >= 1,
        "the revocation was tried"
    );
    let all = listed(&fb).await;
    assert!(ids.iter().all(|id| all.contains(id)), "nothing deleted");
    assert_eq!(debug_token(&fb, &token).await["is_valid"], true);

    // Google down too: the same.
    let google = fb.connect_demo_google().await;
    let google_id = google["connection"]["id"].as_str().unwrap().to_string();
    fb.sim
        .fault(json!({ "path": "/revoke", "error": { "http_status": 503, "code": 14, "oauth_error": "temporarily_unavailable" } }))
        .await;
    let (status, body) = delete(&fb, &format!("/tokens/{google_id}?revoke=true"), ADMIN_KEY).await;
    assert_error(status, &json_of(&body), 502, "upstream_error");
    assert!(listed(&fb).await.contains(&google_id));

    // The platforms answer again: the same request now revokes and deletes.
    fb.sim.delete("/_sim/faults").await;
    let (status, body) = delete(&fb, &path, ADMIN_KEY).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        outcomes(&json_of(&body))
            .iter()
            .all(|(_, r)| r == "revoked")
    );
    let (status, body) = delete(&fb, &format!("/tokens/{google_id}?revoke=true"), ADMIN_KEY).await;
    assert_eq!(status, 200, "{body}");
    // Only the successful deletions were announced.
    let events = eventually("three connection.deleted events", || {
        let events = fb.webhook.of_type("connection.deleted");
        (events.len() >= 3).then_some(events)
    })
    .await;
    assert_eq!(events.len(), 3, "{events:?}");
    fb.stop().await;
}

#[tokio::test]
async fn a_token_the_platform_already_rejects_counts_as_revoked_and_is_deleted() {
    let fb = FbApp::start().await;
    let answer = fb.connect_user(1, None).await;
    let user = connection_of_kind(&answer, "user");
    let page = connection_id(&answer, "page");
    fb.sim
        .revoke(json!({ "user_id": user["external_id"], "subcode": 460 }))
        .await;
    let id = user["id"].as_str().unwrap();
    let (status, body) = delete(
        &fb,
        &format!("/tokens/{id}?revoke=true&cascade=true"),
        ADMIN_KEY,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let deleted = json_of(&body);
    assert_eq!(
        outcomes(&deleted),
        [
            (id.to_string(), "already_invalid".to_string()),
            (page.clone(), "already_invalid".to_string())
        ]
    );
    let reason = deleted["deleted"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("190/460"), "{reason}");
    assert_eq!(fb.sim.count(GRAPH_REVOKE).await, 1);
    assert!(revocations(&fb).await.is_empty(), "nothing left to revoke");
    let all = listed(&fb).await;
    assert!(!all.contains(&id.to_string()) && !all.contains(&page));

    // Google's `invalid_token` likewise.
    let google = fb.connect_demo_google().await;
    let google_id = google["connection"]["id"].as_str().unwrap().to_string();
    fb.sim
        .control(
            "/_sim/google/revoke",
            json!({ "user_id": DEMO_GOOGLE_USER_ID }),
        )
        .await;
    let (status, body) = delete(&fb, &format!("/tokens/{google_id}?revoke=true"), ADMIN_KEY).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        outcomes(&json_of(&body)),
        [(google_id.clone(), "already_invalid".to_string())]
    );
    assert!(!listed(&fb).await.contains(&google_id));
    fb.stop().await;
}

#[tokio::test]
async fn a_team_key_cannot_delete_or_revoke_another_teams_connection() {
    let fb = FbApp::start().await;
    let theirs = fb.connect_user(0, Some("team-b")).await;
    let ours = fb.connect_user(0, Some("team-a")).await;
    let theirs_id = connection_id(&theirs, "user");
    for path in [
        format!("/tokens/{theirs_id}?revoke=true"),
        format!("/facebook/tokens/{theirs_id}?revoke=true&cascade=true"),
        format!("/tokens/{theirs_id}"),
    ] {
        let (status, body) = delete(&fb, &path, TEAM_A_KEY).await;
        assert_error(status, &json_of(&body), 404, "not_found");
    }
    assert_eq!(fb.sim.count(GRAPH_REVOKE).await, 0, "nothing sent");
    assert!(listed(&fb).await.contains(&theirs_id));

    // Its own team's connection it may delete; without parameters, 204.
    let ours_id = connection_id(&ours, "user");
    let (status, body) = delete(&fb, &format!("/tokens/{ours_id}"), TEAM_A_KEY).await;
    assert_eq!((status, body.as_str()), (204, ""));
    assert!(!listed(&fb).await.contains(&ours_id));
    fb.stop().await;
}

#[tokio::test]
async fn without_revoke_a_delete_stays_local_and_answers_as_before() {
    let fb = FbApp::start().await;
    let answer = fb.connect_user(1, None).await;
    let user = connection_id(&answer, "user");
    let page = connection_id(&answer, "page");
    let google = fb.connect_demo_google().await;
    let google_id = google["connection"]["id"].as_str().unwrap().to_string();

    // A flag that is not a boolean: 400 naming it, nothing deleted.
    let (status, body) = delete(&fb, &format!("/tokens/{page}?revoke=yes"), ADMIN_KEY).await;
    assert_field_error(status, &json_of(&body), 400, "revoke");
    let (status, body) = delete(&fb, &format!("/tokens/{page}?cascade=2"), ADMIN_KEY).await;
    assert_field_error(status, &json_of(&body), 400, "cascade");
    // Another platform's connection on the Facebook path: 422, kept.
    let (status, body) = delete(&fb, &format!("/facebook/tokens/{google_id}"), ADMIN_KEY).await;
    assert_field_error(status, &json_of(&body), 422, "id");
    // The user with a page, without cascade: 409 even without revoke.
    let (status, body) = delete(&fb, &format!("/facebook/tokens/{user}"), ADMIN_KEY).await;
    assert_error(status, &json_of(&body), 409, "has_derived_connections");
    assert_eq!(listed(&fb).await.len(), 3, "nothing deleted");

    // A page alone, with revoke: deleted here; a page has no revocation.
    let (status, body) = delete(
        &fb,
        &format!("/facebook/tokens/{page}?revoke=true"),
        ADMIN_KEY,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let deleted = json_of(&body);
    assert_eq!(
        outcomes(&deleted),
        [(page.clone(), "not_supported".to_string())]
    );
    let reason = deleted["deleted"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("page token has no revocation"), "{reason}");
    // The user, now without pages, as before: 204, local only.
    let (status, body) = delete(&fb, &format!("/facebook/tokens/{user}"), ADMIN_KEY).await;
    assert_eq!((status, body.as_str()), (204, ""));
    assert_eq!(fb.sim.count(GRAPH_REVOKE).await, 0, "no revocation asked");
    assert_eq!(listed(&fb).await, vec![google_id]);
    let events = eventually("two connection.deleted events", || {
        let events = fb.webhook.of_type("connection.deleted");
        (events.len() == 2).then_some(events)
    })
    .await;
    let revocation = |id: &str| {
        events
            .iter()
            .find(|e| e["data"]["connection"]["id"] == id)
            .map(|e| e["data"]["revocation"].clone())
    };
    assert_eq!(revocation(&page), Some(json!("not_supported")));
    assert_eq!(revocation(&user), Some(json!("not_requested")));
    fb.stop().await;
}
