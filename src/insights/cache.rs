//! The insights cache: the [`InsightsCache`] seam the insights service goes
//! through, and [`FileCache`], its file implementation (the seeds replaced
//! Redis with a file cache): one file per key under `<data_dir>/cache/`,
//! written atomically; expired or unreadable entries count as misses
//! (`pg_cache` is the PostgreSQL one). The
//! trait lives here, not in `store/`, because insights may not import the
//! store; a backend implements it and `app.rs` hands it in.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

#[derive(Serialize, Deserialize)]
struct Entry {
    expires_at: DateTime<Utc>,
    value: Value,
}

/// Answers kept for a while. A miss is never an error: a cache that cannot
/// read or write answers as if it held nothing, and the caller computes.
#[async_trait::async_trait]
pub trait InsightsCache: Send + Sync {
    /// The value stored under `key`, while its TTL has not run out at `now`.
    async fn get(&self, key: &str, now: DateTime<Utc>) -> Option<Value>;

    /// Stores `value` under `key` until `now` plus the cache's TTL.
    async fn put(&self, key: &str, value: &Value, now: DateTime<Utc>);
}

/// The file implementation; a zero TTL turns it off.
pub struct FileCache {
    dir: PathBuf,
    ttl: Duration,
}

impl FileCache {
    pub fn new(dir: &Path, ttl: Duration) -> Self {
        Self {
            dir: dir.to_path_buf(),
            ttl,
        }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{}.json", digest(key)))
    }
}

/// What a cache stores under for `key`: keys are long (every parameter of
/// a request), their digests are not.
pub(super) fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[async_trait::async_trait]
impl InsightsCache for FileCache {
    async fn get(&self, key: &str, now: DateTime<Utc>) -> Option<Value> {
        if self.ttl.is_zero() {
            return None;
        }
        let bytes = tokio::fs::read(self.path(key)).await.ok()?;
        let entry: Entry = serde_json::from_slice(&bytes).ok()?;
        (entry.expires_at > now).then_some(entry.value)
    }

    async fn put(&self, key: &str, value: &Value, now: DateTime<Utc>) {
        if self.ttl.is_zero() {
            return;
        }
        let entry = Entry {
            expires_at: now + chrono::Duration::from_std(self.ttl).unwrap_or_default(),
            value: value.clone(),
        };
        let path = self.path(key);
        let dir = self.dir.clone();
        let result = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            let bytes = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
            crate::atomic_file::write_atomic(&path, &bytes)
        })
        .await;
        if !matches!(result, Ok(Ok(()))) {
            tracing::warn!("could not write an insights cache entry");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_expire_and_zero_ttl_disables() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileCache::new(dir.path(), Duration::from_secs(60));
        let now = Utc::now();
        cache.put("k", &serde_json::json!({"a": 1}), now).await;
        assert_eq!(cache.get("k", now).await.unwrap()["a"], 1);
        assert!(
            cache
                .get("k", now + chrono::Duration::seconds(61))
                .await
                .is_none()
        );
        assert!(cache.get("other", now).await.is_none());
        let off = FileCache::new(dir.path(), Duration::ZERO);
        assert!(off.get("k", now).await.is_none());
    }
}
