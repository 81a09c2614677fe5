//! Google Ads `searchStream` (wire-spec 8.2): GAQL in, a JSON array of
//! batches out (int64 as strings, camelCase keys); errors array-wrapped, the
//! reason in `details[].errors[].errorCode`.

use std::time::Duration;

use serde_json::Value;

use crate::config::GoogleSettings;
use crate::domain::{ErrorClass, Provider};
use crate::providers::UpstreamError;
use crate::providers::redact::scrub;
use crate::providers::transport::{self, Answer};
use crate::secret::Secret;

pub struct GoogleAds {
    http: reqwest::Client,
    base: String,
    version: String,
    developer_token: Secret,
    login_customer_id: Option<String>,
}

impl GoogleAds {
    pub fn new(settings: &GoogleSettings, developer_token: Secret) -> Self {
        Self {
            http: transport::http_client(Duration::from_secs(60)),
            base: transport::base_url(&settings.ads_base_url),
            version: settings.ads_api_version.clone(),
            developer_token,
            login_customer_id: Some(settings.login_customer_id.replace('-', ""))
                .filter(|s| !s.is_empty()),
        }
    }

    /// Runs a GAQL query; the `results` of every batch, concatenated.
    pub async fn search_stream(
        &self,
        access_token: &Secret,
        customer_id: &str,
        query: &str,
    ) -> Result<Vec<Value>, UpstreamError> {
        let path = "/customers/{id}/googleAds:searchStream";
        let customer = customer_id.replace('-', "");
        let mut request = self
            .http
            .post(format!(
                "{}/{}/customers/{customer}/googleAds:searchStream",
                self.base, self.version
            ))
            .bearer_auth(access_token.expose())
            .header("developer-token", self.developer_token.expose())
            .json(&serde_json::json!({ "query": query }));
        if let Some(login) = &self.login_customer_id {
            request = request.header("login-customer-id", login);
        }
        let Answer { status, body } = transport::send_json(Provider::Google, path, request).await?;
        if (200..300).contains(&status) {
            return Ok(body
                .as_array()
                .map(|batches| {
                    batches
                        .iter()
                        .flat_map(|b| b["results"].as_array().cloned().unwrap_or_default())
                        .collect()
                })
                .unwrap_or_default());
        }
        Err(classify_error(
            path,
            status,
            &body,
            &[access_token.expose(), self.developer_token.expose()],
        ))
    }
}

/// Classifies an (array-wrapped) Google Ads error by status and error code.
fn classify_error(path: &str, status: u16, body: &Value, secrets: &[&str]) -> UpstreamError {
    let error = body
        .as_array()
        .and_then(|a| a.first())
        .unwrap_or(body)
        .get("error")
        .cloned()
        .unwrap_or(Value::Null);
    let reason = error
        .pointer("/details/0/errors/0/errorCode")
        .and_then(Value::as_object)
        .and_then(|o| o.iter().next())
        .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or("")));
    let class = match (status, error["status"].as_str().unwrap_or("")) {
        (401, _) | (_, "UNAUTHENTICATED") => ErrorClass::ReauthRequired,
        (403, _) | (_, "PERMISSION_DENIED") => ErrorClass::PermissionMissing,
        (404, _) | (_, "NOT_FOUND") => ErrorClass::NotFound,
        (429, _) | (_, "RESOURCE_EXHAUSTED") => ErrorClass::RateLimited,
        (500..=599, _) | (_, "UNAVAILABLE" | "INTERNAL") => ErrorClass::Transient,
        _ => ErrorClass::InvalidRequest,
    };
    let message = format!(
        "{}{}",
        error["message"].as_str().unwrap_or("Google Ads error"),
        reason.map(|r| format!(" ({r})")).unwrap_or_default()
    );
    UpstreamError {
        class,
        code: error["code"].as_i64(),
        subcode: None,
        message: scrub(&message, secrets),
        retry_after: None,
        http_status: Some(status),
        endpoint: path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn array_wrapped_errors_are_classified_by_status() {
        let body = json!([{"error": {"code": 403, "message": "The caller does not have permission", "status": "PERMISSION_DENIED",
            "details": [{"errors": [{"errorCode": {"authorizationError": "DEVELOPER_TOKEN_NOT_APPROVED"}}]}]}}]);
        let e = classify_error("/x", 403, &body, &[]);
        assert_eq!(e.class, ErrorClass::PermissionMissing);
        assert!(e.message.contains("DEVELOPER_TOKEN_NOT_APPROVED"));
        let e = classify_error(
            "/x",
            401,
            &json!([{"error": {"code": 401, "status": "UNAUTHENTICATED"}}]),
            &[],
        );
        assert_eq!(e.class, ErrorClass::ReauthRequired);
    }
}
