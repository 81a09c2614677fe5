//! A connection: one stored credential, its opaque encrypted secrets, and
//! the facts about them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error_class::LastError;
use super::provider::{ConnectionKind, Provider};

/// A secret as stored: a JWE compact string (`dir` + `A256GCM`, with `kid`).
/// Only [`crate::store::crypto::Cipher`] can open it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EncryptedSecret(pub(crate) String);

impl std::fmt::Debug for EncryptedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[encrypted]")
    }
}

/// The encrypted secrets of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSecrets {
    pub access_token: EncryptedSecret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<EncryptedSecret>,
}

/// One stored credential and the facts about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub id: String,
    pub provider: Provider,
    pub kind: ConnectionKind,
    /// Facebook user or page id, TikTok open_id, Google customer id.
    pub external_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
    pub label: String,
    pub secrets: StoredSecrets,
    /// `None` means the token does not expire.
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub refresh_token_expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub data_access_expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub last_refreshed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub next_refresh_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub consecutive_failures: u32,
    #[serde(default)]
    pub last_error: Option<LastError>,
    #[serde(default)]
    pub reauth_required: bool,
    /// For a page connection: the user connection it was derived from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// TikTok Shop: the `shop_id`s this authorization acts for, as TikTok's
    /// authorized-shops call last listed them. They are not the `open_id`
    /// (the external id), and TikTok's webhooks name a shop by them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shop_ids: Vec<String>,
    /// The alert state last announced to the webhook, so each change is
    /// notified once (`ok`, `reauth_required`, `expiry_warning:<what>:<days>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notified_state: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Increments on every write of this record.
    pub version: u64,
}

impl Connection {
    /// A new record with no history; the store sets `version` on write.
    pub fn new(
        provider: Provider,
        kind: ConnectionKind,
        external_id: impl Into<String>,
        label: impl Into<String>,
        secrets: StoredSecrets,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            provider,
            kind,
            external_id: external_id.into(),
            team_id: None,
            label: label.into(),
            secrets,
            expires_at: None,
            refresh_token_expires_at: None,
            data_access_expires_at: None,
            scopes: Vec::new(),
            last_refreshed_at: None,
            next_refresh_at: None,
            consecutive_failures: 0,
            last_error: None,
            reauth_required: false,
            parent_id: None,
            shop_ids: Vec::new(),
            notified_state: None,
            created_at: now,
            updated_at: now,
            version: 0,
        }
    }
}
