//! The Facebook Graph simulator: login chain, token state machine,
//! debug_token, pages, control API, faults and stats.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokenkeeper::simulator::{DEMO_USER_ID, SimConfig, appsecret_proof};

use crate::helpers::json_of;
use crate::sim_support::{Sim, V, assert_graph_error, header_json};

const REDIRECT: &str = "http://127.0.0.1:9/callback";

impl Sim {
    fn app_token(&self) -> String {
        format!("{}|{}", self.config.fb_app_id, self.config.fb_app_secret)
    }

    async fn debug(&self, input: &str) -> (StatusCode, Value) {
        self.graph_json("/debug_token", &self.app_token(), &[("input_token", input)])
            .await
    }

    /// The demo user's page tokens, by page name.
    async fn page_tokens(&self, user_token: &str) -> Vec<(String, String)> {
        let (status, body) = self
            .graph_json(
                "/me/accounts",
                user_token,
                &[("fields", "id,name,access_token")],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["id"].as_str().unwrap().to_string(),
                    p["access_token"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// The dialog's redirect for this query.
    async fn dialog(&self, query: &[(&str, &str)]) -> reqwest::Response {
        self.get(&format!("/{V}/dialog/oauth"), query).await
    }

    /// Runs the dialog and returns the code.
    async fn dialog_code(&self) -> String {
        let r = self
            .dialog(&[
                ("client_id", self.config.fb_app_id.as_str()),
                ("redirect_uri", REDIRECT),
                ("state", "csrf 1"),
                ("response_type", "code"),
                ("scope", "pages_show_list,read_insights"),
            ])
            .await;
        assert_eq!(r.status(), StatusCode::FOUND);
        let location = r.headers()["location"].to_str().unwrap().to_string();
        assert!(
            location.starts_with(&format!("{REDIRECT}?code=")),
            "{location}"
        );
        assert!(location.contains("state=csrf%201"), "{location}");
        let code = location.split("code=").nth(1).unwrap();
        code.split(['&', '#']).next().unwrap().to_string()
    }

    /// A call of the token endpoint with this query.
    async fn access_token(&self, query: &[(&str, &str)]) -> (StatusCode, Value) {
        let r = self.get(&format!("/{V}/oauth/access_token"), query).await;
        (r.status(), r.json().await.unwrap())
    }

    /// Exchanges a code, with this redirect URI and app secret.
    async fn exchange_code_with(
        &self,
        code: &str,
        redirect_uri: &str,
        secret: &str,
    ) -> (StatusCode, Value) {
        self.access_token(&[
            ("client_id", self.config.fb_app_id.as_str()),
            ("redirect_uri", redirect_uri),
            ("client_secret", secret),
            ("code", code),
        ])
        .await
    }

    async fn exchange_code(&self, code: &str) -> (StatusCode, Value) {
        self.exchange_code_with(code, REDIRECT, &self.config.fb_app_secret)
            .await
    }

    async fn extend(&self, token: &str) -> (StatusCode, Value) {
        self.access_token(&[
            ("grant_type", "fb_exchange_token"),
            ("client_id", self.config.fb_app_id.as_str()),
            ("client_secret", self.config.fb_app_secret.as_str()),
            ("fb_exchange_token", token),
        ])
        .await
    }

    /// A GET of /me with the token and exactly the proof given (or none).
    async fn me_with_proof(&self, token: &str, proof: Option<&str>) -> reqwest::Response {
        let mut query = vec![("access_token", token)];
        query.extend(proof.map(|p| ("appsecret_proof", p)));
        self.get(&format!("/{V}/me"), &query).await
    }
}

fn assert_token_error(status: StatusCode, body: &Value, subcode: i64) {
    assert_graph_error(status, body, 190, Some(subcode));
    assert_eq!(body["error"]["type"], "OAuthException");
}

#[tokio::test]
async fn dialog_code_short_and_long_lived_exchange_chain_works_with_appsecret_proof() {
    let fb = Sim::start().await;
    let code = fb.dialog_code().await;
    let (status, short) = fb.exchange_code(&code).await;
    assert_eq!(status, 200, "{short}");
    assert_eq!(short["token_type"], "bearer");
    assert_eq!(short["expires_in"], fb.config.short_lived_secs);
    let short_token = short["access_token"].as_str().unwrap();
    assert!(short_token.starts_with("EAAB") && short_token.len() == 64);

    let (status, long) = fb.extend(short_token).await;
    assert_eq!(status, 200, "{long}");
    let long_token = long["access_token"].as_str().unwrap();
    assert_ne!(long_token, short_token);
    assert_eq!(long["expires_in"], fb.config.long_lived_secs);

    let (status, me) = fb
        .graph_json("/me", long_token, &[("fields", "id,name")])
        .await;
    assert_eq!(status, 200);
    assert_eq!(me, json!({"id": DEMO_USER_ID, "name": "Demo User"}));

    // The long-lived token can itself be exchanged again.
    let (status, again) = fb.extend(long_token).await;
    assert_eq!(status, 200);
    assert_ne!(again["access_token"], long["access_token"]);

    // The bearer header works as well as the query parameter.
    let r = fb
        .client
        .get(fb.url(&format!("/{V}/me")))
        .bearer_auth(long_token)
        .query(&[("appsecret_proof", fb.proof(long_token))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-app-usage"));
}

#[tokio::test]
async fn a_reused_code_a_wrong_redirect_and_a_wrong_secret_are_rejected() {
    let fb = Sim::start().await;
    let code = fb.dialog_code().await;
    let (status, _) = fb.exchange_code(&code).await;
    assert_eq!(status, 200);
    let (status, body) = fb.exchange_code(&code).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], 100);
    assert_eq!(body["error"]["error_subcode"], 36009);

    let (_, body) = fb.exchange_code("AQnot-a-code").await;
    assert_eq!(body["error"]["error_subcode"], 36007);

    let code = fb.dialog_code().await;
    let (_, body) = fb
        .exchange_code_with(&code, "http://elsewhere/cb", &fb.config.fb_app_secret)
        .await;
    assert_eq!(body["error"]["error_subcode"], 36008);

    let (status, body) = fb.exchange_code_with(&code, REDIRECT, "wrong").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], 101);
    // The code survives a rejected attempt.
    assert_eq!(fb.exchange_code(&code).await.0, 200);
}

#[tokio::test]
async fn a_code_expires_after_ten_minutes() {
    let fb = Sim::start().await;
    let code = fb.dialog_code().await;
    fb.advance(601).await;
    let (status, body) = fb.exchange_code(&code).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["error_subcode"], 36007);
}

