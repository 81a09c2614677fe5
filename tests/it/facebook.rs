//! The Facebook token lifecycle end to end, over HTTP, against the in-process
//! simulator.

use reqwest::Method;
use serde_json::{Value, json};
use tokenkeeper::store;

use crate::fb_support::*;

#[tokio::test]
async fn the_full_connect_flow_stores_a_healthy_user_and_its_pages_encrypted() {
    let fb = FbApp::start().await;
    let answer = fb.connect_via_dialog(Some("team-a")).await;
    assert_eq!(answer["connected"], 3, "{answer}");
    let user = connection_of_kind(&answer, "user");
    assert_eq!(user["health"], "healthy");
    assert_eq!(user["team_id"], "team-a");
    let pages: Vec<&Value> = connections(&answer)
        .filter(|c| c["kind"] == "page")
        .collect();
    assert_eq!(pages.len(), 2);
    assert!(
        pages
            .iter()
            .all(|p| p["parent_id"] == user["id"] && p["expires_at"].is_null())
    );
    assert!(
        answer.to_string().find("EAA").is_none(),
        "no token in the answer"
    );

    // The team-a key sees them; the list never carries tokens.
    let (status, list) = fb.get("/facebook/tokens?kind=page", TEAM_A_KEY).await;
    assert_eq!(status, 200);
    assert_eq!(list["count"], 2);
    // On disk: the snapshot and the journal of the changes since.
    let snapshot = fb.app.store.path();
    let on_disk = [
        snapshot.to_path_buf(),
        store::journal::path_beside(snapshot),
    ]
    .iter()
    .map(|p| std::fs::read_to_string(p).unwrap_or_default())
    .collect::<String>();
    assert!(!on_disk.contains("\"EAA"), "tokens are encrypted on disk");
    assert!(on_disk.contains("eyJ"), "secrets are JWE strings");

    // The state is accepted once.
    let (_, url) = fb.get("/facebook/auth/url", ADMIN_KEY).await;
    let state = url["state"].as_str().unwrap();
    let r = fb
        .app
        .client
        .get(fb.url(&format!("/facebook/auth/callback?code=x&state={state}x")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["field"], "state");
    fb.stop().await;
}

#[tokio::test]
async fn tokens_handed_in_are_checked_before_anything_is_stored() {
    let fb = FbApp::start().await;
    for bad in ["", "EAAB with spaces inside it", "short"] {
        let (status, body) = fb
            .post(
                "/facebook/auth/exchange",
                ADMIN_KEY,
                json!({ "access_token": bad }),
            )
            .await;
        assert_eq!(status, 400, "{bad:?}: {body}");
        assert_eq!(body["error"]["field"], "access_token");
    }
    let (status, _) = fb
        .post(
            "/facebook/auth/exchange",
            ADMIN_KEY,
            json!({ "token": "x" }),
        )
        .await;
    assert_eq!(status, 400, "a missing field is a 400 in our envelope");
    assert!(fb.app.store.list().is_empty());
    fb.stop().await;
}

async fn sweep(fb: &FbApp) -> Value {
    let body = fb.sweep("/facebook/internal/scheduled-refresh").await;
    body["run"].clone()
}

#[tokio::test]
async fn a_revoked_page_is_flagged_once_notified_once_and_recovers_on_reconnect() {
    let fb = FbApp::start().await;
    let answer = fb.connect_via_dialog(None).await;
    let page = connection_of_kind(&answer, "page");
    let page_id = page["external_id"].as_str().unwrap();
    fb.sim
        .revoke(json!({ "page_id": page_id, "subcode": 460 }))
        .await;

    let run = sweep(&fb).await;
    assert_eq!(run["counts"]["reauth_required"], 1, "{run}");
    let (_, status) = fb
        .get(
            &format!("/facebook/pages/{page_id}/token-status"),
            READER_KEY,
        )
        .await;
    assert_eq!(status["health"], "reauth_required");
    assert_eq!(status["connection"]["last_error"]["subcode"], 460);

    let event = eventually("the reauth event", || {
        fb.webhook
            .of_type("connection.reauth_required")
            .first()
            .cloned()
    })
    .await;
    assert_eq!(event["data"]["connection"]["external_id"], page_id);
    crate::fb_support::assert_standard_signature(&fb.webhook.events()[0]);

    let run = sweep(&fb).await;
    assert_eq!(run["counts"]["awaiting_reconnect"], 1, "{run}");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        fb.webhook.of_type("connection.reauth_required").len(),
        1,
        "notified once"
    );

    // Reconnecting through the dialog clears the flag and says so.
    fb.connect_via_dialog(None).await;
    let (_, status) = fb
        .get(
            &format!("/facebook/pages/{page_id}/token-status"),
            READER_KEY,
        )
        .await;
    assert_eq!(status["health"], "healthy", "{status}");
    let recovered = eventually("the recovered event", || {
        fb.webhook.of_type("connection.recovered").first().cloned()
    })
    .await;
    assert_eq!(recovered["data"]["connection"]["external_id"], page_id);
    fb.stop().await;
}

