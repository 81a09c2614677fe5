//! TikTok Shop and Google lifecycles, and cross-provider sweeps, over HTTP
//! against the simulator.

use serde_json::{Value, json};
use tokenkeeper::simulator::{DEMO_CUSTOMER_ID, DEMO_GOOGLE_USER_ID};

use crate::fb_support::*;

async fn integration(fb: &FbApp, id: &str) -> Value {
    let body = fb
        .get_ok(&format!("/tiktok/integrations/{id}/status"), ADMIN_KEY)
        .await;
    body["integration"].clone()
}

#[tokio::test]
async fn tiktok_tokens_follow_the_seed_windows_and_keep_the_rotated_refresh_token() {
    let fb = FbApp::start().await;
    // A at t0, B sixteen minutes later: when A has 4 minutes left, B has 20.
    let a = fb.connect_shop("team-a", "Cửa hàng A").await;
    assert_eq!(a["token_status"]["status"], "Healthy");
    fb.advance_secs(16 * 60).await;
    let b = fb.connect_shop("team-a", "Shop B").await;
    let c = fb.connect_shop("team-a", "Shop C").await;
    let (a, b, c) = (
        a["id"].as_str().unwrap(),
        b["id"].as_str().unwrap(),
        c["id"].as_str().unwrap(),
    );
    // C's refresh token has lapsed (set on the record: the platform's is a year).
    let lapsed = fb.clock_now() - chrono::Duration::minutes(1);
    fb.app
        .store
        .update(c, move |conn| conn.refresh_token_expires_at = Some(lapsed))
        .await
        .unwrap();
    fb.advance_secs(7 * 86_400 - 20 * 60).await;

    assert_eq!(
        integration(&fb, a).await["token_status"]["status"],
        "Needs Refresh"
    );
    assert_eq!(
        integration(&fb, b).await["token_status"]["status"],
        "Expiring Soon"
    );
    assert_eq!(
        integration(&fb, c).await["token_status"]["status"],
        "Cannot Refresh"
    );
    let (_, health) = fb.get("/tiktok/health", ADMIN_KEY).await;
    assert_eq!(health["total"], 3);
    assert_eq!(health["by_status"]["needs_refresh"], 1);

    let refresh_token = |id: &str| {
        let conn = fb.app.store.get(id).unwrap();
        tokenkeeper::store::ConnectionStore::secrets(&fb.app.store)
            .unwrap()
            .refresh_token(&conn)
            .unwrap()
            .unwrap()
            .expose()
            .to_string()
    };
    let a_before = refresh_token(a);
    let calls_before = fb.sim.count("/api/v2/token/refresh").await;
    let run = fb.sweep("/tiktok/internal/scheduled-refresh").await;
    assert_eq!(run["run"]["counts"]["refreshed"], 1, "{run}");
    assert_eq!(run["run"]["counts"]["lapsed"], 1, "{run}");
    assert_eq!(
        fb.sim.count("/api/v2/token/refresh").await,
        calls_before + 1,
        "only A was sent upstream"
    );
    assert_ne!(
        refresh_token(a),
        a_before,
        "the rotated refresh token is stored"
    );
    assert_eq!(
        integration(&fb, a).await["token_status"]["status"],
        "Healthy"
    );

    // B is not refreshed without force.
    let (_, r) = fb
        .admin_post(&format!("/tiktok/integrations/{b}/refresh"))
        .await;
    assert_eq!(r["refreshed"], false, "{r}");
    let (_, r) = fb
        .admin_post(&format!("/tiktok/integrations/{b}/refresh?force=true"))
        .await;
    assert_eq!(r["refreshed"], true, "{r}");

    // "rt has expired" flags the integration.
    fb.sim
        .fault(json!({ "path": "/api/v2/token/refresh", "error": { "code": 36004001, "message": "rt has expired" }, "count": 1 }))
        .await;
    let (status, body) = fb
        .admin_post(&format!("/tiktok/integrations/{a}/refresh?force=true"))
        .await;
    assert_error(status, &body, 409, "reauth_required");
    let flagged = integration(&fb, a).await;
    assert_eq!(flagged["health"], "reauth_required");
    assert_eq!(flagged["last_error"]["code"], 36004001);
    fb.stop().await;
}

