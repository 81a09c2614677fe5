//! TikTok Shop auth calls: GET with query parameters; errors are a body
//! `code` ≠ 0 (usually with HTTP 200); `*_expire_in` are absolute Unix times.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

use super::classify;
use crate::config::TiktokSettings;
use crate::domain::{ErrorClass, Provider};
use crate::providers::UpstreamError;
use crate::providers::redact::{redact_url, scrub};
use crate::providers::transport::{self, Answer};
use crate::secret::Secret;

/// A token pair as TikTok issued it.
#[derive(Debug, Clone)]
pub struct TiktokGrant {
    pub access_token: Secret,
    pub access_token_expires_at: Option<DateTime<Utc>>,
    pub refresh_token: Secret,
    pub refresh_token_expires_at: Option<DateTime<Utc>>,
    pub open_id: String,
    pub seller_name: String,
    pub region: Option<String>,
    pub scopes: Vec<String>,
}

pub struct TiktokClient {
    http: reqwest::Client,
    authorize_base: String,
    auth_base: String,
    api_base: String,
    app_key: String,
    app_secret: Secret,
}

impl TiktokClient {
    pub fn new(settings: &TiktokSettings, app_key: String, app_secret: Secret) -> Self {
        Self {
            http: transport::http_client(Duration::from_secs(30)),
            authorize_base: transport::base_url(&settings.authorize_base_url),
            auth_base: transport::base_url(&settings.auth_base_url),
            api_base: transport::base_url(&settings.api_base_url),
            app_key,
            app_secret,
        }
    }

    /// The seller authorization page.
    pub fn authorize_url(&self, state: &str, redirect_uri: &str) -> String {
        let mut url = reqwest::Url::parse(&format!("{}/oauth/authorize", self.authorize_base))
            .expect("authorize_base_url is a URL (checked at start)");
        url.query_pairs_mut()
            .append_pair("app_key", &self.app_key)
            .append_pair("state", state)
            .append_pair("redirect_uri", redirect_uri);
        url.to_string()
    }

    /// Auth code → token pair.
    pub async fn get_token(&self, auth_code: &str) -> Result<TiktokGrant, UpstreamError> {
        self.token_call(
            "/api/v2/token/get",
            &[("auth_code", auth_code), ("grant_type", "authorized_code")],
            &[auth_code],
        )
        .await
    }

    /// Refresh token → a new pair (the refresh token may rotate).
    pub async fn refresh(&self, refresh_token: &Secret) -> Result<TiktokGrant, UpstreamError> {
        self.token_call(
            "/api/v2/token/refresh",
            &[
                ("refresh_token", refresh_token.expose()),
                ("grant_type", "refresh_token"),
            ],
            &[refresh_token.expose()],
        )
        .await
    }

    /// A cheap business call that proves the access token works.
    pub async fn authorized_shops(&self, access_token: &Secret) -> Result<Value, UpstreamError> {
        let path = "/api/v2/shop/get_authorized_shop";
        let timestamp = Utc::now().timestamp().to_string();
        let sign = self.sign(
            path,
            &[("app_key", &self.app_key), ("timestamp", &timestamp)],
        );
        let request = self
            .http
            .get(format!("{}{path}", self.api_base))
            .query(&[
                ("app_key", self.app_key.as_str()),
                ("timestamp", &timestamp),
                ("sign", &sign),
            ])
            .header("x-tts-access-token", access_token.expose());
        self.send(path, request, &[access_token.expose()]).await
    }

    /// The shops an access token acts for: their `shop_id`s, read with
    /// [`shop_ids`] (`None`: the answer lists none in a known shape).
    pub async fn authorized_shop_ids(
        &self,
        access_token: &Secret,
    ) -> Result<Option<Vec<String>>, UpstreamError> {
        Ok(shop_ids(&self.authorized_shops(access_token).await?))
    }

