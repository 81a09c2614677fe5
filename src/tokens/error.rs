//! What can go wrong in the token lifecycle, in one type every part of it
//! returns (kept out of `mod.rs`, so that the parts name it without naming
//! the module that declares them).

use crate::providers::UpstreamError;
use crate::providers::connect::ConnectError;
use crate::providers::spec::NotConfigured;
use crate::store::StoreError;

/// What can go wrong getting, connecting or refreshing a token. `Clone`, so
/// one refresh's result can be shared by every caller of a single flight.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    #[error("connection {0} not found")]
    NotFound(String),
    #[error("connection {id} must be reconnected: {reason}")]
    ReauthRequired { id: String, reason: String },
    #[error("connection {id} cannot be refreshed: {reason}")]
    CannotRefresh { id: String, reason: String },
    #[error("upstream: {0}")]
    Upstream(#[from] UpstreamError),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// The platform refused a credential the caller handed in (an OAuth
    /// code, a token to connect): the input is at fault, not a stored
    /// connection. `field` names it.
    #[error("{field}: the platform refused it: {source}")]
    InputRejected {
        field: String,
        source: Box<UpstreamError>,
    },
    /// The connection belongs to another platform, or is of a kind the
    /// operation cannot use: its token is not decrypted, nothing is sent.
    #[error("connection {id} is {found}; this operation needs {}", describe_expected(*.expected_provider, .expected_kinds))]
    WrongConnection {
        field: String,
        id: String,
        found: String,
        expected_provider: Option<crate::domain::Provider>,
        expected_kinds: Vec<crate::domain::ConnectionKind>,
    },
    #[error("{0}")]
    NotConfigured(String),
    #[error("store: {0}")]
    Store(String),
}

fn describe_expected(
    provider: Option<crate::domain::Provider>,
    kinds: &[crate::domain::ConnectionKind],
) -> String {
    super::need::Need {
        field: "",
        provider,
        kinds,
        teams: None,
    }
    .wanted()
}

impl From<NotConfigured> for TokenError {
    fn from(e: NotConfigured) -> Self {
        TokenError::NotConfigured(e.0)
    }
}

impl From<ConnectError> for TokenError {
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::Rejected { field, source } => TokenError::InputRejected {
                field: field.to_string(),
                source: Box::new(source),
            },
            ConnectError::Invalid { field, message } => TokenError::Invalid {
                field: field.to_string(),
                message,
            },
            ConnectError::Upstream(e) => TokenError::Upstream(e),
        }
    }
}

impl From<StoreError> for TokenError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(id) => TokenError::NotFound(id),
            other => TokenError::Store(other.to_string()),
        }
    }
}
