//! The upstream platforms: where they live and how close to expiry their
//! tokens are renewed.

use serde::Deserialize;

use super::ConfigError;
use super::check::{check_fields, check_order, check_range, check_urls};

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
        check_fields!("facebook", self, {
            request_timeout_secs: 1..=600,
            page_limit: 1..=1000,
            usage_slow_pct: 0.0..=100.0,
            usage_pause_pct: 0.0..=100.0,
        });
        check_order(
            ("facebook.usage_slow_pct", self.usage_slow_pct),
            ("facebook.usage_pause_pct", self.usage_pause_pct),
        )?;
        check_fields!("facebook", self, {
            usage_pause_secs: 0..=3600,
            // Long-lived user tokens last about 60 days.
            refresh_before_days: 0..=60,
        });
        for days in &self.warning_days {
            check_range("facebook.warning_days", *days, 0..=60)?;
        }
        check_urls(&[
            ("facebook.graph_base_url", &self.graph_base_url),
            ("facebook.dialog_base_url", &self.dialog_base_url),
            ("facebook.redirect_uri", &self.redirect_uri),
        ])
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
        check_fields!("tiktok", self, {
            refresh_before_secs: 0..=30 * 86_400,
            expiring_soon_secs: 0..=30 * 86_400,
            cleanup_after_days: 0..=3650,
        });
        check_urls(&[
            ("tiktok.authorize_base_url", &self.authorize_base_url),
            ("tiktok.auth_base_url", &self.auth_base_url),
            ("tiktok.api_base_url", &self.api_base_url),
            ("tiktok.redirect_uri", &self.redirect_uri),
        ])
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
        // Google access tokens live about an hour.
        check_fields!("google", self, { refresh_before_secs: 0..=3600 });
        check_urls(&[
            ("google.auth_base_url", &self.auth_base_url),
            ("google.oauth_base_url", &self.oauth_base_url),
            ("google.ads_base_url", &self.ads_base_url),
            ("google.redirect_uri", &self.redirect_uri),
        ])
    }
}
