//! The data deletion requests: the [`DeletionStore`] seam, and its file
//! implementation, `data_deletions.json` beside the store, replaced
//! atomically on each write (requests are rare).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use tokio::sync::Mutex;

use super::error::StoreError;
use super::ledger::Ledger;
use crate::domain::DeletionRequest;

pub const DELETIONS_FILE_NAME: &str = "data_deletions.json";

const LEDGER: Ledger = Ledger {
    format: 1,
    field: "requests",
};

/// Data deletion requests by confirmation code.
#[async_trait::async_trait]
pub trait DeletionStore: Send + Sync {
    /// Records `request`, replacing the one with its code. Durable when it
    /// returns `Ok`.
    async fn save(&self, request: &DeletionRequest) -> Result<(), StoreError>;

    async fn get(&self, code: &str) -> Result<Option<DeletionRequest>, StoreError>;
}

pub struct DeletionsFile {
    path: PathBuf,
    /// The lock also serialises writes, so an older file never replaces a
    /// newer one.
    requests: Mutex<BTreeMap<String, DeletionRequest>>,
}

impl DeletionsFile {
    /// Reads `data_deletions.json` in `data_dir` (none: no requests),
    /// refusing a damaged one without touching it.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let path = data_dir.join(DELETIONS_FILE_NAME);
        let requests: Vec<DeletionRequest> = LEDGER.load(&path)?;
        Ok(Self {
            path,
            requests: Mutex::new(requests.into_iter().map(|r| (r.code.clone(), r)).collect()),
        })
    }
}

#[async_trait::async_trait]
impl DeletionStore for DeletionsFile {
    async fn save(&self, request: &DeletionRequest) -> Result<(), StoreError> {
        let mut requests = self.requests.lock().await;
        let mut next = requests.clone();
        next.insert(request.code.clone(), request.clone());
        let list: Vec<DeletionRequest> = next.values().cloned().collect();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || LEDGER.save(&path, &list))
            .await
            .map_err(|e| StoreError::io(&self.path, io::Error::other(e)))??;
        *requests = next;
        Ok(())
    }

    async fn get(&self, code: &str) -> Result<Option<DeletionRequest>, StoreError> {
        Ok(self.requests.lock().await.get(code).cloned())
    }
}
