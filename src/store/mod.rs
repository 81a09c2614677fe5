//! The encrypted token store: one JSON file of connections whose secrets are
//! JWE strings, written atomically with group commit, locked against a second
//! writer, checksummed and backed up.

pub mod backup;
pub mod crypto;
pub mod error;
pub mod file;
pub mod lock;
pub mod model;
pub mod presence;
pub mod probe;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

pub use crypto::Cipher;
pub use error::StoreError;
pub use model::Document;
pub use presence::Presence;

use crate::config::StoreSettings;
use crate::domain::{Connection, EncryptedSecret};
use crate::secret::Secret;
use writer::{Mutation, Op, Shared};

pub const STORE_FILE_NAME: &str = "tokens.json";

/// Where the store lives and how it writes.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub data_dir: PathBuf,
    pub backup_count: usize,
    pub backup_interval: Duration,
    pub commit_window: Duration,
}

impl From<&StoreSettings> for StoreOptions {
    fn from(s: &StoreSettings) -> Self {
        Self {
            data_dir: s.data_dir.clone(),
            backup_count: s.backup_count,
            backup_interval: Duration::from_secs(s.backup_interval_secs),
            commit_window: Duration::from_millis(s.commit_window_ms),
        }
    }
}

impl StoreOptions {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            backup_count: 5,
            backup_interval: Duration::from_secs(3600),
            commit_window: Duration::from_millis(2),
        }
    }

    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join(STORE_FILE_NAME)
    }
}

/// Write counters of an open store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreStats {
    pub file_writes: u64,
    pub bytes_written: u64,
    pub updates_committed: u64,
    pub backups_taken: u64,
}

/// A cheap-to-clone handle on the open store. Reads come from an in-memory
/// snapshot; writes go through the group-commit writer and return once on disk.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<Op>,
    cipher: Cipher,
    path: PathBuf,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    probe: probe::WriteProbe,
}

