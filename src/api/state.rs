//! What every handler is handed: the services, shared and cheap to clone.

use std::sync::Arc;

use super::{auth, oauth_state};
use crate::config::Settings;
use crate::insights::InsightsService;
use crate::providers::registry::Registry;
use crate::store::{AuditTrail, ConnectionStore};
use crate::tokens::TokenManager;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Arc<dyn ConnectionStore>,
    pub tokens: Arc<TokenManager>,
    pub insights: Arc<InsightsService>,
    pub next_runs: Arc<crate::scheduler::NextRuns>,
    pub exports: Arc<crate::export::jobs::Exports>,
    /// Erases a platform user's data when the platform asks.
    pub erasure: Arc<crate::erasure::Erasure>,
    pub registry: Arc<Registry>,
    pub gate: Arc<auth::Gate>,
    pub oauth: Arc<oauth_state::StateSigner>,
    pub audit: Arc<dyn AuditTrail>,
    /// Webhook events and their deliveries.
    pub notifier: crate::notify::Notifier,
    /// Held while a key rotation runs, so that one runs at a time.
    pub key_rotation: Arc<tokio::sync::Mutex<()>>,
}
