//! Google: OAuth (consent, code exchange, refresh, wire-spec 8.1), the Google
//! Ads searchStream API (8.2), and the token lifecycle.

pub mod ads;
pub mod connect;
pub mod lifecycle;
pub(crate) mod oauth;
mod spec;

pub use oauth::{GoogleGrant, GoogleOAuth};
pub use spec::register;
