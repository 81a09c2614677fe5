//! The upstream platforms: where they live and how close to expiry their
//! tokens are renewed.

use serde::Deserialize;

use super::ConfigError;
use super::check::check_url_fields;

#[derive(Debug, Clone, Deserialize)]
pub struct FacebookSettings {
    pub graph_base_url: String,
    pub dialog_base_url: String,
    pub api_version: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub request_timeout_secs: u64,
    pub page_limit: u32,
    pub usage_slow_pct: f64,
    pub usage_pause_pct: f64,
    pub usage_pause_secs: u64,
    pub refresh_before_days: i64,
    pub warning_days: Vec<i64>,
}

impl FacebookSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_url_fields!(
            "facebook",
            self,
            [graph_base_url, dialog_base_url, redirect_uri]
        )
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct TiktokSettings {
    pub authorize_base_url: String,
    pub auth_base_url: String,
    pub api_base_url: String,
    pub redirect_uri: String,
    pub refresh_before_secs: i64,
    pub expiring_soon_secs: i64,
    pub cleanup_after_days: i64,
}

impl TiktokSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_url_fields!(
            "tiktok",
            self,
            [
                authorize_base_url,
                auth_base_url,
                api_base_url,
                redirect_uri
            ]
        )
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct GoogleSettings {
    pub auth_base_url: String,
    pub oauth_base_url: String,
    pub ads_base_url: String,
    pub ads_api_version: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub refresh_before_secs: i64,
    pub login_customer_id: String,
}

impl GoogleSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_url_fields!(
            "google",
            self,
            [auth_base_url, oauth_base_url, ads_base_url, redirect_uri]
        )
    }
}
