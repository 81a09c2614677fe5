//! The redirect back from a consent page, shared by the Facebook dialog and
//! the TikTok and Google consent pages: the caller's `redirect_uri` with a
//! query appended and the caller's `state` echoed.

use std::collections::HashMap;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::wire::encode_component;

/// Where a consent page sends the browser back.
pub(crate) struct Redirect<'a> {
    uri: &'a str,
    /// `state=…`, encoded, when the caller sent one.
    state: Option<String>,
}

impl<'a> Redirect<'a> {
    pub fn new(uri: &'a str, state: Option<&str>) -> Self {
        Self {
            uri,
            state: state.map(|s| format!("state={}", encode_component(s))),
        }
    }

    fn separator(&self) -> char {
        if self.uri.contains('?') { '&' } else { '?' }
    }

    /// The location with `params`, then the state (Facebook's and TikTok's order).
    pub fn state_last(&self, params: &str) -> String {
        let state = self.state.as_ref().map(|s| format!("&{s}"));
        let state = state.unwrap_or_default();
        format!("{}{}{params}{state}", self.uri, self.separator())
    }

    /// The location with the state, then `params` (Google's order).
    pub fn state_first(&self, params: &str) -> String {
        let state = self.state.as_ref().map(|s| format!("{s}&"));
        let state = state.unwrap_or_default();
        format!("{}{}{state}{params}", self.uri, self.separator())
    }
}

/// The subject a consent page approves as: the one chosen through the
/// control API, if it (still) exists; `None` makes the page deny.
pub(crate) fn chosen<V>(choice: &Option<String>, known: &HashMap<String, V>) -> Option<String> {
    choice.clone().filter(|id| known.contains_key(id))
}

/// The 302 to `location`; `None` when it cannot be a header value (a
/// `redirect_uri` with bytes a header cannot carry).
pub(crate) fn found(location: &str) -> Option<Response> {
    let value = HeaderValue::from_str(location).ok()?;
    let mut response = StatusCode::FOUND.into_response();
    response.headers_mut().insert(header::LOCATION, value);
    Some(response)
}
