//! Async exports: jobs are recorded in `<dir>/jobs.json`, run by a small
//! worker pool, written to `<dir>/<id>.csv`, kept for a retention period, and
//! resumed after a restart.

mod ledger;
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

pub use model::{ExportJob, ExportStatus, RowSource};

use super::ExportError;
use crate::atomic_file::is_leftover_temp;
use crate::clock::{SharedClock, SystemClock};

/// Runs started per job before a job interrupted by restarts is given up.
pub const MAX_ATTEMPTS: u32 = 3;
/// The reason recorded for a job that restarts interrupted too often.
pub const INTERRUPTED: &str = "interrupted by a restart";
/// How often a running job's progress is written to `jobs.json`, at most.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// The async export service. Cheap to clone; call [`Exports::shutdown`]
/// before dropping the last clone so workers stop cleanly.
#[derive(Clone)]
pub struct Exports {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    retention: chrono::Duration,
    source: Arc<dyn RowSource>,
    clock: SharedClock,
    state: Mutex<State>,
    /// Serializes `jobs.json` writes, so a later snapshot is never overwritten
    /// by an earlier one.
    persisting: tokio::sync::Mutex<()>,
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
    /// Opens `dir` (created if missing; the service passes
    /// `<data_dir>/exports`) and loads `jobs.json`. Jobs found `queued` or
    /// `running` from a previous process run again from the start, up to
    /// [`MAX_ATTEMPTS`] runs, else are marked failed ("interrupted by a
    /// restart"). Removes files and records past retention and leftovers of
    /// interrupted writes, then starts `concurrency` workers.
    pub async fn open(
        dir: PathBuf,
        retention: Duration,
        concurrency: usize,
        source: Arc<dyn RowSource>,
    ) -> Result<Self, ExportError> {
        Self::open_with_clock(dir, retention, concurrency, source, Arc::new(SystemClock)).await
    }

    /// [`Exports::open`] with the clock that stamps jobs and decides expiry.
    pub async fn open_with_clock(
        dir: PathBuf,
        retention: Duration,
        concurrency: usize,
        source: Arc<dyn RowSource>,
        clock: SharedClock,
    ) -> Result<Self, ExportError> {
        let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        let now = clock.now();
        let folder = dir.clone();
        let mut state = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&folder).map_err(|e| ExportError::io(&folder, e))?;
            let jobs = ledger::load(&folder.join(ledger::FILE_NAME))?;
            Ok::<_, ExportError>(resume(jobs, now, retention))
        })
        .await
        .map_err(|e| ExportError::io(&dir, std::io::Error::other(e)))??;
        let mut queued: Vec<&ExportJob> = state
            .jobs
            .values()
            .filter(|job| job.status == ExportStatus::Queued)
            .collect();
        queued.sort_by_key(|job| job.created_at);
        state.queue = queued.iter().map(|job| job.id.clone()).collect();

        let inner = Arc::new(Inner {
            dir,
            retention,
            source,
            clock,
            state: Mutex::new(state),
            persisting: tokio::sync::Mutex::new(()),
            wake: Notify::new(),
            cancel: CancellationToken::new(),
            tasks: Mutex::new(Vec::new()),
        });
        inner.persist().await?;
        inner.remove_leftovers();
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
        inner.lock().jobs.insert(id.clone(), job.clone());
        if let Err(e) = inner.persist().await {
            inner.lock().jobs.remove(&id);
            return Err(e);
        }
        inner.lock().queue.push_back(id);
        inner.wake.notify_one();
        Ok(job)
    }

    pub fn get(&self, id: &str) -> Option<ExportJob> {
        let state = self.inner.lock();
        state.jobs.get(id).map(|job| state.view(job))
    }

    /// Path of a completed job's file, while it is kept.
    pub fn file(&self, id: &str) -> Option<PathBuf> {
        let now = self.inner.clock.now();
        let state = self.inner.lock();
        let job = state.jobs.get(id)?;
        let kept = job.expires_at.is_none_or(|at| at > now);
        let path = self.inner.file_path(id);
        (job.status == ExportStatus::Completed && kept && path.is_file()).then_some(path)
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
    /// `running` in `jobs.json`, so the next `open` runs it again; a job
    /// already writing its file finishes first.
    pub async fn shutdown(&self) {
        self.inner.cancel.cancel();
        let tasks = std::mem::take(&mut *self.inner.tasks.lock().expect("exports lock"));
        for task in tasks {
            let _ = task.await;
        }
        if let Err(e) = self.inner.persist().await {
            tracing::error!(error = %e, "recording export jobs at shutdown failed");
        }
    }
}

