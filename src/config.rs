//! Configuration: layered settings (defaults, files, environment, flags) and
//! secrets read from the environment, validated once at start.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;

use crate::cadence::ProviderSchedule;
use crate::secret::Secret;

/// The defaults, compiled in so the binary runs from any folder.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

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

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub addr: String,
    pub shutdown_timeout_secs: u64,
    /// A request's headers must arrive within this long (from the first
    /// byte; on a new connection, from the accept).
    pub header_read_timeout_secs: u64,
    /// A request's body must arrive within this long after its headers.
    pub body_read_timeout_secs: u64,
    /// A keep-alive connection waiting for its next request is closed after this long.
    pub idle_timeout_secs: u64,
    /// A handler that has not answered after this long gets 503 `timeout`.
    pub request_timeout_secs: u64,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StoreSettings {
    pub data_dir: PathBuf,
    pub backup_count: usize,
    pub backup_interval_secs: u64,
    pub commit_window_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LoggingSettings {
    pub format: LogFormat,
    pub level: String,
}

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

#[derive(Debug, Clone, Deserialize)]
pub struct RefreshSettings {
    pub jitter_secs: u64,
    pub enabled: bool,
    pub concurrency: usize,
    pub max_attempts: u32,
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
    pub max_retry_wait_secs: u64,
    pub runs_kept: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub state_ttl_secs: i64,
}

/// One configured API key. The key itself is given either as its SHA-256
/// (recommended) or in clear.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiKeySettings {
    pub id: String,
    #[serde(default)]
    pub key_sha256: Option<String>,
    #[serde(default)]
    pub key: Option<Secret>,
    pub scopes: Vec<String>,
    #[serde(default)]
    pub teams: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ApiSettings {
    pub rate_limit_per_second: u64,
    pub rate_limit_burst: u32,
    /// Failed authentications (no key, unknown key) allowed per client
    /// address and minute (also the burst).
    pub failed_auth_per_client_per_minute: u32,
    /// Failed authentications allowed per second over all clients (also the burst).
    pub failed_auth_per_second: u32,
    /// Client addresses with recent failures tracked at once; beyond it every
    /// failed authentication answers 429 until entries age out.
    pub failed_auth_max_clients: usize,
    pub keys: Vec<ApiKeySettings>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NotificationSettings {
    pub webhook_url: String,
    pub max_attempts: u32,
    pub initial_backoff_ms: u64,
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ScheduleSettings {
    pub timezone: String,
    pub facebook: ProviderSchedule,
    pub tiktok_shop: ProviderSchedule,
    pub google: ProviderSchedule,
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

#[derive(Debug, Clone, Deserialize)]
pub struct InsightsSettings {
    pub async_after_days: i64,
    pub async_poll_initial_ms: u64,
    pub async_poll_max_ms: u64,
    pub async_timeout_secs: u64,
    pub concurrency: usize,
    pub cache_ttl_secs: u64,
    pub max_months_back: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ExportSettings {
    pub retention_hours: u64,
    pub concurrency: usize,
}

/// The Prometheus endpoint `/metrics`.
#[derive(Debug, Clone, Deserialize)]
pub struct MetricsSettings {
    /// Whether scraping needs an API key with the `internal` scope.
    pub require_key: bool,
}

/// Secrets and app credentials, from the environment only (never from files
/// in the repository).
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    pub encryption_key: Option<Secret>,
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

    fn validate(&self) -> Result<(), ConfigError> {
        self.socket_addr()?;
        self.check_ranges()?;
        if self.store.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::new("store.data_dir", "must not be empty"));
        }
        for (key, url) in [
            ("facebook.graph_base_url", &self.facebook.graph_base_url),
            ("facebook.dialog_base_url", &self.facebook.dialog_base_url),
            ("facebook.redirect_uri", &self.facebook.redirect_uri),
            ("tiktok.authorize_base_url", &self.tiktok.authorize_base_url),
            ("tiktok.auth_base_url", &self.tiktok.auth_base_url),
            ("tiktok.api_base_url", &self.tiktok.api_base_url),
            ("tiktok.redirect_uri", &self.tiktok.redirect_uri),
            ("google.auth_base_url", &self.google.auth_base_url),
            ("google.oauth_base_url", &self.google.oauth_base_url),
            ("google.ads_base_url", &self.google.ads_base_url),
            ("google.redirect_uri", &self.google.redirect_uri),
        ] {
            check_url(key, url)?;
        }
        if !self.notifications.webhook_url.is_empty() {
            check_url("notifications.webhook_url", &self.notifications.webhook_url)?;
        }
        if self.schedules.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(ConfigError::new(
                "schedules.timezone",
                format!("'{}' is not an IANA time zone", self.schedules.timezone),
            ));
        }
        for (name, schedule) in [
            ("facebook", &self.schedules.facebook),
            ("tiktok_shop", &self.schedules.tiktok_shop),
            ("google", &self.schedules.google),
        ] {
            crate::cadence::Cadence::parse(schedule)
                .map_err(|reason| ConfigError::new(format!("schedules.{name}"), reason))?;
        }
        for (i, key) in self.api.keys.iter().enumerate() {
            let name = format!("api.keys[{i}]");
            if key.key.is_none() && key.key_sha256.is_none() {
                return Err(ConfigError::new(name, "needs key_sha256 or key"));
            }
            if let Some(hash) = &key.key_sha256
                && (hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()))
            {
                return Err(ConfigError::new(
                    format!("{name}.key_sha256"),
                    "must be 64 hex digits",
                ));
            }
            for scope in &key.scopes {
                if crate::access::Scope::parse(scope).is_none() {
                    return Err(ConfigError::new(
                        format!("{name}.scopes"),
                        format!("unknown scope '{scope}'"),
                    ));
                }
            }
        }
        self.validate_key_ids()?;
        self.validate_http_limits()?;
        if let Some(key) = &self.secrets.encryption_key {
            crate::secret::decode_key(key.expose())
                .map_err(|reason| ConfigError::new("TOKENKEEPER_ENCRYPTION_KEY", reason))?;
        }
        Ok(())
    }

    /// Every numeric key against its allowed range, so that no value can
    /// overflow or divide by zero further in (`rate_limit_per_second` feeds a
    /// division, counts size pools and buffers, durations become timers).
    /// A new numeric key gets its line here; a unit test walks
    /// `config/default.toml` and fails for any numeric key left out.
    fn check_ranges(&self) -> Result<(), ConfigError> {
        const DAY_SECS: u64 = 86_400;
        const HOUR_MS: u64 = 3_600_000;
        let s = self;
        check_range(
            "server.shutdown_timeout_secs",
            s.server.shutdown_timeout_secs,
            0..=3600,
        )?;
        check_range("store.backup_count", s.store.backup_count, 1..=1000)?;
        check_range(
            "store.backup_interval_secs",
            s.store.backup_interval_secs,
            0..=365 * DAY_SECS,
        )?;
        // A longer window delays every acknowledgement.
        check_range("store.commit_window_ms", s.store.commit_window_ms, 0..=1000)?;

        let fb = &s.facebook;
        check_range(
            "facebook.request_timeout_secs",
            fb.request_timeout_secs,
            1..=600,
        )?;
        check_range("facebook.page_limit", fb.page_limit, 1..=1000)?;
        check_range("facebook.usage_slow_pct", fb.usage_slow_pct, 0.0..=100.0)?;
        check_range("facebook.usage_pause_pct", fb.usage_pause_pct, 0.0..=100.0)?;
        check_order(
            ("facebook.usage_slow_pct", fb.usage_slow_pct),
            ("facebook.usage_pause_pct", fb.usage_pause_pct),
        )?;
        check_range("facebook.usage_pause_secs", fb.usage_pause_secs, 0..=3600)?;
        // Long-lived user tokens last about 60 days.
        check_range(
            "facebook.refresh_before_days",
            fb.refresh_before_days,
            0..=60,
        )?;
        for days in &fb.warning_days {
            check_range("facebook.warning_days", *days, 0..=60)?;
        }

        let r = &s.refresh;
        check_range("refresh.jitter_secs", r.jitter_secs, 0..=DAY_SECS)?;
        check_range("refresh.concurrency", r.concurrency, 1..=1000)?;
        check_range("refresh.max_attempts", r.max_attempts, 1..=100)?;
        check_range("refresh.base_delay_ms", r.base_delay_ms, 0..=HOUR_MS)?;
        check_range("refresh.max_delay_ms", r.max_delay_ms, 0..=HOUR_MS)?;
        check_order(
            ("refresh.base_delay_ms", r.base_delay_ms),
            ("refresh.max_delay_ms", r.max_delay_ms),
        )?;
        check_range(
            "refresh.max_retry_wait_secs",
            r.max_retry_wait_secs,
            0..=3600,
        )?;
        check_range("refresh.runs_kept", r.runs_kept, 0..=10_000)?;

        check_range("auth.state_ttl_secs", s.auth.state_ttl_secs, 1..=86_400)?;
        // 10^6 per second keeps the limiter's period (10^9 / rate ns) above zero.
        check_range(
            "api.rate_limit_per_second",
            s.api.rate_limit_per_second,
            1..=1_000_000,
        )?;
        check_range(
            "api.rate_limit_burst",
            s.api.rate_limit_burst,
            1..=1_000_000,
        )?;

        let n = &s.notifications;
        check_range("notifications.max_attempts", n.max_attempts, 1..=100)?;
        check_range(
            "notifications.initial_backoff_ms",
            n.initial_backoff_ms,
            0..=HOUR_MS,
        )?;
        check_range("notifications.timeout_secs", n.timeout_secs, 1..=300)?;

        let i = &s.insights;
        check_range("insights.async_after_days", i.async_after_days, 0..=1200)?;
        check_range(
            "insights.async_poll_initial_ms",
            i.async_poll_initial_ms,
            1..=600_000,
        )?;
        check_range(
            "insights.async_poll_max_ms",
            i.async_poll_max_ms,
            1..=600_000,
        )?;
        check_order(
            ("insights.async_poll_initial_ms", i.async_poll_initial_ms),
            ("insights.async_poll_max_ms", i.async_poll_max_ms),
        )?;
        check_range(
            "insights.async_timeout_secs",
            i.async_timeout_secs,
            1..=DAY_SECS,
        )?;
        check_range("insights.concurrency", i.concurrency, 1..=100)?;
        check_range(
            "insights.cache_ttl_secs",
            i.cache_ttl_secs,
            0..=7 * DAY_SECS,
        )?;
        // Meta keeps 37 months of ads insights.
        check_range("insights.max_months_back", i.max_months_back, 1..=37)?;

        check_range(
            "exports.retention_hours",
            s.exports.retention_hours,
            1..=8760,
        )?;
        check_range("exports.concurrency", s.exports.concurrency, 1..=64)?;

        let t = &s.tiktok;
        check_range(
            "tiktok.refresh_before_secs",
            t.refresh_before_secs,
            0..=30 * 86_400,
        )?;
        check_range(
            "tiktok.expiring_soon_secs",
            t.expiring_soon_secs,
            0..=30 * 86_400,
        )?;
        check_range("tiktok.cleanup_after_days", t.cleanup_after_days, 0..=3650)?;
        // Google access tokens live about an hour.
        check_range(
            "google.refresh_before_secs",
            s.google.refresh_before_secs,
            0..=3600,
        )?;

        for (name, schedule) in [
            ("facebook", &s.schedules.facebook),
            ("tiktok_shop", &s.schedules.tiktok_shop),
            ("google", &s.schedules.google),
        ] {
            if let Some(every) = schedule.every_secs {
                check_range(
                    &format!("schedules.{name}.every_secs"),
                    every,
                    1..=31 * DAY_SECS,
                )?;
            }
        }
        Ok(())
    }

    /// Key ids name the caller in audit lines and own exports, so each is
    /// unique and none poses as a built-in key (`admin`, `internal`).
    fn validate_key_ids(&self) -> Result<(), ConfigError> {
        for (i, key) in self.api.keys.iter().enumerate() {
            let name = format!("api.keys[{i}].id");
            if let Some(reserved) = crate::access::RESERVED_KEY_IDS
                .iter()
                .find(|r| key.id.trim().eq_ignore_ascii_case(r))
            {
                return Err(ConfigError::new(
                    name,
                    format!("'{reserved}' is reserved for a built-in key; choose another id"),
                ));
            }
            if let Some(first) = self.api.keys[..i].iter().position(|k| k.id == key.id) {
                return Err(ConfigError::new(
                    name,
                    format!("'{}' is already the id of api.keys[{first}]", key.id),
                ));
            }
        }
        Ok(())
    }

    /// Timeouts, the connection cap and the failed-authentication limits.
    fn validate_http_limits(&self) -> Result<(), ConfigError> {
        let s = &self.server;
        let a = &self.api;
        check_range(
            "server.header_read_timeout_secs",
            s.header_read_timeout_secs,
            1..=3600,
        )?;
        check_range(
            "server.body_read_timeout_secs",
            s.body_read_timeout_secs,
            1..=3600,
        )?;
        check_range("server.idle_timeout_secs", s.idle_timeout_secs, 1..=3600)?;
        check_range(
            "server.request_timeout_secs",
            s.request_timeout_secs,
            1..=86_400,
        )?;
        check_range("server.max_connections", s.max_connections, 1..=1_000_000)?;
        check_range(
            "api.failed_auth_per_client_per_minute",
            a.failed_auth_per_client_per_minute,
            1..=1_000_000,
        )?;
        check_range(
            "api.failed_auth_per_second",
            a.failed_auth_per_second,
            1..=1_000_000,
        )?;
        check_range(
            "api.failed_auth_max_clients",
            a.failed_auth_max_clients,
            1..=10_000_000,
        )?;
        // An async report is awaited inline; cutting it off would make every
        // long campaign report fail.
        if s.request_timeout_secs <= self.insights.async_timeout_secs {
            return Err(ConfigError::new(
                "server.request_timeout_secs",
                format!(
                    "must exceed insights.async_timeout_secs ({}) so async reports can finish",
                    self.insights.async_timeout_secs
                ),
            ));
        }
        Ok(())
    }

    /// The listen address, parsed.
    pub fn socket_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server.addr.parse().map_err(|_| {
            ConfigError::new(
                "server.addr",
                format!("'{}' is not a HOST:PORT address", self.server.addr),
            )
        })
    }
}

