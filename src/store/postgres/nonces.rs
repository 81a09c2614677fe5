//! [`NonceStore`] over PostgreSQL: an OAuth state issued by one instance is
//! taken, once, by whichever instance its callback reaches.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};

use crate::store::error::StoreError;
use crate::store::nonces::{Nonce, NonceError, NonceStore};

/// The nonces in the `oauth_nonces` table.
pub struct PgNonces {
    pool: PgPool,
}

impl PgNonces {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait::async_trait]
impl NonceStore for PgNonces {
    async fn issue(&self, nonce: Nonce) -> Result<(), StoreError> {
        // Purges the expired ones on the way, as the memory store does (but
        // not this id: one statement may not both delete and update a row).
        sqlx::query(
            "WITH purged AS (DELETE FROM oauth_nonces WHERE expires_at < $4 AND id <> $1)
             INSERT INTO oauth_nonces (id, payload, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE
                 SET payload = EXCLUDED.payload, expires_at = EXCLUDED.expires_at, taken = false",
        )
        .bind(&nonce.id)
        .bind(&nonce.payload)
        .bind(nonce.expires_at)
        .bind(nonce.issued_at)
        .execute(&self.pool)
        .await
        .map_err(StoreError::database("issue a nonce"))?;
        Ok(())
    }

    /// One statement: the row is locked first, so a concurrent take waits
    /// and then sees it taken. An expired one is deleted as it is refused.
    async fn take(&self, id: &str, now: DateTime<Utc>) -> Result<String, NonceError> {
        let row = sqlx::query(
            "WITH target AS (
                 SELECT id, taken, expires_at FROM oauth_nonces WHERE id = $1 FOR UPDATE
             ), won AS (
                 UPDATE oauth_nonces n SET taken = true FROM target t
                 WHERE n.id = t.id AND NOT t.taken AND t.expires_at >= $2
                 RETURNING n.payload
             ), expired AS (
                 DELETE FROM oauth_nonces n USING target t
                 WHERE n.id = t.id AND NOT t.taken AND t.expires_at < $2
             )
             SELECT t.taken, (SELECT payload FROM won) AS payload FROM target t",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::database("take a nonce"))?
        .ok_or(NonceError::Unknown)?;
        let read = |e| NonceError::Store(StoreError::database("read a nonce")(e));
        let taken: bool = row.try_get("taken").map_err(read)?;
        let payload: Option<String> = row.try_get("payload").map_err(read)?;
        match (taken, payload) {
            (true, _) => Err(NonceError::AlreadyTaken),
            (false, Some(payload)) => Ok(payload),
            (false, None) => Err(NonceError::Expired),
        }
    }
}
