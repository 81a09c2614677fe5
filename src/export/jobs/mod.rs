//! Async exports: jobs are recorded in the [`ExportJobStore`], run by a
//! small worker pool, their files written to the store, kept for a
//! retention period, and resumed after a restart. Jobs are read from the
//! store, so that instances sharing one see each other's jobs; a runner
//! claims a job in the store before running it, so that it runs once.

mod model;

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use crate::domain::{ExportJob, ExportStatus};
pub use model::{ExportsStorage, RowSource, SourcedRows};

use crate::store::FileReader;

use super::ExportError;
use crate::clock::{SharedClock, SystemClock};
use crate::store::{ExportJobStore, StoreError};

/// Runs started per job before a job interrupted by restarts is given up.
pub const MAX_ATTEMPTS: u32 = 3;
/// The reason recorded for a job that restarts interrupted too often.
pub const INTERRUPTED: &str = "interrupted by a restart";
/// A running job not written for this long has lost its runner (a crashed
/// or stopped instance): another runner may take it over.
pub const STALE_AFTER: Duration = Duration::from_secs(60);
/// How often a running job's progress is written to the store, at most.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);
/// A running job is written at least this often, new rows or not, so
/// that other runners see it is alive.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// How often the store is looked at for jobs to run: queued by another
/// instance, or left running by one that stopped.
const ADOPT_EVERY: Duration = Duration::from_secs(5);

/// The async export service. Cheap to clone; call [`Exports::shutdown`]
/// before dropping the last clone so workers stop cleanly.
#[derive(Clone)]
pub struct Exports {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn ExportJobStore>,
    /// Where rows are spooled while a job runs.
    spool_dir: PathBuf,
    retention: chrono::Duration,
    source: Arc<dyn RowSource>,
    clock: SharedClock,
    /// What this instance is about to run or runs.
    state: Mutex<State>,
    wake: Notify,
    cancel: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Default)]
struct State {
    /// Ids of jobs to try to claim and run, oldest first.
    queue: VecDeque<String>,
    /// The jobs this instance runs, as claimed, with the rows produced so
    /// far.
    running: HashMap<String, (ExportJob, Arc<AtomicU64>)>,
}

impl State {
    /// A job as callers see it: with its live progress if it runs here.
    fn view(&self, mut job: ExportJob) -> ExportJob {
        if let Some((_, rows)) = self.running.get(&job.id) {
            job.rows_written = rows.load(Ordering::Relaxed);
        }
        job
    }
}

enum Outcome {
    /// The row count, and the connections the rows came from.
    Completed(u64, Vec<String>),
    Failed(ExportError),
    Interrupted,
    /// Another runner claimed the job (this one was taken for dead).
    TakenOver,
}

impl Exports {
    /// Opens the service on the jobs `storage` holds. Jobs found `queued`,
    /// or `running` with no runner left (from a previous process), run
    /// again from the start, up to [`MAX_ATTEMPTS`] runs, else are marked
    /// failed ("interrupted by a restart"). Removes files and records past
    /// retention, then starts `concurrency` workers.
    pub async fn open(
        storage: ExportsStorage,
        retention: Duration,
        concurrency: usize,
        source: Arc<dyn RowSource>,
    ) -> Result<Self, ExportError> {
        Self::open_with_clock(
            storage,
            retention,
            concurrency,
            source,
            Arc::new(SystemClock),
        )
        .await
    }

    /// [`Exports::open`] with the clock that stamps jobs and decides expiry.
    pub async fn open_with_clock(
        storage: ExportsStorage,
        retention: Duration,
        concurrency: usize,
        source: Arc<dyn RowSource>,
        clock: SharedClock,
    ) -> Result<Self, ExportError> {
        let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        let ExportsStorage {
            jobs: store,
            spool_dir,
        } = storage;
        let inner = Arc::new(Inner {
            store,
            spool_dir,
            retention,
            source,
            clock,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            cancel: CancellationToken::new(),
            tasks: Mutex::new(Vec::new()),
        });
        inner.adopt().await?;
        inner.purge_expired().await;

        let mut tasks = Vec::with_capacity(concurrency.max(1) + 1);
        for _ in 0..concurrency.max(1) {
            tasks.push(tokio::spawn(work(inner.clone())));
        }
        tasks.push(tokio::spawn(maintain(inner.clone())));
        *inner.tasks.lock().expect("exports lock") = tasks;
        Ok(Exports { inner })
    }

