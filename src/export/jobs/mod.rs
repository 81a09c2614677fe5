//! Async exports: jobs are recorded in the [`ExportJobStore`], run by a
//! small worker pool, their files written to the store, kept for a
//! retention period, and resumed after a restart.

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
pub use model::{ExportsStorage, RowSource};

use crate::store::FileReader;

use super::ExportError;
use crate::clock::{SharedClock, SystemClock};
use crate::store::ExportJobStore;

/// Runs started per job before a job interrupted by restarts is given up.
pub const MAX_ATTEMPTS: u32 = 3;
/// The reason recorded for a job that restarts interrupted too often.
pub const INTERRUPTED: &str = "interrupted by a restart";
/// How often a running job's progress is written to the store, at most.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

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
    /// The jobs as callers see them: every write goes to the store first.
    state: Mutex<State>,
    wake: Notify,
    cancel: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Default)]
struct State {
    jobs: HashMap<String, ExportJob>,
    queue: VecDeque<String>,
    /// Rows produced so far by each running job.
    progress: HashMap<String, Arc<AtomicU64>>,
}

impl State {
    /// A job as callers see it: with its live progress.
    fn view(&self, job: &ExportJob) -> ExportJob {
        let mut job = job.clone();
        if let Some(rows) = self.progress.get(&job.id) {
            job.rows_written = rows.load(Ordering::Relaxed);
        }
        job
    }
}

enum Outcome {
    Completed(u64),
    Failed(ExportError),
    Interrupted,
}

impl Exports {
    /// Opens the service on the jobs `storage` holds. Jobs found `queued`
    /// or `running` from a previous process run again from the start, up to
    /// [`MAX_ATTEMPTS`] runs, else are marked failed ("interrupted by a
    /// restart"). Removes files and records past retention, then starts
    /// `concurrency` workers.
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
        let stored = store.list().await?;
        let (mut state, resumed) = resume(stored, clock.now(), retention);
        for job in &resumed {
            store.update(job).await?;
        }
        let mut queued: Vec<&ExportJob> = state
            .jobs
            .values()
            .filter(|job| job.status == ExportStatus::Queued)
            .collect();
        queued.sort_by_key(|job| job.created_at);
        state.queue = queued.iter().map(|job| job.id.clone()).collect();

        let inner = Arc::new(Inner {
            store,
            spool_dir,
            retention,
            source,
            clock,
            state: Mutex::new(state),
            wake: Notify::new(),
            cancel: CancellationToken::new(),
            tasks: Mutex::new(Vec::new()),
        });
        inner.purge_expired().await;

        let mut tasks = Vec::with_capacity(concurrency.max(1) + 1);
        for _ in 0..concurrency.max(1) {
            tasks.push(tokio::spawn(work(inner.clone())));
        }
        tasks.push(tokio::spawn(purge_periodically(inner.clone())));
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
        };
        inner.store.create(&job).await?;
        let mut state = inner.lock();
        state.jobs.insert(id.clone(), job.clone());
        state.queue.push_back(id);
        drop(state);
        inner.wake.notify_one();
        Ok(job)
    }

    pub fn get(&self, id: &str) -> Option<ExportJob> {
        let state = self.inner.lock();
        state.jobs.get(id).map(|job| state.view(job))
    }

    /// Whether job `id` is completed and its file still kept.
    fn downloadable(&self, id: &str) -> bool {
        let now = self.inner.clock.now();
        let state = self.inner.lock();
        state.jobs.get(id).is_some_and(|job| {
            job.status == ExportStatus::Completed && job.expires_at.is_none_or(|at| at > now)
        })
    }

    /// A completed job's file, while it is kept.
    pub async fn open_file(&self, id: &str) -> Result<Option<FileReader>, ExportError> {
        if !self.downloadable(id) {
            return Ok(None);
        }
        Ok(self.inner.store.open_file(id).await?)
    }

    /// Where a completed job's file is on disk, while it is kept, for a
    /// store that keeps files on disk (the embedded one).
    pub fn file(&self, id: &str) -> Option<PathBuf> {
        self.downloadable(id)
            .then(|| self.inner.store.file_path(id))
            .flatten()
    }

    /// The jobs of `owner` (all jobs for `None`), newest first.
    pub fn list(&self, owner: Option<&str>) -> Vec<ExportJob> {
        let state = self.inner.lock();
        let mut jobs: Vec<ExportJob> = state
            .jobs
            .values()
            .filter(|job| owner.is_none_or(|owner| job.owner == owner))
            .map(|job| state.view(job))
            .collect();
        jobs.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        jobs
    }

    /// Removes expired jobs and their files (also done periodically);
    /// returns how many were removed.
    pub async fn purge_expired(&self) -> usize {
        self.inner.purge_expired().await
    }

    /// Stops the workers. A running job stops where it is and stays
    /// `running` in the store, so the next `open` runs it again; a job
    /// already writing its file finishes first.
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

