//! Export jobs and their CSV files: the [`ExportJobStore`] seam, and its
//! embedded implementation, [`ExportFiles`]: the jobs in `<dir>/jobs.json`,
//! replaced atomically on each change, and each completed job's file in
//! `<dir>/<id>.csv`.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, Instant};

use tokio::io::AsyncRead;
use tokio::sync::Mutex;

use super::error::StoreError;
use super::ledger::Ledger;
use crate::atomic_file::{is_leftover_temp, write_atomic_blocking};
use crate::domain::{ExportJob, ExportStatus};

pub const JOBS_FILE_NAME: &str = "jobs.json";
const FORMAT: u32 = 1;

/// Writes a job's file to the writer it is given, returning the bytes written.
pub type RenderFile = Box<dyn FnOnce(&mut dyn Write) -> io::Result<u64> + Send>;

/// A job's file, read from the start.
pub type FileReader = Pin<Box<dyn AsyncRead + Send>>;

/// The export jobs and their files. Every write is durable when it returns.
#[async_trait::async_trait]
pub trait ExportJobStore: Send + Sync {
    /// Records a new job.
    async fn create(&self, job: &ExportJob) -> Result<(), StoreError>;

    /// Records the new state of a job (status, progress, outcome); an
    /// unknown id is [`StoreError::NotFound`], and a write by a run that
    /// another runner took over since (the stored job has more attempts)
    /// is [`StoreError::TakenOver`].
    async fn update(&self, job: &ExportJob) -> Result<(), StoreError>;

    /// Takes the job `from` shows for one runner: records `to` only if the
    /// stored job still has `from`'s status and attempts and, when that is
    /// `running`, has had no write for `stale_after` (its runner stopped).
    /// False when another runner took it first, or still runs it: of
    /// runners claiming one job from one state, exactly one wins.
    async fn claim(
        &self,
        from: &ExportJob,
        to: &ExportJob,
        stale_after: Duration,
    ) -> Result<bool, StoreError>;

    async fn get(&self, id: &str) -> Result<Option<ExportJob>, StoreError>;

    /// Every job, oldest first.
    async fn list(&self) -> Result<Vec<ExportJob>, StoreError>;

    /// Removes the records of `ids` (retention); unknown ids are skipped.
    async fn delete(&self, ids: &[String]) -> Result<(), StoreError>;

    /// Replaces job `id`'s file with what `render` writes, atomically.
    async fn write_file(&self, id: &str, render: RenderFile) -> Result<u64, StoreError>;

    /// Job `id`'s file, or `None` when there is none.
    async fn open_file(&self, id: &str) -> Result<Option<FileReader>, StoreError>;

    /// Removes job `id`'s file; none is no error.
    async fn delete_file(&self, id: &str) -> Result<(), StoreError>;

    /// Where job `id`'s file is on this machine, for a backend that keeps
    /// files on disk (tests and tools look at it); `None` otherwise.
    fn file_path(&self, _id: &str) -> Option<PathBuf> {
        None
    }
}

/// The embedded implementation: `jobs.json` and one CSV file per job.
pub struct ExportFiles {
    dir: PathBuf,
    /// The jobs by id; the lock also serialises writes of `jobs.json`, so
    /// an older list never replaces a newer one.
    jobs: Mutex<BTreeMap<String, ExportJob>>,
    /// When this process last wrote each job: a job read from `jobs.json`
    /// has none, so a `running` one there was left by a previous process.
    written: std::sync::Mutex<HashMap<String, Instant>>,
}

impl ExportFiles {
    /// Opens `dir` (created if missing) and reads `jobs.json`, refusing a
    /// damaged one without touching it. Removes what interrupted writes left
    /// behind: temp files, spool files that could not be unlinked, and files
    /// of jobs not completed.
    pub async fn open(dir: PathBuf) -> Result<Self, StoreError> {
        let folder = dir.clone();
        let jobs = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&folder).map_err(|e| StoreError::io(&folder, e))?;
            let jobs = load(&folder.join(JOBS_FILE_NAME))?;
            remove_leftovers(&folder, &jobs);
            Ok::<_, StoreError>(jobs)
        })
        .await
        .map_err(|e| StoreError::io(&dir, io::Error::other(e)))??;
        Ok(Self {
            dir,
            jobs: Mutex::new(jobs),
            written: std::sync::Mutex::default(),
        })
    }

    fn mark_written(&self, id: &str) {
        let mut written = self.written.lock().expect("export heartbeats lock");
        written.insert(id.to_string(), Instant::now());
    }

    fn written_within(&self, id: &str, window: Duration) -> bool {
        let written = self.written.lock().expect("export heartbeats lock");
        written.get(id).is_some_and(|at| at.elapsed() < window)
    }

    fn csv_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.csv"))
    }

    /// Writes `jobs` to `jobs.json` (in the order they were created).
    async fn save(&self, jobs: &BTreeMap<String, ExportJob>) -> Result<(), StoreError> {
        let mut list: Vec<ExportJob> = jobs.values().cloned().collect();
        list.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        let path = self.dir.join(JOBS_FILE_NAME);
        let target = path.clone();
        tokio::task::spawn_blocking(move || LEDGER.save(&target, &list))
            .await
            .map_err(|e| StoreError::io(&path, io::Error::other(e)))?
    }
}

