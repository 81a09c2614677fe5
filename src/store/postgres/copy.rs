//! `store migrate --to postgres`: the records of a JSON store copied into
//! the database exactly as they are (ids, versions, times, JWE secrets), then
//! checked against it by count and checksum. Records already there by id are
//! left alone, so a copy cut short runs again safely. `store export` reads
//! them all back out, as they are, for a JSON store.

use sha2::{Digest, Sha256};

use super::PgConnectionStore;
use super::writes;
use crate::domain::Connection;
use crate::store::error::StoreError;
use crate::store::storage::{ConnectionStore, ListFilter};

/// What a copy did and found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    pub copied: usize,
    /// Records whose id the database already held.
    pub present: usize,
    /// `sha256:` of every record, in id order, as both sides hold them.
    pub checksum: String,
}

/// `sha256:` over the records' JSON in id order.
pub fn records_checksum<'a>(records: impl IntoIterator<Item = &'a Connection>) -> String {
    let mut sorted: Vec<&Connection> = records.into_iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let mut hasher = Sha256::new();
    for c in sorted {
        hasher.update(serde_json::to_vec(c).expect("a connection serializes"));
        hasher.update(b"\n");
    }
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

impl PgConnectionStore {
    /// Copies `records` in one transaction, then checks that the database
    /// holds exactly them: the same count and the same checksum. A database
    /// holding other connections, or other versions of these, is refused.
    pub async fn copy_in(&self, records: &[Connection]) -> Result<CopyReport, StoreError> {
        let mut tx = self.begin("begin the copy").await?;
        let mut copied = 0;
        for conn in records {
            if writes::insert_as_is(&mut tx, conn, &self.inner.rows).await? {
                copied += 1;
            }
        }
        tx.commit()
            .await
            .map_err(StoreError::database("commit the copy"))?;
        let stored = self.list(&ListFilter::default()).await?;
        let expected = records_checksum(records);
        let actual = records_checksum(stored.iter().map(|c| &**c));
        if stored.len() != records.len() || actual != expected {
            return Err(StoreError::CopyMismatch {
                expected: records.len(),
                found: stored.len(),
            });
        }
        Ok(CopyReport {
            copied,
            present: records.len() - copied,
            checksum: actual,
        })
    }

    /// Every record exactly as stored (JWE secrets unopened), in id order,
    /// read in one statement: one consistent snapshot of the database.
    pub async fn copy_out(&self) -> Result<Vec<Connection>, StoreError> {
        let stored = self.list(&ListFilter::default()).await?;
        Ok(stored
            .into_iter()
            .map(std::sync::Arc::unwrap_or_clone)
            .collect())
    }
}
