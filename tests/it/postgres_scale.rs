//! Several `tokenkeeper serve` processes on one PostgreSQL database, all
//! sweeping at once: each due connection is refreshed once, by the
//! simulator's counts, and one killed mid-sweep leaves nothing undone once
//! its leases run out.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use tokenkeeper::domain::{Connection, ConnectionKind, Provider, StoredSecrets};
use tokenkeeper::secret::Secret;
use tokenkeeper::store::crypto::{Binding, Field};
use tokenkeeper::store::{ConnectionStore, ListFilter, PgConnectionStore, Write};

use crate::fb_support::INTERNAL_KEY;
use crate::helpers::{TEST_KEY, spawn_until_listening, test_cipher};
use crate::postgres_app::in_schema;
use crate::sim_support::Sim;
use crate::storage_contract::Postgres;

const EXCHANGE: &str = "/oauth/access_token:fb_exchange_token";
const ACCOUNTS: &str = "/me/accounts";

/// A `tokenkeeper serve` process on the database at `url`; killed on drop.
struct Instance {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Instance {
    fn start(sim: &Sim, url: &str, lease_secs: u64) -> Self {
        Self::start_with(sim, url, lease_secs, "")
    }

    /// [`Instance::start`] with more configuration (TOML).
    fn start_with(sim: &Sim, url: &str, lease_secs: u64, more: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("instance.toml");
        std::fs::write(
            &config,
            format!(
                "[facebook]\ngraph_base_url = \"{base}\"\ndialog_base_url = \"{base}\"\n\
                 [store]\nbackend = \"postgres\"\n\
                 [refresh]\nenabled = false\nconcurrency = 20\nlease_secs = {lease_secs}\n{more}",
                base = sim.url("")
            ),
        )
        .unwrap();
        let (child, addr) = spawn_until_listening(
            Command::new(env!("CARGO_BIN_EXE_tokenkeeper"))
                .args(["serve", "--addr", "127.0.0.1:0", "--config"])
                .arg(&config)
                .arg("--data-dir")
                .arg(dir.path().join("data"))
                .env("TOKENKEEPER_ENCRYPTION_KEY", TEST_KEY)
                .env("TOKENKEEPER_DATABASE_URL", url)
                .env("TOKENKEEPER_INTERNAL_API_KEY", INTERNAL_KEY)
                .env("FB_APP_ID", &sim.config.fb_app_id)
                .env("FB_APP_SECRET", &sim.config.fb_app_secret)
                .env("TOKENKEEPER__LOGGING__FORMAT", "json")
                .env("NO_COLOR", "1")
                .stdout(Stdio::null()),
        );
        Self {
            child,
            base: format!("http://{addr}"),
            _dir: dir,
        }
    }

