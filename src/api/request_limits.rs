//! Limits on the request line and headers, answered in our error envelope
//! before anything else reads the request: a URI over [`MAX_URI_BYTES`] is
//! 414, headers over [`MAX_HEADER_BYTES`] in all are 431. (hyper's own
//! parser limits, about 400 KiB and 100 headers, lie beyond these and close
//! the connection with a bare status.)

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

pub const MAX_URI_BYTES: usize = 8 * 1024;
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

pub async fn check(req: Request, next: Next) -> Response {
    let uri = req.uri().to_string().len();
    if uri > MAX_URI_BYTES {
        return ApiError::UriTooLong(format!(
            "the request URI is {uri} bytes; at most {MAX_URI_BYTES} are accepted"
        ))
        .into_response();
    }
    let headers: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if headers > MAX_HEADER_BYTES {
        return ApiError::HeadersTooLarge(format!(
            "the request headers are {headers} bytes; at most {MAX_HEADER_BYTES} are accepted"
        ))
        .into_response();
    }
    next.run(req).await
}
