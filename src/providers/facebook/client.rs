//! The Graph API client: `appsecret_proof` on every call (followed `next`
//! links included), classified errors, usage-header throttling scoped the way
//! Meta scopes its limits, paging until `next` is absent, and no token in any
//! logged URL or returned error.

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::Value;
use sha2::Sha256;

use super::errors;
use super::throttle::{Call, Scope, Throttle};
use super::usage;
use crate::config::FacebookSettings;
use crate::providers::UpstreamError;
use crate::providers::redact::redact_url;
use crate::providers::transport;
use crate::secret::Secret;

mod endpoints;
mod revoke;

pub use endpoints::{DebugInfo, Me, PageAccount, TokenGrant};

pub struct GraphClient {
    http: reqwest::Client,
    graph_base: String,
    dialog_base: String,
    version: String,
    app_id: String,
    app_secret: Secret,
    page_limit: u32,
    throttle: Throttle,
    /// The longest a call waits for its throttle outside a retried call
    /// (`refresh.max_retry_wait_secs`); a longer wait fails the call at once.
    max_wait: Duration,
}

/// `hex(HMAC_SHA256(key = app_secret, msg = access_token))` (wire-spec 1.7).
pub fn appsecret_proof(app_secret: &Secret, access_token: &Secret) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.expose().as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(access_token.expose().as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

impl GraphClient {
    /// `max_wait` bounds how long one call waits for a throttled scope.
    pub fn new(
        settings: &FacebookSettings,
        max_wait: Duration,
        app_id: String,
        app_secret: Secret,
    ) -> Self {
        Self {
            http: transport::http_client(Duration::from_secs(settings.request_timeout_secs)),
            graph_base: transport::base_url(&settings.graph_base_url),
            dialog_base: transport::base_url(&settings.dialog_base_url),
            version: settings.api_version.clone(),
            app_id,
            app_secret,
            page_limit: settings.page_limit,
            throttle: Throttle::new(
                settings.usage_slow_pct,
                settings.usage_pause_pct,
                Duration::from_secs(settings.usage_pause_secs),
            ),
            max_wait,
        }
    }

    /// A stand-in for a token in the throttle's maps: a prefix of its proof,
    /// so the token itself is never kept there.
    fn fingerprint(&self, token: &Secret) -> String {
        appsecret_proof(&self.app_secret, token)[..32].to_string()
    }

    /// The latest usage percentage the platform reported.
    pub fn usage_pct(&self) -> f64 {
        self.throttle.last_pct()
    }

    /// A GET on a Graph path with a token; the parsed JSON body.
    pub async fn get(
        &self,
        path: &str,
        token: &Secret,
        params: &[(&str, String)],
    ) -> Result<Value, UpstreamError> {
        self.request(Method::GET, path, Some(token), params).await
    }

    /// A form-encoded POST on a Graph path with a token (async report runs).
    pub async fn post(
        &self,
        path: &str,
        token: &Secret,
        params: &[(&str, String)],
    ) -> Result<Value, UpstreamError> {
        self.request(Method::POST, path, Some(token), params).await
    }

    /// Follows `paging.next` until it is absent, collecting `data` items.
    /// A short or empty page with a `next` is not the end (wire-spec 4).
    pub async fn get_all(
        &self,
        path: &str,
        token: &Secret,
        params: &[(&str, String)],
    ) -> Result<Vec<Value>, UpstreamError> {
        let mut items = Vec::new();
        let mut body = self.request(Method::GET, path, Some(token), params).await?;
        loop {
            if let Some(data) = body.get_mut("data").and_then(Value::as_array_mut) {
                items.append(data);
            }
            let next = body
                .pointer("/paging/next")
                .and_then(Value::as_str)
                .map(str::to_string);
            match next {
                Some(url) => body = self.follow(path, &url, token).await?,
                None => return Ok(items),
            }
        }
    }

    /// Fetches an absolute `next` URL, only when it points at our configured
    /// Graph base URL (the token in it must go nowhere else), with the proof
    /// added.
    async fn follow(&self, path: &str, next: &str, token: &Secret) -> Result<Value, UpstreamError> {
        let (url, url_token) = self.paging_url(path, next, token)?;
        let call = Call::new(Some(self.fingerprint(&url_token))).path(path);
        let secrets = [token.expose(), url_token.expose()];
        let shown = url.to_string();
        self.send(path, &call, self.http.get(url), &secrets, &shown)
            .await
    }

    /// A `next` link ready to fetch, and the token it carries. Real `next`
    /// links carry the token but not `appsecret_proof` (wire-spec 4;
    /// facebook/facebook-java-business-sdk#159), and with "Require App
    /// Secret" on Graph refuses them without it, so the proof for the link's
    /// own token is added. A link without a token gets ours.
    fn paging_url(
        &self,
        path: &str,
        next: &str,
        token: &Secret,
    ) -> Result<(reqwest::Url, Secret), UpstreamError> {
        let refused = || UpstreamError {
            class: crate::domain::ErrorClass::InvalidRequest,
            code: None,
            subcode: None,
            message: format!(
                "paging URL {} is not on the Graph base URL",
                redact_url(next)
            ),
            retry_after: None,
            http_status: None,
            endpoint: path.to_string(),
        };
        let mut url = reqwest::Url::parse(next).map_err(|_| refused())?;
        let base = reqwest::Url::parse(&self.graph_base).map_err(|_| refused())?;
        let base_path = base.path().trim_end_matches('/');
        let on_base = url.scheme() == base.scheme()
            && url.host_str() == base.host_str()
            && url.port_or_known_default() == base.port_or_known_default()
            && url.username().is_empty()
            && url.password().is_none()
            && (url.path() == base_path || url.path().starts_with(&format!("{base_path}/")));
        if !on_base {
            return Err(refused());
        }
        let mut link_token = None;
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (k, v) in url.query_pairs() {
            match &*k {
                // Recomputed below; a stale one would be refused.
                "appsecret_proof" | "appsecret_time" => {}
                "access_token" if !v.is_empty() => {
                    link_token = Some(Secret::new(v.as_ref()));
                    pairs.push((k.into_owned(), v.into_owned()));
                }
                _ => pairs.push((k.into_owned(), v.into_owned())),
            }
        }
        let link_token = match link_token {
            Some(t) => t,
            None => {
                pairs.push(("access_token".into(), token.expose().to_string()));
                token.clone()
            }
        };
        url.query_pairs_mut()
            .clear()
            .extend_pairs(&pairs)
            .append_pair(
                "appsecret_proof",
                &appsecret_proof(&self.app_secret, &link_token),
            );
        Ok((url, link_token))
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&Secret>,
        params: &[(&str, String)],
    ) -> Result<Value, UpstreamError> {
        let call = Call::new(token.map(|t| self.fingerprint(t))).path(path);
        self.request_as(method, path, token, params, call).await
    }

    /// A request whose throttling scopes are those of `call`.
    async fn request_as(
        &self,
        method: Method,
        path: &str,
        token: Option<&Secret>,
        params: &[(&str, String)],
        call: Call,
    ) -> Result<Value, UpstreamError> {
        let url = format!("{}/{}{}", self.graph_base, self.version, path);
        let mut query: Vec<(&str, String)> = params.to_vec();
        let mut secrets: Vec<&str> = params
            .iter()
            .filter(|(k, _)| {
                matches!(
                    *k,
                    "client_secret" | "fb_exchange_token" | "input_token" | "code"
                )
            })
            .map(|(_, v)| v.as_str())
            .collect();
        if let Some(token) = token {
            query.push(("access_token", token.expose().to_string()));
            query.push(("appsecret_proof", appsecret_proof(&self.app_secret, token)));
            secrets.push(token.expose());
        }
        // GET and DELETE carry their parameters in the query, as Meta's SDK
        // does (facebook-python-business-sdk, facebook_business/api.py, `call`).
        let builder = if method == Method::GET || method == Method::DELETE {
            self.http.request(method, &url).query(&query)
        } else {
            self.http.request(method, &url).form(&query)
        };
        self.send(path, &call, builder, &secrets, &url).await
    }

    async fn send(
        &self,
        path: &str,
        call: &Call,
        builder: reqwest::RequestBuilder,
        secrets: &[&str],
        url_for_log: &str,
    ) -> Result<Value, UpstreamError> {
        if let Some((delay, scope)) = self.throttle.delay(call) {
            // The wait comes out of the retried call's budget, if any: a
            // request never waits longer than max_retry_wait_secs inline.
            if !crate::providers::retry::spend_wait(delay, self.max_wait) {
                return Err(throttled(path, &scope, delay));
            }
            tracing::debug!(
                path,
                %scope,
                delay_ms = delay.as_millis() as u64,
                "throttling before the usage limit"
            );
            tokio::time::sleep(delay).await;
        }
        let started = Instant::now();
        let _timer = crate::metrics::upstream_timer(crate::domain::Provider::Facebook, path);
        let response = builder
            .send()
            .await
            .map_err(|e| transport::send_failure(path, &e))?;
        let status = response.status().as_u16();
        let usage = usage::parse(response.headers());
        if let Some(u) = &usage {
            self.throttle.observe(call, u);
        }
        let body: Value = response
            .json()
            .await
            .unwrap_or_else(|_| Value::String("<not JSON>".into()));
        tracing::debug!(
            url = %redact_url(url_for_log),
            status,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "graph call"
        );
        if (200..300).contains(&status) && body.get("error").is_none() {
            return Ok(body);
        }
        Err(errors::from_response(
            path,
            status,
            &body,
            usage.and_then(|u| u.regain()),
            secrets,
        ))
    }
}

/// A call not made because its scope is paused longer than we may wait.
fn throttled(path: &str, scope: &Scope, wait: Duration) -> UpstreamError {
    UpstreamError {
        class: crate::domain::ErrorClass::RateLimited,
        code: None,
        subcode: None,
        message: format!(
            "{scope} is over its rate limit for {} s more; the call was not made",
            wait.as_secs_f64().ceil() as u64
        ),
        retry_after: Some(wait),
        http_status: None,
        endpoint: path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(graph_base_url: &str) -> GraphClient {
        let settings = FacebookSettings {
            graph_base_url: graph_base_url.into(),
            dialog_base_url: graph_base_url.into(),
            api_version: "v25.0".into(),
            redirect_uri: "http://localhost/cb".into(),
            scopes: vec![],
            request_timeout_secs: 5,
            page_limit: 25,
            usage_slow_pct: 80.0,
            usage_pause_pct: 95.0,
            usage_pause_secs: 60,
            refresh_before_days: 7,
            warning_days: vec![],
        };
        GraphClient::new(
            &settings,
            Duration::from_secs(2),
            "1".into(),
            Secret::new("app-secret"),
        )
    }

    #[test]
    fn a_followed_next_link_gets_the_proof_of_its_own_token() {
        let graph = client("http://127.0.0.1:1234");
        let ours = Secret::new("EAAB-our-token-0001");
        let next = "http://127.0.0.1:1234/v25.0/me/accounts?limit=25&access_token=EAAB-link-token&appsecret_proof=stale&after=QVF";
        let (url, token) = graph.paging_url("/me/accounts", next, &ours).unwrap();
        assert_eq!(token.expose(), "EAAB-link-token");
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let proof = appsecret_proof(&Secret::new("app-secret"), &token);
        assert_eq!(
            pairs,
            [
                ("limit".to_string(), "25".to_string()),
                ("access_token".into(), "EAAB-link-token".into()),
                ("after".into(), "QVF".into()),
                ("appsecret_proof".into(), proof),
            ]
        );
        // A link without a token gets ours, with its proof.
        let (url, token) = graph
            .paging_url(
                "/me/accounts",
                "http://127.0.0.1:1234/v25.0/me/accounts?after=QVF",
                &ours,
            )
            .unwrap();
        assert_eq!(token.expose(), ours.expose());
        assert!(url.query_pairs().any(|(k, v)| k == "appsecret_proof"
            && v == appsecret_proof(&Secret::new("app-secret"), &ours)));
    }

    #[test]
    fn next_links_off_the_graph_base_url_are_refused_without_naming_the_token() {
        let graph = client("http://127.0.0.1:1234");
        let ours = Secret::new("EAAB-our-token-0001");
        for next in [
            "http://127.0.0.1:12345/v25.0/me/accounts?access_token=EAAB-our-token-0001",
            "https://127.0.0.1:1234/v25.0/me/accounts?access_token=EAAB-our-token-0001",
            "http://127.0.0.1:1234.evil.example/v25.0/me?access_token=EAAB-our-token-0001",
            "http://user@127.0.0.1:1234/v25.0/me?access_token=EAAB-our-token-0001",
            "http://evil.example/?u=http://127.0.0.1:1234&access_token=EAAB-our-token-0001",
            "/v25.0/me/accounts?access_token=EAAB-our-token-0001",
        ] {
            let e = graph.paging_url("/me/accounts", next, &ours).unwrap_err();
            assert_eq!(e.class, crate::domain::ErrorClass::InvalidRequest, "{next}");
            assert!(!e.to_string().contains("EAAB-our-token"), "{e}");
        }
        // A base URL with a path only follows links under that path.
        let graph = client("http://127.0.0.1:1234/graph");
        assert!(
            graph
                .paging_url("/me", "http://127.0.0.1:1234/other/v25.0/me", &ours)
                .is_err()
        );
        assert!(
            graph
                .paging_url("/me", "http://127.0.0.1:1234/graph/v25.0/me", &ours)
                .is_ok()
        );
    }

    #[test]
    fn appsecret_proof_is_hex_hmac_sha256() {
        // HMAC-SHA256(key="secret", msg="token")
        let proof = appsecret_proof(&Secret::new("secret"), &Secret::new("token"));
        assert_eq!(
            proof,
            "e941110e3d2bfe82621f0e3e1434730d7305d106c5f68c87165d0b27a4611a4a"
        );
        assert_ne!(
            proof,
            appsecret_proof(&Secret::new("other"), &Secret::new("token"))
        );
    }
}
