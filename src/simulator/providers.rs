//! The non-Facebook upstreams (TikTok Shop auth, Google OAuth and Ads): their
//! state, their explicit routes, and the stats and fault step they share.

use std::sync::Arc;

use axum::Router;

use super::faults::ErrorSpec;
use super::google::Google;
use super::tiktok::TikTok;
use super::{Sim, SimConfig, google_http, tiktok_http};

/// TikTok Shop and Google state, behind one lock of their own.
pub(crate) struct Providers {
    pub tiktok: TikTok,
    pub google: Google,
}

impl Providers {
    pub fn new(config: &SimConfig, now: i64) -> Self {
        Self {
            tiktok: TikTok::new(config, now),
            google: Google::new(config, now),
        }
    }
}

/// Every TikTok and Google route, upstream and `/_sim` control alike.
pub(crate) fn router() -> Router<Arc<Sim>> {
    tiktok_http::router().merge(google_http::router())
}

/// Counts the call under `stat_key`, applies the fault rules matching
/// `path` (latency is slept here) and returns the error to answer with, if a
/// rule says so.
pub(crate) async fn gate(sim: &Sim, stat_key: &str, path: &str) -> Option<ErrorSpec> {
    *sim.stats().entry(stat_key.to_string()).or_default() += 1;
    let decision = sim.faults().decide(path);
    if !decision.latency.is_zero() {
        tokio::time::sleep(decision.latency).await;
    }
    decision.error_spec
}
