//! The group-commit writer: one thread owns the store files, takes every
//! pending update at once, appends them to the journal as one fsynced line,
//! and only then acknowledges each caller. A snapshot is written on another
//! thread when the journal grows long, when a backup is due, and at close.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, oneshot};

use super::backup;
use super::crypto::Cipher;
use super::error::StoreError;
use super::file;
use super::journal::{self, Entry, Journal};
use super::leases::Leases;
use super::lock::StoreLock;
use super::model::Document;
use super::storage::{Edit, WriteGuard};
use crate::clock::SharedClock;
use crate::domain::Connection;

/// A change to the document, applied by the writer in arrival order.
pub enum Mutation {
    /// Insert or replace a whole connection; the version continues from the
    /// stored one.
    Put(Box<Connection>),
    /// Change a stored connection in place, if `guard` holds.
    Update {
        id: String,
        guard: WriteGuard,
        apply: Edit,
    },
    /// Change the connection with `new`'s natural key (provider, kind,
    /// external id, team) with `apply`, or insert `new` with `apply` applied
    /// when there is none: concurrent connects of one account converge on
    /// one record because the writer applies mutations one at a time.
    Upsert {
        new: Box<Connection>,
        apply: Edit,
    },
    Delete(String),
    /// Every mutation in order, or none of them when one fails.
    All(Vec<Mutation>),
}

/// The records as stored, one per mutation applied (none for a delete).
pub type Ack = oneshot::Sender<Result<Vec<Arc<Connection>>, StoreError>>;

pub enum Op {
    Write(Mutation, Ack),
    /// Finish everything queued before, then stop.
    Shutdown(oneshot::Sender<()>),
}

/// Counters for tests, benchmarks and metrics.
#[derive(Debug, Default)]
pub struct Stats {
    pub file_writes: AtomicU64,
    pub bytes_written: AtomicU64,
    pub updates_committed: AtomicU64,
    pub backups_taken: AtomicU64,
    pub compactions: AtomicU64,
}

/// State shared between the store handles and the writer.
pub struct Shared {
    pub snapshot: RwLock<Arc<Document>>,
    pub stats: Stats,
    /// The last write failure, cleared by the next good write.
    pub write_error: Mutex<Option<String>>,
    /// Checked by fenced writes as they are applied, so that no lease can be
    /// granted between the check and the write.
    pub leases: Leases,
}

impl Shared {
    pub fn new(doc: Document, clock: SharedClock) -> Arc<Self> {
        Arc::new(Self {
            snapshot: RwLock::new(Arc::new(doc)),
            stats: Stats::default(),
            write_error: Mutex::new(None),
            leases: Leases::new(clock),
        })
    }
}

pub struct WriterConfig {
    pub path: PathBuf,
    pub data_dir: PathBuf,
    pub backup_count: usize,
    pub backup_interval: Duration,
    pub commit_window: Duration,
    /// Compact once the journal is this long, even when the snapshot is
    /// longer (it is compacted anyway at twice the snapshot's length).
    pub journal_max_bytes: u64,
    /// Signs the snapshot and the journal lines (HMAC under its current key).
    pub cipher: Cipher,
}

/// Upper bound on updates per group commit, so one commit never waits forever.
const MAX_BATCH: usize = 100_000;

/// Without a configured limit, a journal shorter than this is not compacted
/// (a tiny store would otherwise rewrite its snapshot every few commits).
const MIN_COMPACT_BYTES: u64 = 1 << 20;

pub fn spawn(
    config: WriterConfig,
    shared: Arc<Shared>,
    lock: StoreLock,
    journal: Journal,
    rx: mpsc::UnboundedReceiver<Op>,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || run(config, shared, lock, journal, rx))
        .expect("spawning the store writer thread")
}

