//! Google OAuth 2.0: the consent URL (offline access), code exchange, the
//! refresh_token grant and token revocation. `invalid_grant` means the user
//! must consent again.

use std::time::Duration;

use crate::config::GoogleSettings;
use crate::domain::{ErrorClass, Provider};
use crate::providers::UpstreamError;
use crate::providers::redact::scrub;
use crate::providers::transport::{self, Answer};
use crate::secret::Secret;

#[derive(Debug, Clone)]
pub struct GoogleGrant {
    pub access_token: Secret,
    pub expires_in: Option<i64>,
    /// Only on the first consent with offline access.
    pub refresh_token: Option<Secret>,
    pub scopes: Vec<String>,
}

pub struct GoogleOAuth {
    http: reqwest::Client,
    auth_base: String,
    oauth_base: String,
    client_id: String,
    client_secret: Secret,
}

impl GoogleOAuth {
    pub fn new(settings: &GoogleSettings, client_id: String, client_secret: Secret) -> Self {
        Self {
            http: transport::http_client(Duration::from_secs(30)),
            auth_base: transport::base_url(&settings.auth_base_url),
            oauth_base: transport::base_url(&settings.oauth_base_url),
            client_id,
            client_secret,
        }
    }

    /// The consent page: offline access and a consent prompt, so a refresh
    /// token is issued.
    pub fn consent_url(&self, redirect_uri: &str, state: &str, scopes: &[String]) -> String {
        let mut url = reqwest::Url::parse(&format!("{}/o/oauth2/v2/auth", self.auth_base))
            .expect("auth_base_url is a URL (checked at start)");
        url.query_pairs_mut()
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("response_type", "code")
            .append_pair("scope", &scopes.join(" "))
            .append_pair("access_type", "offline")
            .append_pair("prompt", "consent")
            .append_pair("state", state);
        url.to_string()
    }

    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
    ) -> Result<GoogleGrant, UpstreamError> {
        self.token(
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
            ],
            code,
        )
        .await
    }

    pub async fn refresh(&self, refresh_token: &Secret) -> Result<GoogleGrant, UpstreamError> {
        self.token(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.expose()),
            ],
            refresh_token.expose(),
        )
        .await
    }

    async fn token(
        &self,
        params: &[(&str, &str)],
        secret: &str,
    ) -> Result<GoogleGrant, UpstreamError> {
        let path = "/token";
        let mut form: Vec<(&str, &str)> = vec![
            ("client_id", &self.client_id),
            ("client_secret", self.client_secret.expose()),
        ];
        form.extend_from_slice(params);
        let request = self
            .http
            .post(format!("{}{path}", self.oauth_base))
            .form(&form);
        let Answer { status, body } = transport::send_json(Provider::Google, path, request).await?;
        if (200..300).contains(&status) {
            let token = body["access_token"].as_str().ok_or_else(|| {
                UpstreamError::transient(path, "the response lacks `access_token`")
            })?;
            return Ok(GoogleGrant {
                access_token: Secret::new(token),
                expires_in: body["expires_in"].as_i64(),
                refresh_token: body["refresh_token"].as_str().map(Secret::new),
                scopes: body["scope"]
                    .as_str()
                    .map(|s| s.split(' ').map(str::to_string).collect())
                    .unwrap_or_default(),
            });
        }
        Err(self.oauth_error(path, status, &body, secret))
    }

    /// Revokes `token` at Google's revocation endpoint: a refresh token,
    /// and with it the access tokens it minted. Google answers 200 when it
    /// revoked the token and 400 `invalid_token` when the token was already
    /// expired or revoked
    /// (developers.google.com/identity/protocols/oauth2/web-server#tokenrevoke:
    /// `POST https://oauth2.googleapis.com/revoke`, form field `token`).
    /// No client credentials are sent: the endpoint needs none.
    pub async fn revoke(&self, token: &Secret) -> Result<(), UpstreamError> {
        let path = "/revoke";
        let request = self
            .http
            .post(format!("{}{path}", self.oauth_base))
            .form(&[("token", token.expose())]);
        let Answer { status, body } = transport::send_json(Provider::Google, path, request).await?;
        if (200..300).contains(&status) {
            return Ok(());
        }
        Err(self.oauth_error(path, status, &body, token.expose()))
    }

    /// The classified error of an OAuth endpoint's answer, by its `error`
    /// code (RFC 6749 5.2, RFC 7009 2.2.1), never its description.
    fn oauth_error(
        &self,
        path: &str,
        status: u16,
        body: &serde_json::Value,
        secret: &str,
    ) -> UpstreamError {
        let error = body["error"].as_str().unwrap_or("");
        let class = match (status, error) {
            // The grant is gone (refresh) or the token already is (revoke).
            (_, "invalid_grant" | "invalid_token") => ErrorClass::ReauthRequired,
            (
                _,
                "invalid_client"
                | "unauthorized_client"
                | "invalid_request"
                | "unsupported_grant_type"
                | "unsupported_token_type",
            ) => ErrorClass::InvalidRequest,
            (429, _) => ErrorClass::RateLimited,
            (500..=599, _) => ErrorClass::Transient,
            _ => ErrorClass::InvalidRequest,
        };
        UpstreamError {
            class,
            code: None,
            subcode: None,
            message: scrub(
                &format!(
                    "{error}: {}",
                    body["error_description"].as_str().unwrap_or("")
                ),
                &[secret, self.client_secret.expose()],
            ),
            retry_after: None,
            http_status: Some(status),
            endpoint: path.to_string(),
        }
    }
}
