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
    /// The connections the value was computed from (absent in entries
    /// written before they were recorded).
    #[serde(default)]
    sources: Vec<String>,
    value: Value,
}

impl Entry {
    /// Whether the entry may hold data of one of `connection_ids`: it was
    /// computed from one, or its sources are unknown.
    fn may_hold_any(&self, connection_ids: &[String]) -> bool {
        self.sources.is_empty() || self.sources.iter().any(|s| connection_ids.contains(s))
    }
}

/// The cache could not erase what it was asked to (reads and writes never
/// fail: they count as misses).
#[derive(Debug, thiserror::Error)]
#[error("the insights cache: {0}")]
pub struct CacheError(pub String);

/// Answers kept for a while. A miss is never an error: a cache that cannot
/// read or write answers as if it held nothing, and the caller computes.
#[async_trait::async_trait]
pub trait InsightsCache: Send + Sync {
    /// The value stored under `key`, while its TTL has not run out at `now`.
    async fn get(&self, key: &str, now: DateTime<Utc>) -> Option<Value>;

    /// Stores `value`, computed from the tokens of the connections
    /// `sources`, under `key` until `now` plus the cache's TTL.
    async fn put(&self, key: &str, value: &Value, sources: &[String], now: DateTime<Utc>);

    /// Removes every entry computed from one of `connection_ids` (and any
    /// whose sources are unknown), expired or not: their data is to be
    /// erased. Answers how many it removed.
    async fn forget(&self, connection_ids: &[String]) -> Result<usize, CacheError>;
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

    async fn put(&self, key: &str, value: &Value, sources: &[String], now: DateTime<Utc>) {
        if self.ttl.is_zero() {
            return;
        }
        let entry = Entry {
            expires_at: now + chrono::Duration::from_std(self.ttl).unwrap_or_default(),
            sources: sources.to_vec(),
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

    async fn forget(&self, connection_ids: &[String]) -> Result<usize, CacheError> {
        let dir = self.dir.clone();
        let ids = connection_ids.to_vec();
        tokio::task::spawn_blocking(move || forget_in(&dir, &ids))
            .await
            .map_err(|e| CacheError(e.to_string()))?
            .map_err(|e| CacheError(e.to_string()))
    }
}

/// Reads every entry in `dir` (a rare, whole-folder pass: erasure only)
/// and removes those [`Entry::may_hold_any`] of `ids`; an entry that cannot be
/// read is removed too, as its sources cannot be known.
fn forget_in(dir: &Path, ids: &[String]) -> Result<usize, std::io::Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let held = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Entry>(&b).ok());
        if held.is_none_or(|e| e.may_hold_any(ids)) {
            match std::fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_expire_and_zero_ttl_disables() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileCache::new(dir.path(), Duration::from_secs(60));
        let now = Utc::now();
        cache.put("k", &serde_json::json!({"a": 1}), &[], now).await;
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

    #[tokio::test]
    async fn forget_removes_the_entries_of_the_named_connections_only() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileCache::new(dir.path(), Duration::from_secs(60));
        let now = Utc::now();
        let v = serde_json::json!(1);
        cache.put("user", &v, &["conn_a".into()], now).await;
        cache
            .put("both", &v, &["conn_a".into(), "conn_b".into()], now)
            .await;
        cache.put("other", &v, &["conn_b".into()], now).await;
        let ids = vec!["conn_a".to_string()];
        assert_eq!(cache.forget(&ids).await.unwrap(), 2);
        assert!(cache.get("user", now).await.is_none());
        assert!(cache.get("both", now).await.is_none());
        assert_eq!(cache.get("other", now).await, Some(v));
        assert_eq!(cache.forget(&ids).await.unwrap(), 0);
    }
}