#[tokio::test]
async fn debug_token_describes_a_valid_long_lived_user_token() {
    let fb = Sim::start().await;
    let token = fb.login(DEMO_USER_ID, true).await;
    let (status, body) = fb.debug(&token).await;
    assert_eq!(status, 200);
    let data = &body["data"];
    assert_eq!(data["app_id"], fb.config.fb_app_id.as_str());
    assert_eq!(data["type"], "USER");
    assert_eq!(data["application"], fb.config.fb_app_name.as_str());
    assert_eq!(data["is_valid"], true);
    assert_eq!(data["user_id"], DEMO_USER_ID);
    let issued = data["issued_at"].as_i64().unwrap();
    assert_eq!(
        data["expires_at"].as_i64().unwrap() - issued,
        fb.config.long_lived_secs
    );
    assert_eq!(
        data["data_access_expires_at"].as_i64().unwrap() - issued,
        fb.config.data_access_secs
    );
    assert!(
        data["scopes"]
            .as_array()
            .unwrap()
            .contains(&json!("pages_show_list"))
    );
    let granular = data["granular_scopes"].as_array().unwrap();
    let pages_show = granular
        .iter()
        .find(|g| g["scope"] == "pages_show_list")
        .unwrap();
    assert_eq!(pages_show["target_ids"].as_array().unwrap().len(), 2);
    assert!(data.get("error").is_none());

    // Short-lived tokens carry no issued_at.
    let short = fb.login(DEMO_USER_ID, false).await;
    let (_, body) = fb.debug(&short).await;
    assert!(body["data"].get("issued_at").is_none());
    assert_eq!(body["data"]["is_valid"], true);
}

