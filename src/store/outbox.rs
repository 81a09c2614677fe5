//! The webhook outbox: the [`OutboxStore`] seam, and its embedded
//! implementation, [`OutboxFile`]: every delivery in `webhooks.json` beside
//! the store, replaced atomically on each change, so that an event whose
//! receiver is down is still sent after a restart.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use tokio::sync::Mutex;

use super::error::StoreError;
use super::ledger::Ledger;
use crate::atomic_file::write_atomic;
use crate::domain::{Delivery, DeliveryStatus};

pub const OUTBOX_FILE_NAME: &str = "webhooks.json";
const FORMAT: u32 = 1;

/// Which deliveries [`OutboxStore::list`] returns: every field set must match.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub status: Option<DeliveryStatus>,
    pub event_type: Option<String>,
    /// Only deliveries about these teams' connections (a team key's view).
    pub teams: Option<Vec<String>>,
    pub connection_id: Option<String>,
    /// At most this many, newest first.
    pub limit: usize,
}

impl DeliveryFilter {
    pub fn matches(&self, d: &Delivery) -> bool {
        self.status.is_none_or(|s| d.status == s)
            && self.event_type.as_ref().is_none_or(|t| &d.event_type == t)
            && self
                .teams
                .as_ref()
                .is_none_or(|ts| d.team_id.as_ref().is_some_and(|t| ts.contains(t)))
            && self
                .connection_id
                .as_ref()
                .is_none_or(|c| d.connection_id.as_ref() == Some(c))
    }
}

/// The deliveries of webhook events. Every write is durable when it returns.
#[async_trait::async_trait]
pub trait OutboxStore: Send + Sync {
    /// Records new deliveries.
    async fn enqueue(&self, deliveries: &[Delivery]) -> Result<(), StoreError>;

    /// Up to `limit` pending deliveries due at `now`, oldest due first, each
    /// held for its taker until `until`: no other claim returns it meanwhile
    /// (another instance's included), and it is due again afterwards if its
    /// taker never recorded the attempt (it stopped).
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// Records a delivery's new state after an attempt, and ends its claim.
    async fn record(&self, delivery: &Delivery) -> Result<(), StoreError>;

    async fn get(&self, id: &str) -> Result<Option<Delivery>, StoreError>;

    /// The deliveries matching `filter`, newest first.
    async fn list(&self, filter: &DeliveryFilter) -> Result<Vec<Delivery>, StoreError>;

    /// Queues delivery `id` for an attempt at `now` whatever its status (a
    /// manual retry); `None` when there is no such delivery.
    async fn requeue(&self, id: &str, now: DateTime<Utc>) -> Result<Option<Delivery>, StoreError>;

    /// When the earliest pending delivery is due.
    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Removes the delivered and exhausted deliveries created before
    /// `before`, returning how many.
    async fn prune(&self, before: DateTime<Utc>) -> Result<usize, StoreError>;
}

/// The embedded implementation: one JSON file, one writer (the JSON store's
/// lock already keeps a second process off the data folder).
pub struct OutboxFile {
    path: PathBuf,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    deliveries: BTreeMap<String, Delivery>,
    /// Claims live only in memory: after a restart every pending delivery
    /// is due again, which is what a claim that outlived its taker means.
    claimed: HashMap<String, DateTime<Utc>>,
}

const LEDGER: Ledger = Ledger {
    format: FORMAT,
    field: "deliveries",
};

impl OutboxFile {
    /// Reads `webhooks.json` in `data_dir` (none: an empty outbox), refusing
    /// a damaged one without touching it.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let path = data_dir.join(OUTBOX_FILE_NAME);
        let deliveries = load(&path)?;
        Ok(Self {
            path,
            inner: Mutex::new(Inner {
                deliveries,
                claimed: HashMap::new(),
            }),
        })
    }

    async fn save(&self, inner: &Inner) -> Result<(), StoreError> {
        let all: Vec<&Delivery> = inner.deliveries.values().collect();
        let bytes = LEDGER
            .encode(&all)
            .map_err(|e| StoreError::io(&self.path, io::Error::other(e)))?;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || write_atomic(&path, &bytes))
            .await
            .map_err(|e| StoreError::io(&self.path, io::Error::other(e)))?
            .map_err(|e| StoreError::io(&self.path, e))
    }
}