    /// Validates with the source, records the job (persisted before
    /// returning) and queues it. Only the format `csv` exists.
    pub async fn create(
        &self,
        owner: &str,
        kind: &str,
        params: serde_json::Value,
        format: &str,
    ) -> Result<ExportJob, ExportError> {
        let inner = &self.inner;
        if inner.cancel.is_cancelled() {
            return Err(ExportError::Closed);
        }
        if format != "csv" {
            return Err(ExportError::invalid(
                "format",
                format!("unsupported format {format:?}; the only format is \"csv\""),
            ));
        }
        inner.source.validate(kind, &params)?;
        let id = uuid::Uuid::new_v4().to_string();
        let job = ExportJob {
            file_name: format!("{}-{}.csv", file_safe(kind), &id[..8]),
            id: id.clone(),
            kind: kind.to_string(),
            params,
            format: format.to_string(),
            status: ExportStatus::Queued,
            rows_written: 0,
            row_count: None,
            error: None,
            owner: owner.to_string(),
            created_at: inner.clock.now(),
            started_at: None,
            finished_at: None,
            expires_at: None,
            attempts: 0,
            connection_ids: Vec::new(),
        };
        inner.store.create(&job).await?;
        inner.lock().queue.push_back(id);
        inner.wake.notify_one();
        Ok(job)
    }

    /// Job `id` as the store holds it (whichever instance runs it), with
    /// its live progress if it runs here.
    pub async fn get(&self, id: &str) -> Result<Option<ExportJob>, ExportError> {
        let job = self.inner.store.get(id).await?;
        Ok(job.map(|job| self.inner.lock().view(job)))
    }

    /// Whether job `id` is completed and its file still kept.
    async fn downloadable(&self, id: &str) -> Result<bool, ExportError> {
        let now = self.inner.clock.now();
        Ok(self.inner.store.get(id).await?.is_some_and(|job| {
            job.status == ExportStatus::Completed && job.expires_at.is_none_or(|at| at > now)
        }))
    }

    /// A completed job's file, while it is kept.
    pub async fn open_file(&self, id: &str) -> Result<Option<FileReader>, ExportError> {
        if !self.downloadable(id).await? {
            return Ok(None);
        }
        Ok(self.inner.store.open_file(id).await?)
    }

    /// Where a completed job's file is on disk, while it is kept, for a
    /// store that keeps files on disk (the embedded one).
    pub async fn file(&self, id: &str) -> Result<Option<PathBuf>, ExportError> {
        Ok(if self.downloadable(id).await? {
            self.inner.store.file_path(id)
        } else {
            None
        })
    }

    /// The jobs of `owner` (all jobs for `None`), newest first.
    pub async fn list(&self, owner: Option<&str>) -> Result<Vec<ExportJob>, ExportError> {
        let stored = self.inner.store.list().await?;
        let state = self.inner.lock();
        let mut jobs: Vec<ExportJob> = stored
            .into_iter()
            .filter(|job| owner.is_none_or(|owner| job.owner == owner))
            .map(|job| state.view(job))
            .collect();
        jobs.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(jobs)
    }

    /// Removes expired jobs and their files (also done periodically);
    /// returns how many were removed.
    pub async fn purge_expired(&self) -> usize {
        self.inner.purge_expired().await
    }

    /// Deletes the finished exports whose rows were read with one of
    /// `connection_ids`' tokens, and their files: those connections' data
    /// is to be erased. Answers how many it deleted. (A job still running
    /// has no sources yet; one queued for a deleted connection fails when
    /// it runs, as the connection is gone.)
    pub async fn erase(&self, connection_ids: &[String]) -> Result<usize, ExportError> {
        self.inner
            .remove_where(|job| {
                job.status.is_finished()
                    && job
                        .connection_ids
                        .iter()
                        .any(|c| connection_ids.contains(c))
            })
            .await
    }

