//! Support for tests against the simulator: the service wired to an
//! in-process simulator, a client for the simulator's control API, a webhook
//! receiver, and pollers with deadlines.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokenkeeper::clock::OffsetClock;
use tokenkeeper::simulator::{DEMO_CUSTOMER_ID, SimConfig};

use crate::helpers::{TestApp, test_settings_with};
use crate::sim_support::Sim;

pub const ADMIN_KEY: &str = "admin-key-0123456789abcdef";
pub const INTERNAL_KEY: &str = "internal-key-0123456789abcdef";
pub const READER_KEY: &str = "reader-key-0123456789abcdef";
pub const USER_KEY: &str = "user-key-0123456789abcdef";
pub const OPERATOR_KEY: &str = "operator-key-0123456789abcdef";
pub const ANALYST_KEY: &str = "analyst-key-0123456789abcdef";
pub const TEAM_A_KEY: &str = "team-a-key-0123456789abcdef";
pub const TEAM_A_INTERNAL_KEY: &str = "team-a-ops-key-0123456789abcdef";
/// A Standard Webhooks secret: `whsec_` and base64 of 32 bytes.
pub const WEBHOOK_SECRET: &str = "whsec_dG9rZW5rZWVwZXItdGVzdC13ZWJob29rLXNlY3JldCE=";
pub const APP_ID: &str = "987654321";
pub const APP_SECRET: &str = "test-app-secret-0123456789";
pub const REDIRECT_URI: &str = "http://localhost:8080/facebook/auth/callback";

/// One webhook delivery as received, with the status it was answered.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub headers: HeaderMap,
    pub body: String,
    pub answered: u16,
}

impl Delivery {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    pub fn header(&self, name: &str) -> String {
        self.headers[name].to_str().unwrap().to_string()
    }
}

#[derive(Default)]
struct Received {
    deliveries: Mutex<Vec<Delivery>>,
    /// Answer 500 to this many more events of this type.
    failing: Mutex<Option<(String, u32)>>,
}

/// A real HTTP server that records what it receives.
pub struct WebhookReceiver {
    pub url: String,
    received: Arc<Received>,
    _task: tokio::task::JoinHandle<()>,
}

impl WebhookReceiver {
    pub async fn start() -> Self {
        let received: Arc<Received> = Arc::default();
        async fn receive(
            State(r): State<Arc<Received>>,
            headers: HeaderMap,
            body: String,
        ) -> (axum::http::StatusCode, &'static str) {
            let kind = serde_json::from_str::<Value>(&body).unwrap_or_default()["type"].clone();
            let fail = match &mut *r.failing.lock().unwrap() {
                Some((failing, left)) if kind == failing.as_str() && *left > 0 => {
                    *left -= 1;
                    true
                }
                _ => false,
            };
            let status = if fail {
                axum::http::StatusCode::INTERNAL_SERVER_ERROR
            } else {
                axum::http::StatusCode::OK
            };
            r.deliveries.lock().unwrap().push(Delivery {
                headers,
                body,
                answered: status.as_u16(),
            });
            (status, "ok")
        }
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(received.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url,
            received,
            _task: task,
        }
    }

    /// Answers the next `n` events of type `kind` with 500.
    pub fn fail_next(&self, kind: &str, n: u32) {
        *self.received.failing.lock().unwrap() = Some((kind.to_string(), n));
    }

    /// Every request received, failed ones included, in order.
    pub fn events(&self) -> Vec<Delivery> {
        self.received.deliveries.lock().unwrap().clone()
    }

    pub fn of_type(&self, kind: &str) -> Vec<Value> {
        self.events()
            .iter()
            .map(Delivery::json)
            .filter(|e| e["type"] == kind)
            .collect()
    }
}