/// `value` must lie in `range`; the error names the key and the range.
pub fn check_range<T>(key: &str, value: T, range: RangeInclusive<T>) -> Result<(), ConfigError>
where
    T: PartialOrd + std::fmt::Display,
{
    if range.contains(&value) {
        return Ok(());
    }
    Err(ConfigError::new(
        key,
        format!(
            "must be between {} and {}, got {value}",
            range.start(),
            range.end()
        ),
    ))
}

/// The first key's value must not exceed the second's.
fn check_order<T>(low: (&str, T), high: (&str, T)) -> Result<(), ConfigError>
where
    T: PartialOrd + std::fmt::Display,
{
    if low.1 <= high.1 {
        return Ok(());
    }
    Err(ConfigError::new(
        low.0,
        format!("must not exceed {} ({} > {})", high.0, low.1, high.1),
    ))
}

fn check_url(key: &str, url: &str) -> Result<(), ConfigError> {
    match reqwest::Url::parse(url) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Ok(()),
        _ => Err(ConfigError::new(
            key,
            format!("'{url}' is not an http(s) URL"),
        )),
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
mod tests {
    use super::*;

    fn load(env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::load_from(
            Path::new("/nonexistent/local.toml"),
            &Overrides::default(),
            &env,
        )
    }

    #[test]
    fn defaults_load_without_any_environment() {
        let s = load(&[]).unwrap();
        assert_eq!(s.server.addr, "127.0.0.1:8080");
        assert_eq!(s.store.backup_count, 5);
        assert_eq!(s.logging.format, LogFormat::Human);
    }

    #[test]
    fn environment_overrides_files() {
        let s = load(&[
            ("TOKENKEEPER__STORE__BACKUP_COUNT", "9"),
            ("TOKENKEEPER__LOGGING__FORMAT", "json"),
        ])
        .unwrap();
        assert_eq!(s.store.backup_count, 9);
        assert_eq!(s.logging.format, LogFormat::Json);
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let err = load(&[("TOKENKEEPER__STORE__BACKUP_COUNT", "many")]).unwrap_err();
        assert_eq!(err.key, "store.backup_count", "{err}");
        let err = load(&[("TOKENKEEPER__SERVER__ADDR", "nowhere")]).unwrap_err();
        assert_eq!(err.key, "server.addr");
        let err = load(&[("TOKENKEEPER_ENCRYPTION_KEY", "short")]).unwrap_err();
        assert_eq!(err.key, "TOKENKEEPER_ENCRYPTION_KEY");
        assert!(
            !err.to_string().contains("short"),
            "the key value leaked: {err}"
        );
    }

    fn load_toml(toml: &str) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys.toml");
        std::fs::write(&file, toml).unwrap();
        Settings::load_from(
            Path::new("/nonexistent/local.toml"),
            &Overrides {
                config_file: Some(file),
                ..Overrides::default()
            },
            &HashMap::new(),
        )
    }

    fn key(id: &str) -> String {
        format!(
            "[[api.keys]]\nid = \"{id}\"\nkey = \"k-{id}-0123456789abcdef\"\nscopes = [\"exports\"]\n"
        )
    }

    #[test]
    fn a_configured_key_may_not_take_a_built_in_id() {
        for reserved in ["admin", "internal", "Admin"] {
            let err = load_toml(&format!("{}{}", key("dashboard"), key(reserved))).unwrap_err();
            assert_eq!(err.key, "api.keys[1].id", "{err}");
            assert!(err.to_string().contains("reserved"), "{err}");
        }
        assert!(load_toml(&key("administrator")).is_ok());
    }

    #[test]
    fn two_configured_keys_may_not_share_an_id() {
        let err = load_toml(&format!("{}{}{}", key("a"), key("b"), key("a"))).unwrap_err();
        assert_eq!(err.key, "api.keys[2].id", "{err}");
        assert!(err.to_string().contains("api.keys[0]"), "{err}");
    }

    #[test]
    fn server_limits_are_range_checked_naming_the_key() {
        for (var, value, key) in [
            (
                "TOKENKEEPER__SERVER__HEADER_READ_TIMEOUT_SECS",
                "0",
                "server.header_read_timeout_secs",
            ),
            (
                "TOKENKEEPER__SERVER__BODY_READ_TIMEOUT_SECS",
                "4000",
                "server.body_read_timeout_secs",
            ),
            (
                "TOKENKEEPER__SERVER__IDLE_TIMEOUT_SECS",
                "0",
                "server.idle_timeout_secs",
            ),
            (
                "TOKENKEEPER__SERVER__MAX_CONNECTIONS",
                "0",
                "server.max_connections",
            ),
            (
                "TOKENKEEPER__SERVER__REQUEST_TIMEOUT_SECS",
                "600",
                "server.request_timeout_secs",
            ),
            (
                "TOKENKEEPER__API__FAILED_AUTH_PER_SECOND",
                "0",
                "api.failed_auth_per_second",
            ),
            (
                "TOKENKEEPER__API__FAILED_AUTH_MAX_CLIENTS",
                "0",
                "api.failed_auth_max_clients",
            ),
        ] {
            let err = load(&[(var, value)]).unwrap_err();
            assert_eq!(err.key, key, "{err}");
        }
        let s = load(&[]).unwrap();
        assert_eq!(s.server.max_connections, 1024);
        assert!(s.server.request_timeout_secs > s.insights.async_timeout_secs);
    }

    #[test]
    fn out_of_range_numbers_exit_naming_the_key_and_the_range() {
        for (var, key, range) in [
            (
                "TOKENKEEPER__API__RATE_LIMIT_PER_SECOND",
                "api.rate_limit_per_second",
                "between 1 and 1000000",
            ),
            (
                "TOKENKEEPER__STORE__BACKUP_COUNT",
                "store.backup_count",
                "between 1 and 1000",
            ),
            (
                "TOKENKEEPER__REFRESH__CONCURRENCY",
                "refresh.concurrency",
                "between 1 and 1000",
            ),
            (
                "TOKENKEEPER__INSIGHTS__MAX_MONTHS_BACK",
                "insights.max_months_back",
                "between 1 and 37",
            ),
        ] {
            let err = load(&[(var, "2000000000")]).unwrap_err();
            assert_eq!(err.key, key, "{err}");
            let text = err.to_string();
            assert!(
                text.contains(range) && text.contains("2000000000"),
                "{text}"
            );
        }
        let err = load(&[("TOKENKEEPER__FACEBOOK__USAGE_PAUSE_PCT", "150.5")]).unwrap_err();
        assert_eq!(err.key, "facebook.usage_pause_pct", "{err}");
        let err = load(&[("TOKENKEEPER__REFRESH__BASE_DELAY_MS", "60000")]).unwrap_err();
        assert_eq!(err.key, "refresh.base_delay_ms", "{err}");
        assert!(err.to_string().contains("refresh.max_delay_ms"), "{err}");
        // The edges of a range are allowed.
        load(&[("TOKENKEEPER__API__RATE_LIMIT_PER_SECOND", "1000000")]).unwrap();
        load(&[("TOKENKEEPER__API__RATE_LIMIT_BURST", "1")]).unwrap();
    }

    /// Every numeric key of `config/default.toml` (its path and whether it
    /// is a float), tables walked recursively.
    fn numeric_default_keys() -> Vec<(String, bool)> {
        fn walk(
            prefix: &str,
            table: &config::Map<String, config::Value>,
            out: &mut Vec<(String, bool)>,
        ) {
            for (name, value) in table {
                let key = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}.{name}")
                };
                match &value.kind {
                    config::ValueKind::Table(t) => walk(&key, t, out),
                    config::ValueKind::I64(_) | config::ValueKind::U64(_) => out.push((key, false)),
                    config::ValueKind::Float(_) => out.push((key, true)),
                    config::ValueKind::Array(items) => match items.first().map(|v| &v.kind) {
                        Some(config::ValueKind::I64(_) | config::ValueKind::U64(_)) => {
                            out.push((key, false))
                        }
                        Some(config::ValueKind::Float(_)) => out.push((key, true)),
                        _ => {}
                    },
                    _ => {}
                }
            }
        }
        let defaults = Config::builder()
            .add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml))
            .build()
            .unwrap();
        let mut out = Vec::new();
        walk("", &config::Source::collect(&defaults).unwrap(), &mut out);
        out
    }

    #[test]
    fn every_numeric_key_is_range_checked() {
        let keys = numeric_default_keys();
        assert!(keys.len() > 30, "the walk found only {keys:?}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("local.toml");
        let arrays = ["facebook.warning_days"];
        // Beyond every range, yet within every integer type (u32 included),
        // so only the range check can refuse it; and below every range.
        for (key, float) in &keys {
            for value in ["2000000000", "-1"] {
                let value = if *float {
                    format!("{value}.0")
                } else {
                    value.to_string()
                };
                let value = if arrays.contains(&key.as_str()) {
                    format!("[{value}]")
                } else {
                    value
                };
                let (table, name) = key.rsplit_once('.').unwrap();
                std::fs::write(&file, format!("[{table}]\n{name} = {value}\n")).unwrap();
                let err = Settings::load_from(&file, &Overrides::default(), &HashMap::new())
                    .err()
                    .unwrap_or_else(|| {
                        panic!("{key} = {value} was accepted: give it a range in check_ranges")
                    });
                assert_eq!(&err.key, key, "{key} = {value}: {err}");
            }
        }
    }

    #[test]
    fn flags_override_everything() {
        let env = [(
            "TOKENKEEPER__SERVER__ADDR".to_string(),
            "0.0.0.0:1".to_string(),
        )]
        .into();
        let s = Settings::load_from(
            Path::new("/nonexistent"),
            &Overrides {
                addr: Some("127.0.0.1:9999".into()),
                data_dir: Some("/tmp/x".into()),
                config_file: None,
            },
            &env,
        )
        .unwrap();
        assert_eq!(s.server.addr, "127.0.0.1:9999");
        assert_eq!(s.store.data_dir, PathBuf::from("/tmp/x"));
    }
}