    /// Stops the workers. A running job stops where it is and stays
    /// `running` in the store, so the next `open` runs it again (or, on a
    /// shared store, another instance once it is [`STALE_AFTER`] old); a
    /// job already writing its file finishes first.
    pub async fn shutdown(&self) {
        self.inner.cancel.cancel();
        let tasks = std::mem::take(&mut *self.inner.tasks.lock().expect("exports lock"));
        for task in tasks {
            let _ = task.await;
        }
        if let Err(e) = self.inner.persist_running().await {
            tracing::error!(error = %e, "recording export jobs at shutdown failed");
        }
    }
}

/// What a runner claims job `from` as: its next run, or, once its runs
/// were interrupted [`MAX_ATTEMPTS`] times, its failure. `None` for a job
/// with nothing left to run.
fn next_state(
    from: &ExportJob,
    now: chrono::DateTime<chrono::Utc>,
    retention: chrono::Duration,
) -> Option<ExportJob> {
    let mut job = from.clone();
    match from.status {
        ExportStatus::Running if from.attempts >= MAX_ATTEMPTS => {
            job.status = ExportStatus::Failed;
            job.error = Some(INTERRUPTED.to_string());
            job.finished_at = Some(now);
            job.expires_at = Some(now + retention);
        }
        ExportStatus::Queued | ExportStatus::Running => {
            job.status = ExportStatus::Running;
            job.attempts += 1;
            job.started_at = Some(now);
            job.rows_written = 0;
        }
        ExportStatus::Completed | ExportStatus::Failed => return None,
    }
    Some(job)
}

/// `kind` reduced to characters safe in a file name and a header.
fn file_safe(kind: &str) -> String {
    kind.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '-' => c,
            _ => '_',
        })
        .collect()
}

async fn work(inner: Arc<Inner>) {
    while !inner.cancel.is_cancelled() {
        let next = inner.lock().queue.pop_front();
        match next {
            Some(id) => inner.run(&id).await,
            None => tokio::select! {
                _ = inner.cancel.cancelled() => {}
                _ = inner.wake.notified() => {}
            },
        }
    }
}