#[tokio::test]
async fn a_transient_failure_is_retried_and_rate_limits_back_off_without_flagging() {
    let fb = FbApp::start().await;
    let answer = fb.connect_user(0, None).await;
    let user = connection_of_kind(&answer, "user");
    let id = user["id"].as_str().unwrap();

    fb.sim
        .fault(json!({ "path": "/oauth/access_token",
            "error": { "http_status": 500, "code": 2, "message": "Service temporarily unavailable" },
            "count": 1 }))
        .await;
    let (status, body) = fb.force_refresh(id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["refreshed"], true);
    assert_eq!(body["connection"]["reauth_required"], false);
    assert_eq!(body["connection"]["health"], "healthy");

    // Rate limited for longer than the service will wait: deferred, not flagged.
    fb.sim
        .fault(json!({ "path": "/oauth/access_token",
            "error": { "http_status": 400, "code": 80004, "subcode": 2446079,
                       "message": "There have been too many calls to this ad-account" },
            "estimated_time_to_regain_access": 5, "count": 10 }))
        .await;
    let (status, body) = fb.force_refresh(id).await;
    // Beyond refresh.max_retry_wait_secs: 503 with Retry-After (issue 9).
    assert_eq!(status, 503, "{body}");
    let (_, body) = fb.get(&format!("/facebook/tokens/{id}"), READER_KEY).await;
    let c = &body["connection"];
    assert_eq!(c["reauth_required"], false);
    assert_eq!(c["health"], "degraded");
    assert_eq!(c["last_error"]["class"], "rate_limited");
    assert!(c["next_refresh_at"].is_string(), "retry deferred: {c}");
    assert!(fb.webhook.of_type("connection.reauth_required").is_empty());
    fb.stop().await;
}

#[tokio::test]
async fn a_hundred_concurrent_force_refreshes_make_one_exchange() {
    let fb = FbApp::start().await;
    let answer = fb.connect_user(1, None).await;
    let id = connection_id(&answer, "user");
    let before = fb.sim.count("/oauth/access_token:fb_exchange_token").await;
    // A slow upstream keeps the one refresh in flight while all requests arrive.
    fb.sim
        .fault(json!({ "path": "/oauth/access_token", "latency_ms": 500 }))
        .await;
    let fb = std::sync::Arc::new(fb);
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let fb = fb.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move { fb.force_refresh(&id).await }));
    }
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 200, "{body}");
    }
    let after = fb.sim.count("/oauth/access_token:fb_exchange_token").await;
    assert_eq!(after - before, 1, "exactly one upstream exchange");
}

