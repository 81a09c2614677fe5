//! Google's registration: one Ads kind, refresh-token renewal, and, when the
//! OAuth client is set, its client and lifecycle (the Ads developer token
//! configures the insights client beside it).

use std::sync::Arc;

use chrono::Duration;

use super::GoogleOAuth;
use super::ads::GoogleAds;
use super::lifecycle::GoogleLifecycle;
use crate::config::Settings;
use crate::domain::{ConnectionKind, HealthPolicy, Provider, RenewRule};
use crate::providers::spec::{Clients, ConnectFlow, ProviderSpec, client_with};

pub fn register(settings: &Settings, clients: &mut Clients) -> ProviderSpec {
    let secrets = &settings.secrets;
    clients.google = client_with(
        &secrets.google_client_id,
        &secrets.google_client_secret,
        |id, secret| GoogleOAuth::new(&settings.google, id, secret),
    );
    clients.google_ads = secrets
        .google_ads_developer_token
        .clone()
        .map(|t| Arc::new(GoogleAds::new(&settings.google, t)));
    ProviderSpec {
        provider: Provider::Google,
        display_name: "Google",
        kinds: &[ConnectionKind::Ads],
        derived_kinds: &[],
        connect_flows: &[ConnectFlow::OAuthCode],
        credentials: "GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET",
        policy: HealthPolicy::new(
            RenewRule::RefreshToken,
            Duration::seconds(settings.google.refresh_before_secs),
            None,
            settings.facebook.warning_days.clone(),
        ),
        lifecycle: clients
            .google
            .clone()
            .map(|c| Arc::new(GoogleLifecycle::new(c)) as _),
    }
}
