//! The JSON file store: the connections in one checksummed file whose
//! secrets are JWE strings, read from an in-memory snapshot and written
//! through the group-commit writer, locked against a second writer. The
//! first implementation of [`ConnectionStore`].

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::integrity::Checker;
use super::journal::{self, Journal};
use super::model::{DOCUMENT_FORMAT, Document};
use super::presence::{self, Presence};
use super::secrets::SecretBox;
use super::storage::{
    ConnectionStore, Edit, Lease, ListFilter, StoreStats, StoreSummary, Write, WriteGuard,
};
use super::writer::{self, Mutation, Op, Shared};
use super::{Cipher, STORE_FILE_NAME, StoreError, StoreOptions, file, lock, probe};
use crate::clock::{SharedClock, SystemClock};
use crate::domain::Connection;

/// A cheap-to-clone handle on the open store. Reads come from an in-memory
/// snapshot; writes go through the group-commit writer and return once on
/// disk. Besides the [`ConnectionStore`] methods it has synchronous reads
/// and closure-taking writes of its own, for tests, benchmarks and offline
/// tools that work on this backend.
#[derive(Clone)]
pub struct JsonFileStore {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    path: PathBuf,
    /// `None` for a store opened read-only.
    writer: Option<Writer>,
    secrets: Option<SecretBox>,
}

struct Writer {
    tx: mpsc::UnboundedSender<Op>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    probe: probe::WriteProbe,
}

impl JsonFileStore {
    /// Opens the store in `options.data_dir`, or creates it where no store
    /// ever existed. Refuses a locked, corrupt, foreign-key or missing store
    /// (one that left backups behind) without touching it.
    pub fn open(options: &StoreOptions, cipher: Cipher) -> Result<Self, StoreError> {
        Self::open_with_clock(options, cipher, Arc::new(SystemClock))
    }

    /// Like [`JsonFileStore::open`], with the clock that leases expire by.
    pub fn open_with_clock(
        options: &StoreOptions,
        cipher: Cipher,
        clock: SharedClock,
    ) -> Result<Self, StoreError> {
        let dir = &options.data_dir;
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        let lock = lock::StoreLock::acquire(dir)?;
        let path = options.store_path();
        let (doc, good_len) = match presence::check(dir)? {
            Presence::Present => {
                remove_stale_temp_files(dir);
                let loaded = journal::load(&path, Checker::Keyring(&cipher))?;
                super::backup::check_key(&path, &loaded.doc, &cipher)?;
                if let Some(torn) = &loaded.torn {
                    // A crash mid-append: that commit was never acknowledged.
                    tracing::warn!(%torn, "dropped the torn last line of the journal");
                }
                (loaded.doc, loaded.good_len)
            }
            Presence::Fresh => {
                remove_stale_temp_files(dir);
                let doc = Document::empty(cipher.key_id());
                file::write_atomic_via(&path, &file::encode(&doc, &cipher)?, "new")?;
                (doc, 0)
            }
        };
        let mut journal = Journal::open(journal::path_beside(&path), good_len)?;
        let doc = resign(&path, doc, &cipher, &mut journal)?;
        let shared = Shared::new(doc, clock);
        let (tx, rx) = mpsc::unbounded_channel();
        let thread = writer::spawn(
            writer::WriterConfig {
                path: path.clone(),
                data_dir: dir.clone(),
                backup_count: options.backup_count,
                backup_interval: options.backup_interval,
                commit_window: options.commit_window,
                journal_max_bytes: options.journal_max_bytes,
                cipher: cipher.clone(),
            },
            shared.clone(),
            lock,
            journal,
            rx,
        );
        Ok(Self {
            inner: Arc::new(Inner {
                shared,
                path,
                writer: Some(Writer {
                    tx,
                    thread: Mutex::new(Some(thread)),
                    probe: probe::WriteProbe::new(dir),
                }),
                secrets: Some(SecretBox::new(cipher)),
            }),
        })
    }