/// Now and then: removes what expired, and queues what the store holds to
/// run that no worker here has.
async fn maintain(inner: Arc<Inner>) {
    let every = (inner.retention / 10)
        .to_std()
        .unwrap_or(Duration::from_secs(60))
        .clamp(Duration::from_secs(1), Duration::from_secs(600));
    let mut purge = tokio::time::interval(every);
    purge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut adopt = tokio::time::interval(ADOPT_EVERY);
    adopt.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    adopt.tick().await;
    loop {
        tokio::select! {
            _ = inner.cancel.cancelled() => return,
            _ = purge.tick() => { inner.purge_expired().await; }
            _ = adopt.tick() => {
                if let Err(e) = inner.adopt().await {
                    tracing::warn!(error = %e, "looking for export jobs to run failed");
                }
            }
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("exports lock")
    }

    /// Queues every unfinished job of the store that is not queued or
    /// running here. A job another runner has is queued too: claiming it
    /// fails, so it runs once.
    async fn adopt(&self) -> Result<(), ExportError> {
        let stored = self.store.list().await?;
        let mut state = self.lock();
        let mut added = false;
        for job in stored {
            let waiting = matches!(job.status, ExportStatus::Queued | ExportStatus::Running);
            if waiting && !state.running.contains_key(&job.id) && !state.queue.contains(&job.id) {
                state.queue.push_back(job.id);
                added = true;
            }
        }
        drop(state);
        if added {
            self.wake.notify_waiters();
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Records the live progress of the running jobs.
    async fn persist_running(&self) -> Result<(), ExportError> {
        let running: Vec<ExportJob> = {
            let state = self.lock();
            state
                .running
                .values()
                .map(|(job, _)| state.view(job.clone()))
                .collect()
        };
        for job in &running {
            self.store.update(job).await?;
        }
        Ok(())
    }

    /// Writes `job` to the store, then forgets it as running here: a job
    /// reads as finished only once that is durable.
    async fn record(&self, job: ExportJob) -> Result<(), ExportError> {
        let written = self.store.update(&job).await;
        self.lock().running.remove(&job.id);
        Ok(written?)
    }

    /// Records job `id`'s progress; false once another runner took it over
    /// (any other failure is logged: the next write records it).
    async fn persist_progress(&self, id: &str) -> bool {
        let job = {
            let state = self.lock();
            let Some((job, _)) = state.running.get(id) else {
                return true;
            };
            state.view(job.clone())
        };
        match self.store.update(&job).await {
            Err(StoreError::TakenOver(_)) => false,
            Err(e) => {
                tracing::error!(error = %e, "recording export jobs failed");
                true
            }
            Ok(()) => true,
        }
    }

    /// Claims job `id` and runs it to its end, or until shutdown; a job
    /// another runner has, or nothing is left to do for, is left alone.
    async fn run(&self, id: &str) {
        let from = match self.store.get(id).await {
            Ok(Some(job)) => job,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(error = %e, "reading an export job failed");
                return;
            }
        };
        let Some(claimed) = next_state(&from, self.clock.now(), self.retention) else {
            return;
        };
        match self.store.claim(&from, &claimed, STALE_AFTER).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::error!(error = %e, "claiming an export job failed");
                return;
            }
        }
        if claimed.status != ExportStatus::Running {
            tracing::warn!(export_id = %id, "export given up: {INTERRUPTED}");
            return;
        }
        let rows = Arc::new(AtomicU64::new(0));
        self.lock()
            .running
            .insert(id.to_string(), (claimed.clone(), rows.clone()));
        tracing::info!(export_id = %id, kind = %claimed.kind, attempt = claimed.attempts, "export started");

        let outcome = self.produce_alive(&claimed, &rows).await;

        let mut job = claimed;
        let now = self.clock.now();
        job.rows_written = rows.load(Ordering::Relaxed);
        match &outcome {
            Outcome::Interrupted | Outcome::TakenOver => {}
            Outcome::Completed(count, sources) => {
                job.status = ExportStatus::Completed;
                job.rows_written = *count;
                job.row_count = Some(*count);
                job.error = None;
                job.connection_ids = sources.clone();
            }
            Outcome::Failed(e) => {
                job.status = ExportStatus::Failed;
                job.error = Some(public_reason(e));
            }
        }
        if job.status.is_finished() {
            job.finished_at = Some(now);
            job.expires_at = Some(now + self.retention);
        }
        match &outcome {
            Outcome::Completed(count, _) => {
                tracing::info!(export_id = %id, rows = count, "export completed")
            }
            Outcome::Failed(e) => tracing::warn!(export_id = %id, error = %e, "export failed"),
            Outcome::Interrupted => {
                tracing::info!(export_id = %id, "export interrupted by shutdown; it resumes on the next start")
            }
            Outcome::TakenOver => {
                tracing::warn!(export_id = %id, "export taken over by another runner; this run stops");
                self.lock().running.remove(id);
                return;
            }
        }
        match self.record(job).await {
            Err(ExportError::Store(StoreError::TakenOver(_))) => {
                tracing::warn!(export_id = %id, "export taken over by another runner; its outcome stands")
            }
            Err(e) => tracing::error!(error = %e, "recording export jobs failed"),
            Ok(()) => {}
        }
    }

    /// Produces job `job`'s file while writing its progress now and then,
    /// and at least every [`HEARTBEAT_EVERY`] so it is not taken for dead;
    /// stops if another runner took it over all the same.
    async fn produce_alive(&self, job: &ExportJob, rows: &Arc<AtomicU64>) -> Outcome {
        let producing = self.produce(&job.id, &job.kind, job.params.clone(), rows);
        let mut producing = std::pin::pin!(producing);
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let (mut recorded, mut written) = (0, tokio::time::Instant::now());
        loop {
            tokio::select! {
                biased;
                outcome = &mut producing => return outcome,
                _ = tick.tick() => {
                    let now = rows.load(Ordering::Relaxed);
                    if now != recorded || written.elapsed() >= HEARTBEAT_EVERY {
                        recorded = now;
                        written = tokio::time::Instant::now();
                        if !self.persist_progress(&job.id).await {
                            return Outcome::TakenOver;
                        }
                    }
                }
            }
        }
    }

    /// Spools the rows (interruptible by shutdown), then writes the file
    /// (not interrupted: it is short).
    async fn produce(
        &self,
        id: &str,
        kind: &str,
        params: serde_json::Value,
        rows: &Arc<AtomicU64>,
    ) -> Outcome {
        let leading = self.source.leading_columns(kind);
        let counter = rows.clone();
        let spooling = async {
            let sourced = self.source.rows(kind, params).await?;
            let stream = sourced.rows.inspect(move |row| {
                if row.is_ok() {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            });
            let leading: Vec<&str> = leading.iter().map(String::as_str).collect();
            let spooled = super::spool(stream, &leading, &self.spool_dir).await?;
            Ok::<_, ExportError>((spooled, sourced.connection_ids))
        };
        let spooled = tokio::select! {
            biased;
            _ = self.cancel.cancelled() => return Outcome::Interrupted,
            result = spooling => result,
        };
        let (spooled, sources) = match spooled {
            Ok(spooled) => spooled,
            Err(e) => return Outcome::Failed(e),
        };
        let count = spooled.rows;
        match self
            .store
            .write_file(id, Box::new(spooled.into_render()))
            .await
        {
            Ok(_) => Outcome::Completed(count, sources),
            Err(e) => Outcome::Failed(e.into()),
        }
    }

    async fn purge_expired(&self) -> usize {
        let now = self.clock.now();
        let expired = |job: &ExportJob| {
            job.status.is_finished() && job.expires_at.is_some_and(|at| at <= now)
        };
        match self.remove_where(expired).await {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, "removing expired export jobs failed");
                0
            }
        }
    }

    /// Removes the finished jobs `pick` chooses and their files.
    async fn remove_where(&self, pick: impl Fn(&ExportJob) -> bool) -> Result<usize, ExportError> {
        let picked: Vec<String> = self
            .store
            .list()
            .await?
            .into_iter()
            .filter(|job| pick(job))
            .map(|job| job.id)
            .collect();
        if picked.is_empty() {
            return Ok(0);
        }
        // Records go first: a crash in between leaves an orphan file, which the
        // next open removes, never a record pointing at a missing file.
        self.store.delete(&picked).await?;
        for id in &picked {
            if let Err(e) = self.store.delete_file(id).await {
                tracing::warn!(error = %e, "removing an export's file failed");
            }
        }
        tracing::info!(count = picked.len(), "exports removed");
        Ok(picked.len())
    }
}

