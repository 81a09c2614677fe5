//! The upstream simulator: faithful copies of the Facebook Graph API, TikTok
//! Shop auth and Google OAuth + Ads endpoints the service uses,
//! with a real token state machine, a control API under `/_sim/`, fault
//! knobs, and the platforms' signed pushes sent on request. Tests,
//! benchmarks and `tokenkeeper demo` run against it; nothing touches the
//! internet.

mod ads;
mod ads_insights;
mod batch;
mod business;
mod callbacks;
mod consent;
mod control;
mod control_insights;
mod edges;
mod errors;
mod faults;
mod fields;
mod gaql;
mod google;
mod google_http;
mod graph;
mod insights_world;
mod metrics;
mod nodes;
mod oauth;
mod pages_insights;
mod permissions;
mod providers;
mod state;
mod tiktok;
mod tiktok_http;
mod usage;
mod wire;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use faults::Faults;
use state::World;

pub use wire::appsecret_proof;

/// Id of the demo user that exists from the start when `demo_user` is set.
pub const DEMO_USER_ID: &str = state::DEMO_USER_ID;
pub use google::{DEMO_CUSTOMER_ID, DEMO_GOOGLE_USER_ID};
pub use tiktok::DEMO_OPEN_ID as DEMO_TIKTOK_OPEN_ID;

/// Settings of a simulator instance. Lifetimes are seconds so tests can use
/// short ones.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub fb_app_id: String,
    pub fb_app_secret: String,
    /// `application` in `debug_token`.
    pub fb_app_name: String,
    pub short_lived_secs: i64,
    pub long_lived_secs: i64,
    pub data_access_secs: i64,
    /// Creates "Demo User" (`DEMO_USER_ID`) with the pages "Demo Coffee" and
    /// "Demo Books", and makes it the user the OAuth dialog approves.
    pub demo_user: bool,
    /// Most rows a sync Marketing insights call may return; above it the call
    /// fails 100/1487534 ("Please reduce the amount of data …").
    pub sync_max_rows: usize,
    /// Status polls of an async report run that answer before it completes
    /// ("Job Not Started", then "Job Running"); 0 completes at once.
    pub report_polls_to_complete: u32,
    /// Page/post/video insights metrics that fail with "(#100) The value must
    /// be a valid insights metric".
    pub retired_metrics: Vec<String>,
    /// TikTok Shop app credentials (`TIKTOK_SHOP_APP_KEY` / `_SECRET`).
    pub tiktok_app_key: String,
    pub tiktok_app_secret: String,
    /// TikTok access and refresh token lifetimes.
    pub tiktok_access_secs: i64,
    pub tiktok_refresh_secs: i64,
    /// Google OAuth client (`GOOGLE_CLIENT_ID` / `GOOGLE_CLIENT_SECRET`).
    pub google_client_id: String,
    pub google_client_secret: String,
    /// The `developer-token` header searchStream accepts.
    pub google_developer_token: String,
    /// Google access token lifetime (`expires_in`).
    pub google_access_secs: i64,
    /// "Require App Secret" on: a Graph call with a token but without
    /// `appsecret_proof` fails with code 100 (wire-spec 1.7). When off, a
    /// missing proof is accepted and a wrong one still refused. Also set
    /// at run time through `/_sim/app`.
    pub require_appsecret_proof: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            fb_app_id: "1234567890".into(),
            fb_app_secret: "sim-app-secret".into(),
            fb_app_name: "tokenkeeper-sim".into(),
            short_lived_secs: 3600,
            long_lived_secs: 5_184_000,
            data_access_secs: 7_776_000,
            demo_user: true,
            sync_max_rows: 1000,
            report_polls_to_complete: 2,
            retired_metrics: metrics::default_retired_metrics(),
            tiktok_app_key: "sim-tiktok-app-key".into(),
            tiktok_app_secret: "sim-tiktok-app-secret".into(),
            tiktok_access_secs: 7 * 86_400,
            tiktok_refresh_secs: 365 * 86_400,
            google_client_id: "sim-client.apps.googleusercontent.com".into(),
            google_client_secret: "sim-google-client-secret".into(),
            google_developer_token: "sim-dev-token".into(),
            google_access_secs: 3599,
            require_appsecret_proof: true,
        }
    }
}