#[tokio::test]
async fn debug_token_of_a_page_token_from_a_long_lived_user_never_expires() {
    let fb = Sim::start().await;
    let user = fb.login(DEMO_USER_ID, true).await;
    let (page_id, page_token) = fb.page_tokens(&user).await.remove(0);
    let (status, body) = fb.debug(&page_token).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["type"], "PAGE");
    assert_eq!(body["data"]["expires_at"], 0);
    assert_eq!(body["data"]["profile_id"], page_id.as_str());
    assert_eq!(body["data"]["user_id"], DEMO_USER_ID);
    assert_eq!(body["data"]["is_valid"], true);

    // The single-page read gives a page token too.
    let (status, body) = fb
        .graph_json(&format!("/{page_id}"), &user, &[("fields", "access_token")])
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["id"], page_id.as_str());
    assert!(body["access_token"].as_str().unwrap().starts_with("EAAB"));
    let (_, body) = fb
        .graph_json(
            &format!("/{page_id}"),
            &page_token,
            &[("fields", "id,name")],
        )
        .await;
    assert_eq!(body["name"], "Demo Coffee");
}

#[tokio::test]
async fn debug_token_reports_bad_input_tokens_with_http_200() {
    let fb = Sim::start().await;
    let token = fb.login(DEMO_USER_ID, true).await;
    fb.control("/_sim/revoke", json!({"token": token, "subcode": 467}))
        .await;
    let (status, body) = fb.debug(&token).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["is_valid"], false);
    assert_eq!(body["data"]["error"]["code"], 190);
    assert_eq!(body["data"]["error"]["subcode"], 467);
    assert!(body["data"]["error"]["message"].is_string());
    assert_eq!(body["data"]["user_id"], DEMO_USER_ID);

    let (status, body) = fb.debug("garbage").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"data": {"error": {"code": 190, "message": "Invalid OAuth access token - Cannot parse access token"},
            "is_valid": false, "scopes": []}})
    );
}

#[tokio::test]
async fn debug_token_with_a_bad_app_token_is_a_400_and_app_tokens_work() {
    let fb = Sim::start().await;
    let user = fb.login(DEMO_USER_ID, false).await;
    let (status, body) = fb
        .graph_json("/debug_token", &user, &[("input_token", &user)])
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], 100);

    let (_, body) = fb
        .access_token(&[
            ("grant_type", "client_credentials"),
            ("client_id", fb.config.fb_app_id.as_str()),
            ("client_secret", fb.config.fb_app_secret.as_str()),
        ])
        .await;
    let app_token = body["access_token"].as_str().unwrap();
    assert!(app_token.starts_with(&format!("{}|", fb.config.fb_app_id)));
    assert_eq!(body["token_type"], "bearer");
    let (status, body) = fb
        .graph_json("/debug_token", app_token, &[("input_token", app_token)])
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["data"],
        json!({"app_id": fb.config.fb_app_id, "type": "APP", "application": fb.config.fb_app_name,
            "is_valid": true, "scopes": []})
    );
}

