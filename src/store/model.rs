//! The stored records: connections and the document that holds them.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The platform a connection belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Facebook,
    TiktokShop,
    Google,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Facebook => "facebook",
            Provider::TiktokShop => "tiktok_shop",
            Provider::Google => "google",
        }
    }
}

/// What the credential stands for at its provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionKind {
    User,
    Page,
    SystemUser,
    Shop,
    Ads,
}

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

/// The class of an upstream failure, decided from error codes only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    Transient,
    RateLimited,
    PermissionMissing,
    ReauthRequired,
    InvalidRequest,
    /// The object asked for does not exist, or the token cannot see it
    /// (Graph 100/33, Google `NOT_FOUND`): the caller named something wrong.
    NotFound,
}

/// The last failure seen for a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastError {
    pub class: ErrorClass,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subcode: Option<i64>,
    pub message: String,
    pub at: DateTime<Utc>,
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
    /// The alert state last announced to the webhook, so each change is
    /// notified once (`ok`, `reauth_required`, `expiry_warning:<what>:<days>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notified_state: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Increments on every write of this record.
    pub version: u64,
}

/// Everything in the store file, apart from the checksum envelope.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Document {
    /// Format of the document, for future migrations.
    pub format: u32,
    /// Id of the encryption key that wrote the secrets (and the document).
    pub key_id: String,
    /// Incremented on every file write.
    pub generation: u64,
    pub written_at: DateTime<Utc>,
    /// Connections by id. `Arc` keeps cloning the map for a new snapshot cheap.
    pub connections: BTreeMap<String, Arc<Connection>>,
}

pub const DOCUMENT_FORMAT: u32 = 1;

impl Document {
    pub fn empty(key_id: &str) -> Self {
        Self {
            format: DOCUMENT_FORMAT,
            key_id: key_id.to_string(),
            generation: 0,
            written_at: Utc::now(),
            connections: BTreeMap::new(),
        }
    }
}

impl Connection {
    /// A new record with no history; the store sets `version` on write.
    /// What identifies a connection besides its id: one record per
    /// (provider, kind, external id, team).
    pub fn natural_key(&self) -> (Provider, ConnectionKind, &str, Option<&str>) {
        (
            self.provider,
            self.kind,
            &self.external_id,
            self.team_id.as_deref(),
        )
    }

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
            notified_state: None,
            created_at: now,
            updated_at: now,
            version: 0,
        }
    }
}