#[async_trait::async_trait]
impl ExportJobStore for ExportFiles {
    async fn create(&self, job: &ExportJob) -> Result<(), StoreError> {
        let mut jobs = self.jobs.lock().await;
        jobs.insert(job.id.clone(), job.clone());
        let saved = self.save(&jobs).await;
        match saved {
            Ok(()) => self.mark_written(&job.id),
            Err(_) => {
                jobs.remove(&job.id);
            }
        }
        saved
    }

    async fn update(&self, job: &ExportJob) -> Result<(), StoreError> {
        let mut jobs = self.jobs.lock().await;
        let kept = jobs
            .get_mut(&job.id)
            .ok_or_else(|| StoreError::NotFound(job.id.clone()))?;
        if kept.attempts > job.attempts {
            return Err(StoreError::TakenOver(job.id.clone()));
        }
        // Kept even when the write fails: the next write records it.
        *kept = job.clone();
        self.mark_written(&job.id);
        self.save(&jobs).await
    }

    async fn claim(
        &self,
        from: &ExportJob,
        to: &ExportJob,
        stale_after: Duration,
    ) -> Result<bool, StoreError> {
        let mut jobs = self.jobs.lock().await;
        let Some(kept) = jobs.get_mut(&from.id) else {
            return Ok(false);
        };
        let running_here =
            kept.status == ExportStatus::Running && self.written_within(&from.id, stale_after);
        if kept.status != from.status || kept.attempts != from.attempts || running_here {
            return Ok(false);
        }
        let before = std::mem::replace(kept, to.clone());
        if let Err(e) = self.save(&jobs).await {
            jobs.insert(from.id.clone(), before);
            return Err(e);
        }
        self.mark_written(&from.id);
        Ok(true)
    }

    async fn get(&self, id: &str) -> Result<Option<ExportJob>, StoreError> {
        Ok(self.jobs.lock().await.get(id).cloned())
    }

    async fn list(&self) -> Result<Vec<ExportJob>, StoreError> {
        let mut list: Vec<ExportJob> = self.jobs.lock().await.values().cloned().collect();
        list.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(list)
    }

    async fn delete(&self, ids: &[String]) -> Result<(), StoreError> {
        let mut jobs = self.jobs.lock().await;
        let before = jobs.len();
        jobs.retain(|id, _| !ids.contains(id));
        self.written
            .lock()
            .expect("export heartbeats lock")
            .retain(|id, _| !ids.contains(id));
        if jobs.len() == before {
            return Ok(());
        }
        self.save(&jobs).await
    }

    async fn write_file(&self, id: &str, render: RenderFile) -> Result<u64, StoreError> {
        let path = self.csv_path(id);
        write_atomic_blocking(&path, move |out| render(out))
            .await
            .map_err(|e| StoreError::io(&path, e))
    }

    async fn open_file(&self, id: &str) -> Result<Option<FileReader>, StoreError> {
        let path = self.csv_path(id);
        match tokio::fs::File::open(&path).await {
            Ok(file) => Ok(Some(Box::pin(file))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(&path, e)),
        }
    }

    async fn delete_file(&self, id: &str) -> Result<(), StoreError> {
        let path = self.csv_path(id);
        match tokio::fs::remove_file(&path).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StoreError::io(&path, e)),
            _ => Ok(()),
        }
    }

    fn file_path(&self, id: &str) -> Option<PathBuf> {
        Some(self.csv_path(id)).filter(|path| path.is_file())
    }
}

const LEDGER: Ledger = Ledger {
    format: FORMAT,
    field: "jobs",
};

/// Reads the jobs; a missing file is an empty ledger.
fn load(path: &Path) -> Result<BTreeMap<String, ExportJob>, StoreError> {
    let jobs: Vec<ExportJob> = LEDGER.load(path)?;
    Ok(jobs.into_iter().map(|job| (job.id.clone(), job)).collect())
}

/// Removes the temp and spool files interrupted writes left in `dir`, and
/// the files of jobs not completed.
fn remove_leftovers(dir: &Path, jobs: &BTreeMap<String, ExportJob>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let orphan = match name.strip_suffix(".csv") {
            Some(id) if !name.starts_with('.') => jobs
                .get(id)
                .is_none_or(|job| job.status != ExportStatus::Completed),
            _ => is_leftover_temp(name) || name.starts_with(".spool-"),
        };
        if orphan {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
