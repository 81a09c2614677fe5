//! Extractors whose rejections use our error envelope, and input checks for
//! tokens handed to the service.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::timeouts::BodyTimedOut;

/// A JSON body with rejections as `{"error": ...}` naming the field at fault.
///
/// The body must be a JSON object: serde would otherwise fill a struct from
/// an array by position (`[null, null]` for `{"scopes", "team_id"}`), which
/// no client means to send.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::BadRequest {
                field: None,
                message: "Expected request with `Content-Type: application/json`".into(),
            });
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if source_chain(&e).any(|s| s.is::<BodyTimedOut>()) {
                ApiError::RequestTimeout(BodyTimedOut.to_string())
            } else if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge("the request body is over the size limit (2 MiB)".into())
            } else {
                ApiError::BadRequest {
                    field: None,
                    message: e.body_text(),
                }
            }
        })?;
        parse_object(&bytes).map(ApiJson)
    }
}

/// `application/json` or `application/*+json`, parameters ignored.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || subtype.len() > 5 && subtype[subtype.len() - 5..].eq_ignore_ascii_case("+json"))
}

fn source_chain<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(err), |e| e.source())
}

/// Deserializes a JSON object into `T`; anything else at the top, or a value
/// of the wrong type inside, is 400 naming the field (`body` for the top).
pub fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        let found = match first {
            None => "nothing",
            Some(b'[') => "an array",
            Some(b'"') => "a string",
            Some(b'n') => "null",
            Some(b't' | b'f') => "a boolean",
            Some(b'-' | b'0'..=b'9') => "a number",
            Some(_) => "something that is not JSON",
        };
        return Err(ApiError::bad_request(
            "body",
            format!("the body must be a JSON object, not {found}"),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "body".to_string()
        } else {
            path
        };
        ApiError::BadRequest {
            message: format!("{field}: {}", e.inner()),
            field: Some(field),
        }
    })?;
    de.end()
        .map_err(|e| ApiError::bad_request("body", format!("body: {e}")))?;
    Ok(value)
}

/// `Query<T>` with rejections as `{"error": ...}`.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// Refuses a token that is empty, contains whitespace or control characters,
/// or has an implausible length, before anything is stored or sent.
pub fn check_token_input(field: &str, token: &str) -> Result<(), ApiError> {
    if token.is_empty() {
        return Err(ApiError::bad_request(field, "must not be empty"));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::bad_request(
            field,
            "must not contain whitespace or control characters",
        ));
    }
    if token.len() < 20 {
        return Err(ApiError::bad_request(field, "is too short to be a token"));
    }
    if token.len() > 4096 {
        return Err(ApiError::bad_request(field, "is too long to be a token"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        scopes: Option<Vec<String>>,
        team_id: Option<String>,
    }

    #[test]
    fn a_body_that_is_not_an_object_is_refused_naming_the_body() {
        for bad in ["[null,null]", "[]", "null", "\"x\"", "7", "", "  [1]"] {
            let e = parse_object::<Body>(bad.as_bytes()).unwrap_err();
            assert!(
                matches!(e, ApiError::BadRequest { field: Some(ref f), .. } if f == "body"),
                "{bad}: {e:?}"
            );
        }
        assert!(parse_object::<Body>(b" {\"scopes\": null} ").is_ok());
    }

    #[test]
    fn a_null_where_a_string_is_needed_names_the_field() {
        let e = parse_object::<Body>(br#"{"scopes": [null]}"#).unwrap_err();
        assert!(
            matches!(e, ApiError::BadRequest { field: Some(ref f), .. } if f == "scopes[0]"),
            "{e:?}"
        );
        let e = parse_object::<Body>(br#"{"team_id": 5}"#).unwrap_err();
        assert!(
            matches!(e, ApiError::BadRequest { field: Some(ref f), .. } if f == "team_id"),
            "{e:?}"
        );
        let e = parse_object::<Body>(br#"{"team_id": "a"} x"#).unwrap_err();
        assert!(matches!(e, ApiError::BadRequest { .. }), "{e:?}");
    }

    #[test]
    fn implausible_tokens_are_refused_naming_the_field() {
        for bad in ["", "EAAB short", "EAAB\u{7}xxxxxxxxxxxxxxxxxxxxxx", "abc"] {
            let e = check_token_input("access_token", bad).unwrap_err();
            assert!(
                matches!(e, ApiError::BadRequest { field: Some(ref f), .. } if f == "access_token")
            );
        }
        assert!(check_token_input("t", &"x".repeat(5000)).is_err());
        assert!(check_token_input("t", &format!("EAAB{}", "x".repeat(60))).is_ok());
    }
}
