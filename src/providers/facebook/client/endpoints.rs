//! The Graph endpoints the service calls: Login (dialog, code and
//! long-lived exchanges), `debug_token`, `/me`, `/me/accounts` and batches.
//! The request plumbing they share is in the parent module.

use chrono::{DateTime, TimeZone, Utc};
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;

use super::super::errors;
use super::super::throttle::Call;
use super::GraphClient;
use crate::providers::UpstreamError;
use crate::providers::transport;
use crate::secret::Secret;

/// A token the platform issued, with its lifetime if it said.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    pub access_token: Secret,
    pub expires_in: Option<i64>,
}

/// What `debug_token` says about a token (wire-spec 1.5).
#[derive(Debug, Clone, Default)]
pub struct DebugInfo {
    pub is_valid: bool,
    pub token_type: Option<String>,
    pub app_id: Option<String>,
    pub user_id: Option<String>,
    pub profile_id: Option<String>,
    /// `None` when the token never expires (`expires_at: 0`).
    pub expires_at: Option<DateTime<Utc>>,
    pub data_access_expires_at: Option<DateTime<Utc>>,
    pub issued_at: Option<DateTime<Utc>>,
    pub scopes: Vec<String>,
    /// `data.error` of an invalid token: code, subcode, message.
    pub error: Option<(i64, Option<i64>, String)>,
}

#[derive(Debug, Clone)]
pub struct PageAccount {
    pub id: String,
    pub name: String,
    pub access_token: Secret,
    pub category: Option<String>,
    pub tasks: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Me {
    pub id: String,
    #[serde(default)]
    pub name: String,
}

/// Unix seconds to a time; 0 means never.
fn unix_time(v: Option<&Value>) -> Option<DateTime<Utc>> {
    let secs = v?.as_i64()?;
    if secs == 0 {
        return None;
    }
    Utc.timestamp_opt(secs, 0).single()
}

impl GraphClient {
    /// The Login dialog URL (wire-spec 1.1).
    pub fn dialog_url(
        &self,
        redirect_uri: &str,
        state: &str,
        scopes: &[String],
        rerequest: bool,
    ) -> String {
        let mut url = reqwest::Url::parse(&format!(
            "{}/{}/dialog/oauth",
            self.dialog_base, self.version
        ))
        .expect("dialog_base_url is a URL (checked at start)");
        url.query_pairs_mut()
            .append_pair("client_id", &self.app_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state)
            .append_pair("response_type", "code")
            .append_pair("scope", &scopes.join(","));
        if rerequest {
            url.query_pairs_mut().append_pair("auth_type", "rerequest");
        }
        url.to_string()
    }

    /// Code → short-lived user token (wire-spec 1.2).
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
    ) -> Result<TokenGrant, UpstreamError> {
        let params = [
            ("client_id", self.app_id.clone()),
            ("redirect_uri", redirect_uri.to_string()),
            ("client_secret", self.app_secret.expose().to_string()),
            ("code", code.to_string()),
        ];
        let body = self
            .request(Method::GET, "/oauth/access_token", None, &params)
            .await?;
        grant(&body, "/oauth/access_token")
    }

    /// A valid user token → a new long-lived one (wire-spec 1.3).
    pub async fn exchange_long_lived(&self, token: &Secret) -> Result<TokenGrant, UpstreamError> {
        let params = [
            ("grant_type", "fb_exchange_token".to_string()),
            ("client_id", self.app_id.clone()),
            ("client_secret", self.app_secret.expose().to_string()),
            ("fb_exchange_token", token.expose().to_string()),
        ];
        let body = self
            .request(Method::GET, "/oauth/access_token", None, &params)
            .await
            .map_err(|mut e| {
                e.message = crate::providers::redact::scrub(&e.message, &[token.expose()]);
                e
            })?;
        grant(&body, "/oauth/access_token")
    }

    /// Inspects `token` with the app token (wire-spec 1.5). An invalid input
    /// token is an `Ok` answer with `is_valid: false` and `error`.
    pub async fn debug_token(&self, token: &Secret) -> Result<DebugInfo, UpstreamError> {
        let app_token = Secret::new(format!("{}|{}", self.app_id, self.app_secret.expose()));
        let params = [("input_token", token.expose().to_string())];
        let body = self
            .request(Method::GET, "/debug_token", Some(&app_token), &params)
            .await?;
        let data = body.get("data").cloned().unwrap_or(Value::Null);
        let text = |k: &str| data.get(k).and_then(Value::as_str).map(str::to_string);
        Ok(DebugInfo {
            is_valid: data
                .get("is_valid")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            token_type: text("type"),
            app_id: text("app_id"),
            user_id: text("user_id"),
            profile_id: text("profile_id"),
            expires_at: unix_time(data.get("expires_at")),
            data_access_expires_at: unix_time(data.get("data_access_expires_at")),
            issued_at: unix_time(data.get("issued_at")),
            scopes: transport::strings(data.get("scopes")),
            error: data.get("error").map(|e| {
                (
                    e.get("code").and_then(Value::as_i64).unwrap_or(190),
                    e.get("subcode").and_then(Value::as_i64),
                    e.get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                )
            }),
        })
    }

