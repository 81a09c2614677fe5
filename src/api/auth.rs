//! API keys and scopes: who is calling, what they may do, which teams they
//! may see. Keys are compared by SHA-256 digest in constant time.
//!
//! Order of checks on a protected route, before any extractor of the
//! handler runs: [`authenticate`] (401 no key, 403 unknown key, both limited
//! per client address and overall), the key's rate limit (429), then the
//! scope the route declares with [`needs`] (403). Only then are the path,
//! query and body validated.

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::task::{Context, Poll};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::future::{Either, Ready, ready};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::rate_limit::Limits;
use super::state::AppState;
use crate::access::{ADMIN_KEY_ID, INTERNAL_KEY_ID, Scope};
use crate::config::Settings;

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
                id: ADMIN_KEY_ID.into(),
                digest: digest(admin.expose()),
                scopes: Scope::ALL.into_iter().collect(),
                teams: None,
            });
        }
        if let Some(internal) = &settings.secrets.internal_api_key {
            keys.push(ApiKey {
                id: INTERNAL_KEY_ID.into(),
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

/// The presented key from `X-API-Key` or `Authorization: Bearer` (the
/// scheme in any case, RFC 7235 2.1).
pub fn presented_key(headers: &axum::http::HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(v.trim());
    }
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let (scheme, key) = value.split_once([' ', '\t'])?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
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

    /// 403 unless the key holds one of `scopes`.
    pub fn require_any(&self, scopes: &[Scope]) -> Result<(), ApiError> {
        if scopes.iter().any(|s| self.has(*s)) {
            return Ok(());
        }
        let names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
        Err(ApiError::Forbidden(format!(
            "the API key '{}' lacks the scope {}",
            self.key_id,
            names.join(" or ")
        )))
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

/// Authentication and rate limits, in that order: a request with a valid
/// key is counted against that key's bucket; any other request is a failed
/// authentication, counted per client address and overall, and never makes a
/// bucket of its own.
pub struct Gate {
    keys: ApiKeys,
    limits: Limits,
}

impl Gate {
    pub fn new(settings: &Settings) -> Self {
        let keys = ApiKeys::from_settings(settings);
        let limits = Limits::new(&settings.api);
        Self { keys, limits }
    }

    /// The caller, or why not: 401/403 for a missing or unknown key, 429
    /// when over a limit.
    pub fn admit(
        &self,
        headers: &axum::http::HeaderMap,
        client: Option<IpAddr>,
    ) -> Result<Caller, ApiError> {
        let Some(presented) = presented_key(headers) else {
            self.limits.check_failure(client)?;
            return Err(ApiError::Unauthorized(
                "an API key is required (X-API-Key or Authorization: Bearer)".into(),
            ));
        };
        let Some(key) = self.keys.find(presented) else {
            self.limits.check_failure(client)?;
            return Err(ApiError::Forbidden("the API key is not valid".into()));
        };
        Ok(Caller {
            key_id: key.id.clone(),
            scopes: key.scopes.clone(),
            teams: key.teams.clone(),
        })
    }
}

fn client_ip(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// Middleware of every protected route: admits the caller (see [`Gate`])
/// and hands it on in the request's extensions.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    match state.gate.admit(req.headers(), client_ip(req.extensions())) {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

/// The caller admitted by [`authenticate`]; on a route without it (such as
/// `/metrics`), admits it here, through the same gate.
impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        state
            .gate
            .admit(&parts.headers, client_ip(&parts.extensions))
    }
}

/// The scopes an operation accepts; any one of them will do.
pub type Scopes = &'static [Scope];

/// A layer for one route's handler: 403 unless the caller admitted by
/// [`authenticate`] holds one of `scopes`, before the handler's extractors
/// read the path, query or body. Used in the router, next to each route.
pub fn needs(scopes: Scopes) -> Needs {
    Needs(scopes)
}

#[derive(Debug, Clone, Copy)]
pub struct Needs(Scopes);

impl<S> tower::Layer<S> for Needs {
    type Service = NeedsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        NeedsService {
            inner,
            scopes: self.0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NeedsService<S> {
    inner: S,
    scopes: Scopes,
}

impl<S> tower::Service<Request> for NeedsService<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, Ready<Result<Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let verdict = match req.extensions().get::<Caller>() {
            Some(caller) => caller.require_any(self.scopes),
            // A route declared with `needs` outside the authenticated
            // router: a wiring mistake, never a pass.
            None => Err(ApiError::Internal(
                "a scope check ran without authentication".into(),
            )),
        };
        match verdict {
            Ok(()) => Either::Left(self.inner.call(req)),
            Err(e) => Either::Right(ready(Ok(e.into_response()))),
        }
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