#[tokio::test]
async fn a_refresh_cut_off_by_the_request_timeout_gives_its_lease_back() {
    use tokenkeeper::store::ConnectionStore;
    let fb = FbApp::start_with(FbOptions {
        extra_toml: "[server]\nrequest_timeout_secs = 2\n[insights]\nasync_timeout_secs = 1\n"
            .into(),
        ..FbOptions::default()
    })
    .await;
    let answer = fb.connect_user(0, None).await;
    let id = connection_id(&answer, "user");
    fb.sim
        .fault(json!({ "path": "/oauth/access_token", "latency_ms": 8000 }))
        .await;
    let (status, body) = fb.force_refresh(&id).await;
    assert_error(status, &body, 503, "timeout");
    // The refresh was dropped with its request; its lease must not hold up
    // another holder (a sweep) until it runs out.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let ttl = std::time::Duration::from_secs(60);
        match ConnectionStore::lease(&fb.app.store, &id, "another-holder", ttl).await {
            Ok(_) => break,
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("the dropped refresh still holds its lease: {e}"),
        }
    }
    fb.stop().await;
}

#[tokio::test]
async fn keys_are_required_scoped_and_a_second_sweep_conflicts() {
    let fb = FbApp::start().await;
    fb.connect_user(2, None).await;
    let (status, body) = fb.call(Method::GET, "/facebook/tokens", None, None).await;
    assert_error(status, &body, 401, "unauthorized");
    let (status, _) = fb.get("/facebook/tokens", "wrong-key-0123456789").await;
    assert_eq!(status, 403);
    let (status, _) = fb.get("/facebook/tokens", READER_KEY).await;
    assert_eq!(status, 200);
    let (status, body) = fb
        .post(
            "/facebook/internal/scheduled-refresh",
            READER_KEY,
            json!({}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = fb
        .call(
            Method::POST,
            "/facebook/internal/scheduled-refresh",
            None,
            None,
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = fb
        .post(
            "/facebook/internal/scheduled-refresh",
            "not-the-internal-key",
            json!({}),
        )
        .await;
    assert_eq!(status, 403);
    // The team-a key does not see connections of no team.
    let (_, list) = fb.get("/facebook/tokens", TEAM_A_KEY).await;
    assert_eq!(list["count"], 0);

    // Slow upstream so the first sweep is still running.
    fb.sim
        .fault(json!({ "path": "/debug_token", "latency_ms": 300 }))
        .await;
    let (status, first) = fb
        .post(
            "/facebook/internal/scheduled-refresh?wait=false",
            INTERNAL_KEY,
            json!({}),
        )
        .await;
    assert_eq!(status, 202, "{first}");
    let run_id = first["run_id"].as_str().unwrap().to_string();
    let (status, second) = fb
        .post(
            "/facebook/internal/scheduled-refresh",
            INTERNAL_KEY,
            json!({}),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(second["error"]["run_id"], run_id.as_str());
    let run = loop {
        let (_, r) = fb
            .get(
                &format!("/facebook/internal/refresh-runs/{run_id}"),
                INTERNAL_KEY,
            )
            .await;
        if r["run"]["status"] == "finished" {
            break r["run"].clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(run["total"], 3);
    assert_eq!(run["counts"]["checked"], 3, "{run}");
    fb.stop().await;
}

#[tokio::test]
async fn access_tokens_work_upstream_refresh_first_when_due_and_need_their_scope() {
    // Long-lived tokens that are always within the refresh window.
    let fb = FbApp::start_with(FbOptions {
        sim: tokenkeeper::simulator::SimConfig {
            long_lived_secs: 10 * 86_400,
            ..FbOptions::default().sim
        },
        ..FbOptions::default()
    })
    .await;
    let answer = fb.connect_user(1, None).await;
    let user = connection_of_kind(&answer, "user");
    assert_eq!(user["health"], "needs_refresh");
    let id = user["id"].as_str().unwrap();

    let (status, _) = fb
        .get(&format!("/tokens/{id}/access-token"), OPERATOR_KEY)
        .await;
    assert_eq!(status, 403, "tokens:admin does not imply tokens:use");
    let (status, _) = fb
        .get(&format!("/tokens/{id}/access-token"), READER_KEY)
        .await;
    assert_eq!(status, 403);

    let before = fb.sim.count("/oauth/access_token:fb_exchange_token").await;
    let body = fb
        .get_ok(&format!("/tokens/{id}/access-token"), USER_KEY)
        .await;
    assert_eq!(
        fb.sim.count("/oauth/access_token:fb_exchange_token").await,
        before + 1,
        "refreshed before the hand-out"
    );
    let token = body["access_token"].as_str().unwrap().to_string();

    // The token works against the platform.
    let proof = tokenkeeper::providers::facebook::appsecret_proof(
        &tokenkeeper::secret::Secret::new(APP_SECRET),
        &tokenkeeper::secret::Secret::new(token.clone()),
    );
    let me: Value = fb
        .sim
        .get(
            "/v25.0/me",
            &[
                ("access_token", token.as_str()),
                ("appsecret_proof", &proof),
                ("fields", "id,name"),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["id"], user["external_id"], "{me}");

    // The page token by page id.
    let page = connection_of_kind(&answer, "page");
    let (status, page_token) = fb
        .get(
            &format!(
                "/facebook/pages/{}/access-token",
                page["external_id"].as_str().unwrap()
            ),
            USER_KEY,
        )
        .await;
    assert_eq!(status, 200);
    let page_token = page_token["access_token"].as_str().unwrap().to_string();

    // Audited, without the token.
    let audit = std::fs::read_to_string(fb.app.store.path().with_file_name("audit.log")).unwrap();
    assert_eq!(audit.lines().count(), 2, "{audit}");
    assert!(audit.contains("\"key_id\":\"inbox\"") && audit.contains("issued"));
    assert!(!audit.contains(&token) && !audit.contains(&page_token));

    // No other response, log line or webhook carries a token.
    let mut others = Vec::new();
    for path in [
        "/facebook/tokens".to_string(),
        format!("/facebook/tokens/{id}"),
        format!("/facebook/debug_token?connection_id={id}"),
        format!("/facebook/check-permissions?connection_id={id}"),
    ] {
        others.push(fb.get(&path, ADMIN_KEY).await.1.to_string());
    }
    others.push(fb.force_refresh(id).await.1.to_string());
    others.push(sweep(&fb).await.to_string());
    let logs = crate::helpers::logs().contents();
    let hooks: Vec<String> = fb.webhook.events().iter().map(|d| d.body.clone()).collect();
    for secret in [&token, &page_token] {
        assert!(others.iter().all(|b| !b.contains(secret.as_str())));
        assert!(!logs.contains(secret.as_str()), "a token reached the logs");
        assert!(hooks.iter().all(|b| !b.contains(secret.as_str())));
    }
    assert!(!logs.contains(APP_SECRET));
    fb.stop().await;
}

#[tokio::test]
async fn business_tokens_permissions_and_debug_info() {
    let fb = FbApp::start().await;
    let answer = fb.connect_user(1, Some("team-a")).await;
    let user = connection_of_kind(&answer, "user");
    let id = user["id"].as_str().unwrap();
    let page_id = connection_of_kind(&answer, "page")["external_id"]
        .as_str()
        .unwrap()
        .to_string();

    let (status, perms) = fb
        .get(
            &format!("/facebook/check-permissions?connection_id={id}&required=pages_show_list,instagram_basic"),
            ADMIN_KEY,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(perms["missing"], json!(["instagram_basic"]));
    assert_eq!(perms["ok"], false);

    let (status, ext) = fb
        .post(
            "/facebook/extend-permissions",
            ADMIN_KEY,
            json!({ "scopes": ["instagram_basic"] }),
        )
        .await;
    assert_eq!(status, 200);
    let url = ext["url"].as_str().unwrap();
    assert!(
        url.contains("auth_type=rerequest") && url.contains("instagram_basic"),
        "{url}"
    );

    let debug = fb
        .get_ok(
            &format!("/facebook/debug_token?connection_id={id}"),
            ADMIN_KEY,
        )
        .await;
    assert_eq!(debug["is_valid"], true);
    assert_eq!(debug["type"], "USER");

    let business = fb
        .sim
        .control(
            "/_sim/businesses",
            json!({ "name": "Acme", "page_ids": [page_id] }),
        )
        .await;
    let system_token = business["system_user_token"].as_str().unwrap();
    let (status, body) = fb
        .post(
            "/facebook/business-tokens",
            TEAM_A_KEY,
            json!({ "access_token": system_token, "label": "Acme BM", "team_id": "team-a" }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["connection"]["kind"], "system_user");
    assert!(body["connection"]["expires_at"].is_null());
    // A user token is not a business token.
    let user_token = fb
        .sim
        .login(user["external_id"].as_str().unwrap(), true)
        .await;
    let (status, body) = fb
        .post(
            "/facebook/business-tokens",
            ADMIN_KEY,
            json!({ "access_token": user_token }),
        )
        .await;
    assert_field_error(status, &body, 422, "access_token");
    fb.stop().await;
}

#[tokio::test]
async fn requests_over_the_rate_limit_get_429_with_retry_after() {
    let fb = FbApp::with_rate_limit(1, 3).await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..6 {
        let r = fb
            .app
            .client
            .get(fb.url("/facebook/tokens"))
            .header("X-API-Key", READER_KEY)
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            retry_after = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], "rate_limited");
        }
    }
    assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(retry_after.is_some_and(|v| v.parse::<u64>().unwrap() >= 1));
    // Another key has its own bucket.
    let (status, _) = fb.get("/facebook/tokens", ADMIN_KEY).await;
    assert_eq!(status, 200);
    fb.stop().await;
}

#[tokio::test]
async fn data_access_lapse_is_warned_in_stages_each_stage_once() {
    let fb = FbApp::start().await;
    let answer = fb.connect_user(1, None).await;
    let page = connection_of_kind(&answer, "page");
    let page_id = page["id"].as_str().unwrap();
    let warnings_for = |stage: i64| {
        fb.webhook
            .of_type("connection.expiring")
            .into_iter()
            .filter(|e| {
                e["data"]["connection"]["id"] == page_id
                    && e["data"]["warning"]["stage_days"] == stage
            })
            .count()
    };

    // Day 77 of 90: within the 14-day stage.
    fb.advance_days(77).await;
    sweep(&fb).await;
    eventually("the 14-day warning", || {
        (warnings_for(14) == 1).then_some(())
    })
    .await;
    let (_, status) = fb
        .get(&format!("/facebook/tokens/{page_id}"), READER_KEY)
        .await;
    assert_eq!(status["connection"]["health"], "expiring_soon");
    let event = &fb.webhook.of_type("connection.expiring")[0];
    assert_eq!(event["data"]["warning"]["what"], "data_access");

    sweep(&fb).await;
    // Day 84: the 7-day stage, announced once more.
    fb.advance_days(7).await;
    sweep(&fb).await;
    eventually("the 7-day warning", || (warnings_for(7) == 1).then_some(())).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(warnings_for(14), 1, "each stage is announced once");

    // Day 91: lapsed; nothing can extend it.
    fb.advance_days(7).await;
    let (_, status) = fb
        .get(&format!("/facebook/tokens/{page_id}"), READER_KEY)
        .await;
    assert_eq!(status["connection"]["health"], "cannot_refresh");
    let (status, body) = fb
        .get(&format!("/tokens/{page_id}/access-token"), USER_KEY)
        .await;
    assert_error(status, &body, 409, "cannot_refresh");
    fb.stop().await;
}