fn run(
    config: WriterConfig,
    shared: Arc<Shared>,
    lock: StoreLock,
    journal: Journal,
    mut rx: mpsc::UnboundedReceiver<Op>,
) {
    // "At most one backup per interval" holds across processes (five quick
    // CLI runs must not rotate the hourly history away), so the clock starts
    // from the backups on disk, not from this process's start.
    let last_backup = match backup::newest_time(&config.data_dir) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the backups; the next write takes one");
            None
        }
    };
    let snapshot_len = std::fs::metadata(&config.path).map_or(0, |m| m.len());
    let mut writer = Writer {
        config,
        shared,
        journal,
        snapshot_len,
        last_backup,
        compaction: None,
    };
    while let Some(first) = rx.blocking_recv() {
        let mut batch = Vec::new();
        let mut shutdown = None;
        match first {
            Op::Write(m, ack) => batch.push((m, ack)),
            Op::Shutdown(done) => shutdown = Some(done),
        }
        if shutdown.is_none() && !writer.config.commit_window.is_zero() {
            std::thread::sleep(writer.config.commit_window);
        }
        while shutdown.is_none() && batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Op::Write(m, ack)) => batch.push((m, ack)),
                Ok(Op::Shutdown(done)) => shutdown = Some(done),
                Err(_) => break,
            }
        }
        writer.settle(false);
        if !batch.is_empty() {
            writer.commit(batch);
        }
        if let Some(done) = shutdown {
            writer.close();
            let _ = done.send(());
            break;
        }
    }
    // Every handle dropped without a close: no snapshot may still be in
    // flight once the lock is released.
    writer.settle(true);
    drop(lock);
}

type Outcome = Result<Vec<Arc<Connection>>, StoreError>;

/// A snapshot being written on its own thread while commits go on.
struct Compaction {
    /// Where the journal stood at the snapshot's generation: the lines
    /// before it are in the snapshot.
    upto: u64,
    thread: std::thread::JoinHandle<Result<u64, StoreError>>,
    backup: bool,
}

struct Writer {
    config: WriterConfig,
    shared: Arc<Shared>,
    journal: Journal,
    snapshot_len: u64,
    last_backup: Option<chrono::DateTime<Utc>>,
    compaction: Option<Compaction>,
}

impl Writer {
    fn commit(&mut self, batch: Vec<(Mutation, Ack)>) {
        let current = self.shared.snapshot.read().expect("snapshot lock").clone();
        let now = Utc::now();
        if self.backup_due(now) {
            // The backup holds the store as it was before this commit.
            self.settle(true);
            self.compact(current.clone(), true);
            self.last_backup = Some(now);
        }
        // A persistent map: the clone shares every record with `current`.
        let mut doc = (*current).clone();
        let mut results: Vec<(Ack, Outcome)> = Vec::with_capacity(batch.len());
        let mut touched = BTreeSet::new();
        let mut changed = 0u64;
        for (mutation, ack) in batch {
            let ids = touched_ids(&doc, &mutation);
            let outcome = apply(&mut doc, &self.shared.leases, mutation, now);
            if outcome.is_ok() {
                changed += 1;
                touched.extend(ids);
            }
            results.push((ack, outcome));
        }
        if changed == 0 {
            for (ack, outcome) in results {
                let _ = ack.send(outcome);
            }
            return;
        }
        doc.generation += 1;
        doc.written_at = now;
        let written = self.append(&doc, touched);
        match written {
            Ok(bytes) => {
                *self.shared.snapshot.write().expect("snapshot lock") = Arc::new(doc);
                *self.shared.write_error.lock().expect("write_error lock") = None;
                let stats = &self.shared.stats;
                stats.file_writes.fetch_add(1, Ordering::Relaxed);
                stats.bytes_written.fetch_add(bytes, Ordering::Relaxed);
                stats
                    .updates_committed
                    .fetch_add(changed, Ordering::Relaxed);
                for (ack, outcome) in results {
                    let _ = ack.send(outcome);
                }
                self.compact_if_long();
            }
            Err(e) => {
                let message = e.to_string();
                tracing::error!(error = %message, "store write failed; updates not acknowledged");
                *self.shared.write_error.lock().expect("write_error lock") = Some(message.clone());
                for (ack, outcome) in results {
                    let _ = ack.send(outcome.and(Err(StoreError::WriteFailed(message.clone()))));
                }
            }
        }
    }

    /// Appends the line of `doc`'s generation: the records `touched` now
    /// holds, and those it no longer has.
    fn append(&mut self, doc: &Document, touched: BTreeSet<String>) -> Result<u64, StoreError> {
        let mut entry = Entry {
            generation: doc.generation,
            written_at: doc.written_at,
            put: Vec::new(),
            removed: Vec::new(),
        };
        for id in touched {
            match doc.connections.get(&id) {
                Some(c) => entry.put.push(c.clone()),
                None => entry.removed.push(id),
            }
        }
        let line = journal::encode(&entry, &self.config.cipher)?;
        self.journal.append(&line)?;
        Ok(line.len() as u64)
    }

