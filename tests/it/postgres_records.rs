//! The records kept beside connections, on PostgreSQL: two instances on one
//! database (each with its own data folder) share OAuth states, refresh
//! runs and the audit trail of token hand-outs.

use std::sync::Arc;

use serde_json::{Value, json};
use sqlx::Row;
use tempfile::TempDir;
use tokenkeeper::app::Application;
use tokenkeeper::clock::OffsetClock;
use tokenkeeper::simulator::SimConfig;
use tokenkeeper::store::ConnectionStore;
use tokio_util::sync::CancellationToken;

use crate::helpers::test_settings_with;
use crate::postgres_app::in_schema;
use crate::sim_support::Sim;
use crate::storage_contract::Postgres;

const ADMIN_KEY: &str = "records-admin-key-0123456789";
const INTERNAL_KEY: &str = "records-internal-key-0123456789";
const INBOX_KEY: &str = "records-inbox-key-0123456789";
const APP_ID: &str = "987654321";
const APP_SECRET: &str = "records-app-secret-0123456789";
const REDIRECT_URI: &str = "http://localhost:8080/facebook/auth/callback";

/// A simulator and a database schema that instances are started on.
struct Cluster {
    pg: Postgres,
    sim: Sim,
    config: TempDir,
    dirs: Vec<TempDir>,
    cancel: CancellationToken,
}

/// One running instance.
struct Instance {
    base: String,
    data_dir: std::path::PathBuf,
    client: reqwest::Client,
}

impl Cluster {
    /// `None` (the test is skipped, and says so) without a test database.
    async fn start() -> Option<Self> {
        let pg = Postgres::from_env()?;
        pg.connect().await.close().await; // creates the schema
        let sim = Sim::start_with(SimConfig {
            fb_app_id: APP_ID.into(),
            fb_app_secret: APP_SECRET.into(),
            ..SimConfig::default()
        })
        .await;
        let config = tempfile::tempdir().unwrap();
        std::fs::write(
            config.path().join("test.toml"),
            format!(
                r#"
[facebook]
graph_base_url = "{base}"
dialog_base_url = "{base}"
redirect_uri = "{REDIRECT_URI}"

[refresh]
enabled = false

[[api.keys]]
id = "inbox"
key = "{INBOX_KEY}"
scopes = ["tokens:use"]
"#,
                base = sim.sim.base_url()
            ),
        )
        .unwrap();
        Some(Self {
            pg,
            sim,
            config,
            dirs: Vec::new(),
            cancel: CancellationToken::new(),
        })
    }

    /// Another instance on the database, with a data folder of its own.
    async fn instance(&mut self) -> Instance {
        let dir = tempfile::tempdir().unwrap();
        let url = in_schema(&self.pg.url, &self.pg.schema);
        let settings = test_settings_with(
            dir.path(),
            &[
                ("TOKENKEEPER__STORE__BACKEND", "postgres"),
                ("TOKENKEEPER_DATABASE_URL", &url),
                ("TOKENKEEPER_ADMIN_API_KEY", ADMIN_KEY),
                ("TOKENKEEPER_INTERNAL_API_KEY", INTERNAL_KEY),
                ("FB_APP_ID", APP_ID),
                ("FB_APP_SECRET", APP_SECRET),
            ],
            Some(&self.config.path().join("test.toml")),
        );
        let app = Application::build_with_clock(settings, Arc::new(OffsetClock::default()))
            .await
            .expect("the app builds on PostgreSQL");
        let base = format!("http://{}", app.addr());
        tokio::spawn(app.run(self.cancel.clone()));
        let instance = Instance {
            base,
            data_dir: dir.path().to_path_buf(),
            client: reqwest::Client::new(),
        };
        self.dirs.push(dir);
        instance
    }

