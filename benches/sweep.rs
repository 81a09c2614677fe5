//! Sweep benchmark: N Facebook user connections (10,000, or
//! `TK_BENCH_CONNECTIONS`), all due for refresh, against the simulator with
//! 20 ms latency per call. Prints wall time, the bound N × calls-per-
//! connection × 20 ms / C, their ratio, upstream calls, store writes, bytes
//! written per refreshed connection (journal lines and any compaction the
//! sweep triggered) and the service's peak memory. Run with
//! `cargo bench --bench sweep`.
//!
//! The simulator runs as its own process (`tokenkeeper simulate`), so this
//! process's memory is the service's. Before the sweep, a bare client makes
//! the same kind of calls, C at a time, straight to the simulator: the
//! floor, what one call costs on this machine with nothing of the service in
//! it, measured in the same run.
//!
//! `TK_BENCH_BACKEND=postgres` runs it on PostgreSQL (the database of
//! `TOKENKEEPER_TEST_DATABASE_URL`, in a schema made for the run and dropped
//! after), and `TK_BENCH_INSTANCES=2` there runs two instances on that one
//! database, sweeping at once: the bound is then against twice the
//! concurrency, and it prints the statements sent to the database per
//! refreshed connection (each is one round trip).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use tokenkeeper::app::Application;
use tokenkeeper::clock::SystemClock;
use tokenkeeper::config::{Overrides, Settings};
use tokenkeeper::domain::{Connection, ConnectionKind, Provider, StoredSecrets};
use tokenkeeper::secret::Secret;
use tokenkeeper::store::crypto::{Binding, Field};
use tokenkeeper::store::{ConnectionStore, Write};
use tokenkeeper::tokens::SweepFilter;
use tracing_subscriber::layer::SubscriberExt;

// As in src/main.rs: the service's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const LATENCY_MS: u64 = 20;
const CONCURRENCY: usize = 100;
const APP_ID: &str = "111";
const APP_SECRET: &str = "bench-secret-0123456789";

/// A memory figure of this process from /proc (`VmHWM`: peak, `VmRSS`: now).
fn memory_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// CPU seconds this process has used (user + system), from /proc.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line; clock ticks
    // are 100 a second on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

fn peak_rss_mb() -> f64 {
    memory_mb("VmHWM:")
}

/// `tokenkeeper simulate` on a free port, killed when dropped.
struct Simulator {
    child: std::process::Child,
    base: String,
}

impl Simulator {
    fn start() -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tokenkeeper"))
            .args(["simulate", "--port", "0"])
            .env("FB_APP_ID", APP_ID)
            .env("FB_APP_SECRET", APP_SECRET)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("tokenkeeper simulate starts");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("simulator listening on ")
            .unwrap_or_else(|| panic!("unexpected simulator output: {line}"))
            .to_string();
        Self { child, base }
    }

    fn peak_rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Milliseconds per call of `calls_each` sequential calls by each of C
/// concurrent tasks to a cheap Graph path of the simulator.
async fn floor_ms_per_call(http: &reqwest::Client, base: &str, calls_each: usize) -> f64 {
    let url = format!("{base}/v25.0/debug_token?input_token=x&access_token={APP_ID}|{APP_SECRET}");
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (http, url) = (http.clone(), url.clone());
        tasks.spawn(async move {
            for _ in 0..calls_each {
                let _ = http.get(&url).send().await.unwrap().bytes().await;
            }
        });
    }
    tasks.join_all().await;
    started.elapsed().as_secs_f64() * 1000.0 / calls_each as f64
}