#[tokio::test]
async fn google_refresh_works_and_invalid_grant_flags_reauth_with_one_call() {
    let fb = FbApp::start().await;
    let answer = fb.connect_demo_google().await;
    let conn = &answer["connection"];
    assert_eq!(conn["provider"], "google");
    assert_eq!(conn["external_id"], DEMO_CUSTOMER_ID);
    let id = conn["id"].as_str().unwrap();

    let before = fb.sim.count("/token:refresh_token").await;
    let (status, body) = fb
        .admin_post(&format!("/tokens/{id}/refresh?force=true"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["refreshed"], true);
    assert_eq!(fb.sim.count("/token:refresh_token").await, before + 1);

    // Google Ads with the refreshed token: exact totals, money from micros.
    fb.sim
        .control("/_sim/google/customers", json!({ "id": DEMO_CUSTOMER_ID, "campaigns": [
            { "id": "901", "name": "Tìm kiếm", "daily": { "impressions": 1000, "clicks": 30, "cost_micros": 4_500_000, "conversions": 2.5 },
              "start_date": "2026-06-01", "end_date": "2026-06-10" } ] }))
        .await;
    let metrics = fb
        .post_ok(
            "/google/campaign_metrics",
            ADMIN_KEY,
            json!({ "customer_id": DEMO_CUSTOMER_ID,
            "date_range": { "start_date": "2026-06-01", "end_date": "2026-06-30" },
            "metrics": ["impressions", "clicks", "cost", "conversions"], "campaign_ids": ["901"] }),
        )
        .await;
    let totals = &metrics["summary"]["totals"];
    assert_eq!(totals["impressions"], 10_000);
    assert_eq!(totals["cost"], 45);
    assert_eq!(totals["conversions"], 25);
    fb.get_ok(
        &format!("/google/campaigns?customer_id={DEMO_CUSTOMER_ID}"),
        ADMIN_KEY,
    )
    .await;

    fb.sim
        .control(
            "/_sim/google/revoke",
            json!({ "user_id": DEMO_GOOGLE_USER_ID }),
        )
        .await;
    let before = fb.sim.count("/token:refresh_token").await;
    let (status, body) = fb
        .admin_post(&format!("/tokens/{id}/refresh?force=true"))
        .await;
    assert_error(status, &body, 409, "reauth_required");
    assert_eq!(
        fb.sim.count("/token:refresh_token").await,
        before + 1,
        "invalid_grant is not retried"
    );
    let (_, list) = fb
        .get("/tokens?provider=google&health=reauth_required", ADMIN_KEY)
        .await;
    assert_eq!(list["count"], 1);
    fb.stop().await;
}

#[tokio::test]
async fn one_sweep_covers_every_provider_and_health_shows_the_schedule() {
    let fb = FbApp::start().await;
    fb.connect_user(1, Some("team-a")).await;
    fb.connect_shop("team-b", "Shop").await;
    fb.follow_consent("/google/auth/url?team_id=team-a", "/google/auth/callback")
        .await;
    let (_, all) = fb.get("/tokens", ADMIN_KEY).await;
    assert_eq!(all["count"], 4);
    let (_, team_a) = fb.get("/tokens?team_id=team-a", ADMIN_KEY).await;
    assert_eq!(team_a["count"], 3);
    let (_, only_a) = fb.get("/tokens", TEAM_A_KEY).await;
    assert_eq!(only_a["count"], 3, "a team key sees its team only");

    let run = fb.sweep("/internal/scheduled-refresh").await;
    let run = &run["run"];
    assert_eq!(run["total"], 4);
    let done: u64 = run["counts"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(done, 4, "{run}");
    let (_, runs) = fb.get("/internal/refresh-runs", INTERNAL_KEY).await;
    assert_eq!(runs["runs"][0]["id"], run["id"]);

    let (status, health) = fb.get("/tokens/health", ADMIN_KEY).await;
    assert_eq!(status, 200);
    assert_eq!(health["providers"]["facebook"]["total"], 2);
    assert_eq!(health["providers"]["tiktok_shop"]["total"], 1);
    assert_eq!(health["providers"]["google"]["total"], 1);
    assert!(health["providers"]["google"]["soonest_expiries"][0]["lapses_at"].is_string());
    fb.stop().await;
}