    /// Runs a sweep; with `wait`, answers the finished run.
    async fn sweep(&self, wait: bool) -> Value {
        let answer = reqwest::Client::new()
            .post(format!(
                "{}/internal/scheduled-refresh?wait={wait}",
                self.base
            ))
            .header("X-API-Key", INTERNAL_KEY)
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let body: Value = answer.json().await.unwrap();
        assert!(status.is_success(), "{status}: {body}");
        body["run"].clone()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `users` simulator users with `pages` pages each, stored as due user
/// connections (10 days left on a long-lived token) and their pages; the
/// users' simulator ids.
async fn seed(sim: &Sim, store: &PgConnectionStore, users: usize, pages: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let created = sim
        .control(
            "/_sim/users",
            json!({ "count": users, "pages_per_user": pages }),
        )
        .await;
    let cipher = test_cipher();
    let now = Utc::now();
    let seal = |kind, external_id: &str, token: &str| {
        let binding = Binding::new(
            Provider::Facebook,
            kind,
            external_id,
            None,
            Field::AccessToken,
        );
        cipher.encrypt(&Secret::new(token), &binding).unwrap()
    };
    let mut writes = Vec::new();
    for u in created["users"].as_array().unwrap() {
        let id = u["id"].as_str().unwrap();
        ids.push(id.to_string());
        let login = sim
            .control(
                &format!("/_sim/users/{id}/login"),
                json!({ "long_lived": true }),
            )
            .await;
        let secrets = StoredSecrets {
            access_token: seal(
                ConnectionKind::User,
                id,
                login["access_token"].as_str().unwrap(),
            ),
            refresh_token: None,
        };
        let mut user = Connection::new(
            Provider::Facebook,
            ConnectionKind::User,
            id,
            "user",
            secrets,
            now,
        );
        user.expires_at = Some(now + Duration::days(10));
        user.data_access_expires_at = Some(now + Duration::days(80));
        for p in u["pages"].as_array().unwrap() {
            let secrets = StoredSecrets {
                access_token: seal(
                    ConnectionKind::Page,
                    p["id"].as_str().unwrap(),
                    "EAAB-seeded-page-token",
                ),
                refresh_token: None,
            };
            let mut page = Connection::new(
                Provider::Facebook,
                ConnectionKind::Page,
                p["id"].as_str().unwrap(),
                "page",
                secrets,
                now,
            );
            page.parent_id = Some(user.id.clone());
            page.last_refreshed_at = Some(now - Duration::days(1));
            writes.push(Write::Upsert {
                new: Box::new(page),
                edit: Box::new(|_| {}),
            });
        }
        writes.push(Write::Upsert {
            new: Box::new(user),
            edit: Box::new(|_| {}),
        });
        if writes.len() >= 200 {
            store.write_all(std::mem::take(&mut writes)).await.unwrap();
        }
    }
    store.write_all(writes).await.unwrap();
    ids
}

/// How many times the simulator answered `key`.
async fn count(sim: &Sim, key: &str) -> u64 {
    sim.stats().await[key].as_u64().unwrap_or(0)
}

/// The stored user connections that are not renewed yet (still within 60
/// days of expiring).
async fn unrenewed(store: &PgConnectionStore) -> Vec<Arc<Connection>> {
    let users = ListFilter {
        kind: Some(ConnectionKind::User),
        ..ListFilter::default()
    };
    let horizon = Utc::now() + Duration::days(50);
    store
        .list(&users)
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.expires_at.is_none_or(|t| t < horizon))
        .collect()
}

fn counted(run: &Value, key: &str) -> u64 {
    run["counts"][key].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_sweeping_at_once_refresh_each_connection_once() {
    let Some(pg) = Postgres::from_env() else {
        return;
    };
    let store = pg.connect().await;
    let sim = Sim::start().await;
    const USERS: u64 = 1_000;
    seed(&sim, &store, USERS as usize, 1).await;
    // Slow enough upstream that both sweeps overlap for their whole length.
    sim.fault(json!({ "path": "/", "latency_ms": 20 })).await;
    let url = in_schema(&pg.url, &pg.schema);
    let (a, b) = (
        Instance::start(&sim, &url, 60),
        Instance::start(&sim, &url, 60),
    );
    sim.delete("/_sim/stats").await;

    let started = std::time::Instant::now();
    let (run_a, run_b) = tokio::join!(a.sweep(true), b.sweep(true));
    eprintln!(
        "two instances, {} connections: {:.1} s; A {}; B {}; simulator {}",
        2 * USERS,
        started.elapsed().as_secs_f64(),
        run_a["counts"],
        run_b["counts"],
        sim.stats().await
    );
    for run in [&run_a, &run_b] {
        assert_eq!(run["status"], "finished", "{run}");
        assert_eq!(
            run["total"],
            2 * USERS,
            "each instance sees every connection: {run}"
        );
        for bad in [
            "failed",
            "rate_limited",
            "leased_elsewhere",
            "reauth_required",
        ] {
            assert_eq!(counted(run, bad), 0, "{bad}: {run}");
        }
    }
    // Exchange calls = user connections, and no page derived twice.
    assert_eq!(count(&sim, EXCHANGE).await, USERS, "{}", sim.stats().await);
    assert_eq!(count(&sim, ACCOUNTS).await, USERS, "{}", sim.stats().await);
    // Both took part, and between them every user was renewed.
    let (ra, rb) = (counted(&run_a, "refreshed"), counted(&run_b, "refreshed"));
    assert!(ra > 0 && rb > 0, "both instances sweep: {run_a} {run_b}");
    assert!(unrenewed(&store).await.is_empty());
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_mid_sweep_leaves_its_connections_to_the_other() {
    let Some(pg) = Postgres::from_env() else {
        return;
    };
    let store = pg.connect().await;
    let sim = Sim::start().await;
    const USERS: u64 = 400;
    seed(&sim, &store, USERS as usize, 0).await;
    sim.fault(json!({ "path": "/", "latency_ms": 20 })).await;
    let url = in_schema(&pg.url, &pg.schema);
    let mut a = Instance::start(&sim, &url, 3);
    let b = Instance::start(&sim, &url, 3);
    sim.delete("/_sim/stats").await;

    a.sweep(false).await;
    while count(&sim, EXCHANGE).await < USERS / 4 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let left = unrenewed(&store).await.len() as u64;
    assert!(left > 0, "the kill came too late to test anything");

    let run = b.sweep(true).await;
    eprintln!(
        "killed A with {left} users unrenewed; B: {}; simulator {}",
        run["counts"],
        sim.stats().await
    );
    assert_eq!(run["status"], "finished", "{run}");
    for bad in ["failed", "leased_elsewhere"] {
        assert_eq!(counted(&run, bad), 0, "{bad}: {run}");
    }
    assert!(
        unrenewed(&store).await.is_empty(),
        "B renews what A left, once A's leases run out: {run}"
    );
    // B renewed exactly the ones A had not written.
    assert_eq!(counted(&run, "refreshed"), left, "{run}");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_webhook_per_state_change_across_instances() {
    let Some(pg) = Postgres::from_env() else {
        return;
    };
    let store = pg.connect().await;
    let sim = Sim::start().await;
    let hook = crate::fb_support::WebhookReceiver::start().await;
    let users = seed(&sim, &store, 40, 0).await;
    let revoked = &users[..10];
    for id in revoked {
        sim.revoke(json!({ "user_id": id, "subcode": 460 })).await;
    }
    // Each event's first attempt fails: its retry may be made by either
    // instance, from the shared outbox.
    hook.fail_next("connection.reauth_required", 10);
    let url = in_schema(&pg.url, &pg.schema);
    let notify = format!(
        "[notifications]\nwebhook_url = \"{}\"\nretry_schedule_secs = [0.2]\n",
        hook.url
    );
    let a = Instance::start_with(&sim, &url, 60, &notify);
    let b = Instance::start_with(&sim, &url, 60, &notify);

    let (run_a, run_b) = tokio::join!(a.sweep(true), b.sweep(true));
    let flagged = counted(&run_a, "reauth_required") + counted(&run_b, "reauth_required");
    assert_eq!(flagged, 10, "{run_a} {run_b}");
    // A second round on both changes no state: nothing more is sent.
    tokio::join!(a.sweep(true), b.sweep(true));
    let delivered = || {
        hook.events()
            .into_iter()
            .filter(|d| d.json()["type"] == "connection.reauth_required" && d.answered == 200)
            .collect::<Vec<_>>()
    };
    crate::fb_support::eventually("the reauth events, each retried once", || {
        (delivered().len() >= 10).then_some(())
    })
    .await;
    // Any duplicate would be sent by now.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mut announced: Vec<String> = delivered()
        .iter()
        .map(|d| {
            d.json()["data"]["connection"]["external_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    announced.sort();
    let mut expected = revoked.to_vec();
    expected.sort();
    assert_eq!(announced, expected);
    // Two attempts per event, the second with the first's id.
    let attempts = hook.of_type("connection.reauth_required").len();
    assert_eq!(
        attempts, 20,
        "one failed and one delivered attempt per event"
    );
    let mut ids: Vec<String> = delivered().iter().map(|d| d.header("webhook-id")).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 10);
    store.close().await;
}