    fn backup_due(&self, now: chrono::DateTime<Utc>) -> bool {
        // Wall-clock time, as in the backups' names. A backup dated in the
        // future (the clock was set back) does not hold backups off.
        self.last_backup.is_none_or(|t| {
            (now - t)
                .to_std()
                .map_or(true, |elapsed| elapsed >= self.config.backup_interval)
        })
    }

    fn compact_if_long(&mut self) {
        let threshold = match self.config.journal_max_bytes {
            0 => (2 * self.snapshot_len).max(MIN_COMPACT_BYTES),
            max => (2 * self.snapshot_len).min(max),
        };
        if self.compaction.is_none() && self.journal.bytes() >= threshold {
            let doc = self.shared.snapshot.read().expect("snapshot lock").clone();
            self.compact(doc, false);
        }
    }

    /// Writes `doc` as the new snapshot on another thread (and, for a
    /// backup, keeps it in `backups/`); the journal lines it holds are
    /// dropped once it is in place.
    fn compact(&mut self, doc: Arc<Document>, backup: bool) {
        let upto = self.journal.bytes();
        let path = self.config.path.clone();
        let data_dir = self.config.data_dir.clone();
        let keep = self.config.backup_count;
        let cipher = self.config.cipher.clone();
        let thread = std::thread::spawn(move || {
            let bytes = file::write_snapshot(&path, &doc, &cipher)?;
            if backup {
                backup::take(&path, &data_dir, keep)?;
            }
            Ok(bytes)
        });
        self.compaction = Some(Compaction {
            upto,
            thread,
            backup,
        });
    }

    /// Takes in a finished compaction (with `wait`, waits for it first).
    fn settle(&mut self, wait: bool) {
        let finished = self
            .compaction
            .as_ref()
            .is_some_and(|c| wait || c.thread.is_finished());
        if !finished {
            return;
        }
        let c = self.compaction.take().expect("checked above");
        match c.thread.join() {
            Ok(Ok(bytes)) => {
                let stats = &self.shared.stats;
                stats.bytes_written.fetch_add(bytes, Ordering::Relaxed);
                stats.compactions.fetch_add(1, Ordering::Relaxed);
                if c.backup {
                    stats.backups_taken.fetch_add(1, Ordering::Relaxed);
                }
                self.snapshot_len = bytes;
                if let Err(e) = self.journal.drop_before(c.upto) {
                    // The journal still holds every line: nothing is lost,
                    // the lines the snapshot has are skipped at load.
                    tracing::warn!(error = %e, "cannot shorten the journal after compaction");
                }
            }
            // The old snapshot and the whole journal are still in place.
            Ok(Err(e)) => {
                tracing::error!(error = %e, "compaction failed; the journal keeps growing")
            }
            Err(_) => tracing::error!("the compaction thread panicked"),
        }
    }

    /// At shutdown: the snapshot alone holds the store.
    fn close(&mut self) {
        self.settle(true);
        if self.journal.bytes() > 0 {
            let doc = self.shared.snapshot.read().expect("snapshot lock").clone();
            self.compact(doc, false);
            self.settle(true);
        }
    }
}

/// The ids `m` may change.
fn touched_ids(doc: &Document, m: &Mutation) -> Vec<String> {
    match m {
        Mutation::All(ms) => ms.iter().flat_map(|m| touched_ids(doc, m)).collect(),
        m => target_id(doc, m).into_iter().collect(),
    }
}