#[async_trait::async_trait]
impl OutboxStore for OutboxFile {
    async fn enqueue(&self, deliveries: &[Delivery]) -> Result<(), StoreError> {
        let mut inner = self.inner.lock().await;
        for d in deliveries {
            inner.deliveries.insert(d.id.clone(), d.clone());
        }
        if let Err(e) = self.save(&inner).await {
            for d in deliveries {
                inner.deliveries.remove(&d.id);
            }
            return Err(e);
        }
        Ok(())
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut inner = self.inner.lock().await;
        let Inner {
            deliveries,
            claimed,
        } = &mut *inner;
        claimed.retain(|_, held| *held > now);
        let mut due: Vec<&Delivery> = deliveries
            .values()
            .filter(|d| d.status == DeliveryStatus::Pending)
            .filter(|d| d.next_attempt_at.is_some_and(|t| t <= now))
            .filter(|d| !claimed.contains_key(&d.id))
            .collect();
        due.sort_by_key(|d| (d.next_attempt_at, d.created_at));
        due.truncate(limit);
        let taken: Vec<Delivery> = due.into_iter().cloned().collect();
        for d in &taken {
            claimed.insert(d.id.clone(), until);
        }
        Ok(taken)
    }

    async fn record(&self, delivery: &Delivery) -> Result<(), StoreError> {
        let mut inner = self.inner.lock().await;
        inner.claimed.remove(&delivery.id);
        let before = inner
            .deliveries
            .insert(delivery.id.clone(), delivery.clone());
        if let Err(e) = self.save(&inner).await {
            match before {
                Some(b) => inner.deliveries.insert(b.id.clone(), b),
                None => inner.deliveries.remove(&delivery.id),
            };
            return Err(e);
        }
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        Ok(self.inner.lock().await.deliveries.get(id).cloned())
    }

    async fn list(&self, filter: &DeliveryFilter) -> Result<Vec<Delivery>, StoreError> {
        let inner = self.inner.lock().await;
        let mut found: Vec<Delivery> = inner
            .deliveries
            .values()
            .filter(|d| filter.matches(d))
            .cloned()
            .collect();
        found.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        found.truncate(filter.limit);
        Ok(found)
    }

    async fn requeue(&self, id: &str, now: DateTime<Utc>) -> Result<Option<Delivery>, StoreError> {
        let mut inner = self.inner.lock().await;
        let Some(before) = inner.deliveries.get(id).cloned() else {
            return Ok(None);
        };
        let mut after = before.clone();
        after.requeued(now);
        inner.deliveries.insert(id.to_string(), after.clone());
        if let Err(e) = self.save(&inner).await {
            inner.deliveries.insert(id.to_string(), before);
            return Err(e);
        }
        Ok(Some(after))
    }

    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let inner = self.inner.lock().await;
        Ok(inner
            .deliveries
            .values()
            .filter(|d| d.status == DeliveryStatus::Pending)
            .filter_map(|d| d.next_attempt_at)
            .min())
    }

    async fn prune(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut inner = self.inner.lock().await;
        let old: Vec<String> = inner
            .deliveries
            .values()
            .filter(|d| d.status != DeliveryStatus::Pending && d.created_at < before)
            .map(|d| d.id.clone())
            .collect();
        if old.is_empty() {
            return Ok(0);
        }
        let removed: Vec<Delivery> = old
            .iter()
            .filter_map(|id| inner.deliveries.remove(id))
            .collect();
        if let Err(e) = self.save(&inner).await {
            for d in removed {
                inner.deliveries.insert(d.id.clone(), d);
            }
            return Err(e);
        }
        Ok(old.len())
    }
}

fn load(path: &Path) -> Result<BTreeMap<String, Delivery>, StoreError> {
    let deliveries: Vec<Delivery> = LEDGER.load(path)?;
    Ok(deliveries.into_iter().map(|d| (d.id.clone(), d)).collect())
}
