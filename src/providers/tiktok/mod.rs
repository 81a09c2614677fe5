//! TikTok Shop: the auth API (token get and refresh, wire-spec 7), error
//! classification by `code`, the token lifecycle, and the webhook pushes'
//! signature.

pub(crate) mod client;
pub mod connect;
pub mod lifecycle;
mod spec;
pub mod webhook;

pub use client::{TiktokClient, TiktokGrant};
pub use spec::register;

use crate::domain::ErrorClass;

/// Classifies a TikTok `code` ≠ 0. Token codes (105xxx, 360xxx) mean the
/// integration must be re-authorized; 36004001 is "rt has expired".
pub fn classify(code: i64) -> ErrorClass {
    match code {
        105_000..=105_999 | 36_000_000..=36_099_999 => ErrorClass::ReauthRequired,
        // Rate limits and server-side errors (documented as 1xxxx / 5xxxx).
        429 | 10_004 | 50_000..=59_999 => ErrorClass::Transient,
        _ => ErrorClass::InvalidRequest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_codes_need_reauthorization() {
        assert_eq!(classify(36_004_001), ErrorClass::ReauthRequired);
        assert_eq!(classify(36_004_005), ErrorClass::ReauthRequired);
        assert_eq!(classify(105_002), ErrorClass::ReauthRequired);
        assert_eq!(classify(1), ErrorClass::InvalidRequest);
    }
}