/// What a failed job tells its owner: the cause for their own mistakes and
/// the platform's errors, a pointer to the log for our internal failures.
fn public_reason(e: &ExportError) -> String {
    match e {
        ExportError::Io { .. } | ExportError::Store(_) => {
            tracing::error!(error = %e, "export could not be written");
            "the export could not be written; see the service log".to_string()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn job(id: &str, status: ExportStatus, attempts: u32) -> ExportJob {
        ExportJob {
            id: id.into(),
            kind: "post_metrics".into(),
            params: serde_json::json!({}),
            format: "csv".into(),
            status,
            rows_written: 7,
            row_count: None,
            error: None,
            owner: "key-1".into(),
            created_at: Utc::now(),
            started_at: None,
            finished_at: None,
            expires_at: None,
            file_name: "post_metrics-x.csv".into(),
            attempts,
            connection_ids: Vec::new(),
        }
    }

    #[test]
    fn unfinished_jobs_run_again_until_they_used_their_attempts() {
        let now = Utc::now();
        let hour = chrono::Duration::hours(1);
        let queued = next_state(&job("q", ExportStatus::Queued, 0), now, hour).unwrap();
        assert_eq!(queued.status, ExportStatus::Running);
        assert_eq!((queued.attempts, queued.rows_written), (1, 0));
        assert_eq!(queued.started_at, Some(now));
        let again = next_state(&job("r1", ExportStatus::Running, 1), now, hour).unwrap();
        assert_eq!((again.status, again.attempts), (ExportStatus::Running, 2));
        let given_up = next_state(&job("r3", ExportStatus::Running, MAX_ATTEMPTS), now, hour);
        let given_up = given_up.unwrap();
        assert_eq!(given_up.status, ExportStatus::Failed);
        assert_eq!(given_up.error.as_deref(), Some(INTERRUPTED));
        assert_eq!(given_up.finished_at, Some(now));
        assert_eq!(given_up.expires_at, Some(now + hour));
        assert!(next_state(&job("c", ExportStatus::Completed, 1), now, hour).is_none());
    }

    #[test]
    fn file_names_keep_only_safe_characters() {
        assert_eq!(file_safe("post_metrics"), "post_metrics");
        assert_eq!(file_safe("../a b\"c"), "___a_b_c");
    }
}
