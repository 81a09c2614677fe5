//! What a provider registers: its [`ProviderSpec`] and, when its app
//! credentials are set, its client in [`Clients`].

use std::sync::Arc;

use super::facebook::client::GraphClient;
use super::google::ads::GoogleAds;
use super::google::oauth::GoogleOAuth;
use super::lifecycle::TokenLifecycle;
use super::tiktok::client::TiktokClient;
use crate::domain::{ConnectionKind, HealthPolicy, Provider};
use crate::secret::Secret;

/// How a user connects an account of a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectFlow {
    /// An OAuth consent redirect whose callback carries a code.
    OAuthCode,
    /// A user token a dashboard already holds, upgraded by the service.
    UserToken,
    /// A long-lived business (system-user) token registered as it is.
    BusinessToken,
}

/// One platform as the rest of the service sees it.
pub struct ProviderSpec {
    pub provider: Provider,
    /// As shown to people: "Facebook", "TikTok Shop".
    pub display_name: &'static str,
    /// The kinds of connection the provider has.
    pub kinds: &'static [ConnectionKind],
    /// The kinds that are derived from another connection and renewed
    /// through it (a Facebook page through its user token).
    pub derived_kinds: &'static [ConnectionKind],
    pub connect_flows: &'static [ConnectFlow],
    /// The settings that configure the app credentials, named in the error
    /// when they are missing.
    pub credentials: &'static str,
    pub policy: HealthPolicy,
    /// `None` while the app credentials are not configured.
    pub lifecycle: Option<Arc<dyn TokenLifecycle>>,
}

impl ProviderSpec {
    /// Whether a connection of `kind` is renewed through its parent.
    pub fn is_derived(&self, kind: ConnectionKind) -> bool {
        self.derived_kinds.contains(&kind)
    }

    /// The message for a call that needs the provider's app credentials.
    pub fn not_configured(&self) -> String {
        format!(
            "{} is not configured: set {}",
            self.display_name, self.credentials
        )
    }
}

/// A call needs a provider whose app credentials are not configured.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct NotConfigured(pub String);

/// A provider's client, when both halves of its app credentials are set.
pub fn client_with<C>(
    id: &Option<String>,
    secret: &Option<Secret>,
    make: impl FnOnce(String, Secret) -> C,
) -> Option<Arc<C>> {
    match (id, secret) {
        (Some(id), Some(secret)) => Some(Arc::new(make(id.clone(), secret.clone()))),
        _ => None,
    }
}

/// The clients of the configured providers (each `None` when its
/// credentials are not set), for connect flows and insights.
#[derive(Default)]
pub struct Clients {
    pub facebook: Option<Arc<GraphClient>>,
    pub tiktok: Option<Arc<TiktokClient>>,
    pub google: Option<Arc<GoogleOAuth>>,
    pub google_ads: Option<Arc<GoogleAds>>,
}
