//! API keys and scopes: who is calling, what they may do, which teams they
//! may see. Keys are compared by SHA-256 digest in constant time.

use std::collections::HashSet;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::ApiError;
use crate::config::Settings;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    TokensRead,
    TokensUse,
    TokensRefresh,
    TokensAdmin,
    InsightsRead,
    Exports,
    Internal,
}

impl Scope {
    pub const ALL: [Scope; 7] = [
        Scope::TokensRead,
        Scope::TokensUse,
        Scope::TokensRefresh,
        Scope::TokensAdmin,
        Scope::InsightsRead,
        Scope::Exports,
        Scope::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::TokensRead => "tokens:read",
            Scope::TokensUse => "tokens:use",
            Scope::TokensRefresh => "tokens:refresh",
            Scope::TokensAdmin => "tokens:admin",
            Scope::InsightsRead => "insights:read",
            Scope::Exports => "exports",
            Scope::Internal => "internal",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// A configured key.
#[derive(Debug, Clone)]
struct ApiKey {
    id: String,
    digest: [u8; 32],
    scopes: HashSet<Scope>,
    teams: Option<Vec<String>>,
}

/// Every key the service accepts.
#[derive(Debug, Clone, Default)]
pub struct ApiKeys {
    keys: Vec<ApiKey>,
}

pub fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl ApiKeys {
    /// Keys from config, plus the admin key (all scopes) and the internal key
    /// (`internal` only) from the environment.
    pub fn from_settings(settings: &Settings) -> Self {
        let mut keys = Vec::new();
        for k in &settings.api.keys {
            let digest_bytes = match (&k.key_sha256, &k.key) {
                (Some(hex_digest), _) => {
                    let mut d = [0u8; 32];
                    hex::decode_to_slice(hex_digest, &mut d).expect("validated at load");
                    d
                }
                (None, Some(key)) => digest(key.expose()),
                (None, None) => continue,
            };
            keys.push(ApiKey {
                id: k.id.clone(),
                digest: digest_bytes,
                scopes: k.scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
                teams: k.teams.clone(),
            });
        }
        if let Some(admin) = &settings.secrets.admin_api_key {
            keys.push(ApiKey {
                id: "admin".into(),
                digest: digest(admin.expose()),
                scopes: Scope::ALL.into_iter().collect(),
                teams: None,
            });
        }
        if let Some(internal) = &settings.secrets.internal_api_key {
            keys.push(ApiKey {
                id: "internal".into(),
                digest: digest(internal.expose()),
                scopes: [Scope::Internal].into_iter().collect(),
                teams: None,
            });
        }
        Self { keys }
    }

    fn find(&self, presented: &str) -> Option<&ApiKey> {
        let d = digest(presented);
        // Compare against every key so timing does not reveal which matched.
        let mut found = None;
        for key in &self.keys {
            if constant_time_eq(&key.digest, &d) && found.is_none() {
                found = Some(key);
            }
        }
        found
    }
}

/// The presented key from `X-API-Key` or `Authorization: Bearer`.
pub fn presented_key(headers: &axum::http::HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(v.trim());
    }
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: String,
    scopes: HashSet<Scope>,
    teams: Option<Vec<String>>,
}

impl Caller {
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
            || (matches!(scope, Scope::TokensRead | Scope::TokensRefresh)
                && self.scopes.contains(&Scope::TokensAdmin))
    }

    /// 403 unless the key holds `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.has(scope) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "the API key '{}' lacks the scope {}",
                self.key_id,
                scope.as_str()
            )))
        }
    }

    /// Whether the key may see a connection of `team`.
    pub fn can_see(&self, team: Option<&str>) -> bool {
        match &self.teams {
            None => true,
            Some(allowed) => team.is_some_and(|t| allowed.iter().any(|a| a == t)),
        }
    }

    /// 403 unless the key may act for `team`.
    pub fn require_team(&self, team: Option<&str>) -> Result<(), ApiError> {
        if self.can_see(team) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "the API key '{}' may not act for team {}",
                self.key_id,
                team.unwrap_or("(none)")
            )))
        }
    }

    /// The teams this key is limited to, if any.
    pub fn teams(&self) -> Option<&[String]> {
        self.teams.as_deref()
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let presented = presented_key(&parts.headers).ok_or_else(|| {
            ApiError::Unauthorized(
                "an API key is required (X-API-Key or Authorization: Bearer)".into(),
            )
        })?;
        let key = state
            .keys
            .find(presented)
            .ok_or_else(|| ApiError::Forbidden("the API key is not valid".into()))?;
        Ok(Caller {
            key_id: key.id.clone(),
            scopes: key.scopes.clone(),
            teams: key.teams.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_implies_read_and_refresh_but_not_use() {
        let c = Caller {
            key_id: "k".into(),
            scopes: [Scope::TokensAdmin].into_iter().collect(),
            teams: Some(vec!["a".into()]),
        };
        assert!(c.has(Scope::TokensRead) && c.has(Scope::TokensRefresh));
        assert!(!c.has(Scope::TokensUse));
        assert!(c.can_see(Some("a")) && !c.can_see(Some("b")) && !c.can_see(None));
    }
}
