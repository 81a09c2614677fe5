//! Facebook's registration: its kinds, windows, connect flows and, when
//! FB_APP_ID and FB_APP_SECRET are set, its Graph client and lifecycle.

use std::sync::Arc;
use std::time::Duration;

use super::GraphClient;
use super::lifecycle::{FacebookLifecycle, policy};
use crate::config::Settings;
use crate::domain::{ConnectionKind, Provider};
use crate::providers::spec::{Clients, ConnectFlow, ProviderSpec, client_with};

pub fn register(settings: &Settings, clients: &mut Clients) -> ProviderSpec {
    let secrets = &settings.secrets;
    let max_wait = Duration::from_secs(settings.refresh.max_retry_wait_secs);
    clients.facebook = client_with(&secrets.fb_app_id, &secrets.fb_app_secret, |id, secret| {
        GraphClient::new(&settings.facebook, max_wait, id, secret)
    });
    ProviderSpec {
        provider: Provider::Facebook,
        display_name: "Facebook",
        kinds: &[
            ConnectionKind::User,
            ConnectionKind::Page,
            ConnectionKind::SystemUser,
        ],
        // A page token is derived from a long-lived user token and renewed
        // by renewing that user (wire-spec 3).
        derived_kinds: &[ConnectionKind::Page],
        connect_flows: &[
            ConnectFlow::OAuthCode,
            ConnectFlow::UserToken,
            ConnectFlow::BusinessToken,
        ],
        credentials: "FB_APP_ID and FB_APP_SECRET",
        policy: policy(&settings.facebook),
        lifecycle: clients
            .facebook
            .clone()
            .map(|g| Arc::new(FacebookLifecycle::new(g)) as _),
    }
}
