//! A bare simulator for the tests that speak its wire protocols directly
//! (no tokenkeeper service in between): start it, call its control API, and
//! make Graph calls with a token and its proof.

use reqwest::{Response, StatusCode};
use serde::Serialize;
use serde_json::Value;
use tokenkeeper::simulator::{self, SimConfig, SimHandle, appsecret_proof};

/// A query or form: name and value pairs.
pub type Pairs<'a> = [(&'a str, &'a str)];

/// No query at all.
pub const NO_QUERY: &Pairs<'static> = &[];

/// An answer's status and JSON body.
pub type Answer = (StatusCode, Value);

/// The Graph API version the simulator serves.
pub const V: &str = "v25.0";

/// A simulator plus a client that does not follow redirects, so tests see
/// the dialogs' and consent pages' 302s themselves.
pub struct Sim {
    pub sim: SimHandle,
    pub client: reqwest::Client,
    pub config: SimConfig,
}

impl Sim {
    pub async fn start() -> Self {
        Self::start_with(SimConfig::default()).await
    }

    pub async fn start_with(config: SimConfig) -> Self {
        let sim = simulator::start(config.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .expect("the simulator starts");
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            sim,
            client,
            config,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.base_url())
    }

    pub fn proof(&self, token: &str) -> String {
        appsecret_proof(&self.config.fb_app_secret, token)
    }

    async fn send(request: reqwest::RequestBuilder) -> Response {
        request.send().await.unwrap()
    }

    /// A plain GET of a simulator path.
    pub async fn get(&self, path: &str, query: &(impl Serialize + ?Sized)) -> Response {
        Self::send(self.client.get(self.url(path)).query(query)).await
    }

    /// A JSON POST of a simulator path, whatever its answer.
    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        Self::send(self.client.post(self.url(path)).json(body)).await
    }

    /// A form POST of a simulator path; the status and the JSON answer.
    pub async fn post_form(&self, path: &str, form: &(impl Serialize + ?Sized)) -> Answer {
        let r = Self::send(self.client.post(self.url(path)).form(form)).await;
        (r.status(), r.json().await.unwrap())
    }

    /// A DELETE of a simulator path; its status.
    pub async fn delete(&self, path: &str) -> StatusCode {
        Self::send(self.client.delete(self.url(path)))
            .await
            .status()
    }

    /// A control API call that must succeed; its JSON answer.
    pub async fn control(&self, path: &str, body: Value) -> Value {
        let r = self.post_json(path, &body).await;
        assert!(r.status().is_success(), "sim {path}: {}", r.status());
        r.json().await.unwrap_or(Value::Null)
    }

    pub async fn stats(&self) -> Value {
        self.get("/_sim/stats", NO_QUERY)
            .await
            .json()
            .await
            .unwrap()
    }

    /// Creates a Facebook user (with pages) from a `/_sim/users` body.
    pub async fn create_user(&self, body: Value) -> Value {
        self.control("/_sim/users", body).await
    }

    /// Creates a TikTok shop named `name` and makes it the one the consent
    /// page approves; the shop.
    pub async fn dialog_shop(&self, name: &str) -> Value {
        let shop = self
            .control(
                "/_sim/tiktok/shops",
                serde_json::json!({ "seller_name": name }),
            )
            .await;
        self.control(
            "/_sim/tiktok/dialog_shop",
            serde_json::json!({ "open_id": shop["open_id"] }),
        )
        .await;
        shop
    }

    /// Revokes what `rule` names (a user, page or token) upstream.
    pub async fn revoke(&self, rule: Value) {
        self.control("/_sim/revoke", rule).await;
    }

    /// Adds `count` posts or reels (`kind`) to a page.
    pub async fn seed_content(&self, page: impl std::fmt::Display, kind: &str, count: u64) {
        self.control(
            &format!("/_sim/pages/{page}/{kind}"),
            serde_json::json!({ "count": count }),
        )
        .await;
    }

    /// A call count in the stats (0 for a path never called).
    pub async fn count(&self, key: &str) -> u64 {
        self.stats().await[key].as_u64().unwrap_or(0)
    }

    /// Adds a fault rule.
    pub async fn fault(&self, rule: Value) {
        self.control("/_sim/faults", rule).await;
    }

    /// Asserts the call counts of these paths in the stats.
    pub async fn assert_counts(&self, expected: &[(&str, u64)]) {
        let stats = self.stats().await;
        for (path, count) in expected {
            assert_eq!(stats[path], *count, "{path}: {stats}");
        }
    }

    /// The simulator's clock, in Unix seconds.
    pub async fn now(&self) -> i64 {
        let clock: Value = self
            .get("/_sim/clock", NO_QUERY)
            .await
            .json()
            .await
            .unwrap();
        clock["now"].as_i64().unwrap()
    }

    pub async fn advance(&self, secs: i64) -> Value {
        self.control("/_sim/clock", serde_json::json!({"advance_secs": secs}))
            .await
    }

    /// A fresh user token from the control API, as the JS SDK would get.
    pub async fn login(&self, user_id: &str, long_lived: bool) -> String {
        let body = self
            .control(
                &format!("/_sim/users/{user_id}/login"),
                serde_json::json!({"long_lived": long_lived}),
            )
            .await;
        body["access_token"].as_str().unwrap().to_string()
    }

    /// The token and its proof ahead of `rest`, as every Graph call sends them.
    fn with_proof(&self, token: &str, rest: &Pairs<'_>) -> Vec<(String, String)> {
        [
            ("access_token", token),
            ("appsecret_proof", &self.proof(token)),
        ]
        .iter()
        .chain(rest)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// A Graph GET with the token and its proof.
    pub async fn graph(&self, path: &str, token: &str, query: &Pairs<'_>) -> Response {
        let query = self.with_proof(token, query);
        self.get(&format!("/{V}{path}"), &query).await
    }

    pub async fn graph_json(&self, path: &str, token: &str, query: &Pairs<'_>) -> Answer {
        let r = self.graph(path, token, query).await;
        (r.status(), r.json().await.unwrap())
    }

    /// A Graph form POST with the token and its proof.
    pub async fn graph_post(&self, path: &str, token: &str, form: &Pairs<'_>) -> Answer {
        let form = self.with_proof(token, form);
        self.post_form(&format!("/{V}{path}"), &form).await
    }
}

/// A response header that carries JSON (the usage headers).
pub fn header_json(r: &Response, name: &str) -> Value {
    serde_json::from_str(r.headers()[name].to_str().unwrap()).unwrap()
}

/// A Graph error: HTTP 400 with this code (and subcode) and a trace id.
pub fn assert_graph_error(status: StatusCode, body: &Value, code: i64, subcode: Option<i64>) {
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    if let Some(subcode) = subcode {
        assert_eq!(body["error"]["error_subcode"], subcode, "{body}");
    }
    assert!(body["error"]["fbtrace_id"].is_string(), "{body}");
}
