//! The PostgreSQL store: the same [`ConnectionStore`] as the JSON file, kept
//! in a database that several instances share. Each connection is one row
//! holding its JSON record (secrets still JWE strings); leases live in the
//! database too, so a fencing token guards a write whichever instance took
//! it. The records kept beside connections (OAuth nonces, refresh runs, the
//! audit trail, the webhook outbox) have a table each, on the same pool. The schema comes from
//! the migrations embedded here, run at connect.
//!
//! [`ConnectionStore`]: super::storage::ConnectionStore

mod audit;
mod connection_store;
mod copy;
mod deletions;
mod exports;
mod nonces;
mod outbox;
mod runs;

pub use audit::PgAudit;
pub use copy::{CopyReport, records_checksum};
pub use deletions::PgDeletions;
pub use exports::PgExportJobs;
pub use nonces::PgNonces;
pub use outbox::PgOutbox;
pub use runs::PgRuns;
mod identity;
mod leases;
mod verify;
mod writes;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::Cipher;
use super::error::StoreError;
use super::secrets::SecretBox;
use super::storage::StoreStats;
use crate::clock::SharedClock;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/store/postgres/migrations");

/// Brings the schema of `pool`'s database (its `search_path`) up to date.
/// Safe to run from several instances at once: sqlx serializes migrations
/// with an advisory lock.
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    MIGRATOR.run(pool).await.map_err(StoreError::Migration)
}

/// Records the key id in a database that has none yet, and refuses `cipher`
/// if the database's secrets are sealed with a key it does not hold. The id
/// moves to the current key when a rotation finishes.
async fn check_key(pool: &PgPool, cipher: &Cipher) -> Result<(), StoreError> {
    let stored: String = sqlx::query_scalar(
        "WITH first AS ( \
             INSERT INTO store_meta (name, value) VALUES ('key_id', $1) \
             ON CONFLICT (name) DO NOTHING RETURNING value \
         ) \
         SELECT value FROM first UNION ALL SELECT value FROM store_meta WHERE name = 'key_id'",
    )
    .bind(cipher.key_id())
    .fetch_one(pool)
    .await
    .map_err(StoreError::database("check the key id"))?;
    if !cipher.has_key(&stored) {
        return Err(StoreError::DatabaseKey {
            stored,
            configured: cipher.key_id().to_string(),
        });
    }
    Ok(())
}

/// A cheap-to-clone handle on a PostgreSQL store.
#[derive(Clone)]
pub struct PgConnectionStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    secrets: SecretBox,
    /// Signs and checks each row's identity.
    rows: identity::RowMac,
    /// Leases expire, and records are stamped, by this clock.
    clock: SharedClock,
    stats: Stats,
}

#[derive(Default)]
struct Stats {
    transactions: AtomicU64,
    writes: AtomicU64,
    bytes: AtomicU64,
}

impl PgConnectionStore {
    /// Connects to the database at `url` and migrates it.
    pub async fn connect(
        url: &str,
        pool: PgPoolOptions,
        cipher: Cipher,
        clock: SharedClock,
    ) -> Result<Self, StoreError> {
        let options =
            PgConnectOptions::from_str(url).map_err(StoreError::database("parse the URL"))?;
        Self::connect_with(options, pool, cipher, clock).await
    }

    /// Like [`PgConnectionStore::connect`], with the connect options built
    /// (a `search_path`, TLS settings).
    pub async fn connect_with(
        options: PgConnectOptions,
        pool: PgPoolOptions,
        cipher: Cipher,
        clock: SharedClock,
    ) -> Result<Self, StoreError> {
        let pool = pool
            .connect_with(options)
            .await
            .map_err(StoreError::database("connect"))?;
        migrate(&pool).await?;
        check_key(&pool, &cipher).await?;
        let rows = identity::RowMac::new(cipher.clone());
        identity::sign_old_rows_once(&pool, &rows).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                rows,
                secrets: SecretBox::new(cipher),
                clock,
                stats: Stats::default(),
            }),
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// A transaction on the pool; `what` names it in a failure.
    async fn begin(
        &self,
        what: &'static str,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
        self.inner
            .pool
            .begin()
            .await
            .map_err(StoreError::database(what))
    }

    /// Counts one committed write transaction of `bytes` of records.
    fn committed(&self, bytes: u64) {
        let s = &self.inner.stats;
        s.transactions.fetch_add(1, Ordering::Relaxed);
        s.writes.fetch_add(1, Ordering::Relaxed);
        s.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// `file_writes` and `updates_committed` both count committed write
    /// calls (each is one transaction, a `write_all` included, as the file
    /// store counts a batch once); `bytes_written` counts the records' JSON.
    fn store_stats(&self) -> StoreStats {
        let s = &self.inner.stats;
        StoreStats {
            file_writes: s.transactions.load(Ordering::Relaxed),
            bytes_written: s.bytes.load(Ordering::Relaxed),
            updates_committed: s.writes.load(Ordering::Relaxed),
            backups_taken: 0,
            compactions: 0,
        }
    }
}
