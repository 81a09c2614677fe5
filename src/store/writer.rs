//! The group-commit writer: one thread owns the store file, takes every
//! pending update at once, writes them in one atomic file write, and only then
//! acknowledges each caller.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, oneshot};

use super::backup;
use super::error::StoreError;
use super::file;
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
}

/// Upper bound on updates per file write, so one write never waits forever.
const MAX_BATCH: usize = 100_000;

pub fn spawn(
    config: WriterConfig,
    shared: Arc<Shared>,
    lock: StoreLock,
    rx: mpsc::UnboundedReceiver<Op>,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || run(config, shared, lock, rx))
        .expect("spawning the store writer thread")
}

fn run(
    config: WriterConfig,
    shared: Arc<Shared>,
    lock: StoreLock,
    mut rx: mpsc::UnboundedReceiver<Op>,
) {
    // "At most one backup per interval" holds across processes (five quick
    // CLI runs must not rotate the hourly history away), so the clock starts
    // from the backups on disk, not from this process's start.
    let mut last_backup = match backup::newest_time(&config.data_dir) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the backups; the next write takes one");
            None
        }
    };
    while let Some(first) = rx.blocking_recv() {
        let mut batch = Vec::new();
        let mut shutdown = None;
        match first {
            Op::Write(m, ack) => batch.push((m, ack)),
            Op::Shutdown(done) => shutdown = Some(done),
        }
        if shutdown.is_none() && !config.commit_window.is_zero() {
            std::thread::sleep(config.commit_window);
        }
        while shutdown.is_none() && batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Op::Write(m, ack)) => batch.push((m, ack)),
                Ok(Op::Shutdown(done)) => shutdown = Some(done),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            commit(&config, &shared, &mut last_backup, batch);
        }
        if let Some(done) = shutdown {
            let _ = done.send(());
            break;
        }
    }
    drop(lock);
}

type Outcome = Result<Vec<Arc<Connection>>, StoreError>;

fn commit(
    config: &WriterConfig,
    shared: &Shared,
    last_backup: &mut Option<chrono::DateTime<Utc>>,
    batch: Vec<(Mutation, Ack)>,
) {
    let current = shared.snapshot.read().expect("snapshot lock").clone();
    let mut doc = (*current).clone();
    let now = Utc::now();
    let mut results: Vec<(Ack, Outcome)> = Vec::with_capacity(batch.len());
    let mut changed = 0u64;
    for (mutation, ack) in batch {
        let outcome = apply(&mut doc, &shared.leases, mutation, now);
        if outcome.is_ok() {
            changed += 1;
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
    let written = write(config, shared, last_backup, &doc);
    match written {
        Ok(bytes) => {
            *shared.snapshot.write().expect("snapshot lock") = Arc::new(doc);
            *shared.write_error.lock().expect("write_error lock") = None;
            shared.stats.file_writes.fetch_add(1, Ordering::Relaxed);
            shared
                .stats
                .bytes_written
                .fetch_add(bytes, Ordering::Relaxed);
            shared
                .stats
                .updates_committed
                .fetch_add(changed, Ordering::Relaxed);
            for (ack, outcome) in results {
                let _ = ack.send(outcome);
            }
        }
        Err(e) => {
            let message = e.to_string();
            tracing::error!(error = %message, "store write failed; updates not acknowledged");
            *shared.write_error.lock().expect("write_error lock") = Some(message.clone());
            for (ack, outcome) in results {
                let _ = ack.send(outcome.and(Err(StoreError::WriteFailed(message.clone()))));
            }
        }
    }
}

fn write(
    config: &WriterConfig,
    shared: &Shared,
    last_backup: &mut Option<chrono::DateTime<Utc>>,
    doc: &Document,
) -> Result<u64, StoreError> {
    // Wall-clock time, as in the backups' names. A backup dated in the
    // future (the clock was set back) does not hold backups off.
    let now = Utc::now();
    let due = last_backup.is_none_or(|t| {
        (now - t)
            .to_std()
            .map_or(true, |elapsed| elapsed >= config.backup_interval)
    });
    if due && config.path.exists() {
        backup::take(&config.path, &config.data_dir, config.backup_count)?;
        shared.stats.backups_taken.fetch_add(1, Ordering::Relaxed);
        *last_backup = Some(now);
    }
    let bytes = file::encode(doc)?;
    file::write_atomic(&config.path, &bytes)?;
    Ok(bytes.len() as u64)
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
            doc.connections.insert(conn.id.clone(), conn.clone());
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
                WriteGuard::Fenced(token) => leases.check_fence(&id, token)?,
            }
            let mut conn = (**stored).clone();
            apply(&mut conn);
            // The identity and bookkeeping fields belong to the store.
            conn.id = stored.id.clone();
            conn.created_at = stored.created_at;
            conn.version = stored.version + 1;
            conn.updated_at = now;
            let conn = Arc::new(conn);
            doc.connections.insert(id, conn.clone());
            Ok(vec![conn])
        }
        Mutation::Upsert { new, apply } => {
            let existing = doc
                .connections
                .values()
                .find(|c| c.natural_key() == new.natural_key())
                .map(|c| c.id.clone());
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
            .connections
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
                                Some(c) => doc.connections.insert(id, c),
                                None => doc.connections.remove(&id),
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
            doc.connections
                .values()
                .find(|c| c.natural_key() == new.natural_key())
                .map_or_else(|| new.id.clone(), |c| c.id.clone()),
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
