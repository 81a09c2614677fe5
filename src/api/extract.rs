//! Extractors whose rejections use our error envelope, and input checks for
//! tokens handed to the service.

use axum::extract::{FromRequest, FromRequestParts};

use super::error::ApiError;

/// `Json<T>` with rejections as `{"error": ...}`.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

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