#[tokio::test]
async fn me_accounts_pages_with_absolute_next_links_until_the_last_page() {
    let fb = Sim::start().await;
    let user = fb
        .control(
            "/_sim/users",
            json!({"name": "Paged", "pages": [{"name": "A"}, {"name": "B"}, {"name": "C"}]}),
        )
        .await;
    let user_id = user["id"].as_str().unwrap();
    let token = fb.login(user_id, true).await;
    let first = fb
        .graph(
            "/me/accounts",
            &token,
            &[
                (
                    "fields",
                    "id,name,access_token,category,category_list,tasks",
                ),
                ("limit", "1"),
            ],
        )
        .await;
    assert!(first.headers().contains_key("x-app-usage"));
    let mut body: Value = first.json().await.unwrap();
    let mut names = Vec::new();
    loop {
        let page = &body["data"][0];
        names.push(page["name"].as_str().unwrap().to_string());
        assert!(page["access_token"].as_str().unwrap().starts_with("EAAB"));
        assert!(
            page["tasks"]
                .as_array()
                .unwrap()
                .contains(&json!("ANALYZE"))
        );
        assert!(page["category_list"][0]["id"].is_string());
        assert!(body["paging"]["cursors"]["after"].is_string());
        let Some(next) = body["paging"]["next"].as_str() else {
            break;
        };
        assert!(next.starts_with(&fb.sim.base_url()), "{next}");
        // Like Meta's, the link carries the token but not its proof.
        assert!(next.contains("access_token=") && !next.contains("appsecret_proof="));
        let next = format!("{next}&appsecret_proof={}", fb.proof(&token));
        body = json_of(fb.client.get(next)).await;
    }
    assert_eq!(names, ["A", "B", "C"]);
}

#[tokio::test]
async fn missing_or_wrong_appsecret_proof_is_rejected() {
    let fb = Sim::start().await;
    let token = fb.login(DEMO_USER_ID, false).await;
    let r = fb.me_with_proof(&token, None).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], 100);
    assert_eq!(body["error"]["type"], "GraphMethodException");
    assert_eq!(
        body["error"]["message"],
        "API calls from the server require an appsecret_proof argument"
    );

    let wrong = appsecret_proof("not-the-secret", &token);
    let r = fb.me_with_proof(&token, Some(&wrong)).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "Invalid appsecret_proof provided in the API argument"
    );
}

#[tokio::test]
async fn revoking_a_user_kills_its_page_tokens_too() {
    let fb = Sim::start().await;
    let user = fb.login(DEMO_USER_ID, true).await;
    let pages = fb.page_tokens(&user).await;
    fb.control("/_sim/revoke", json!({"user_id": DEMO_USER_ID}))
        .await;
    let r = fb.graph("/me", &user, &[]).await;
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.starts_with("OAuth \"Facebook Platform\" \"invalid_token\""));
    let (status, body) = (r.status(), r.json::<Value>().await.unwrap());
    assert_token_error(status, &body, 460);
    for (page_id, page_token) in &pages {
        let (status, body) = fb.graph_json(&format!("/{page_id}"), page_token, &[]).await;
        assert_token_error(status, &body, 460);
    }
    // Exchanging a revoked token fails the same way; a new login works.
    let (status, body) = fb.extend(&user).await;
    assert_token_error(status, &body, 460);
    let fresh = fb.login(DEMO_USER_ID, false).await;
    assert_eq!(fb.graph("/me", &fresh, &[]).await.status(), 200);
}

#[tokio::test]
async fn revoking_a_page_kills_only_that_pages_tokens() {
    let fb = Sim::start().await;
    let user = fb.login(DEMO_USER_ID, true).await;
    let pages = fb.page_tokens(&user).await;
    let (revoked_id, revoked_token) = &pages[0];
    let (other_id, other_token) = &pages[1];
    fb.control(
        "/_sim/revoke",
        json!({"page_id": revoked_id, "subcode": 492}),
    )
    .await;
    let (status, body) = fb
        .graph_json(&format!("/{revoked_id}"), revoked_token, &[])
        .await;
    assert_token_error(status, &body, 492);
    let r = fb.graph(&format!("/{other_id}"), other_token, &[]).await;
    assert_eq!(r.status(), 200);
    let buc = header_json(&r, "x-business-use-case-usage");
    assert!(buc[other_id.as_str()].is_array());
    assert_eq!(fb.graph("/me", &user, &[]).await.status(), 200);
}

