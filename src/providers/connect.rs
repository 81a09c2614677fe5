//! What a provider's connect flow hands the token manager: the account's
//! credential and those derived from it, or why the caller's input was
//! refused. The flows only speak to their platform; storing is the
//! manager's job.

use chrono::{DateTime, Utc};

use super::UpstreamError;
use super::lifecycle::Derived;
use crate::domain::{ConnectionKind, Provider};
use crate::secret::Secret;

/// A credential to store under its natural key (provider, kind, external
/// id, team).
#[derive(Debug, Clone)]
pub struct Upsert {
    pub provider: Provider,
    pub kind: ConnectionKind,
    pub external_id: String,
    pub label: String,
    pub token: Secret,
    pub refresh_token: Option<Secret>,
    pub expires_at: Option<DateTime<Utc>>,
    pub refresh_token_expires_at: Option<DateTime<Utc>>,
    pub data_access_expires_at: Option<DateTime<Utc>>,
    pub scopes: Vec<String>,
    pub parent_id: Option<String>,
    /// TikTok Shop's shops of this authorization; `None` keeps those stored.
    pub shop_ids: Option<Vec<String>>,
}

/// A connected account, and the connections derived from it (a Facebook
/// user's pages).
#[derive(Debug, Clone)]
pub struct Connected {
    pub account: Upsert,
    pub derived: Vec<Derived>,
}

impl Connected {
    pub fn account(account: Upsert) -> Self {
        Self {
            account,
            derived: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectError {
    /// The platform refused what the caller handed in (a code, a token):
    /// `field` names it.
    #[error("{field}: the platform refused it: {source}")]
    Rejected {
        field: &'static str,
        source: UpstreamError,
    },
    /// What the caller handed in works but cannot be connected this way.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// A later call of the flow failed: not the caller's input.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

impl ConnectError {
    /// For `map_err` on the call that consumes the caller's `field`.
    pub fn rejected(field: &'static str) -> impl Fn(UpstreamError) -> ConnectError {
        move |source| ConnectError::Rejected { field, source }
    }
}