    /// The query (code and state) the simulator's consent page redirects
    /// back with, for a connect flow started on `on`.
    async fn consent_query(&self, on: &Instance) -> String {
        let (status, body) = on.get("/facebook/auth/url", Some(ADMIN_KEY)).await;
        assert_eq!(status, 200, "{body}");
        let consent = self
            .sim
            .client
            .get(body["url"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(consent.status().as_u16(), 302, "the consent page redirects");
        let location = consent.headers()["location"].to_str().unwrap();
        assert!(location.starts_with(REDIRECT_URI), "{location}");
        let query = location.split_once('?').unwrap().1;
        query.split('#').next().unwrap().to_string()
    }

    /// Connects the simulator's consent user and its pages through `on`.
    async fn connect(&self, on: &Instance) -> Value {
        let query = self.consent_query(on).await;
        let (status, answer) = on
            .get(&format!("/facebook/auth/callback?{query}"), None)
            .await;
        assert_eq!(status, 200, "{answer}");
        answer
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Instance {
    async fn call(&self, request: reqwest::RequestBuilder, key: Option<&str>) -> (u16, Value) {
        let request = match key {
            Some(key) => request.header("X-API-Key", key),
            None => request,
        };
        let r = request.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str, key: Option<&str>) -> (u16, Value) {
        let request = self.client.get(format!("{}{path}", self.base));
        self.call(request, key).await
    }

    async fn post(&self, path: &str, key: &str) -> (u16, Value) {
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .json(&json!({}));
        self.call(request, Some(key)).await
    }
}

fn assert_state_refused(status: u16, body: &Value, why: &str) {
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "state", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(why), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oauth_state_issued_by_one_instance_is_accepted_once_by_another() {
    let Some(mut cluster) = Cluster::start().await else {
        return;
    };
    let (a, b) = (cluster.instance().await, cluster.instance().await);
    let query = cluster.consent_query(&a).await;
    let callback = format!("/facebook/auth/callback?{query}");

    let (status, answer) = b.get(&callback, None).await;
    assert_eq!(status, 200, "B accepts the state A issued: {answer}");
    assert!(answer["connected"].as_u64().unwrap() >= 1, "{answer}");

    let (status, again) = b.get(&callback, None).await;
    assert_state_refused(status, &again, "already used");
    let (status, on_a) = a.get(&callback, None).await;
    assert_state_refused(status, &on_a, "already used");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_run_on_one_instance_is_listed_by_another() {
    let Some(mut cluster) = Cluster::start().await else {
        return;
    };
    let a = cluster.instance().await;
    cluster.connect(&a).await;
    let (status, swept) = a.post("/internal/scheduled-refresh", INTERNAL_KEY).await;
    assert_eq!(status, 200, "{swept}");
    let run_id = swept["run"]["id"].as_str().unwrap().to_string();
    let total = &swept["run"]["total"];
    assert!(total.as_u64().unwrap() >= 1, "{swept}");

    // An instance reads the recent runs as it starts (tokens::Runs keeps
    // them in memory from then on), so B starts after A's run.
    let b = cluster.instance().await;
    let (status, listed) = b.get("/internal/refresh-runs", Some(ADMIN_KEY)).await;
    assert_eq!(status, 200, "{listed}");
    let first = &listed["runs"][0];
    assert_eq!(first["id"], run_id.as_str(), "{listed}");
    assert_eq!(first["status"], "finished", "{listed}");
    assert_eq!(&first["total"], total, "{listed}");
    let (status, one) = b
        .get(&format!("/internal/refresh-runs/{run_id}"), Some(ADMIN_KEY))
        .await;
    assert_eq!(status, 200, "{one}");
    assert!(!b.data_dir.join("runs.json").exists());
    assert!(!a.data_dir.join("runs.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_hand_outs_of_both_instances_are_audited_in_the_database() {
    let Some(mut cluster) = Cluster::start().await else {
        return;
    };
    let (a, b) = (cluster.instance().await, cluster.instance().await);
    let answer = cluster.connect(&a).await;
    let page = answer["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "page")
        .unwrap_or_else(|| panic!("a page in {answer}"));
    let id = page["id"].as_str().unwrap();
    for instance in [&a, &b] {
        let (status, body) = instance
            .get(&format!("/tokens/{id}/access-token"), Some(INBOX_KEY))
            .await;
        assert_eq!(status, 200, "{body}");
    }

    let database = cluster.pg.connect().await;
    let rows = sqlx::query("SELECT key_id, connection_id, outcome FROM audit_log ORDER BY seq")
        .fetch_all(database.pool())
        .await
        .unwrap();
    let trail: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| (r.get("key_id"), r.get("connection_id"), r.get("outcome")))
        .collect();
    let issued = ("inbox".to_string(), id.to_string(), "issued".to_string());
    assert_eq!(trail, [issued.clone(), issued], "one row per hand-out");
    database.close().await;
    for instance in [&a, &b] {
        assert!(!instance.data_dir.join("audit.log").exists());
    }
}