#[tokio::test]
async fn lapsed_data_access_fails_user_and_page_calls_until_the_next_login() {
    let fb = Sim::start().await;
    let user = fb.login(DEMO_USER_ID, true).await;
    let (page_id, page_token) = fb.page_tokens(&user).await.remove(0);
    fb.control("/_sim/lapse_data_access", json!({"user_id": DEMO_USER_ID}))
        .await;
    let (status, body) = fb.graph_json("/me", &user, &[]).await;
    assert_token_error(status, &body, 463);
    let (status, body) = fb
        .graph_json(&format!("/{page_id}"), &page_token, &[])
        .await;
    assert_token_error(status, &body, 463);
    let (_, debug) = fb.debug(&user).await;
    assert_eq!(debug["data"]["is_valid"], false);
    assert_eq!(debug["data"]["error"]["subcode"], 463);
    fb.login(DEMO_USER_ID, false).await;
    assert_eq!(fb.graph("/me", &user, &[]).await.status(), 200);
}

#[tokio::test]
async fn advancing_the_clock_expires_a_short_lived_token_and_its_page_tokens() {
    let fb = Sim::start().await;
    let before = fb.now().await;
    let short = fb.login(DEMO_USER_ID, false).await;
    let long = fb.login(DEMO_USER_ID, true).await;
    let (_, short_page) = fb.page_tokens(&short).await.remove(0);
    let (_, long_page) = fb.page_tokens(&long).await.remove(0);
    let (_, debug) = fb.debug(&short_page).await;
    assert_ne!(debug["data"]["expires_at"], 0);

    let after = fb.advance(3601).await;
    assert!(after["now"].as_i64().unwrap() >= before + 3601);
    let (status, body) = fb.graph_json("/me", &short, &[]).await;
    assert_token_error(status, &body, 463);
    let (status, body) = fb.graph_json("/me", &short_page, &[]).await;
    assert_token_error(status, &body, 463);
    let (status, body) = fb.extend(&short).await;
    assert_token_error(status, &body, 463);
    assert_eq!(fb.graph("/me", &long, &[]).await.status(), 200);
    assert_eq!(fb.graph("/me", &long_page, &[]).await.status(), 200);
}

