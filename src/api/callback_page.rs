//! How an OAuth callback ends. The platform's dialog sends a person's browser
//! here, so a client that accepts `text/html` gets a small page saying what
//! happened, with a way back to the dashboard; any other client gets the JSON
//! answer (or error envelope) unchanged.

use std::sync::Arc;

use axum::Json;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;

use super::error::ApiError;
use crate::domain::{Connection, ConnectionKind};

/// The page, shortened, for the OpenAPI document.
pub const EXAMPLE: &str = "<!doctype html><html lang=\"en\"><head><title>Connected to Facebook · tokenkeeper</title></head><body><h1>Connected to Facebook</h1><p class=\"ok\">Facebook is connected: 2 connections stored.</p><ul><li>User <strong>Ada Lovelace</strong> <code>10224567890</code></li><li>Page <strong>Acme</strong> <code>104729381234567</code></li></ul><p><a href=\"/dashboard\">Back to the dashboard</a></p></body></html>";

/// The callback's answer: its JSON and the connections it stored, or its error.
pub type Outcome<T> = Result<(T, Vec<Arc<Connection>>), ApiError>;

/// Answers a callback for `platform` (as a person calls it: "Facebook").
pub fn answer<T: Serialize>(headers: &HeaderMap, platform: &str, outcome: Outcome<T>) -> Response {
    if !accepts_html(headers) {
        return match outcome {
            Ok((json, _)) => Json(json).into_response(),
            Err(e) => e.into_response(),
        };
    }
    match outcome {
        Ok((_, connections)) => Html(connected_page(platform, &connections)).into_response(),
        Err(e) => {
            let status = e.status();
            if let ApiError::Internal(cause) = &e {
                tracing::error!(error = %cause, "internal error");
            }
            (
                status,
                Html(error_page(platform, status, &e.public_message())),
            )
                .into_response()
        }
    }
}

/// Whether `Accept` names `text/html` (or `text/*`) with a weight above 0.
/// `*/*` alone does not count: API clients send it and expect JSON.
pub(super) fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (media == "text/html" || media == "text/*") && !refused
        })
}

fn connected_page(platform: &str, connections: &[Arc<Connection>]) -> String {
    let items: String = connections
        .iter()
        .map(|c| {
            format!(
                "<li>{} <strong>{}</strong> <code>{}</code></li>",
                kind_name(c.kind),
                escape(&c.label),
                escape(&c.external_id)
            )
        })
        .collect();
    let count = match connections.len() {
        1 => "1 connection".to_string(),
        n => format!("{n} connections"),
    };
    page(
        &format!("Connected to {platform}"),
        &format!("<p class=\"ok\">{platform} is connected: {count} stored.</p><ul>{items}</ul>"),
    )
}

fn error_page(platform: &str, status: StatusCode, message: &str) -> String {
    page(
        &format!("{platform} was not connected"),
        &format!(
            "<p class=\"err\">{}</p><p>Nothing was stored (HTTP {}). Start again from the dashboard.</p>",
            escape(message),
            status.as_u16()
        ),
    )
}

fn kind_name(kind: ConnectionKind) -> &'static str {
    match kind {
        ConnectionKind::User => "User",
        ConnectionKind::Page => "Page",
        ConnectionKind::SystemUser => "System user",
        ConnectionKind::Shop => "Shop",
        ConnectionKind::Ads => "Ads customer",
    }
}

fn page(title: &str, body: &str) -> String {
    shell(
        title,
        &format!("{body}<p><a href=\"/dashboard\">Back to the dashboard</a></p>"),
    )
}

/// A page titled `title` around `body` (HTML). Self-contained: no scripts,
/// no external styles or fonts.
pub(super) fn shell(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title} · tokenkeeper</title><style>\
body{{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#222}}\
.ok{{color:#176f2c}}.err{{color:#a31515}}code{{color:#555}}li{{margin:.25rem 0}}\
</style></head><body><h1>{title}</h1>{body}</body></html>\n"
    )
}

/// Text into HTML: the five characters that can change markup.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, value.parse().unwrap());
        h
    }

    #[test]
    fn a_browser_accepts_html_and_an_api_client_does_not() {
        assert!(accepts_html(&accept(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        )));
        assert!(!accepts_html(&accept("*/*")));
        assert!(!accepts_html(&accept("application/json")));
        assert!(!accepts_html(&accept("text/html;q=0, application/json")));
        assert!(!accepts_html(&HeaderMap::new()));
    }

    #[test]
    fn error_words_are_escaped() {
        let page = error_page(
            "Facebook",
            StatusCode::BAD_REQUEST,
            "<script>x</script> & co",
        );
        assert!(page.contains("&lt;script&gt;x&lt;/script&gt; &amp; co"));
        assert!(!page.contains("<script>"));
    }
}
