//! TikTok Shop's registration: one shop kind, refresh-token renewal, and,
//! when the app key and secret are set, its client and lifecycle.

use std::sync::Arc;

use chrono::Duration;

use super::TiktokClient;
use super::lifecycle::TiktokLifecycle;
use crate::config::Settings;
use crate::domain::{ConnectionKind, HealthPolicy, Provider, RenewRule};
use crate::providers::spec::{Clients, ConnectFlow, ProviderSpec, client_with};

pub fn register(settings: &Settings, clients: &mut Clients) -> ProviderSpec {
    let secrets = &settings.secrets;
    clients.tiktok = client_with(
        &secrets.tiktok_shop_app_key,
        &secrets.tiktok_shop_app_secret,
        |key, secret| TiktokClient::new(&settings.tiktok, key, secret),
    );
    ProviderSpec {
        provider: Provider::TiktokShop,
        display_name: "TikTok Shop",
        kinds: &[ConnectionKind::Shop],
        derived_kinds: &[],
        connect_flows: &[ConnectFlow::OAuthCode],
        credentials: "TIKTOK_SHOP_APP_KEY and TIKTOK_SHOP_APP_SECRET",
        policy: HealthPolicy::new(
            RenewRule::RefreshToken,
            Duration::seconds(settings.tiktok.refresh_before_secs),
            Some(Duration::seconds(settings.tiktok.expiring_soon_secs)),
            settings.facebook.warning_days.clone(),
        ),
        lifecycle: clients
            .tiktok
            .clone()
            .map(|c| Arc::new(TiktokLifecycle::new(c)) as _),
    }
}
