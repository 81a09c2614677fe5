//! [`InsightsCache`] over PostgreSQL, so that every instance answers from
//! what any of them computed. It takes the store's pool, not the store:
//! insights may not import `store/`, whose migrations create the
//! `insights_cache` table. Like the file cache, a failure is a miss (and a
//! warning), and a zero TTL turns it off.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;

use super::cache::{CacheError, InsightsCache, digest};

pub struct PgCache {
    pool: PgPool,
    ttl: Duration,
}

impl PgCache {
    pub fn new(pool: PgPool, ttl: Duration) -> Self {
        Self { pool, ttl }
    }
}

#[async_trait::async_trait]
impl InsightsCache for PgCache {
    async fn get(&self, key: &str, now: DateTime<Utc>) -> Option<Value> {
        if self.ttl.is_zero() {
            return None;
        }
        // As text: serde_json keeps the stored key order.
        let read: Result<Option<String>, _> = sqlx::query_scalar(
            "SELECT value::text FROM insights_cache WHERE key = $1 AND expires_at > $2",
        )
        .bind(digest(key))
        .bind(now)
        .fetch_optional(&self.pool)
        .await;
        match read {
            Ok(text) => serde_json::from_str(&text?).ok(),
            Err(e) => {
                tracing::warn!(error = %e, "could not read an insights cache entry");
                None
            }
        }
    }

    async fn put(&self, key: &str, value: &Value, sources: &[String], now: DateTime<Utc>) {
        if self.ttl.is_zero() {
            return;
        }
        let expires_at = now + chrono::Duration::from_std(self.ttl).unwrap_or_default();
        // Entries expired by `now` are dropped on the way: nothing reads them
        // (but not this key's: one statement may not both delete and update
        // a row).
        let written = sqlx::query(
            "WITH purged AS (DELETE FROM insights_cache WHERE expires_at <= $4 AND key <> $1)
             INSERT INTO insights_cache (key, expires_at, value, sources)
                 VALUES ($1, $2, $3::json, $5)
             ON CONFLICT (key) DO UPDATE
                 SET expires_at = EXCLUDED.expires_at, value = EXCLUDED.value,
                     sources = EXCLUDED.sources",
        )
        .bind(digest(key))
        .bind(expires_at)
        .bind(value.to_string())
        .bind(now)
        .bind(sources)
        .execute(&self.pool)
        .await;
        if let Err(e) = written {
            tracing::warn!(error = %e, "could not write an insights cache entry");
        }
    }

    async fn forget(&self, connection_ids: &[String]) -> Result<usize, CacheError> {
        // Entries from before sources were recorded have none: unknown, so
        // they go too.
        let removed = sqlx::query(
            "DELETE FROM insights_cache WHERE sources && $1 OR cardinality(sources) = 0",
        )
        .bind(connection_ids)
        .execute(&self.pool)
        .await
        .map_err(|e| CacheError(e.to_string()))?;
        Ok(removed.rows_affected() as usize)
    }
}
