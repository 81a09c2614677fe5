//! The HTTP side: listener and timeouts, API keys and rate limits, OAuth
//! state, logging and the metrics endpoint.

use std::net::SocketAddr;

use serde::Deserialize;

use super::ConfigError;
use crate::secret::Secret;

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

impl ServerSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.socket_addr().map(|_| ())
    }

    /// The listen address, parsed.
    pub fn socket_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.addr.parse().map_err(|_| {
            ConfigError::new(
                "server.addr",
                format!("'{}' is not a HOST:PORT address", self.addr),
            )
        })
    }
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

impl ApiKeySettings {
    /// `name` is the key's place in the list, `api.keys[i]`.
    fn validate(&self, name: &str) -> Result<(), ConfigError> {
        if self.key.is_none() && self.key_sha256.is_none() {
            return Err(ConfigError::new(name, "needs key_sha256 or key"));
        }
        if let Some(hash) = &self.key_sha256
            && (hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()))
        {
            return Err(ConfigError::new(
                format!("{name}.key_sha256"),
                "must be 64 hex digits",
            ));
        }
        for scope in &self.scopes {
            if crate::access::Scope::parse(scope).is_none() {
                return Err(ConfigError::new(
                    format!("{name}.scopes"),
                    format!("unknown scope '{scope}'"),
                ));
            }
        }
        Ok(())
    }
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

impl ApiSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (i, key) in self.keys.iter().enumerate() {
            key.validate(&format!("api.keys[{i}]"))?;
        }
        self.validate_key_ids()
    }

    /// Key ids name the caller in audit lines and own exports, so each is
    /// unique and none poses as a built-in key (`admin`, `internal`).
    fn validate_key_ids(&self) -> Result<(), ConfigError> {
        for (i, key) in self.keys.iter().enumerate() {
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
            if let Some(first) = self.keys[..i].iter().position(|k| k.id == key.id) {
                return Err(ConfigError::new(
                    name,
                    format!("'{}' is already the id of api.keys[{first}]", key.id),
                ));
            }
        }
        Ok(())
    }
}

/// The Prometheus endpoint `/metrics`.
#[derive(Debug, Clone, Deserialize)]
pub struct MetricsSettings {
    /// Whether scraping needs an API key with the `internal` scope.
    pub require_key: bool,
}
