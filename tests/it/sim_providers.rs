//! The TikTok Shop and Google parts of the simulator: auth flows, token
//! rotation and revocation, searchStream reports, errors and faults.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokenkeeper::simulator::{DEMO_CUSTOMER_ID, DEMO_GOOGLE_USER_ID, DEMO_TIKTOK_OPEN_ID};

use crate::sim_support::{NO_QUERY, Sim};

const REDIRECT: &str = "http://127.0.0.1:9/callback";
const SEVEN_DAYS: i64 = 7 * 86_400;
const ONE_YEAR: i64 = 365 * 86_400;

impl Sim {
    /// A TikTok GET; TikTok answers HTTP 200 even for errors.
    async fn tiktok(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let r = self.get(path, query).await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }

    async fn tiktok_refresh(&self, refresh_token: &str, grant_type: &str) -> Value {
        let c = &self.config;
        self.tiktok(
            "/api/v2/token/refresh",
            &[
                ("app_key", c.tiktok_app_key.as_str()),
                ("app_secret", c.tiktok_app_secret.as_str()),
                ("refresh_token", refresh_token),
                ("grant_type", grant_type),
            ],
        )
        .await
    }

    async fn tiktok_shop(&self, access_token: &str) -> Value {
        let r = self
            .client
            .get(self.url("/api/v2/shop/get_authorized_shop"))
            .header("x-tts-access-token", access_token)
            .send()
            .await
            .unwrap();
        r.json().await.unwrap()
    }

    /// A token pair for the demo shop, issued through the control API.
    async fn tiktok_pair(&self, body: Value) -> Value {
        self.control(
            &format!("/_sim/tiktok/shops/{DEMO_TIKTOK_OPEN_ID}/authorize"),
            body,
        )
        .await
    }

    async fn google_token(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let c = &self.config;
        let mut all = vec![
            ("client_id", c.google_client_id.as_str()),
            ("client_secret", c.google_client_secret.as_str()),
        ];
        all.extend_from_slice(form);
        self.post_form("/token", &all).await
    }

    async fn search(
        &self,
        customer_id: &str,
        token: &str,
        developer_token: &str,
        query: &str,
    ) -> (StatusCode, Value) {
        let r = self
            .client
            .post(self.url(&format!(
                "/v23/customers/{customer_id}/googleAds:searchStream"
            )))
            .bearer_auth(token)
            .header("developer-token", developer_token)
            .json(&json!({ "query": query }))
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap())
    }

    /// The demo Google user's tokens, from a consent through the control API.
    async fn demo_google_consent(&self) -> Value {
        self.control(
            &format!("/_sim/google/users/{DEMO_GOOGLE_USER_ID}/consent"),
            json!({}),
        )
        .await
    }

    /// A Google user with these customers and a fresh access token.
    async fn google_access(&self, customer_ids: &[&str]) -> String {
        let user = self
            .control(
                "/_sim/google/users",
                json!({ "customer_ids": customer_ids }),
            )
            .await;
        let id = user["id"].as_str().unwrap();
        let tokens = self
            .control(&format!("/_sim/google/users/{id}/consent"), json!({}))
            .await;
        tokens["access_token"].as_str().unwrap().to_string()
    }
}

fn query_param(location: &str, key: &str) -> Option<String> {
    let query = location.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| v.to_string())
    })
}

fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_string()
}

fn assert_near(actual: &Value, expected: i64) {
    let actual = actual.as_i64().expect("an integer");
    assert!(
        (actual - expected).abs() <= 2,
        "{actual} is not about {expected}"
    );
}