/// Checks `d`'s Standard Webhooks signature as the specification gives it
/// (standardwebhooks.com), computed here rather than by the service's code:
/// `v1,` and the base64 HMAC-SHA256, keyed with the base64-decoded secret
/// after `whsec_`, of `{webhook-id}.{webhook-timestamp}.{body}`.
pub fn assert_standard_signature(d: &Delivery) {
    use base64::Engine;
    use hmac::Mac;
    let engine = base64::engine::general_purpose::STANDARD;
    let key = engine
        .decode(WEBHOOK_SECRET.strip_prefix("whsec_").unwrap())
        .unwrap();
    let signed = format!(
        "{}.{}.{}",
        d.header("webhook-id"),
        d.header("webhook-timestamp"),
        d.body
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(signed.as_bytes());
    let expected = format!("v1,{}", engine.encode(mac.finalize().into_bytes()));
    let header = d.header("webhook-signature");
    assert!(
        header.split(' ').any(|s| s == expected),
        "webhook-signature {header} is not {expected}"
    );
}

/// Polls `check` until it returns `Some` or the deadline passes.
pub async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = check() {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The service wired to an in-process simulator and a webhook receiver.
pub struct FbApp {
    pub app: TestApp,
    settings: tokenkeeper::config::Settings,
    pub sim: Sim,
    pub webhook: WebhookReceiver,
    pub clock: Arc<OffsetClock>,
    _config_dir: TempDir,
}

/// The data and configuration of a stopped app, with its simulator running.
pub struct StoppedApp {
    pub data_dir: TempDir,
    pub config: std::path::PathBuf,
    pub settings: tokenkeeper::config::Settings,
    _config_dir: TempDir,
    _sim: Sim,
}

impl StoppedApp {
    /// Runs the tokenkeeper binary with the app's configuration and secrets.
    /// Blocks: call it from a multi-threaded runtime so the in-process
    /// simulator keeps serving.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        self.command(args).output().unwrap()
    }

    /// The tokenkeeper command [`StoppedApp::cli`] runs, to add to.
    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tokenkeeper"));
        cmd.args(args)
            .arg("--config")
            .arg(&self.config)
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .env("TOKENKEEPER_ENCRYPTION_KEY", crate::helpers::TEST_KEY)
            .env("FB_APP_ID", APP_ID)
            .env("FB_APP_SECRET", APP_SECRET)
            .env("NO_COLOR", "1");
        let s = &self.settings.secrets;
        fn exposed(v: &Option<tokenkeeper::secret::Secret>) -> Option<&str> {
            v.as_ref().map(|v| v.expose())
        }
        for (k, v) in [
            ("TIKTOK_SHOP_APP_KEY", s.tiktok_shop_app_key.as_deref()),
            ("GOOGLE_CLIENT_ID", s.google_client_id.as_deref()),
            ("TIKTOK_SHOP_APP_SECRET", exposed(&s.tiktok_shop_app_secret)),
            ("GOOGLE_CLIENT_SECRET", exposed(&s.google_client_secret)),
            (
                "GOOGLE_ADS_DEVELOPER_TOKEN",
                exposed(&s.google_ads_developer_token),
            ),
        ] {
            if let Some(v) = v {
                cmd.env(k, v);
            }
        }
        cmd
    }
}

/// The test configuration's API keys: id, key, scopes and teams.
const API_KEYS: [(&str, &str, &[&str], &[&str]); 6] = [
    ("reader", READER_KEY, &["tokens:read"], &[]),
    ("inbox", USER_KEY, &["tokens:use", "tokens:read"], &[]),
    ("analyst", ANALYST_KEY, &["insights:read", "exports"], &[]),
    ("operator", OPERATOR_KEY, &["tokens:admin"], &[]),
    ("team-a", TEAM_A_KEY, &["tokens:admin"], &["team-a"]),
    (
        "team-a-ops",
        TEAM_A_INTERNAL_KEY,
        &["internal"],
        &["team-a"],
    ),
];

/// [`API_KEYS`] as `[[api.keys]]` tables (a Rust list of strings is a TOML
/// array); a key with no teams has no `teams` line, which is not `teams = []`.
fn api_keys_toml() -> String {
    let mut toml = String::new();
    for (id, key, scopes, teams) in API_KEYS {
        toml += &format!("\n[[api.keys]]\nid = \"{id}\"\nkey = \"{key}\"\nscopes = {scopes:?}\n");
        if !teams.is_empty() {
            toml += &format!("teams = {teams:?}\n");
        }
    }
    toml
}

