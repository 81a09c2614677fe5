//! What the provider clients share on the wire: the HTTP client they build,
//! their base URLs, and sending a request that answers JSON, timed in the
//! upstream metrics.
//!
//! A request that never got an answer (DNS, connect, TLS, timeout) becomes an
//! [`UpstreamError`] that names the host and the cause, so an operator can
//! tell "wrong base URL" from "platform down". Still transient: retrying may
//! help. Only host and port are quoted, never the path or query, which can
//! carry tokens.

use std::error::Error as _;
use std::time::Duration;

use serde_json::Value;

use super::UpstreamError;
use crate::domain::Provider;

/// The HTTP client of one upstream, each call bounded by `timeout`.
pub fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .expect("the HTTP client builds")
}

/// A configured base URL without its trailing slash, so that paths starting
/// with `/` join it with exactly one.
pub fn base_url(url: &str) -> String {
    url.trim_end_matches('/').to_string()
}

/// What an upstream answered: the status and the JSON body (`Null` when the
/// body is not JSON).
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

/// Sends `provider`'s request for `endpoint` (a path template, for the
/// metrics and errors), timed in the upstream metrics from here until the
/// body is read.
pub async fn send_json(
    provider: Provider,
    endpoint: &str,
    request: reqwest::RequestBuilder,
) -> Result<Answer, UpstreamError> {
    let _timer = crate::metrics::upstream_timer(provider, endpoint);
    let response = request
        .send()
        .await
        .map_err(|e| send_failure(endpoint, &e))?;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    Ok(Answer { status, body })
}

/// The strings of a JSON array in an answer (scopes, tasks); none when it is
/// absent or not an array, and items that are not strings are skipped.
pub fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The failure of `endpoint`'s request, e.g.
/// `cannot reach graph.facebook.com:443: dns error: failed to lookup address`.
pub fn send_failure(endpoint: &str, err: &reqwest::Error) -> UpstreamError {
    let host = err
        .url()
        .and_then(|u| {
            let host = u.host_str()?;
            Some(match u.port_or_known_default() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_string(),
            })
        })
        .unwrap_or_else(|| "the platform".into());
    let message = if err.is_timeout() {
        format!("no answer from {host}: timed out")
    } else if err.is_connect() {
        format!("cannot reach {host}: {}", cause(err))
    } else {
        format!("request to {host} failed: {}", cause(err))
    };
    UpstreamError::transient(endpoint, message)
}

/// The underlying causes, outermost first. reqwest's own text quotes the
/// full URL, so it is left out; the causes below it (hyper, io) do not.
fn cause(err: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = err.source();
    while let Some(e) = next {
        let text = e.to_string();
        // hyper wraps each layer; skip layers that repeat the one below.
        if !text.is_empty() && parts.last().is_none_or(|p| p != &text) {
            parts.push(text);
        }
        next = e.source();
    }
    if parts.is_empty() {
        "connection failed".into()
    } else {
        parts.join(": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_connection_names_host_and_cause_but_not_the_query() {
        // A port nothing listens on: bind, read the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = reqwest::get(format!(
            "http://127.0.0.1:{port}/oauth/access_token?access_token=SECRET-TOKEN-123"
        ))
        .await
        .unwrap_err();
        let e = send_failure("/oauth/access_token", &err);
        assert_eq!(e.class, crate::domain::ErrorClass::Transient);
        assert!(
            e.message
                .starts_with(&format!("cannot reach 127.0.0.1:{port}: ")),
            "{}",
            e.message
        );
        assert!(
            e.message.to_lowercase().contains("refused"),
            "{}",
            e.message
        );
        assert!(!e.message.contains("SECRET"), "{}", e.message);
    }
}