impl SimConfig {
    /// Defaults, with the app credentials from `FB_APP_ID` / `FB_APP_SECRET`,
    /// `TIKTOK_SHOP_APP_KEY` / `TIKTOK_SHOP_APP_SECRET`, `GOOGLE_CLIENT_ID` /
    /// `GOOGLE_CLIENT_SECRET` and `GOOGLE_ADS_DEVELOPER_TOKEN` when set (the
    /// same variables the service reads).
    pub fn from_env() -> Self {
        let mut config = Self::default();
        let vars: [(&str, &mut String); 7] = [
            ("FB_APP_ID", &mut config.fb_app_id),
            ("FB_APP_SECRET", &mut config.fb_app_secret),
            ("TIKTOK_SHOP_APP_KEY", &mut config.tiktok_app_key),
            ("TIKTOK_SHOP_APP_SECRET", &mut config.tiktok_app_secret),
            ("GOOGLE_CLIENT_ID", &mut config.google_client_id),
            ("GOOGLE_CLIENT_SECRET", &mut config.google_client_secret),
            (
                "GOOGLE_ADS_DEVELOPER_TOKEN",
                &mut config.google_developer_token,
            ),
        ];
        for (name, field) in vars {
            if let Ok(value) = std::env::var(name) {
                *field = value;
            }
        }
        config
    }
}

/// The state shared by every request of one simulator.
pub(crate) struct Sim {
    config: SimConfig,
    /// Seconds added to real UTC time.
    clock_offset: AtomicI64,
    world: Mutex<World>,
    faults: Mutex<Faults>,
    stats: Mutex<HashMap<String, u64>>,
    /// Every revocation the platforms carried out, oldest first
    /// (`/_sim/revocations`), so tests can see that one arrived and where.
    revocations: Mutex<Vec<serde_json::Value>>,
    /// TikTok Shop and Google state, apart from the Facebook world.
    providers: Mutex<providers::Providers>,
    /// Usage levels per Meta scope (`/_sim/usage`).
    usage: Mutex<usage::UsageLevels>,
    /// Starts as `config.require_appsecret_proof`; `/_sim/app` changes it.
    require_proof: AtomicBool,
}

impl Sim {
    fn new(config: SimConfig) -> Self {
        let now = chrono::Utc::now().timestamp();
        Self {
            world: Mutex::new(World::new(config.clone(), now)),
            providers: Mutex::new(providers::Providers::new(&config, now)),
            usage: Mutex::new(usage::UsageLevels::default()),
            require_proof: AtomicBool::new(config.require_appsecret_proof),
            config,
            clock_offset: AtomicI64::new(0),
            faults: Mutex::new(Faults::default()),
            stats: Mutex::new(HashMap::new()),
            revocations: Mutex::new(Vec::new()),
        }
    }

    /// Simulator time: real UTC seconds plus the offset set by `/_sim/clock`.
    pub(crate) fn now(&self) -> i64 {
        chrono::Utc::now().timestamp() + self.clock_offset.load(Ordering::Relaxed)
    }

    pub(crate) fn advance_clock(&self, secs: i64) -> i64 {
        self.clock_offset.fetch_add(secs, Ordering::Relaxed);
        self.now()
    }

    // A panic while holding a lock leaves plain data behind; keep serving.
    pub(crate) fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn stats(&self) -> MutexGuard<'_, HashMap<String, u64>> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn record_revocation(&self, record: serde_json::Value) {
        self.revocations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(record);
    }

    pub(crate) fn revocations(&self) -> Vec<serde_json::Value> {
        self.revocations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn providers(&self) -> MutexGuard<'_, providers::Providers> {
        self.providers.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn usage(&self) -> MutexGuard<'_, usage::UsageLevels> {
        self.usage.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn requires_proof(&self) -> bool {
        self.require_proof.load(Ordering::Relaxed)
    }

    pub(crate) fn set_requires_proof(&self, on: bool) {
        self.require_proof.store(on, Ordering::Relaxed);
    }
}

/// A running simulator; dropping it (or `stop`) shuts the server down.
pub struct SimHandle {
    addr: SocketAddr,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`, the base URL for every simulated upstream.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the simulator listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting calls and waits (at most 5 s) for open ones to end.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Starts the simulator on `addr` (port 0 picks a free port).
pub async fn start(config: SimConfig, addr: SocketAddr) -> std::io::Result<SimHandle> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let sim = Arc::new(Sim::new(config));
    // Provider routes are explicit, so they win over the Graph fallback.
    let app = control::router()
        .merge(control_insights::router())
        .merge(usage::router())
        .merge(providers::router())
        .merge(callbacks::router())
        .fallback(graph::handle)
        .with_state(sim);
    let cancel = CancellationToken::new();
    let shutdown = cancel.clone();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "the simulator stopped serving");
        }
    });
    Ok(SimHandle {
        addr,
        cancel,
        task: Some(task),
    })
}
