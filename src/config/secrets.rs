//! Secrets and app credentials, read from the environment only.

use std::collections::HashMap;

use super::ConfigError;
use crate::secret::Secret;

/// Secrets and app credentials, from the environment only (never from files
/// in the repository).
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    pub encryption_key: Option<Secret>,
    /// Keys secrets may still be sealed with, comma-separated
    /// (`TOKENKEEPER_ENCRYPTION_PREVIOUS_KEYS`): opened, never sealed with.
    pub previous_keys: Option<Secret>,
    /// The PostgreSQL connection string (`store.backend = "postgres"`).
    pub database_url: Option<Secret>,
    pub internal_api_key: Option<Secret>,
    pub admin_api_key: Option<Secret>,
    pub fb_app_id: Option<String>,
    pub fb_app_secret: Option<Secret>,
    pub tiktok_shop_app_key: Option<String>,
    pub tiktok_shop_app_secret: Option<Secret>,
    pub google_client_id: Option<String>,
    pub google_client_secret: Option<Secret>,
    pub google_ads_developer_token: Option<Secret>,
    pub webhook_secret: Option<Secret>,
}

impl Secrets {
    /// Reads the secret variables from `env`; empty values count as unset.
    pub fn from_env(env: &HashMap<String, String>) -> Self {
        let get = |k: &str| env.get(k).filter(|v| !v.trim().is_empty()).cloned();
        let secret = |k: &str| get(k).map(Secret::new);
        Self {
            encryption_key: secret("TOKENKEEPER_ENCRYPTION_KEY"),
            previous_keys: secret("TOKENKEEPER_ENCRYPTION_PREVIOUS_KEYS"),
            database_url: secret("TOKENKEEPER_DATABASE_URL"),
            internal_api_key: secret("TOKENKEEPER_INTERNAL_API_KEY"),
            admin_api_key: secret("TOKENKEEPER_ADMIN_API_KEY"),
            fb_app_id: get("FB_APP_ID"),
            fb_app_secret: secret("FB_APP_SECRET"),
            tiktok_shop_app_key: get("TIKTOK_SHOP_APP_KEY"),
            tiktok_shop_app_secret: secret("TIKTOK_SHOP_APP_SECRET"),
            google_client_id: get("GOOGLE_CLIENT_ID"),
            google_client_secret: secret("GOOGLE_CLIENT_SECRET"),
            google_ads_developer_token: secret("GOOGLE_ADS_DEVELOPER_TOKEN"),
            webhook_secret: secret("TOKENKEEPER_WEBHOOK_SECRET"),
        }
    }

    /// The error names the variable, never its value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(key) = &self.encryption_key {
            crate::secret::decode_key(key.expose())
                .map_err(|reason| ConfigError::new("TOKENKEEPER_ENCRYPTION_KEY", reason))?;
        }
        if let Some(secret) = &self.webhook_secret {
            crate::secret::decode_webhook_secret(secret.expose())
                .map_err(|reason| ConfigError::new("TOKENKEEPER_WEBHOOK_SECRET", reason))?;
        }
        if let Some(keys) = &self.previous_keys {
            if self.encryption_key.is_none() {
                return Err(ConfigError::new(
                    "TOKENKEEPER_ENCRYPTION_PREVIOUS_KEYS",
                    "is set without TOKENKEEPER_ENCRYPTION_KEY, the current key to rotate to"
                        .to_string(),
                ));
            }
            for (n, key) in keys.expose().split(',').enumerate() {
                crate::secret::decode_key(key.trim()).map_err(|reason| {
                    ConfigError::new(
                        "TOKENKEEPER_ENCRYPTION_PREVIOUS_KEYS",
                        format!("key {}: {reason}", n + 1),
                    )
                })?;
            }
        }
        Ok(())
    }
}