/// Options for [`FbApp::start`].
pub struct FbOptions {
    pub sim: SimConfig,
    /// Extra TOML appended to the test configuration.
    pub extra_toml: String,
    /// API rate limit: requests per second and burst.
    pub rate_limit: (u64, u32),
}

impl Default for FbOptions {
    fn default() -> Self {
        Self {
            sim: SimConfig {
                fb_app_id: APP_ID.into(),
                fb_app_secret: APP_SECRET.into(),
                ..SimConfig::default()
            },
            extra_toml: String::new(),
            rate_limit: (1000, 1000),
        }
    }
}

impl FbApp {
    /// Runs the scheduled refresh at `path` (one provider's or all) and
    /// waits for it; the run, which must have been accepted.
    pub async fn sweep(&self, path: &str) -> Value {
        let (status, run) = self.post(path, INTERNAL_KEY, json!({})).await;
        assert_eq!(status, 200, "{run}");
        run
    }

    /// An admin's POST of `path` with an empty body.
    pub async fn admin_post(&self, path: &str) -> (u16, Value) {
        self.post(path, ADMIN_KEY, json!({})).await
    }

    /// An admin's force-refresh of the Facebook connection `id`.
    pub async fn force_refresh(&self, id: &str) -> (u16, Value) {
        self.admin_post(&format!("/facebook/tokens/{id}/force-refresh"))
            .await
    }

    /// Revokes `page` upstream (subcode 460) and runs a sweep, which flags it
    /// for reconnection.
    pub async fn revoke_page_and_sweep(&self, page: &Value) {
        self.sim
            .revoke(json!({ "page_id": page["external_id"], "subcode": 460 }))
            .await;
        let run = self.sweep("/facebook/internal/scheduled-refresh").await;
        assert_eq!(run["run"]["counts"]["reauth_required"], 1, "{run}");
    }

    pub async fn start() -> Self {
        Self::start_with(FbOptions::default()).await
    }

    /// The app with an API rate limit of `per_second` and `burst`.
    pub async fn with_rate_limit(per_second: u64, burst: u32) -> Self {
        Self::start_with(FbOptions {
            rate_limit: (per_second, burst),
            ..FbOptions::default()
        })
        .await
    }