/// Decides what becomes of the jobs a previous process left unfinished;
/// also returns the jobs it changed.
fn resume(
    jobs: Vec<ExportJob>,
    now: chrono::DateTime<chrono::Utc>,
    retention: chrono::Duration,
) -> (State, Vec<ExportJob>) {
    let mut state = State::default();
    let mut changed = Vec::new();
    for mut job in jobs {
        if job.status == ExportStatus::Running {
            if job.attempts < MAX_ATTEMPTS {
                job.status = ExportStatus::Queued;
                job.rows_written = 0;
            } else {
                job.status = ExportStatus::Failed;
                job.error = Some(INTERRUPTED.to_string());
                job.finished_at = Some(now);
                job.expires_at = Some(now + retention);
            }
            changed.push(job.clone());
        }
        state.jobs.insert(job.id.clone(), job);
    }
    (state, changed)
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

async fn purge_periodically(inner: Arc<Inner>) {
    let every = (inner.retention / 10)
        .to_std()
        .unwrap_or(Duration::from_secs(60))
        .clamp(Duration::from_secs(1), Duration::from_secs(600));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = inner.cancel.cancelled() => return,
            _ = tick.tick() => { inner.purge_expired().await; }
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("exports lock")
    }

    /// Records the live progress of the running jobs.
    async fn persist_running(&self) -> Result<(), ExportError> {
        let running: Vec<ExportJob> = {
            let state = self.lock();
            state
                .progress
                .keys()
                .filter_map(|id| state.jobs.get(id).map(|job| state.view(job)))
                .collect()
        };
        for job in &running {
            self.store.update(job).await?;
        }
        Ok(())
    }

    /// Writes `job` to the store, then makes it visible in memory: a job
    /// reads as finished only once that is durable.
    async fn record(&self, job: ExportJob) -> Result<(), ExportError> {
        let written = self.store.update(&job).await;
        // Even when the write failed: memory stays right, and the next
        // write records it.
        let mut state = self.lock();
        state.progress.remove(&job.id);
        if let Some(kept) = state.jobs.get_mut(&job.id) {
            *kept = job;
        }
        Ok(written?)
    }

    /// Records job `id` as callers see it, logging a failure: the job state
    /// in memory stays right and the next write records it.
    async fn persist_or_log(&self, id: &str) {
        let job = {
            let state = self.lock();
            state.jobs.get(id).map(|job| state.view(job))
        };
        if let Some(job) = job
            && let Err(e) = self.store.update(&job).await
        {
            tracing::error!(error = %e, "recording export jobs failed");
        }
    }

    /// Runs one queued job to its end, or until shutdown.
    async fn run(&self, id: &str) {
        let rows = Arc::new(AtomicU64::new(0));
        let (kind, params) = {
            let mut state = self.lock();
            let Some(job) = state.jobs.get_mut(id) else {
                return;
            };
            if job.status != ExportStatus::Queued {
                return;
            }
            job.status = ExportStatus::Running;
            job.attempts += 1;
            job.started_at = Some(self.clock.now());
            job.rows_written = 0;
            let work = (job.kind.clone(), job.params.clone());
            state.progress.insert(id.to_string(), rows.clone());
            work
        };
        self.persist_or_log(id).await;
        tracing::info!(export_id = %id, kind = %kind, "export started");

        let outcome = self.produce(id, &kind, params, &rows).await;

        let Some(mut job) = self.lock().jobs.get(id).cloned() else {
            return;
        };
        let now = self.clock.now();
        job.rows_written = rows.load(Ordering::Relaxed);
        match &outcome {
            Outcome::Interrupted => {}
            Outcome::Completed(count) => {
                job.status = ExportStatus::Completed;
                job.rows_written = *count;
                job.row_count = Some(*count);
                job.error = None;
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
            Outcome::Completed(count) => {
                tracing::info!(export_id = %id, rows = count, "export completed")
            }
            Outcome::Failed(e) => tracing::warn!(export_id = %id, error = %e, "export failed"),
            Outcome::Interrupted => {
                tracing::info!(export_id = %id, "export interrupted by shutdown; it resumes on the next start")
            }
        }
        if let Err(e) = self.record(job).await {
            tracing::error!(error = %e, "recording export jobs failed");
        }
    }

    /// Spools the rows (interruptible by shutdown, with progress persisted
    /// now and then), then writes the file (not interrupted: it is short).
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
            let stream = self.source.rows(kind, params).await?;
            let stream = stream.inspect(move |row| {
                if row.is_ok() {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            });
            let leading: Vec<&str> = leading.iter().map(String::as_str).collect();
            super::spool(stream, &leading, &self.spool_dir).await
        };
        let mut spooling = std::pin::pin!(spooling);
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut recorded = 0;
        let spooled = loop {
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return Outcome::Interrupted,
                result = &mut spooling => break result,
                _ = tick.tick() => {
                    let now = rows.load(Ordering::Relaxed);
                    if now != recorded {
                        recorded = now;
                        self.persist_or_log(id).await;
                    }
                }
            }
        };
        let spooled = match spooled {
            Ok(spooled) => spooled,
            Err(e) => return Outcome::Failed(e),
        };
        let count = spooled.rows;
        match self
            .store
            .write_file(id, Box::new(spooled.into_render()))
            .await
        {
            Ok(_) => Outcome::Completed(count),
            Err(e) => Outcome::Failed(e.into()),
        }
    }

    async fn purge_expired(&self) -> usize {
        let now = self.clock.now();
        let expired: Vec<String> = {
            let mut state = self.lock();
            let ids: Vec<String> = state
                .jobs
                .values()
                .filter(|job| {
                    job.status.is_finished() && job.expires_at.is_some_and(|at| at <= now)
                })
                .map(|job| job.id.clone())
                .collect();
            for id in &ids {
                state.jobs.remove(id);
            }
            ids
        };
        if expired.is_empty() {
            return 0;
        }
        // Records go first: a crash in between leaves an orphan file, which the
        // next open removes, never a record pointing at a missing file.
        if let Err(e) = self.store.delete(&expired).await {
            tracing::error!(error = %e, "recording export jobs failed");
        }
        for id in &expired {
            if let Err(e) = self.store.delete_file(id).await {
                tracing::warn!(error = %e, "removing an expired export failed");
            }
        }
        tracing::info!(count = expired.len(), "expired exports removed");
        expired.len()
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
        }
    }

    #[test]
    fn unfinished_jobs_run_again_until_they_used_their_attempts() {
        let now = Utc::now();
        let (state, _) = resume(
            vec![
                job("q", ExportStatus::Queued, 0),
                job("r1", ExportStatus::Running, 1),
                job("r3", ExportStatus::Running, MAX_ATTEMPTS),
                job("c", ExportStatus::Completed, 1),
            ],
            now,
            chrono::Duration::hours(1),
        );
        assert_eq!(state.jobs["q"].status, ExportStatus::Queued);
        assert_eq!(state.jobs["r1"].status, ExportStatus::Queued);
        assert_eq!(state.jobs["r1"].rows_written, 0);
        assert_eq!(state.jobs["r3"].status, ExportStatus::Failed);
        assert_eq!(state.jobs["r3"].error.as_deref(), Some(INTERRUPTED));
        assert_eq!(state.jobs["r3"].finished_at, Some(now));
        assert_eq!(state.jobs["c"].status, ExportStatus::Completed);
    }

    #[test]
    fn file_names_keep_only_safe_characters() {
        assert_eq!(file_safe("post_metrics"), "post_metrics");
        assert_eq!(file_safe("../a b\"c"), "___a_b_c");
    }
}
