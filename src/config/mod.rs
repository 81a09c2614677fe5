//! Configuration: layered settings (defaults, files, environment, flags) and
//! secrets read from the environment, validated once at start.
//!
//! Each section is a struct in the file of its concern, with the rules of its
//! own (URLs, API keys, time zone, ...) in its `validate`; every numeric
//! key's range is in one table (`ranges`), and the checks both use are in
//! `check`. `Settings::validate` runs them all, then the rules that span
//! sections.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;

mod check;
mod insights;
mod providers;
mod ranges;
mod refresh;
mod secrets;
mod server;
mod store;

pub use check::check_range;
pub use insights::{ExportSettings, InsightsSettings};
pub use providers::{FacebookSettings, GoogleSettings, TiktokSettings};
pub use refresh::{NotificationSettings, RefreshSettings, ScheduleSettings};
pub use secrets::Secrets;
pub use server::{
    ApiKeySettings, ApiSettings, AuthSettings, LogFormat, LoggingSettings, MetricsSettings,
    ServerSettings,
};
pub use store::{PostgresSettings, StoreBackend, StoreSettings};

/// The defaults, compiled in so the binary runs from any folder.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// A setting that could not be used; `key` names it (`store.backup_count`,
/// `TOKENKEEPER_ENCRYPTION_KEY`, ...).
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {key}: {reason}")]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub store: StoreSettings,
    pub logging: LoggingSettings,
    pub facebook: FacebookSettings,
    pub refresh: RefreshSettings,
    pub auth: AuthSettings,
    pub api: ApiSettings,
    pub notifications: NotificationSettings,
    pub insights: InsightsSettings,
    pub tiktok: TiktokSettings,
    pub google: GoogleSettings,
    pub schedules: ScheduleSettings,
    pub exports: ExportSettings,
    pub metrics: MetricsSettings,
    #[serde(skip)]
    pub secrets: Secrets,
}

/// Command-line values that override every other layer.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub addr: Option<String>,
    pub data_dir: Option<PathBuf>,
}

impl Settings {
    /// Loads settings from the process environment and `config/local.toml`
    /// in the working folder.
    pub fn load(overrides: &Overrides) -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Self::load_from(Path::new("config/local.toml"), overrides, &env)
    }

    /// Loads settings with an explicit local file and environment (for tests).
    pub fn load_from(
        local_file: &Path,
        overrides: &Overrides,
        env: &HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let mut builder = Config::builder()
            .add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml))
            .add_source(File::from(local_file.to_path_buf()).required(false));
        if let Some(file) = &overrides.config_file {
            if !file.exists() {
                return Err(ConfigError::new(
                    "--config",
                    format!("file {} does not exist", file.display()),
                ));
            }
            builder = builder.add_source(File::from(file.clone()).required(true));
        }
        // The environment comes after the files so that it wins.
        let tk_env: HashMap<String, String> = env
            .iter()
            .filter(|(k, _)| k.starts_with("TOKENKEEPER__"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        builder = builder.add_source(
            Environment::with_prefix("TOKENKEEPER")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(tk_env)),
        );
        let raw = builder.build().map_err(config_error)?;
        let mut settings: Settings = raw.try_deserialize().map_err(config_error)?;
        if let Some(addr) = &overrides.addr {
            settings.server.addr = addr.clone();
        }
        if let Some(dir) = &overrides.data_dir {
            settings.store.data_dir = dir.clone();
        }
        settings.secrets = Secrets::from_env(env);
        settings.validate()?;
        Ok(settings)
    }

    /// The listen address first, then every numeric key against its range
    /// (`ranges`), then each section's own rules, then the rules that span
    /// sections.
    fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate()?;
        self.check_ranges()?;
        self.store.validate()?;
        self.facebook.validate()?;
        self.tiktok.validate()?;
        self.google.validate()?;
        self.notifications.validate()?;
        self.schedules.validate()?;
        self.api.validate()?;
        // An async report is awaited inline; cutting it off would make every
        // long campaign report fail.
        if self.server.request_timeout_secs <= self.insights.async_timeout_secs {
            return Err(ConfigError::new(
                "server.request_timeout_secs",
                format!(
                    "must exceed insights.async_timeout_secs ({}) so async reports can finish",
                    self.insights.async_timeout_secs
                ),
            ));
        }
        if self.store.backend == StoreBackend::Postgres {
            // Every instance must seal secrets with one key, so none may
            // generate its own beside a data folder.
            for (name, set) in [
                (
                    "TOKENKEEPER_DATABASE_URL",
                    self.secrets.database_url.is_some(),
                ),
                (
                    "TOKENKEEPER_ENCRYPTION_KEY",
                    self.secrets.encryption_key.is_some(),
                ),
            ] {
                if !set {
                    return Err(ConfigError::new(
                        name,
                        "must be set when store.backend is \"postgres\"",
                    ));
                }
            }
        }
        self.secrets.validate()
    }

    /// The listen address, parsed.
    pub fn socket_addr(&self) -> Result<std::net::SocketAddr, ConfigError> {
        self.server.socket_addr()
    }
}

/// The `config` crate names the key in its messages; keep that, and name the
/// layer when it does not.
fn config_error(err: config::ConfigError) -> ConfigError {
    let text = err.to_string();
    let key = text
        .split("for key `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .unwrap_or("configuration")
        .to_string();
    ConfigError::new(key, text)
}

#[cfg(test)]
mod tests;