#[tokio::test]
async fn a_system_user_token_never_expires_and_reads_the_business_pages() {
    let fb = Sim::start().await;
    let business = fb
        .control(
            "/_sim/businesses",
            json!({"name": "Acme", "page_ids": ["100000000000011", "555000000000001"]}),
        )
        .await;
    let token = business["system_user_token"].as_str().unwrap();
    let (_, debug) = fb.debug(token).await;
    assert_eq!(debug["data"]["type"], "SYSTEM_USER");
    assert_eq!(debug["data"]["expires_at"], 0);
    assert_eq!(debug["data"]["data_access_expires_at"], 0);
    let (status, me) = fb.graph_json("/me", token, &[("fields", "id,name")]).await;
    assert_eq!(status, 200);
    assert!(me["id"].is_string());
    let (_, accounts) = fb.graph_json("/me/accounts", token, &[]).await;
    let ids: Vec<&str> = accounts["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["100000000000011", "555000000000001"]);
    fb.advance(400 * 86_400).await;
    assert_eq!(fb.graph("/me", token, &[]).await.status(), 200);
}

#[tokio::test]
async fn a_counted_error_fault_answers_twice_then_the_real_endpoint_does() {
    let fb = Sim::start().await;
    let token = fb.login(DEMO_USER_ID, false).await;
    let r = fb
        .post_json(
            "/_sim/faults",
            &json!({"path": "/me", "count": 2,
            "error": {"http_status": 400, "code": 80001, "is_transient": true, "estimated_time_to_regain_access": 7}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    for _ in 0..2 {
        let r = fb.graph("/me", &token, &[]).await;
        assert_eq!(r.status(), 400);
        let buc = header_json(&r, "x-business-use-case-usage");
        let entry = &buc.as_object().unwrap().values().next().unwrap()[0];
        assert_eq!(entry["estimated_time_to_regain_access"], 7);
        assert_eq!(entry["call_count"], 100);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], 80001);
        assert_eq!(body["error"]["is_transient"], true);
    }
    assert_eq!(fb.graph("/me", &token, &[]).await.status(), 200);
    fb.assert_counts(&[("/me", 3)]).await;
}

#[tokio::test]
async fn a_latency_fault_delays_matching_calls_only() {
    let fb = Sim::start().await;
    fb.control(
        "/_sim/faults",
        json!({"path": "/oauth/access_token", "latency_ms": 300}),
    )
    .await;
    let token = fb.login(DEMO_USER_ID, false).await;
    let started = Instant::now();
    assert_eq!(fb.graph("/me", &token, &[]).await.status(), 200);
    assert!(started.elapsed() < Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(fb.extend(&token).await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(fb.delete("/_sim/faults").await.is_success());
    let started = Instant::now();
    assert_eq!(fb.extend(&token).await.0, 200);
    assert!(started.elapsed() < Duration::from_millis(300));
}

#[tokio::test]
async fn a_usage_fault_sets_the_percentages_in_the_usage_headers() {
    let fb = Sim::start().await;
    let user = fb.login(DEMO_USER_ID, true).await;
    let (page_id, page_token) = fb.page_tokens(&user).await.remove(0);
    let r = fb.graph("/me", &user, &[]).await;
    let usage = header_json(&r, "x-app-usage");
    assert_eq!(usage["call_count"], 1);

    fb.control("/_sim/faults", json!({"path": "/", "usage_pct": 96}))
        .await;
    let r = fb.graph(&format!("/{page_id}"), &page_token, &[]).await;
    assert_eq!(r.status(), 200);
    let usage = header_json(&r, "x-app-usage");
    assert_eq!(
        usage,
        json!({"call_count": 96, "total_cputime": 96, "total_time": 96})
    );
    let buc = header_json(&r, "x-business-use-case-usage");
    assert_eq!(buc[page_id.as_str()][0]["call_count"], 96);
}

#[tokio::test]
async fn stats_count_calls_by_path_template_and_reset() {
    let fb = Sim::start().await;
    let code = fb.dialog_code().await;
    let (_, short) = fb.exchange_code(&code).await;
    let short = short["access_token"].as_str().unwrap();
    fb.extend(short).await;
    fb.debug(short).await;
    fb.graph("/me", short, &[]).await;
    fb.graph("/me/accounts", short, &[]).await;
    fb.graph("/100000000000011", short, &[]).await;
    fb.graph("/100000000000012", short, &[]).await;
    let stats = fb.stats().await;
    assert_eq!(
        stats,
        json!({
            "/dialog/oauth": 1,
            "/oauth/access_token:authorization_code": 1,
            "/oauth/access_token:fb_exchange_token": 1,
            "/debug_token": 1,
            "/me": 1,
            "/me/accounts": 1,
            "/{id}": 2,
        })
    );
    assert!(fb.delete("/_sim/stats").await.is_success());
    assert_eq!(fb.stats().await, json!({}));
}

#[tokio::test]
async fn the_dialog_denies_when_no_user_is_set_and_rejects_a_wrong_client_id() {
    let fb = Sim::start_with(SimConfig {
        demo_user: false,
        ..SimConfig::default()
    })
    .await;
    let r = fb
        .dialog(&[
            ("client_id", fb.config.fb_app_id.as_str()),
            ("redirect_uri", REDIRECT),
            ("state", "s"),
        ])
        .await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .contains("error=access_denied")
    );

    let user = fb.control("/_sim/users", json!({"name": "Ann"})).await;
    fb.control("/_sim/dialog_user", json!({"user_id": user["id"]}))
        .await;
    let code = fb.dialog_code().await;
    let (_, token) = fb.exchange_code(&code).await;
    let (_, me) = fb
        .graph_json("/me", token["access_token"].as_str().unwrap(), &[])
        .await;
    assert_eq!(me["name"], "Ann");

    let r = fb
        .dialog(&[("client_id", "999"), ("redirect_uri", REDIRECT)])
        .await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn ten_thousand_users_seed_and_log_in_quickly() {
    let fb = Sim::start().await;
    let started = Instant::now();
    let r = fb
        .post_json(
            "/_sim/users",
            &json!({"count": 10_000, "pages_per_user": 1}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    let users = body["users"].as_array().unwrap();
    assert_eq!(users.len(), 10_000);
    assert_eq!(users[0]["pages"].as_array().unwrap().len(), 1);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // A sample of logins stays cheap with the full world loaded.
    let started = Instant::now();
    for user in users.iter().step_by(50) {
        fb.login(user["id"].as_str().unwrap(), true).await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let fb = Sim::start().await;
    let url = fb.url("/_sim/clock");
    let client = reqwest::Client::new();
    assert!(client.get(&url).send().await.is_ok());
    let addr = fb.sim.addr();
    assert_eq!(fb.sim.base_url(), format!("http://{addr}"));
    fb.sim.stop().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let fresh = reqwest::Client::new();
        if fresh.get(&url).send().await.is_err() {
            break;
        }
        assert!(Instant::now() < deadline, "the simulator still answers");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_next_link_followed_as_given_is_refused_while_the_app_requires_proofs() {
    let fb = Sim::start().await;
    let token = fb.login(DEMO_USER_ID, true).await;
    let (status, body) = fb
        .graph_json("/me/accounts", &token, &[("limit", "1")])
        .await;
    assert_eq!(status, 200, "{body}");
    let next = body["paging"]["next"].as_str().unwrap().to_string();
    let r = fb.client.get(&next).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], 100);
    assert_eq!(
        body["error"]["message"],
        "API calls from the server require an appsecret_proof argument"
    );
    let r = fb
        .client
        .get(format!("{next}&appsecret_proof={}", fb.proof(&token)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn without_require_app_secret_a_missing_proof_passes_and_a_wrong_one_does_not() {
    let fb = Sim::start_with(SimConfig {
        require_appsecret_proof: false,
        ..SimConfig::default()
    })
    .await;
    let token = fb.login(DEMO_USER_ID, false).await;
    assert_eq!(fb.me_with_proof(&token, None).await.status(), 200);
    let wrong = appsecret_proof("not-the-secret", &token);
    let r = fb.me_with_proof(&token, Some(&wrong)).await;
    assert_eq!(r.status(), 400);
    // Switched on at run time, as in the app dashboard.
    let on = fb
        .control("/_sim/app", json!({"require_appsecret_proof": true}))
        .await;
    assert_eq!(on["require_appsecret_proof"], true);
    let r = fb.me_with_proof(&token, None).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], 100);
}

#[tokio::test]
async fn a_usage_level_shows_in_its_own_scope_only_and_fails_its_calls_at_100_percent() {
    let fb = Sim::start().await;
    let user = fb.login(DEMO_USER_ID, true).await;
    let pages = fb.page_tokens(&user).await;
    let ((a, a_token), (b, b_token)) = (&pages[0], &pages[1]);
    fb.control(
        "/_sim/usage",
        json!({"scope": "business", "id": a, "type": "pages", "pct": 100,
               "estimated_time_to_regain_access": 10}),
    )
    .await;
    let r = fb.graph(&format!("/{a}"), a_token, &[]).await;
    assert_eq!(r.status(), 400);
    let buc = header_json(&r, "x-business-use-case-usage");
    assert_eq!(
        buc,
        json!({ a.as_str(): [{"type": "pages", "call_count": 100, "total_cputime": 100,
                              "total_time": 100, "estimated_time_to_regain_access": 10}] })
    );
    assert_eq!(header_json(&r, "x-app-usage")["call_count"], 1);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], 80001);
    assert_eq!(body["error"]["error_subcode"], 2446079);

    let r = fb.graph(&format!("/{b}"), b_token, &[]).await;
    assert_eq!(r.status(), 200);
    let buc = header_json(&r, "x-business-use-case-usage");
    assert_eq!(buc.as_object().unwrap().len(), 1, "{buc}");
    assert_eq!(buc[b.as_str()][0]["call_count"], 1);
    assert_eq!(header_json(&r, "x-app-usage")["call_count"], 1);
    // The user token's own calls are not page A's either.
    assert_eq!(fb.graph("/me", &user, &[]).await.status(), 200);

    assert!(fb.delete("/_sim/usage").await.is_success());
    assert_eq!(fb.graph(&format!("/{a}"), a_token, &[]).await.status(), 200);
}