#[tokio::test]
async fn tiktok_authorize_then_token_get_gives_absolute_expiries_and_refresh_rotates_both_tokens() {
    let sim = Sim::start().await;
    let c = &sim.config;
    let r = sim
        .get(
            "/tiktok/authorize",
            &[
                ("app_key", c.tiktok_app_key.as_str()),
                ("state", "s 1"),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let loc = location(&r);
    assert!(loc.starts_with(REDIRECT), "{loc}");
    assert_eq!(query_param(&loc, "state").as_deref(), Some("s%201"));
    let code = query_param(&loc, "code").expect("a code");

    let now = sim.now().await;
    let get = [
        ("app_key", c.tiktok_app_key.as_str()),
        ("app_secret", c.tiktok_app_secret.as_str()),
        ("auth_code", code.as_str()),
        ("grant_type", "authorized_code"),
    ];
    let body = sim.tiktok("/api/v2/token/get", &get).await;
    assert_eq!(body["code"], 0, "{body}");
    assert_eq!(body["message"], "success");
    assert!(body["request_id"].is_string());
    let data = &body["data"];
    assert_near(&data["access_token_expire_in"], now + SEVEN_DAYS);
    assert_near(&data["refresh_token_expire_in"], now + ONE_YEAR);
    assert_eq!(data["open_id"], DEMO_TIKTOK_OPEN_ID);
    assert_eq!(data["seller_name"], "Demo Shop");
    assert_eq!(data["seller_base_region"], "VN");
    assert_eq!(data["user_type"], 0);
    assert!(!data["granted_scopes"].as_array().unwrap().is_empty());

    let reused = sim.tiktok("/api/v2/token/get", &get).await;
    assert_ne!(reused["code"], 0, "codes are single-use");

    let old_access = data["access_token"].as_str().unwrap();
    let old_refresh = data["refresh_token"].as_str().unwrap();
    let refreshed = sim.tiktok_refresh(old_refresh, "refresh_token").await;
    assert_eq!(refreshed["code"], 0, "{refreshed}");
    let new = &refreshed["data"];
    assert_ne!(new["access_token"], old_access);
    assert_ne!(new["refresh_token"], old_refresh);
    assert_near(&new["access_token_expire_in"], now + SEVEN_DAYS);

    let again = sim.tiktok_refresh(old_refresh, "refresh_token").await;
    assert_eq!(again["code"], 36_004_005);
    assert_eq!(again["message"], "can not find related auth record");
    assert_eq!(again["data"], Value::Null);

    let shops = sim.tiktok_shop(new["access_token"].as_str().unwrap()).await;
    assert_eq!(shops["code"], 0, "{shops}");
    assert_eq!(shops["data"]["shops"][0]["name"], "Demo Shop");
    assert!(shops["data"]["shops"][0]["cipher"].is_string());

    sim.assert_counts(&[
        ("/tiktok/authorize", 1),
        ("/api/v2/token/get", 2),
        ("/api/v2/token/refresh", 2),
    ])
    .await;
}

#[tokio::test]
async fn an_expired_tiktok_refresh_token_answers_36004001_and_an_expired_access_token_105002() {
    let sim = Sim::start().await;
    let pair = sim
        .tiktok_pair(json!({"access_expires_in_secs": 240, "refresh_expires_in_secs": -1}))
        .await;
    let body = sim
        .tiktok_refresh(pair["refresh_token"].as_str().unwrap(), "refresh_token")
        .await;
    assert_eq!(body["code"], 36_004_001);
    assert_eq!(body["message"], "rt has expired");
    assert_eq!(body["data"], Value::Null);

    let access = pair["access_token"].as_str().unwrap();
    assert_eq!(sim.tiktok_shop(access).await["code"], 0);
    sim.advance(241).await;
    let expired = sim.tiktok_shop(access).await;
    assert_eq!(expired["code"], 105_002);
    assert_eq!(expired["message"], "Expired credentials");
    assert_eq!(sim.tiktok_shop("ROW_nonsense").await["code"], 105_001);
}

#[tokio::test]
async fn tiktok_refresh_accepts_both_grant_types_and_rejects_a_wrong_secret() {
    let sim = Sim::start().await;
    let pair = sim.tiktok_pair(json!({})).await;
    let first = sim
        .tiktok_refresh(pair["refresh_token"].as_str().unwrap(), "refresh_token")
        .await;
    assert_eq!(first["code"], 0, "{first}");
    // The official Node SDK sends authorized_code on refresh too.
    let second = sim
        .tiktok_refresh(
            first["data"]["refresh_token"].as_str().unwrap(),
            "authorized_code",
        )
        .await;
    assert_eq!(second["code"], 0, "{second}");

    let c = &sim.config;
    let wrong = sim
        .tiktok(
            "/api/v2/token/refresh",
            &[
                ("app_key", c.tiktok_app_key.as_str()),
                ("app_secret", "not-the-secret"),
                (
                    "refresh_token",
                    second["data"]["refresh_token"].as_str().unwrap(),
                ),
                ("grant_type", "refresh_token"),
            ],
        )
        .await;
    assert_eq!(wrong["code"], 36_004_002);

    sim.control(
        "/_sim/tiktok/revoke",
        json!({"open_id": DEMO_TIKTOK_OPEN_ID}),
    )
    .await;
    let revoked = sim
        .tiktok_refresh(
            second["data"]["refresh_token"].as_str().unwrap(),
            "refresh_token",
        )
        .await;
    assert_eq!(revoked["code"], 36_004_005);
}

#[tokio::test]
async fn a_tiktok_error_fault_answers_its_code_in_an_http_200() {
    let sim = Sim::start().await;
    let pair = sim.tiktok_pair(json!({})).await;
    sim.control(
        "/_sim/faults",
        json!({"path": "/api/v2/token/refresh", "count": 1, "error": {"code": 36004001}}),
    )
    .await;
    let refresh = pair["refresh_token"].as_str().unwrap();
    let faulted = sim.tiktok_refresh(refresh, "refresh_token").await;
    assert_eq!(faulted["code"], 36_004_001);
    assert_eq!(faulted["message"], "rt has expired");
    assert_eq!(faulted["data"], Value::Null);
    assert!(faulted["request_id"].is_string());
    let real = sim.tiktok_refresh(refresh, "refresh_token").await;
    assert_eq!(real["code"], 0, "the fault fired once: {real}");
}

#[tokio::test]
async fn google_consent_code_gives_a_refresh_token_and_the_refresh_grant_new_access_tokens() {
    let sim = Sim::start().await;
    let c = &sim.config;
    let consent = |offline: bool| {
        let mut query = vec![
            ("client_id", c.google_client_id.as_str()),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "https://www.googleapis.com/auth/adwords"),
            ("prompt", "consent"),
            ("state", "g1"),
        ];
        if offline {
            query.push(("access_type", "offline"));
        }
        let sim = &sim;
        async move { sim.get("/o/oauth2/v2/auth", &query).await }
    };
    let r = consent(true).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let loc = location(&r);
    assert_eq!(query_param(&loc, "state").as_deref(), Some("g1"));
    assert!(query_param(&loc, "scope").is_some());
    let code = query_param(&loc, "code").unwrap();
    let code = code.replace("%2F", "/");

    let exchange = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    let (status, tokens) = sim.google_token(&exchange).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert!(
        tokens["access_token"]
            .as_str()
            .unwrap()
            .starts_with("ya29.")
    );
    assert!(tokens["refresh_token"].as_str().unwrap().starts_with("1//"));
    assert_eq!(tokens["expires_in"], 3599);
    assert_eq!(tokens["scope"], "https://www.googleapis.com/auth/adwords");
    assert_eq!(tokens["token_type"], "Bearer");

    let (status, reused) = sim.google_token(&exchange).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(reused["error"], "invalid_grant");

    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, refreshed) = sim
        .google_token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)])
        .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert_ne!(refreshed["access_token"], tokens["access_token"]);
    assert_eq!(refreshed["expires_in"], 3599);
    assert!(refreshed.get("refresh_token").is_none());

    let online = location(&consent(false).await);
    let online_code = query_param(&online, "code").unwrap().replace("%2F", "/");
    let (_, no_refresh) = sim
        .google_token(&[
            ("grant_type", "authorization_code"),
            ("code", online_code.as_str()),
            ("redirect_uri", REDIRECT),
        ])
        .await;
    assert!(no_refresh.get("refresh_token").is_none(), "{no_refresh}");

    let (status, body) = sim
        .post_form(
            "/token",
            &[
                ("client_id", c.google_client_id.as_str()),
                ("client_secret", "wrong"),
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");

    sim.assert_counts(&[
        ("/o/oauth2/v2/auth", 2),
        ("/token:authorization_code", 3),
        ("/token:refresh_token", 2),
    ])
    .await;
}

#[tokio::test]
async fn a_revoked_google_refresh_token_answers_invalid_grant_400() {
    let sim = Sim::start().await;
    let tokens = sim.demo_google_consent().await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    sim.control("/_sim/google/revoke", json!({"refresh_token": refresh}))
        .await;
    let (status, body) = sim
        .google_token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
    );
    let access = tokens["access_token"].as_str().unwrap();
    let (status, body) = sim
        .search(
            DEMO_CUSTOMER_ID,
            access,
            &sim.config.google_developer_token,
            "SELECT campaign.id FROM campaign",
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body[0]["error"]["details"][0]["errors"][0]["errorCode"]["authenticationError"],
        "OAUTH_TOKEN_REVOKED"
    );
}