fn apply(
    doc: &mut Document,
    leases: &Leases,
    mutation: Mutation,
    now: chrono::DateTime<Utc>,
) -> Outcome {
    match mutation {
        Mutation::Put(conn) => {
            let mut conn = *conn;
            let previous = doc.connections.get(&conn.id);
            conn.version = previous.map_or(1, |p| p.version + 1);
            if let Some(p) = previous {
                conn.created_at = p.created_at;
            }
            conn.updated_at = now;
            let conn = Arc::new(conn);
            doc.put(conn.clone());
            Ok(vec![conn])
        }
        Mutation::Update { id, guard, apply } => {
            let stored = doc
                .connections
                .get(&id)
                .ok_or_else(|| StoreError::NotFound(id.clone()))?;
            match guard {
                WriteGuard::Latest => {}
                WriteGuard::Version(expected) if expected != stored.version => {
                    return Err(StoreError::VersionConflict {
                        id,
                        expected,
                        current: stored.version,
                    });
                }
                WriteGuard::Version(_) => {}
                // The file store ends a `FencedLast` lease once the write
                // is acknowledged (json_file.rs).
                WriteGuard::Fenced(token) | WriteGuard::FencedLast(token) => {
                    leases.check_fence(&id, token)?
                }
            }
            let mut conn = (**stored).clone();
            apply(&mut conn);
            // The identity and bookkeeping fields belong to the store.
            conn.id = stored.id.clone();
            conn.created_at = stored.created_at;
            conn.version = stored.version + 1;
            conn.updated_at = now;
            let conn = Arc::new(conn);
            doc.put(conn.clone());
            Ok(vec![conn])
        }
        Mutation::Upsert { new, apply } => {
            let existing = doc.id_by_key(&new).cloned();
            match existing {
                Some(id) => self::apply(
                    doc,
                    leases,
                    Mutation::Update {
                        id,
                        guard: WriteGuard::Latest,
                        apply,
                    },
                    now,
                ),
                None => {
                    let mut conn = *new;
                    apply(&mut conn);
                    self::apply(doc, leases, Mutation::Put(Box::new(conn)), now)
                }
            }
        }
        Mutation::Delete(id) => doc
            .remove(&id)
            .map(|_| Vec::new())
            .ok_or(StoreError::NotFound(id)),
        Mutation::All(mutations) => {
            // What each id held before the first change to it, to put back
            // if a later mutation fails.
            let mut before: Vec<(String, Option<Arc<Connection>>)> = Vec::new();
            let mut stored = Vec::with_capacity(mutations.len());
            for m in mutations {
                let target = target_id(doc, &m);
                let previous = target.as_ref().map(|id| doc.connections.get(id).cloned());
                match self::apply(doc, leases, m, now) {
                    Ok(records) => {
                        if let (Some(id), Some(previous)) = (target, previous) {
                            before.push((id, previous));
                        }
                        stored.extend(records);
                    }
                    Err(e) => {
                        for (id, previous) in before.into_iter().rev() {
                            match previous {
                                Some(c) => doc.put(c),
                                None => {
                                    doc.remove(&id);
                                }
                            };
                        }
                        return Err(e);
                    }
                }
            }
            Ok(stored)
        }
    }
}

/// The id a mutation changes, if it names one that exists or will.
fn target_id(doc: &Document, m: &Mutation) -> Option<String> {
    match m {
        Mutation::Put(c) => Some(c.id.clone()),
        Mutation::Update { id, .. } | Mutation::Delete(id) => Some(id.clone()),
        Mutation::Upsert { new, .. } => Some(
            doc.id_by_key(new)
                .cloned()
                .unwrap_or_else(|| new.id.clone()),
        ),
        Mutation::All(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::domain::{ConnectionKind, EncryptedSecret, Provider, StoredSecrets};

    fn conn(external_id: &str) -> Connection {
        let secrets = StoredSecrets {
            access_token: EncryptedSecret("jwe".into()),
            refresh_token: None,
        };
        Connection::new(
            Provider::Facebook,
            ConnectionKind::Page,
            external_id,
            external_id.to_string(),
            secrets,
            Utc::now(),
        )
    }

    /// The group commit applies other callers' writes to the same document,
    /// so a refused batch must leave it exactly as before, not just fail.
    #[test]
    fn a_failing_batch_leaves_the_document_as_it_was() {
        let leases = Leases::new(Arc::new(SystemClock));
        let mut doc = Document::empty("k1");
        let kept = conn("kept");
        apply(
            &mut doc,
            &leases,
            Mutation::Put(Box::new(kept.clone())),
            Utc::now(),
        )
        .unwrap();
        let before = doc.connections.clone();
        let batch = Mutation::All(vec![
            Mutation::Update {
                id: kept.id.clone(),
                guard: WriteGuard::Latest,
                apply: Box::new(|c| c.label = "changed".into()),
            },
            Mutation::Upsert {
                new: Box::new(conn("new")),
                apply: Box::new(|_| {}),
            },
            Mutation::Delete("no-such-id".into()),
        ]);
        let err = apply(&mut doc, &leases, batch, Utc::now()).unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err}");
        assert_eq!(doc.connections.len(), before.len());
        for (id, c) in &before {
            assert!(Arc::ptr_eq(c, &doc.connections[id]), "{id} was changed");
        }
    }
}