    pub async fn me(&self, token: &Secret) -> Result<Me, UpstreamError> {
        let body = self
            .request(
                Method::GET,
                "/me",
                Some(token),
                &[("fields", "id,name".into())],
            )
            .await?;
        serde_json::from_value(body).map_err(|e| bad_shape("/me", e))
    }

    /// Every page the user token can manage, with page tokens (wire-spec 1.4).
    pub async fn accounts(&self, token: &Secret) -> Result<Vec<PageAccount>, UpstreamError> {
        let params = [
            ("fields", "id,name,access_token,category,tasks".to_string()),
            ("limit", self.page_limit.to_string()),
        ];
        let items = self.get_all("/me/accounts", token, &params).await?;
        items
            .into_iter()
            .map(|p| {
                let text = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_string);
                Ok(PageAccount {
                    id: text("id").ok_or_else(|| missing("/me/accounts", "id"))?,
                    name: text("name").unwrap_or_default(),
                    access_token: Secret::new(
                        text("access_token")
                            .ok_or_else(|| missing("/me/accounts", "access_token"))?,
                    ),
                    category: text("category"),
                    tasks: transport::strings(p.get("tasks")),
                })
            })
            .collect()
    }

    /// Runs up to 50 GETs in one batch request (wire-spec 6.5). Each answer
    /// is `None` when the platform gave no response for it (retry those),
    /// else the op's own result.
    pub async fn batch(
        &self,
        token: &Secret,
        relative_urls: &[String],
    ) -> Result<Vec<Option<Result<Value, UpstreamError>>>, UpstreamError> {
        let ops: Vec<Value> = relative_urls
            .iter()
            .map(|url| serde_json::json!({ "method": "GET", "relative_url": format!("{}/{}", self.version, url.trim_start_matches('/')) }))
            .collect();
        let params = [
            ("batch", Value::Array(ops).to_string()),
            ("include_headers", "false".to_string()),
        ];
        // The ops' objects decide which scopes the batch waits for.
        let call = relative_urls
            .iter()
            .fold(Call::new(Some(self.fingerprint(token))), |call, url| {
                call.path(url)
            });
        let body = self
            .request_as(Method::POST, "/", Some(token), &params, call)
            .await?;
        let answers = body
            .as_array()
            .ok_or_else(|| UpstreamError::transient("/", "a batch answer is not an array"))?;
        Ok(answers
            .iter()
            .map(|answer| {
                if answer.is_null() {
                    return None;
                }
                let status = answer["code"].as_u64().unwrap_or(0) as u16;
                let inner: Value = answer["body"]
                    .as_str()
                    .and_then(|b| serde_json::from_str(b).ok())
                    .unwrap_or(Value::Null);
                Some(
                    if (200..300).contains(&status) && inner.get("error").is_none() {
                        Ok(inner)
                    } else {
                        Err(errors::from_response(
                            "/batch",
                            status,
                            &inner,
                            None,
                            &[token.expose()],
                        ))
                    },
                )
            })
            .collect())
    }
}

fn grant(body: &Value, path: &str) -> Result<TokenGrant, UpstreamError> {
    let token = body
        .get("access_token")
        .and_then(Value::as_str)
        .ok_or_else(|| missing(path, "access_token"))?;
    Ok(TokenGrant {
        access_token: Secret::new(token),
        expires_in: body.get("expires_in").and_then(Value::as_i64),
    })
}

fn missing(path: &str, field: &str) -> UpstreamError {
    UpstreamError {
        class: crate::domain::ErrorClass::Transient,
        code: None,
        subcode: None,
        message: format!("the response lacks `{field}`"),
        retry_after: None,
        http_status: Some(200),
        endpoint: path.to_string(),
    }
}

fn bad_shape(path: &str, e: serde_json::Error) -> UpstreamError {
    UpstreamError::transient(path, format!("unexpected response shape: {e}"))
}