    pub async fn start_with(options: FbOptions) -> Self {
        let sim = Sim::start_with(options.sim).await;
        let webhook = WebhookReceiver::start().await;
        let config_dir = tempfile::tempdir().unwrap();
        let config = format!(
            r#"
[facebook]
graph_base_url = "{base}"
dialog_base_url = "{base}"
redirect_uri = "{REDIRECT_URI}"
usage_pause_secs = 1

[tiktok]
authorize_base_url = "{base}"
auth_base_url = "{base}"
api_base_url = "{base}"
redirect_uri = "http://localhost:8080/tiktok/auth/callback"

[google]
auth_base_url = "{base}"
oauth_base_url = "{base}"
ads_base_url = "{base}"
redirect_uri = "http://localhost:8080/google/auth/callback"

[refresh]
enabled = false
max_attempts = 3
base_delay_ms = 10
max_delay_ms = 50
max_retry_wait_secs = 2

[notifications]
webhook_url = "{hook}"
retry_schedule_secs = [0.05, 0.1]

[api]
rate_limit_per_second = {rate}
rate_limit_burst = {burst}

{keys}
{extra}
"#,
            base = sim.sim.base_url(),
            keys = api_keys_toml(),
            hook = webhook.url,
            extra = options.extra_toml,
            rate = options.rate_limit.0,
            burst = options.rate_limit.1,
        );
        let path = config_dir.path().join("test.toml");
        std::fs::write(&path, config).unwrap();
        let data_dir = tempfile::tempdir().unwrap();
        let settings = test_settings_with(
            data_dir.path(),
            &[
                ("TOKENKEEPER_ADMIN_API_KEY", ADMIN_KEY),
                ("TOKENKEEPER_INTERNAL_API_KEY", INTERNAL_KEY),
                ("TOKENKEEPER_WEBHOOK_SECRET", WEBHOOK_SECRET),
                ("FB_APP_ID", APP_ID),
                ("FB_APP_SECRET", APP_SECRET),
                ("TIKTOK_SHOP_APP_KEY", &sim.config.tiktok_app_key),
                ("TIKTOK_SHOP_APP_SECRET", &sim.config.tiktok_app_secret),
                ("GOOGLE_CLIENT_ID", &sim.config.google_client_id),
                ("GOOGLE_CLIENT_SECRET", &sim.config.google_client_secret),
                (
                    "GOOGLE_ADS_DEVELOPER_TOKEN",
                    &sim.config.google_developer_token,
                ),
            ],
            Some(&path),
        );
        let clock = Arc::new(OffsetClock::default());
        let mut app = TestApp::spawn_with(settings.clone(), clock.clone()).await;
        app.keep_dir(data_dir);
        Self {
            settings,
            sim,
            app,
            webhook,
            clock,
            _config_dir: config_dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        self.app.url(path)
    }

    /// A request with an API key.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.app.client.request(method, self.url(path));
        if let Some(key) = key {
            req = req.header("X-API-Key", key);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, Some(key), None).await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(key), Some(body))
            .await
    }

    /// A GET that must answer 200; its body.
    pub async fn get_ok(&self, path: &str, key: &str) -> Value {
        let (status, body) = self.get(path, key).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    /// A POST that must answer 200; its body.
    pub async fn post_ok(&self, path: &str, key: &str, body: Value) -> Value {
        let (status, body) = self.post(path, key, body).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    /// The whole browser flow: auth URL → simulator dialog → callback.
    pub async fn connect_via_dialog(&self, team_id: Option<&str>) -> Value {
        let q = team_id.map(|t| format!("?team_id={t}")).unwrap_or_default();
        let location = self
            .consent_location(&format!("/facebook/auth/url{q}"))
            .await;
        assert!(location.starts_with(REDIRECT_URI), "{location}");
        self.callback("/facebook/auth/callback", &query_of(&location))
            .await
    }

    /// Connects a fresh simulator user with `pages` pages via
    /// `/facebook/auth/exchange`; returns the service's answer.
    pub async fn connect_user(&self, pages: usize, team_id: Option<&str>) -> Value {
        let pages: Vec<Value> = (0..pages)
            .map(|i| json!({ "name": format!("Page {i}") }))
            .collect();
        let user = json!({ "name": "Test User", "pages": pages });
        self.connect_new_user(user, team_id).await
    }

    /// Connects a fresh simulator user made from a `/_sim/users` body via
    /// `/facebook/auth/exchange`; returns the service's answer.
    pub async fn connect_new_user(&self, user: Value, team_id: Option<&str>) -> Value {
        let user = self.sim.create_user(user).await;
        let token = self.sim.login(user["id"].as_str().unwrap(), false).await;
        self.post_ok(
            "/facebook/auth/exchange",
            ADMIN_KEY,
            json!({ "access_token": token, "team_id": team_id }),
        )
        .await
    }

    /// Connects a new simulator TikTok shop named `name` for `team` through
    /// the consent flow; returns the integration's facts.
    pub async fn connect_shop(&self, team: &str, name: &str) -> Value {
        self.sim.dialog_shop(name).await;
        let answer = self
            .follow_consent(
                &format!("/tiktok/auth/url?team_id={team}"),
                "/tiktok/auth/callback",
            )
            .await;
        answer["integration"].clone()
    }

    /// Connects the simulator's demo Google login with its demo customer
    /// through the consent flow; returns the callback's answer.
    pub async fn connect_demo_google(&self) -> Value {
        self.follow_consent(
            &format!("/google/auth/url?customer_id={DEMO_CUSTOMER_ID}"),
            "/google/auth/callback",
        )
        .await
    }

    /// Moves the service's clock and the simulator's clock together.
    pub async fn advance_days(&self, days: i64) {
        self.advance_secs(days * 86_400).await;
    }

    /// The service's (moved) time.
    pub fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        use tokenkeeper::clock::Clock;
        self.clock.now()
    }

    pub async fn advance_secs(&self, secs: i64) {
        self.clock.advance(chrono::Duration::seconds(secs));
        self.sim.advance(secs).await;
    }

    /// Asks `auth_url_path` for the consent URL, follows it, and returns the
    /// location the consent page redirects back to.
    pub async fn consent_location(&self, auth_url_path: &str) -> String {
        let (status, body) = self.get(auth_url_path, ADMIN_KEY).await;
        assert_eq!(status, 200, "{body}");
        let r = self
            .sim
            .client
            .get(body["url"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 302, "the consent page redirects back");
        r.headers()["location"].to_str().unwrap().to_string()
    }

    /// The query the consent page redirects back with (code and state).
    pub async fn consent_query(&self, auth_url_path: &str) -> String {
        query_of(&self.consent_location(auth_url_path).await)
    }

    /// Follows a provider's consent page (a 302 back to our callback) and
    /// calls the callback; returns the callback's answer.
    pub async fn follow_consent(&self, auth_url_path: &str, callback_path: &str) -> Value {
        let query = self.consent_query(auth_url_path).await;
        self.callback(callback_path, &query).await
    }

    /// A browser's call of our callback, which must succeed.
    async fn callback(&self, callback_path: &str, query: &str) -> Value {
        let (status, body) = self
            .call(
                reqwest::Method::GET,
                &format!("{callback_path}?{query}"),
                None,
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Stops the service but keeps its data, configuration and the
    /// simulator, for running the CLI on the same store.
    pub async fn stop_service(self) -> StoppedApp {
        let FbApp {
            app,
            settings,
            sim,
            _config_dir,
            ..
        } = self;
        let data_dir = app.stop().await.expect("the data folder");
        StoppedApp {
            data_dir,
            config: _config_dir.path().join("test.toml"),
            _config_dir,
            _sim: sim,
            settings,
        }
    }

    pub async fn stop(self) {
        self.app.stop().await;
    }

    /// Restarts with `current` as the encryption key and `previous` as the
    /// previous keys.
    pub async fn restart_with_keys(mut self, current: &str, previous: Option<&str>) -> Self {
        self.settings.secrets.encryption_key = Some(tokenkeeper::secret::Secret::new(current));
        self.settings.secrets.previous_keys = previous.map(tokenkeeper::secret::Secret::new);
        self.restart().await
    }

    /// Restarts with the webhook retried after these waits.
    pub async fn restart_with_retries(mut self, waits: &[f64]) -> Self {
        self.settings.notifications.retry_schedule_secs = waits.to_vec();
        self.restart().await
    }

    /// Stops the service gracefully and starts it again on the same data,
    /// simulator and webhook.
    pub async fn restart(mut self) -> Self {
        let dir = self.app.stop().await;
        self.app = TestApp::spawn_with(self.settings.clone(), self.clock.clone()).await;
        if let Some(dir) = dir {
            self.app.keep_dir(dir);
        }
        self
    }
}

/// The query of a redirect location, without its fragment.
fn query_of(location: &str) -> String {
    let query = location.split_once('?').unwrap().1;
    query.split('#').next().unwrap().to_string()
}

/// The connection of `kind` in a connect answer.
pub fn connection_of_kind(answer: &Value, kind: &str) -> Value {
    connections(answer)
        .find(|c| c["kind"] == kind)
        .cloned()
        .unwrap_or_else(|| panic!("no {kind} connection in {answer}"))
}

/// The id of the connection of `kind` in a connect answer.
pub fn connection_id(answer: &Value, kind: &str) -> String {
    connection_of_kind(answer, kind)["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Asserts an error answer: its status and `error.code`.
pub fn assert_error(status: impl Into<u16>, body: &Value, expected: u16, code: &str) {
    assert_eq!(status.into(), expected, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
}

/// Asserts a refused request: its status and the `error.field` it names.
pub fn assert_field_error(status: impl Into<u16>, body: &Value, expected: u16, field: &str) {
    assert_eq!(status.into(), expected, "{body}");
    assert_eq!(body["error"]["field"], field, "{body}");
}

/// The connections of a connect answer or a listing.
pub fn connections(answer: &Value) -> std::slice::Iter<'_, Value> {
    answer["connections"].as_array().unwrap().iter()
}