#[tokio::test]
async fn a_google_token_fault_answers_the_rules_oauth_error() {
    let sim = Sim::start().await;
    let tokens = sim.demo_google_consent().await;
    sim.control(
        "/_sim/faults",
        json!({"path": "/token", "count": 1,
               "error": {"http_status": 503, "code": 0, "oauth_error": "temporarily_unavailable"}}),
    )
    .await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    let (status, body) = sim.google_token(&form).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"], "temporarily_unavailable");
    let (status, _) = sim.google_token(&form).await;
    assert_eq!(status, StatusCode::OK);
}

/// Two enabled campaigns and a paused one, all running through June 2024.
async fn seed_customer(sim: &Sim, id: &str) {
    let daily = |i: i64, c: i64, cost: i64, conv: f64| json!({"impressions": i, "clicks": c, "cost_micros": cost, "conversions": conv});
    let body = json!({"id": id, "campaigns": [
        {"id": "9001", "name": "Brand", "daily": daily(1000, 30, 4_500_000, 2.5), "start_date": "2024-01-01"},
        {"id": 9002, "name": "Generic", "daily": daily(200, 4, 1_000_000, 0.0), "start_date": "2024-06-11"},
        {"id": "9003", "name": "Old", "status": "PAUSED", "daily": daily(50, 1, 10_000, 1.0),
         "start_date": "2024-01-01", "end_date": "2024-06-05"},
    ]});
    let r = sim.post_json("/_sim/google/customers", &body).await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn search_stream_gives_exact_totals_for_a_seeded_customer_over_a_date_range() {
    let sim = Sim::start().await;
    seed_customer(&sim, "5550001111").await;
    let token = sim.google_access(&["5550001111"]).await;
    let dev = sim.config.google_developer_token.clone();
    let range = "segments.date BETWEEN '2024-06-01' AND '2024-06-30'";

    let totals = format!(
        "SELECT campaign.id, campaign.name, campaign.status, metrics.impressions, metrics.clicks, \
         metrics.cost_micros, metrics.conversions, metrics.ctr FROM campaign WHERE {range}"
    );
    let (status, body) = sim.search("5550001111", &token, &dev, &totals).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let batches = body.as_array().expect("an array of batches");
    assert_eq!(batches.len(), 1);
    assert_eq!(
        batches[0]["fieldMask"],
        "campaign.id,campaign.name,campaign.status,metrics.impressions,metrics.clicks,metrics.costMicros,metrics.conversions,metrics.ctr"
    );
    assert!(batches[0]["requestId"].is_string());
    let rows = batches[0]["results"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[0],
        json!({
            "campaign": {"resourceName": "customers/5550001111/campaigns/9001", "id": "9001",
                         "name": "Brand", "status": "ENABLED"},
            "metrics": {"impressions": "30000", "clicks": "900", "costMicros": "135000000",
                        "conversions": 75.0, "ctr": 0.03},
        })
    );
    // 20 days from 2024-06-11; conversions 0 is a default value and left out.
    assert_eq!(
        rows[1]["metrics"],
        json!({"impressions": "4000", "clicks": "80", "costMicros": "20000000", "ctr": 0.02})
    );
    // Paused, ran 5 days of the range.
    assert_eq!(rows[2]["campaign"]["status"], "PAUSED");
    assert_eq!(rows[2]["metrics"]["impressions"], "250");

    let daily = format!(
        "SELECT campaign.id, metrics.impressions, metrics.cost_micros, segments.date FROM campaign \
         WHERE {range} AND campaign.id IN (9001, 9002) AND campaign.status = 'ENABLED' \
         ORDER BY segments.date DESC"
    );
    let (status, body) = sim.search("5550001111", &token, &dev, &daily).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rows = body[0]["results"].as_array().unwrap();
    assert_eq!(rows.len(), 30 + 20);
    assert_eq!(rows[0]["segments"]["date"], "2024-06-30");
    assert_eq!(rows[49]["segments"]["date"], "2024-06-01");
    let cost: i64 = rows
        .iter()
        .map(|r| {
            r["metrics"]["costMicros"]
                .as_str()
                .unwrap()
                .parse::<i64>()
                .unwrap()
        })
        .sum();
    assert_eq!(cost, 135_000_000 + 20_000_000);
    assert_eq!(
        sim.stats().await["/customers/{id}/googleAds:searchStream"],
        2
    );
}

#[tokio::test]
async fn search_stream_splits_more_than_ten_thousand_rows_into_batches() {
    let sim = Sim::start().await;
    let campaigns: Vec<Value> = (1..=28)
        .map(|i| {
            json!({"id": i, "name": format!("C{i}"), "daily": {"clicks": 1},
                        "start_date": "2023-01-01"})
        })
        .collect();
    sim.control(
        "/_sim/google/customers",
        json!({"id": "5550002222", "campaigns": campaigns}),
    )
    .await;
    let token = sim.google_access(&["5550002222"]).await;
    let query = "SELECT campaign.id, metrics.clicks, segments.date FROM campaign \
                 WHERE segments.date BETWEEN '2023-01-01' AND '2023-12-31'";
    let (status, body) = sim
        .search(
            "5550002222",
            &token,
            &sim.config.google_developer_token,
            query,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let batches = body.as_array().unwrap();
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[0]["results"].as_array().unwrap().len(), 10_000);
    assert_eq!(
        batches[1]["results"].as_array().unwrap().len(),
        28 * 365 - 10_000
    );
}

#[tokio::test]
async fn search_stream_with_an_expired_access_token_answers_401_wrapped_in_an_array() {
    let sim = Sim::start().await;
    let token = sim.google_access(&[DEMO_CUSTOMER_ID]).await;
    sim.advance(3600).await;
    let (status, body) = sim
        .search(
            DEMO_CUSTOMER_ID,
            &token,
            &sim.config.google_developer_token,
            "SELECT campaign.id FROM campaign",
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let error = &body.as_array().expect("an array")[0]["error"];
    assert_eq!(error["code"], 401);
    assert_eq!(error["status"], "UNAUTHENTICATED");
    let failure = &error["details"][0];
    assert_eq!(
        failure["@type"],
        "type.googleapis.com/google.ads.googleads.v23.errors.GoogleAdsFailure"
    );
    assert_eq!(
        failure["errors"][0]["errorCode"],
        json!({"authenticationError": "OAUTH_TOKEN_EXPIRED"})
    );
}

#[tokio::test]
async fn search_stream_with_a_wrong_developer_token_or_customer_answers_403_and_a_bad_query_400() {
    let sim = Sim::start().await;
    let token = sim.google_access(&[DEMO_CUSTOMER_ID]).await;
    let dev = sim.config.google_developer_token.clone();
    let query = "SELECT campaign.id FROM campaign";
    // (customer, developer token, query, status, its name where checked, error code)
    let cases = [
        (
            DEMO_CUSTOMER_ID,
            "wrong",
            query,
            StatusCode::FORBIDDEN,
            Some("PERMISSION_DENIED"),
            json!({"authorizationError": "DEVELOPER_TOKEN_NOT_APPROVED"}),
        ),
        (
            "9999999999",
            &dev,
            query,
            StatusCode::FORBIDDEN,
            None,
            json!({"authorizationError": "USER_PERMISSION_DENIED"}),
        ),
        (
            DEMO_CUSTOMER_ID,
            &dev,
            "SELECT campaign.bogus FROM campaign",
            StatusCode::BAD_REQUEST,
            Some("INVALID_ARGUMENT"),
            json!({"queryError": "UNRECOGNIZED_FIELD"}),
        ),
        (
            DEMO_CUSTOMER_ID,
            &dev,
            "SELECT segments.date FROM campaign",
            StatusCode::BAD_REQUEST,
            None,
            json!({"queryError": "EXPECTED_FILTERS_ON_DATE_RANGE"}),
        ),
    ];
    for (customer, developer, q, expected, status_name, error_code) in cases {
        let (status, body) = sim.search(customer, &token, developer, q).await;
        assert_eq!(status, expected, "{q}: {body}");
        if let Some(name) = status_name {
            assert_eq!(body[0]["error"]["status"], name, "{q}");
        }
        assert_eq!(
            body[0]["error"]["details"][0]["errors"][0]["errorCode"], error_code,
            "{q}"
        );
    }

    let (status, body) = sim.search(DEMO_CUSTOMER_ID, &token, &dev, query).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body[0]["results"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn graph_paths_still_reach_the_graph_handler_next_to_the_provider_routes() {
    let sim = Sim::start().await;
    let r = sim.get("/v25.0/me", NO_QUERY).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().contains_key("x-app-usage"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], 2500);
    assert!(sim.stats().await.get("/me").is_some());
}
