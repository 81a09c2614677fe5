//! A request that never got an answer (DNS, connect, TLS, timeout) as an
//! [`UpstreamError`] that names the host and the cause, so an operator can
//! tell "wrong base URL" from "platform down". Still transient: retrying may
//! help. Only host and port are quoted, never the path or query, which can
//! carry tokens.

use std::error::Error as _;

use super::UpstreamError;

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
