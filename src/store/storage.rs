//! The storage seam: what every caller asks of a connection store, whatever
//! keeps the records (the JSON file today; a journal or PostgreSQL later).
//! A backend implements [`ConnectionStore`] and passes the contract suite in
//! `tests/it/storage_contract.rs`; callers hold an `Arc<dyn ConnectionStore>`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::error::StoreError;
use super::secrets::SecretBox;
use crate::domain::{Connection, ConnectionKind, Provider};

/// A change to a stored connection. The store applies it to the version it
/// holds, atomically against every other write of that connection, then sets
/// the bookkeeping fields (id, created and updated times, version) itself.
pub type Edit = Box<dyn FnOnce(&mut Connection) + Send>;

/// One change of a [`ConnectionStore::write_all`].
pub enum Write {
    /// As [`ConnectionStore::upsert`].
    Upsert { new: Box<Connection>, edit: Edit },
    /// As [`ConnectionStore::update`].
    Update {
        id: String,
        guard: WriteGuard,
        edit: Edit,
    },
}

/// Which connections [`ConnectionStore::list`] returns; every field that is
/// set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    pub provider: Option<Provider>,
    pub kind: Option<ConnectionKind>,
    /// Only the connections of this team.
    pub team_id: Option<String>,
    /// Only the connections whose `next_refresh_at` is at or before this time.
    pub due_before: Option<DateTime<Utc>>,
}

impl ListFilter {
    pub fn matches(&self, c: &Connection) -> bool {
        self.provider.is_none_or(|p| c.provider == p)
            && self.kind.is_none_or(|k| c.kind == k)
            && self
                .team_id
                .as_ref()
                .is_none_or(|t| c.team_id.as_ref() == Some(t))
            && self
                .due_before
                .is_none_or(|t| c.next_refresh_at.is_some_and(|n| n <= t))
    }
}

/// A number that grows with every lease granted on a connection: a write that
/// carries an older one than the newest lease is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FencingToken(pub u64);

/// The right, until `expires_at`, to be the only refresher of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub connection_id: String,
    pub holder: String,
    pub fencing_token: FencingToken,
    pub expires_at: DateTime<Utc>,
}

/// What a guarded [`ConnectionStore::update`] requires of the stored record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteGuard {
    /// Nothing: the edit applies to whatever version is stored.
    Latest,
    /// The stored version is this one, else [`StoreError::VersionConflict`].
    Version(u64),
    /// No lease newer than this token was granted on the connection, else
    /// [`StoreError::StaleLease`].
    Fenced(FencingToken),
    /// As `Fenced`, and the lease ends with the write: the holder's last
    /// write under it, which saves giving it back on its own.
    FencedLast(FencingToken),
}

/// What `/readyz` reports of a store that is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreSummary {
    pub connections: usize,
    /// Increments with every committed write (the file's generation).
    pub generation: u64,
}

/// Write counters of an open store, for tests, benchmarks and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub file_writes: u64,
    pub bytes_written: u64,
    pub updates_committed: u64,
    pub backups_taken: u64,
    /// Snapshots written to fold the journal in.
    pub compactions: u64,
}

/// The connections, their leases and the key that seals their secrets.
/// Every write is durable when its future resolves `Ok`.
#[async_trait::async_trait]
pub trait ConnectionStore: Send + Sync {
    async fn get(&self, id: &str) -> Result<Option<Arc<Connection>>, StoreError>;

    /// The connections matching `filter`, by id.
    async fn list(&self, filter: &ListFilter) -> Result<Vec<Arc<Connection>>, StoreError>;

    /// Changes the connection with `new`'s natural key (provider, kind,
    /// external id, team) with `edit`, or inserts `new` with `edit` applied:
    /// concurrent upserts of one account converge on one record.
    async fn upsert(&self, new: Connection, edit: Edit) -> Result<Arc<Connection>, StoreError>;

    /// Applies `edit` to the stored connection `id` if `guard` holds.
    async fn update(
        &self,
        id: &str,
        guard: WriteGuard,
        edit: Edit,
    ) -> Result<Arc<Connection>, StoreError>;

    /// Applies `writes` in order as one atomic write: all of them, or none
    /// when one fails. The records as stored come back in the same order.
    async fn write_all(&self, writes: Vec<Write>) -> Result<Vec<Arc<Connection>>, StoreError>;

    async fn delete(&self, id: &str) -> Result<(), StoreError>;

    /// A lease on `id` for `holder`, refused with [`StoreError::Leased`]
    /// while another holder's lease is live. The same holder gets a new one.
    async fn lease(&self, id: &str, holder: &str, ttl: Duration) -> Result<Lease, StoreError>;

    /// Gives a lease back early; nothing happens if it is no longer current.
    async fn release(&self, lease: &Lease) -> Result<(), StoreError>;

    /// Leases to `holder` each connection of `ids` that has no live lease
    /// (this holder's included: an on-demand refresh of it is running), with
    /// the connection as stored then: what a sweep takes before it refreshes
    /// a batch. Connections leased already, or gone, are left out.
    async fn claim(
        &self,
        ids: &[String],
        holder: &str,
        ttl: Duration,
    ) -> Result<Vec<(Lease, Arc<Connection>)>, StoreError>;

    /// Seals and opens secrets: the one place they are encrypted.
    /// [`StoreError::ReadOnly`] on a store opened without the key.
    fn secrets(&self) -> Result<&SecretBox, StoreError>;

    /// Once every secret is sealed with the current key (`keys rotate`):
    /// moves whatever else the store signs or records under a key to the
    /// current one, so that the previous keys can be retired. The file store
    /// has nothing left: it signs its file with the current key from open.
    async fn resign(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// `Ok` while the store takes writes now.
    async fn ready(&self) -> Result<StoreSummary, StoreError>;

    fn stats(&self) -> StoreStats;

    /// Finishes every pending write and releases the store.
    async fn close(&self);
}

impl dyn ConnectionStore {
    /// [`ConnectionStore::update`] of whatever version is stored.
    pub async fn edit(
        &self,
        id: &str,
        edit: impl FnOnce(&mut Connection) + Send + 'static,
    ) -> Result<Arc<Connection>, StoreError> {
        self.update(id, WriteGuard::Latest, Box::new(edit)).await
    }
}
