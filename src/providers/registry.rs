//! The provider registry: one [`ProviderSpec`] per platform, registered by
//! the platform's own module, and the clients of those whose app credentials
//! are configured. Everything that varies by provider (display name, kinds,
//! health windows, renewal, connect flows) is looked up here, so the token
//! manager, the sweep and the API treat every provider alike.

use std::sync::Arc;

use super::facebook::client::GraphClient;
use super::google::oauth::GoogleOAuth;
use super::lifecycle::TokenLifecycle;
use super::spec::{Clients, NotConfigured, ProviderSpec};
use super::tiktok::client::TiktokClient;
use crate::config::Settings;
use crate::domain::{HealthPolicy, Provider};

pub struct Registry {
    specs: Vec<ProviderSpec>,
    pub clients: Clients,
}

impl Registry {
    /// Every provider, each registered by its module (adding a provider is
    /// one line here).
    pub fn from_settings(settings: &Settings) -> Self {
        let mut clients = Clients::default();
        let specs = vec![
            super::facebook::register(settings, &mut clients),
            super::tiktok::register(settings, &mut clients),
            super::google::register(settings, &mut clients),
        ];
        Self::new(specs, clients)
    }

    /// # Panics
    /// When a provider of [`Provider::ALL`] has no spec, or one has two: a
    /// registration mistake that must fail at start, not on a request.
    pub fn new(specs: Vec<ProviderSpec>, clients: Clients) -> Self {
        for p in Provider::ALL {
            let n = specs.iter().filter(|s| s.provider == p).count();
            assert_eq!(n, 1, "{} must be registered once, found {n}", p.as_str());
        }
        Self { specs, clients }
    }

    pub fn spec(&self, provider: Provider) -> &ProviderSpec {
        self.specs
            .iter()
            .find(|s| s.provider == provider)
            .expect("Registry::new checked that every provider is registered")
    }

    pub fn specs(&self) -> impl Iterator<Item = &ProviderSpec> {
        self.specs.iter()
    }

    pub fn policy(&self, provider: Provider) -> &HealthPolicy {
        &self.spec(provider).policy
    }

    /// The lifecycle of `provider`, when its app credentials are set.
    pub fn lifecycle(&self, provider: Provider) -> Result<&Arc<dyn TokenLifecycle>, NotConfigured> {
        let spec = self.spec(provider);
        spec.lifecycle
            .as_ref()
            .ok_or_else(|| NotConfigured(spec.not_configured()))
    }

    /// Facebook's Graph client, when FB_APP_ID and FB_APP_SECRET are set.
    pub fn facebook(&self) -> Result<&Arc<GraphClient>, NotConfigured> {
        self.client(Provider::Facebook, &self.clients.facebook)
    }

    pub fn tiktok(&self) -> Result<&Arc<TiktokClient>, NotConfigured> {
        self.client(Provider::TiktokShop, &self.clients.tiktok)
    }

    pub fn google(&self) -> Result<&Arc<GoogleOAuth>, NotConfigured> {
        self.client(Provider::Google, &self.clients.google)
    }

    fn client<'a, C>(
        &self,
        provider: Provider,
        client: &'a Option<C>,
    ) -> Result<&'a C, NotConfigured> {
        client
            .as_ref()
            .ok_or_else(|| NotConfigured(self.spec(provider).not_configured()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults, with no app credentials in the environment.
    fn settings() -> Settings {
        Settings::load_from(
            std::path::Path::new("/nonexistent/local.toml"),
            &Default::default(),
            &Default::default(),
        )
        .expect("the defaults load")
    }

    #[test]
    fn every_provider_has_one_spec_of_its_own_kinds() {
        let registry = Registry::from_settings(&settings());
        for p in Provider::ALL {
            let spec = registry.spec(p);
            assert_eq!(spec.provider, p);
            assert!(!spec.kinds.is_empty(), "{} has no kinds", p.as_str());
            assert!(
                spec.derived_kinds.iter().all(|k| spec.kinds.contains(k)),
                "{}: a derived kind it does not have",
                p.as_str()
            );
            // Nothing configured: no lifecycle, and the message names the
            // settings to set.
            assert!(spec.lifecycle.is_none());
            assert!(spec.not_configured().contains(spec.credentials));
        }
    }

    #[test]
    #[should_panic(expected = "google must be registered once")]
    fn a_missing_registration_fails_at_start() {
        let mut clients = Clients::default();
        let settings = settings();
        Registry::new(
            vec![
                crate::providers::facebook::register(&settings, &mut clients),
                crate::providers::tiktok::register(&settings, &mut clients),
            ],
            clients,
        );
    }
}