    /// The store in `data_dir` as it is on disk now, for looking only: it
    /// takes neither the lock nor the key (so it works while the service
    /// runs), refuses every write with [`StoreError::ReadOnly`] and opens no
    /// secret.
    pub fn open_read_only(data_dir: &Path) -> Result<Self, StoreError> {
        let path = data_dir.join(STORE_FILE_NAME);
        // Without the key, the HMACs cannot be checked: `store verify` does.
        let doc = journal::load(&path, Checker::Unkeyed)?.doc;
        Ok(Self {
            inner: Arc::new(Inner {
                shared: Shared::new(doc, Arc::new(SystemClock)),
                path,
                writer: None,
                secrets: None,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
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
        self.submit(Mutation::Put(Box::new(conn))).await
    }

    /// Applies `f` to the latest stored version of a connection.
    pub async fn update(
        &self,
        id: &str,
        f: impl FnOnce(&mut Connection) + Send + 'static,
    ) -> Result<Arc<Connection>, StoreError> {
        self.update_guarded(id, WriteGuard::Latest, Box::new(f))
            .await
    }

    /// Like [`JsonFileStore::update`], but fails with `VersionConflict`
    /// unless the stored version is `expected_version`.
    pub async fn update_checked(
        &self,
        id: &str,
        expected_version: Option<u64>,
        f: impl FnOnce(&mut Connection) + Send + 'static,
    ) -> Result<Arc<Connection>, StoreError> {
        let guard = expected_version.map_or(WriteGuard::Latest, WriteGuard::Version);
        self.update_guarded(id, guard, Box::new(f)).await
    }

    /// Ends the lease of an acknowledged `FencedLast` write.
    fn end_last_lease(&self, id: &str, guard: WriteGuard) {
        if let WriteGuard::FencedLast(token) = guard {
            self.inner.shared.leases.end(id, token);
        }
    }

    async fn update_guarded(
        &self,
        id: &str,
        guard: WriteGuard,
        apply: Edit,
    ) -> Result<Arc<Connection>, StoreError> {
        self.submit(Mutation::Update {
            id: id.to_string(),
            guard,
            apply,
        })
        .await
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
    }

    pub async fn delete(&self, id: &str) -> Result<(), StoreError> {
        self.submit_any(Mutation::Delete(id.to_string()))
            .await
            .map(|_| ())
    }

    /// Hands a mutation of one record other than a delete to the writer;
    /// resolves with the record as stored once it is on disk.
    async fn submit(&self, mutation: Mutation) -> Result<Arc<Connection>, StoreError> {
        self.submit_any(mutation).await.map(|c| {
            c.into_iter()
                .next()
                .expect("a write of one record returns it")
        })
    }

    async fn submit_any(&self, mutation: Mutation) -> Result<Vec<Arc<Connection>>, StoreError> {
        let writer = self.writer()?;
        let (ack, done) = oneshot::channel();
        writer
            .tx
            .send(Op::Write(mutation, ack))
            .map_err(|_| StoreError::Closed)?;
        done.await.map_err(|_| StoreError::Closed)?
    }

    fn writer(&self) -> Result<&Writer, StoreError> {
        self.inner.writer.as_ref().ok_or(StoreError::ReadOnly)
    }

    pub fn stats(&self) -> StoreStats {
        let s = &self.inner.shared.stats;
        StoreStats {
            file_writes: s.file_writes.load(Ordering::Relaxed),
            bytes_written: s.bytes_written.load(Ordering::Relaxed),
            updates_committed: s.updates_committed.load(Ordering::Relaxed),
            backups_taken: s.backups_taken.load(Ordering::Relaxed),
            compactions: s.compactions.load(Ordering::Relaxed),
        }
    }

    /// `Ok` while the writer runs and its last write succeeded.
    pub fn health(&self) -> Result<(), String> {
        self.running().map_err(|e| e.to_string())?;
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

    fn running(&self) -> Result<&Writer, StoreError> {
        let writer = self.writer()?;
        if writer.tx.is_closed() {
            return Err(StoreError::Unavailable(
                "the store writer has stopped".into(),
            ));
        }
        Ok(writer)
    }

    /// Writes everything queued so far, stops the writer and releases the lock.
    pub async fn close(&self) {
        let Some(writer) = &self.inner.writer else {
            return;
        };
        let (done, finished) = oneshot::channel();
        if writer.tx.send(Op::Shutdown(done)).is_ok() {
            let _ = finished.await;
        }
        let thread = writer.thread.lock().expect("writer lock").take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

#[async_trait::async_trait]
impl ConnectionStore for JsonFileStore {
    async fn get(&self, id: &str) -> Result<Option<Arc<Connection>>, StoreError> {
        Ok(JsonFileStore::get(self, id))
    }

    async fn list(&self, filter: &ListFilter) -> Result<Vec<Arc<Connection>>, StoreError> {
        let doc = self.snapshot();
        Ok(doc
            .connections
            .values()
            .filter(|c| filter.matches(c))
            .cloned()
            .collect())
    }

    async fn upsert(&self, new: Connection, edit: Edit) -> Result<Arc<Connection>, StoreError> {
        self.submit(Mutation::Upsert {
            new: Box::new(new),
            apply: edit,
        })
        .await
    }

    async fn update(
        &self,
        id: &str,
        guard: WriteGuard,
        edit: Edit,
    ) -> Result<Arc<Connection>, StoreError> {
        let stored = self.update_guarded(id, guard, edit).await?;
        self.end_last_lease(id, guard);
        Ok(stored)
    }

    async fn write_all(&self, writes: Vec<Write>) -> Result<Vec<Arc<Connection>>, StoreError> {
        let mut ending = Vec::new();
        let mutations = writes
            .into_iter()
            .map(|w| match w {
                Write::Upsert { new, edit } => Mutation::Upsert { new, apply: edit },
                Write::Update { id, guard, edit } => {
                    ending.push((id.clone(), guard));
                    Mutation::Update {
                        id,
                        guard,
                        apply: edit,
                    }
                }
            })
            .collect();
        let stored = self.submit_any(Mutation::All(mutations)).await?;
        for (id, guard) in ending {
            self.end_last_lease(&id, guard);
        }
        Ok(stored)
    }

    async fn delete(&self, id: &str) -> Result<(), StoreError> {
        JsonFileStore::delete(self, id).await
    }

    async fn lease(&self, id: &str, holder: &str, ttl: Duration) -> Result<Lease, StoreError> {
        self.writer()?;
        if JsonFileStore::get(self, id).is_none() {
            return Err(StoreError::NotFound(id.to_string()));
        }
        self.inner.shared.leases.grant(id, holder, ttl)
    }

    async fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        self.inner.shared.leases.release(lease);
        Ok(())
    }

    async fn claim(
        &self,
        ids: &[String],
        holder: &str,
        ttl: Duration,
    ) -> Result<Vec<(Lease, Arc<Connection>)>, StoreError> {
        self.writer()?;
        let leases = &self.inner.shared.leases;
        Ok(ids
            .iter()
            .filter_map(|id| {
                let conn = JsonFileStore::get(self, id)?;
                let lease = leases.claim(id, holder, ttl).ok()?;
                Some((lease, conn))
            })
            .collect())
    }

    fn secrets(&self) -> Result<&SecretBox, StoreError> {
        self.inner.secrets.as_ref().ok_or(StoreError::ReadOnly)
    }

    /// Ready while the writer runs and the data folder takes a write now
    /// (probed at most once a second). Unlike [`JsonFileStore::health`], a
    /// failed write stops counting once the disk takes writes again.
    async fn ready(&self) -> Result<StoreSummary, StoreError> {
        let writer = self.running()?;
        writer
            .probe
            .check()
            .await
            .map_err(StoreError::Unavailable)?;
        let doc = self.snapshot();
        Ok(StoreSummary {
            connections: doc.connections.len(),
            generation: doc.generation,
        })
    }

    fn stats(&self) -> StoreStats {
        JsonFileStore::stats(self)
    }

    async fn close(&self) {
        JsonFileStore::close(self).await
    }
}

/// Writes `doc` as a new snapshot signed with the current key when the one
/// on disk is of the old format (format 1: a plain SHA-256) or signed with a
/// previous key, and empties the journal it now holds; so every line
/// appended from here on follows a snapshot of this format and key.
fn resign(
    path: &Path,
    mut doc: Document,
    cipher: &Cipher,
    journal: &mut Journal,
) -> Result<Document, StoreError> {
    if doc.format == DOCUMENT_FORMAT && doc.key_id == cipher.key_id() {
        return Ok(doc);
    }
    tracing::info!(
        from_format = doc.format,
        from_key = %doc.key_id,
        key = cipher.key_id(),
        "rewriting the store file in format {DOCUMENT_FORMAT} under the current key"
    );
    doc.format = DOCUMENT_FORMAT;
    doc.key_id = cipher.key_id().to_string();
    file::write_snapshot(path, &doc, cipher)?;
    journal.drop_before(journal.bytes())?;
    Ok(doc)
}

/// Temp files left by a write that a crash interrupted; the store file itself
/// is intact (the rename never happened). Called only once the store file is
/// known to be there (or never was): beside a missing store they are traces.
fn remove_stale_temp_files(dir: &Path) {
    let prefixes = [
        presence::update_temp_prefix(),
        presence::create_temp_prefix(),
        presence::journal_temp_prefix(),
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
