//! Facebook Graph API: client, error classification, usage headers and the
//! throttle they drive.

pub mod client;
pub mod connect;
pub mod errors;
pub mod lifecycle;
pub mod signed_request;
mod spec;
pub mod throttle;
pub mod usage;

use chrono::{DateTime, Utc};

pub use client::{DebugInfo, GraphClient, Me, PageAccount, TokenGrant, appsecret_proof};
pub use spec::register;

/// Parses Graph datetimes like `2024-03-12T15:02:47-0700` or `…+0000`
/// (no colon in the offset, so not RFC 3339).
pub fn parse_graph_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%z")
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_times_without_a_colon_in_the_offset_parse() {
        let t = parse_graph_time("2024-03-12T15:02:47-0700").unwrap();
        assert_eq!(t.to_rfc3339(), "2024-03-12T22:02:47+00:00");
        assert!(parse_graph_time("2025-05-01T10:00:00+0000").is_some());
        assert!(parse_graph_time("yesterday").is_none());
    }
}