    /// TikTok Shop's request signature: HMAC-SHA256 under the app secret of
    /// secret + path + sorted key/value pairs + secret.
    fn sign(&self, path: &str, params: &[(&str, &str)]) -> String {
        use hmac::{Hmac, Mac};
        let mut sorted: Vec<&(&str, &str)> = params.iter().collect();
        sorted.sort();
        let mut text = format!("{}{path}", self.app_secret.expose());
        for (k, v) in sorted {
            text.push_str(k);
            text.push_str(v);
        }
        text.push_str(self.app_secret.expose());
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(self.app_secret.expose().as_bytes())
            .expect("any key");
        mac.update(text.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    async fn token_call(
        &self,
        path: &str,
        params: &[(&str, &str)],
        secrets: &[&str],
    ) -> Result<TiktokGrant, UpstreamError> {
        let mut query: Vec<(&str, &str)> = vec![
            ("app_key", &self.app_key),
            ("app_secret", self.app_secret.expose()),
        ];
        query.extend_from_slice(params);
        let request = self
            .http
            .get(format!("{}{path}", self.auth_base))
            .query(&query);
        let mut all_secrets = secrets.to_vec();
        all_secrets.push(self.app_secret.expose());
        let body = self.send(path, request, &all_secrets).await?;
        let data = &body["data"];
        let text = |k: &str| data[k].as_str().map(str::to_string);
        let time = |k: &str| {
            data[k]
                .as_i64()
                .and_then(|t| Utc.timestamp_opt(t, 0).single())
        };
        let missing =
            |field: &str| UpstreamError::transient(path, format!("the response lacks `{field}`"));
        Ok(TiktokGrant {
            access_token: Secret::new(text("access_token").ok_or_else(|| missing("access_token"))?),
            // Absolute Unix times, not durations (wire-spec 7).
            access_token_expires_at: time("access_token_expire_in"),
            refresh_token: Secret::new(
                text("refresh_token").ok_or_else(|| missing("refresh_token"))?,
            ),
            refresh_token_expires_at: time("refresh_token_expire_in"),
            open_id: text("open_id").unwrap_or_default(),
            seller_name: text("seller_name").unwrap_or_default(),
            region: text("seller_base_region"),
            scopes: transport::strings(data.get("granted_scopes")),
        })
    }

    async fn send(
        &self,
        path: &str,
        request: reqwest::RequestBuilder,
        secrets: &[&str],
    ) -> Result<Value, UpstreamError> {
        let request = request
            .build()
            .map_err(|_| UpstreamError::transient(path, "request could not be built"))?;
        let url = request.url().to_string();
        let request = reqwest::RequestBuilder::from_parts(self.http.clone(), request);
        let Answer { status, body } =
            transport::send_json(Provider::TiktokShop, path, request).await?;
        tracing::debug!(url = %redact_url(&url), status, "tiktok call");
        let code = body["code"].as_i64();
        match code {
            Some(0) if (200..300).contains(&status) => Ok(body),
            Some(code) => Err(UpstreamError {
                class: classify(code),
                code: Some(code),
                subcode: None,
                message: scrub(body["message"].as_str().unwrap_or(""), secrets),
                retry_after: None,
                http_status: Some(status),
                endpoint: path.to_string(),
            }),
            None => Err(UpstreamError {
                class: match status {
                    429 => ErrorClass::RateLimited,
                    500..=599 => ErrorClass::Transient,
                    _ => ErrorClass::InvalidRequest,
                },
                code: None,
                subcode: None,
                message: format!("HTTP {status} without a TikTok body"),
                retry_after: None,
                http_status: Some(status),
                endpoint: path.to_string(),
            }),
        }
    }
}

/// The `shop_id`s of an authorized-shops answer. "Get Authorized Shops"
/// (202309) lists `data.shops[].id`
/// (partner.tiktokshop.com/docv2/page/get-authorized-shops-202309; e.g.
/// Epur/ext-sdk pfc/tiktokv2/model-api.go); the legacy v2 call lists
/// `data.shop_list[].shop_id`. Ids sent as numbers are read as text.
/// `None` when neither list is there: an answer of another shape says
/// nothing about the shops, so the stored ones are kept.
pub(crate) fn shop_ids(body: &Value) -> Option<Vec<String>> {
    let data = &body["data"];
    let (shops, key) = data["shops"]
        .as_array()
        .map(|shops| (shops, "id"))
        .or_else(|| data["shop_list"].as_array().map(|shops| (shops, "shop_id")))?;
    let ids = shops
        .iter()
        .filter_map(|shop| match &shop[key] {
            Value::String(id) if !id.is_empty() => Some(id.clone()),
            Value::Number(id) => Some(id.to_string()),
            _ => None,
        })
        .collect();
    Some(ids)
}

#[cfg(test)]
mod tests {
    use super::shop_ids;
    use serde_json::json;

    #[test]
    fn shop_ids_are_read_from_either_shape_of_the_shops_answer() {
        let current = json!({"code": 0, "data": {"shops": [
            {"id": "7494049642642441621", "cipher": "ROW_x"}, {"id": 7494049642642441622_u64}
        ]}});
        assert_eq!(
            shop_ids(&current).unwrap(),
            ["7494049642642441621", "7494049642642441622"]
        );
        let legacy = json!({"code": 0, "data": {"shop_list": [{"shop_id": "1"}]}});
        assert_eq!(shop_ids(&legacy).unwrap(), ["1"]);
        let none = json!({"code": 0, "data": {"shops": []}});
        assert_eq!(shop_ids(&none), Some(Vec::new()), "no shop at all");
        assert_eq!(shop_ids(&json!({"code": 0, "data": {}})), None, "unknown");
    }
}
