//! Single-use nonces (the OAuth `state` of a connect flow): the
//! [`NonceStore`] seam, and its embedded implementation, in memory (a nonce
//! lives minutes; a restart only means starting the connection again).

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::error::StoreError;

/// A nonce to issue, with what its taker gets back.
#[derive(Debug, Clone)]
pub struct Nonce {
    pub id: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub payload: String,
}

/// Why a nonce cannot be taken.
#[derive(Debug, thiserror::Error)]
pub enum NonceError {
    #[error("was not issued here")]
    Unknown,
    #[error("was already used")]
    AlreadyTaken,
    #[error("has expired")]
    Expired,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Nonces issued with an expiry, each taken at most once.
#[async_trait::async_trait]
pub trait NonceStore: Send + Sync {
    /// Records `nonce`, takeable until its expiry.
    async fn issue(&self, nonce: Nonce) -> Result<(), StoreError>;

    /// The payload of nonce `id`, once: atomically against every other take,
    /// so of two concurrent takes exactly one wins. Refused when the nonce
    /// was not issued, was taken already, or expired before `now`.
    async fn take(&self, id: &str, now: DateTime<Utc>) -> Result<String, NonceError>;
}

/// The embedded implementation: a map in memory.
#[derive(Default)]
pub struct MemoryNonces {
    nonces: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    payload: String,
    expires_at: DateTime<Utc>,
    /// Kept until it expires once taken, so that a replay is told so.
    taken: bool,
}

impl MemoryNonces {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.nonces.lock().expect("nonces lock")
    }
}

#[async_trait::async_trait]
impl NonceStore for MemoryNonces {
    async fn issue(&self, nonce: Nonce) -> Result<(), StoreError> {
        let mut nonces = self.lock();
        nonces.retain(|_, e| e.expires_at >= nonce.issued_at);
        nonces.insert(
            nonce.id,
            Entry {
                payload: nonce.payload,
                expires_at: nonce.expires_at,
                taken: false,
            },
        );
        Ok(())
    }

    async fn take(&self, id: &str, now: DateTime<Utc>) -> Result<String, NonceError> {
        let mut nonces = self.lock();
        let entry = nonces.get_mut(id).ok_or(NonceError::Unknown)?;
        if entry.taken {
            return Err(NonceError::AlreadyTaken);
        }
        if entry.expires_at < now {
            nonces.remove(id);
            return Err(NonceError::Expired);
        }
        entry.taken = true;
        Ok(entry.payload.clone())
    }
}