impl Store {
    /// Opens the store in `options.data_dir`, or creates it where no store
    /// ever existed. Refuses a locked, corrupt, foreign-key or missing store
    /// (one that left backups behind) without touching it.
    pub fn open(options: &StoreOptions, cipher: Cipher) -> Result<Self, StoreError> {
        let dir = &options.data_dir;
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        let lock = lock::StoreLock::acquire(dir)?;
        let path = options.store_path();
        let doc = match presence::check(dir)? {
            Presence::Present => {
                remove_stale_temp_files(dir);
                let doc = file::read(&path)?;
                backup::check_key(&path, &doc, &cipher)?;
                doc
            }
            Presence::Fresh => {
                remove_stale_temp_files(dir);
                let doc = Document::empty(cipher.key_id());
                file::write_atomic_via(&path, &file::encode(&doc)?, "new")?;
                doc
            }
        };
        let shared = Arc::new(Shared {
            snapshot: RwLock::new(Arc::new(doc)),
            stats: Default::default(),
            write_error: Mutex::new(None),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = writer::spawn(
            writer::WriterConfig {
                path: path.clone(),
                data_dir: dir.clone(),
                backup_count: options.backup_count,
                backup_interval: options.backup_interval,
                commit_window: options.commit_window,
            },
            shared.clone(),
            lock,
            rx,
        );
        Ok(Self {
            inner: Arc::new(Inner {
                shared,
                tx,
                cipher,
                path,
                writer: Mutex::new(Some(handle)),
                probe: probe::WriteProbe::new(dir),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub fn cipher(&self) -> &Cipher {
        &self.inner.cipher
    }

    pub fn encrypt(&self, secret: &Secret) -> Result<EncryptedSecret, StoreError> {
        self.inner.cipher.encrypt(secret)
    }

    pub fn decrypt(&self, secret: &EncryptedSecret) -> Result<Secret, StoreError> {
        self.inner.cipher.decrypt(secret)
    }

    /// The current committed document.
    pub fn snapshot(&self) -> Arc<Document> {
        self.inner
            .shared
            .snapshot
            .read()
            .expect("snapshot lock")
            .clone()
    }

    pub fn get(&self, id: &str) -> Option<Arc<Connection>> {
        self.snapshot().connections.get(id).cloned()
    }

    pub fn list(&self) -> Vec<Arc<Connection>> {
        self.snapshot().connections.values().cloned().collect()
    }

    /// Inserts or replaces a connection; returns it as stored.
    pub async fn put(&self, conn: Connection) -> Result<Arc<Connection>, StoreError> {
        self.submit(Mutation::Put(Box::new(conn)))
            .await
            .map(|c| c.expect("put returns the record"))
    }

    /// Applies `f` to the latest stored version of a connection.
    pub async fn update(
        &self,
        id: &str,
        f: impl FnOnce(&mut Connection) + Send + 'static,
    ) -> Result<Arc<Connection>, StoreError> {
        self.update_checked(id, None, f).await
    }

    /// Like [`Store::update`], but fails with `VersionConflict` unless the
    /// stored version is `expected_version`.
    pub async fn update_checked(
        &self,
        id: &str,
        expected_version: Option<u64>,
        f: impl FnOnce(&mut Connection) + Send + 'static,
    ) -> Result<Arc<Connection>, StoreError> {
        self.submit(Mutation::Update {
            id: id.to_string(),
            expected_version,
            apply: Box::new(f),
        })
        .await
        .map(|c| c.expect("update returns the record"))
    }

    /// Changes the connection with `new`'s natural key with `apply`, or
    /// inserts `new` with `apply` applied; atomic against concurrent upserts.
    pub async fn upsert(
        &self,
        new: Connection,
        apply: impl FnOnce(&mut Connection) + Send + 'static,
    ) -> Result<Arc<Connection>, StoreError> {
        self.submit(Mutation::Upsert {
            new: Box::new(new),
            apply: Box::new(apply),
        })
        .await
        .map(|c| c.expect("upsert returns the record"))
    }

    pub async fn delete(&self, id: &str) -> Result<(), StoreError> {
        self.submit(Mutation::Delete(id.to_string()))
            .await
            .map(|_| ())
    }

    async fn submit(&self, mutation: Mutation) -> Result<Option<Arc<Connection>>, StoreError> {
        let (ack, done) = oneshot::channel();
        self.inner
            .tx
            .send(Op::Write(mutation, ack))
            .map_err(|_| StoreError::Closed)?;
        done.await.map_err(|_| StoreError::Closed)?
    }

    pub fn stats(&self) -> StoreStats {
        let s = &self.inner.shared.stats;
        StoreStats {
            file_writes: s.file_writes.load(Ordering::Relaxed),
            bytes_written: s.bytes_written.load(Ordering::Relaxed),
            updates_committed: s.updates_committed.load(Ordering::Relaxed),
            backups_taken: s.backups_taken.load(Ordering::Relaxed),
        }
    }

    /// `Ok` while the writer runs and its last write succeeded.
    pub fn health(&self) -> Result<(), String> {
        if self.inner.tx.is_closed() {
            return Err("the store writer has stopped".into());
        }
        match &*self
            .inner
            .shared
            .write_error
            .lock()
            .expect("write_error lock")
        {
            Some(e) => Err(format!("the last store write failed: {e}")),
            None => Ok(()),
        }
    }

    /// `Ok` while the writer runs and the data folder takes a write now
    /// (probed at most once a second). Unlike [`Store::health`], a failed
    /// write stops counting once the disk takes writes again.
    pub async fn ready(&self) -> Result<(), String> {
        if self.inner.tx.is_closed() {
            return Err("the store writer has stopped".into());
        }
        self.inner.probe.check().await
    }

    /// Writes everything queued so far, stops the writer and releases the lock.
    pub async fn close(&self) {
        let (done, finished) = oneshot::channel();
        if self.inner.tx.send(Op::Shutdown(done)).is_ok() {
            let _ = finished.await;
        }
        let handle = self.inner.writer.lock().expect("writer lock").take();
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }
}

/// Temp files left by a write that a crash interrupted; the store file itself
/// is intact (the rename never happened). Called only once the store file is
/// known to be there (or never was): beside a missing store they are traces.
fn remove_stale_temp_files(dir: &Path) {
    let prefixes = [
        presence::update_temp_prefix(),
        presence::create_temp_prefix(),
    ];
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if prefixes.iter().any(|p| name.starts_with(p.as_str())) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Verifies the store in `data_dir` without opening it for writing.
pub fn verify(data_dir: &Path, cipher: &Cipher) -> Result<backup::VerifyReport, StoreError> {
    let path = data_dir.join(STORE_FILE_NAME);
    if presence::check(data_dir)? == Presence::Fresh {
        return Err(StoreError::Corrupt {
            path,
            reason: "the file does not exist".into(),
        });
    }
    backup::verify_file(&path, cipher).map(|(_, report)| report)
}

/// Restores the store in `data_dir` from a backup (newest good one unless
/// `from` is given). Takes the store lock, so the service must be stopped.
pub fn restore(
    data_dir: &Path,
    from: Option<&Path>,
    cipher: &Cipher,
) -> Result<(PathBuf, backup::VerifyReport), StoreError> {
    let _lock = lock::StoreLock::acquire(data_dir)?;
    backup::restore(&data_dir.join(STORE_FILE_NAME), data_dir, from, cipher)
}