/// Counts the statements sqlx sends (it logs each under `sqlx::query`).
struct StatementCounter(Arc<AtomicU64>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for StatementCounter {
    fn register_callsite(&self, metadata: &tracing::Metadata<'_>) -> tracing::subscriber::Interest {
        if metadata.target() == "sqlx::query" {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }

    fn enabled(
        &self,
        metadata: &tracing::Metadata<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        metadata.target() == "sqlx::query"
    }

    fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Where the bench keeps the store.
enum Backend {
    Json,
    /// A schema of the test database, made for this run.
    Postgres {
        url: String,
        schema: String,
    },
}

impl Backend {
    async fn from_env() -> Self {
        match std::env::var("TK_BENCH_BACKEND").as_deref() {
            Err(_) | Ok("json") => Backend::Json,
            Ok("postgres") => {
                let url = std::env::var("TOKENKEEPER_TEST_DATABASE_URL")
                    .expect("TK_BENCH_BACKEND=postgres needs TOKENKEEPER_TEST_DATABASE_URL");
                let schema = format!("tk_bench_{}", uuid::Uuid::new_v4().simple());
                let admin = sqlx::PgPool::connect(&url).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                    .execute(&admin)
                    .await
                    .unwrap();
                admin.close().await;
                Backend::Postgres { url, schema }
            }
            Ok(other) => panic!("TK_BENCH_BACKEND is json or postgres, not {other}"),
        }
    }

    fn config(&self) -> &'static str {
        match self {
            Backend::Json => "",
            Backend::Postgres { .. } => {
                "[store]\nbackend = \"postgres\"\n[store.postgres]\nmax_connections = 20\n"
            }
        }
    }

    fn database_url(&self) -> Option<String> {
        match self {
            Backend::Json => None,
            Backend::Postgres { url, schema } => {
                let separator = if url.contains('?') { '&' } else { '?' };
                Some(format!(
                    "{url}{separator}options=-c%20search_path%3D{schema}"
                ))
            }
        }
    }

    async fn drop_schema(&self) {
        if let Backend::Postgres { url, schema } = self {
            let admin = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
        }
    }
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("TK_BENCH_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let statements = Arc::new(AtomicU64::new(0));
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(StatementCounter(statements.clone())),
    )
    .unwrap();
    let backend = Backend::from_env().await;
    let instances: usize = std::env::var("TK_BENCH_INSTANCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    assert!(
        instances == 1 || matches!(backend, Backend::Postgres { .. }),
        "several instances share a store only on PostgreSQL (TK_BENCH_BACKEND=postgres)"
    );
    let sim = Simulator::start();
    let base = sim.base.clone();
    let http = reqwest::Client::new();
    let users: Value = http
        .post(format!("{base}/_sim/users"))
        .json(&json!({ "count": n }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let users = users["users"].as_array().unwrap().clone();

    let key = tokenkeeper::secret::generate_key();
    let mut apps = Vec::new();
    let mut dirs = Vec::new();
    for _ in 0..instances {
        let data = tempfile::tempdir().unwrap();
        let config = data.path().join("bench.toml");
        std::fs::write(
            &config,
            format!(
                "[facebook]\ngraph_base_url = \"{base}\"\ndialog_base_url = \"{base}\"\n\
                 [refresh]\nenabled = false\nconcurrency = {CONCURRENCY}\n\
                 [logging]\nlevel = \"warn\"\n{}",
                backend.config()
            ),
        )
        .unwrap();
        let mut env: std::collections::HashMap<String, String> = [
            ("FB_APP_ID".to_string(), APP_ID.to_string()),
            ("FB_APP_SECRET".to_string(), APP_SECRET.to_string()),
            ("TOKENKEEPER_ENCRYPTION_KEY".to_string(), key.clone()),
        ]
        .into();
        if let Some(url) = backend.database_url() {
            env.insert("TOKENKEEPER_DATABASE_URL".into(), url);
        }
        let settings = Settings::load_from(
            std::path::Path::new("/nonexistent"),
            &Overrides {
                config_file: Some(config),
                addr: Some("127.0.0.1:0".into()),
                data_dir: Some(data.path().join("data")),
            },
            &env,
        )
        .unwrap();
        apps.push(
            Application::build_with_clock(settings, Arc::new(SystemClock))
                .await
                .unwrap(),
        );
        dirs.push(data);
    }
    let store: Arc<dyn ConnectionStore> = apps[0].state().store.clone();

    // User connections whose long-lived tokens have 10 days left: all due.
    // Stored 1,000 at a time: all at once would make the set-up, not the
    // sweep, the peak of memory.
    let now = Utc::now();
    let secrets = store.secrets().unwrap();
    let mut writes = Vec::new();
    for u in &users {
        let id = u["id"].as_str().unwrap().to_string();
        let token: Value = http
            .post(format!("{base}/_sim/users/{id}/login"))
            .json(&json!({ "long_lived": true }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let secret = Secret::new(token["access_token"].as_str().unwrap());
        let binding = Binding::new(
            Provider::Facebook,
            ConnectionKind::User,
            &id,
            None,
            Field::AccessToken,
        );
        let mut c = Connection::new(
            Provider::Facebook,
            ConnectionKind::User,
            id,
            "bench user",
            StoredSecrets {
                access_token: secrets.seal(&secret, &binding).unwrap(),
                refresh_token: None,
            },
            now,
        );
        c.expires_at = Some(now + Duration::days(10));
        c.data_access_expires_at = Some(now + Duration::days(80));
        writes.push(Write::Upsert {
            new: Box::new(c),
            edit: Box::new(|_| {}),
        });
        if writes.len() >= 1_000 {
            store.write_all(std::mem::take(&mut writes)).await.unwrap();
        }
    }
    store.write_all(writes).await.unwrap();
    drop(users);
    let stored_mb = memory_mb("VmRSS:");

    http.delete(format!("{base}/_sim/stats"))
        .send()
        .await
        .unwrap();
    http.post(format!("{base}/_sim/faults"))
        .json(&json!({ "path": "/", "latency_ms": LATENCY_MS }))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let floor_ms = floor_ms_per_call(&http, &base, 30).await;
    http.delete(format!("{base}/_sim/stats"))
        .send()
        .await
        .unwrap();
    let before = store.stats();
    let statements_before = statements.load(Ordering::Relaxed);
    let set_up_mb = memory_mb("VmRSS:");
    let cpu_before = cpu_secs();
    let started = Instant::now();
    let mut sweeps = tokio::task::JoinSet::new();
    for app in &apps {
        let (_, handle) = app
            .state()
            .tokens
            .start_sweep("bench", SweepFilter::default())
            .unwrap();
        sweeps.spawn(async move { handle.await.unwrap() });
    }
    let runs = sweeps.join_all().await;
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu_before;
    let after = store.stats();
    let sent = statements.load(Ordering::Relaxed) - statements_before;
    let writes = after.file_writes - before.file_writes;
    let mut counts = std::collections::BTreeMap::<String, u64>::new();
    for run in &runs {
        for (k, v) in &run.counts {
            *counts.entry(k.clone()).or_default() += v;
        }
    }
    let refreshed = counts.get("refreshed").copied().unwrap_or(0).max(1);
    let bytes_per = (after.bytes_written - before.bytes_written) as f64 / refreshed as f64;
    let stats: Value = http
        .get(format!("{base}/_sim/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let calls: u64 = stats
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| !k.starts_with("/_sim"))
        .filter_map(|(_, v)| v.as_u64())
        .sum();
    let exchanges = stats["/oauth/access_token:fb_exchange_token"]
        .as_u64()
        .unwrap_or(0);
    let per_conn = calls as f64 / n as f64;
    let slots = (CONCURRENCY * instances) as f64;
    let bound = n as f64 * per_conn * LATENCY_MS as f64 / 1000.0 / slots;
    let (on, target) = match backend {
        Backend::Json => ("the JSON store".to_string(), 1.15),
        Backend::Postgres { .. } => (format!("PostgreSQL, {instances} instance(s)"), 1.2),
    };
    println!(
        "sweep of {n} connections on {on}, {LATENCY_MS} ms per upstream call, concurrency {CONCURRENCY} each"
    );
    println!("  outcomes (all instances): {counts:?}");
    let floor = n as f64 * per_conn * floor_ms / 1000.0 / slots;
    println!(
        "  wall {wall:.2} s, bound {bound:.2} s (N x {per_conn:.2} calls x {LATENCY_MS} ms / {slots} slots), wall / bound {:.2} (target <= {target})",
        wall / bound
    );
    println!(
        "  floor {floor:.2} s (a bare client's calls take {floor_ms:.1} ms each here, C at a time), \
         wall / floor {:.2}: what the service adds to the simulator and HTTP on this machine",
        wall / floor
    );
    println!(
        "  upstream calls {calls}: {exchanges} token exchanges for {n} users ({} duplicates)",
        exchanges.saturating_sub(n as u64)
    );
    match backend {
        Backend::Json => println!(
            "  store writes {writes}, compactions {}, bytes written per refreshed connection {bytes_per:.0} (target <= 2048)",
            after.compactions - before.compactions
        ),
        Backend::Postgres { .. } => println!(
            "  database statements {sent} ({:.1} round trips per refreshed connection)",
            sent as f64 / refreshed as f64
        ),
    }
    println!(
        "  service peak memory {:.0} MB (target at 100,000 <= 400; resident {stored_mb:.0} MB once stored, \
         {set_up_mb:.0} MB as the sweep starts); simulator peak {:.0} MB",
        peak_rss_mb(),
        sim.peak_rss_mb()
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "  cpu {cpu:.1} s in {wall:.1} s on {cores} cores ({:.0}% busy: the simulator, its client and the service share them)",
        100.0 * cpu / wall / cores as f64
    );
    for app in &apps {
        app.state().store.close().await;
    }
    drop(apps);
    backend.drop_schema().await;
}