/// Decides what becomes of the jobs a previous process left unfinished.
fn resume(
    jobs: Vec<ExportJob>,
    now: chrono::DateTime<chrono::Utc>,
    retention: chrono::Duration,
) -> State {
    let mut state = State::default();
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
        }
        state.jobs.insert(job.id.clone(), job);
    }
    state
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

    fn file_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.csv"))
    }

    /// Writes the current jobs to `jobs.json`.
    async fn persist(&self) -> Result<(), ExportError> {
        self.record(None).await
    }

    /// Writes `jobs.json` with `update` applied, then makes `update` visible
    /// in memory, both under the write turn: a job reads as finished only
    /// once that is on disk, and no later write can miss it.
    async fn record(&self, update: Option<ExportJob>) -> Result<(), ExportError> {
        let _turn = self.persisting.lock().await;
        let mut jobs: Vec<ExportJob> = {
            let state = self.lock();
            state.jobs.values().map(|job| state.view(job)).collect()
        };
        if let Some(update) = &update
            && let Some(job) = jobs.iter_mut().find(|job| job.id == update.id)
        {
            *job = update.clone();
        }
        jobs.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        let path = self.dir.join(ledger::FILE_NAME);
        let target = path.clone();
        let written = tokio::task::spawn_blocking(move || ledger::save(&target, &jobs))
            .await
            .map_err(|e| ExportError::io(&path, std::io::Error::other(e)))
            .and_then(|saved| saved);
        if let Some(update) = update {
            // Even when the write failed: memory stays right, and the next
            // write records it.
            let mut state = self.lock();
            state.progress.remove(&update.id);
            if let Some(job) = state.jobs.get_mut(&update.id) {
                *job = update;
            }
        }
        written
    }

    /// Persists, logging a failure: the job state in memory stays right and
    /// the next write records it.
    async fn persist_or_log(&self) {
        if let Err(e) = self.persist().await {
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
        self.persist_or_log().await;
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
        if let Err(e) = self.record(Some(job)).await {
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
            super::spool(stream, &leading, &self.dir).await
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
                        self.persist_or_log().await;
                    }
                }
            }
        };
        let spooled = match spooled {
            Ok(spooled) => spooled,
            Err(e) => return Outcome::Failed(e),
        };
        let count = spooled.rows;
        match spooled.write_to(&self.file_path(id)).await {
            Ok(_) => Outcome::Completed(count),
            Err(e) => Outcome::Failed(e),
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
        self.persist_or_log().await;
        for id in &expired {
            let path = self.file_path(id);
            if let Err(e) = std::fs::remove_file(&path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(path = %path.display(), error = %e, "removing an expired export failed");
            }
        }
        tracing::info!(count = expired.len(), "expired exports removed");
        expired.len()
    }

    /// Removes what interrupted writes left behind: temp files, spool files
    /// that could not be unlinked, and files of jobs not completed.
    fn remove_leftovers(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let state = self.lock();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let orphan = match name.strip_suffix(".csv") {
                Some(id) if !name.starts_with('.') => state
                    .jobs
                    .get(id)
                    .is_none_or(|job| job.status != ExportStatus::Completed),
                _ => is_leftover_temp(name) || name.starts_with(".spool-"),
            };
            if orphan {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// What a failed job tells its owner: the cause for their own mistakes and
/// the platform's errors, a pointer to the log for our internal failures.
fn public_reason(e: &ExportError) -> String {
    match e {
        ExportError::Io { .. } | ExportError::Corrupt { .. } => {
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
        let state = resume(
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
