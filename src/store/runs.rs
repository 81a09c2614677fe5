//! The refresh runs: the [`RunStore`] seam, and its file implementation,
//! `runs.json` beside the store: the recent finished refresh runs, so that
//! the dashboard and `/internal/refresh-runs` still show them after a
//! restart. Written atomically after each run; a missing or unreadable file
//! only means no history (the runs are a record, not state the service needs).

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::error::StoreError;
use crate::domain::{RefreshRun, RunStatus, Tally};

pub const RUNS_FILE_NAME: &str = "runs.json";
const FORMAT: u32 = 1;

/// The recent refresh runs. A store keeps the most recent ones, up to the
/// bound it was opened with, and drops older ones.
#[async_trait::async_trait]
pub trait RunStore: Send + Sync {
    /// Records `run`: a new one, or a newer state of one saved before (same
    /// id). Durable when it returns `Ok`.
    async fn save(&self, run: &RefreshRun) -> Result<(), StoreError>;

    /// The `n` most recent runs, newest first.
    async fn recent(&self, n: usize) -> Result<Vec<RefreshRun>, StoreError>;

    async fn get(&self, id: &str) -> Result<Option<RefreshRun>, StoreError>;
}

/// The file implementation. Only finished runs are written: a run a restart
/// interrupted never finishes, so the file would only show it running
/// forever; a running one is kept in memory.
pub struct RunsFile {
    path: PathBuf,
    keep: usize,
    /// Oldest first; the lock also serialises writes, so an older list
    /// never replaces a newer one.
    runs: Mutex<VecDeque<RefreshRun>>,
}

impl RunsFile {
    /// The runs file in `data_dir`, keeping the `keep` most recent runs,
    /// starting with those it holds.
    pub fn open(data_dir: &Path, keep: usize) -> Self {
        let path = data_dir.join(RUNS_FILE_NAME);
        let keep = keep.max(1);
        let mut runs: VecDeque<RefreshRun> = load(&path).into();
        while runs.len() > keep {
            runs.pop_front();
        }
        Self {
            path,
            keep,
            runs: Mutex::new(runs),
        }
    }
}

#[async_trait::async_trait]
impl RunStore for RunsFile {
    async fn save(&self, run: &RefreshRun) -> Result<(), StoreError> {
        let mut runs = self.runs.lock().await;
        match runs.iter_mut().find(|r| r.id == run.id) {
            Some(kept) => *kept = run.clone(),
            None => runs.push_back(run.clone()),
        }
        while runs.len() > self.keep {
            runs.pop_front();
        }
        if run.status != RunStatus::Finished {
            return Ok(());
        }
        let finished: Vec<RefreshRun> = runs
            .iter()
            .filter(|r| r.status == RunStatus::Finished)
            .cloned()
            .collect();
        let path = self.path.clone();
        // A small file, but a blocking write and fsync all the same.
        tokio::task::spawn_blocking(move || save(&path, &finished))
            .await
            .map_err(|e| StoreError::WriteFailed(e.to_string()))?
            .map_err(|e| StoreError::io(&self.path, e))
    }

    async fn recent(&self, n: usize) -> Result<Vec<RefreshRun>, StoreError> {
        let runs = self.runs.lock().await;
        Ok(runs.iter().rev().take(n).cloned().collect())
    }

    async fn get(&self, id: &str) -> Result<Option<RefreshRun>, StoreError> {
        let runs = self.runs.lock().await;
        Ok(runs.iter().find(|r| r.id == id).cloned())
    }
}

#[derive(Serialize, Deserialize)]
struct Contents {
    format: u32,
    runs: Vec<StoredRun>,
}

/// A run with the team facts the API view leaves out (`by_team`, each
/// error's team), which team-limited callers are filtered by: how every
/// run store writes a run.
#[derive(Serialize, Deserialize)]
pub(super) struct StoredRun {
    #[serde(flatten)]
    run: RefreshRun,
    by_team: Vec<StoredTally>,
    /// The team of each error, in the order of `run.errors`.
    error_teams: Vec<Option<String>>,
}

#[derive(Serialize, Deserialize)]
struct StoredTally {
    team_id: Option<String>,
    total: usize,
    done: usize,
    counts: BTreeMap<String, u64>,
}

/// The runs saved in `path`, oldest first; none when there is no file or it
/// cannot be read (said in the log).
fn load(path: &Path) -> Vec<RefreshRun> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the recent refresh runs; starting without them");
            return Vec::new();
        }
    };
    let file: Contents = match serde_json::from_slice(&bytes) {
        Ok(file) => file,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "the recent refresh runs file is damaged; starting without them");
            return Vec::new();
        }
    };
    if file.format != FORMAT {
        tracing::warn!(path = %path.display(), format = file.format, "the recent refresh runs file has an unknown format; starting without it");
        return Vec::new();
    }
    file.runs.into_iter().map(StoredRun::into_run).collect()
}

/// Replaces `path` with `runs` (oldest first).
fn save(path: &Path, runs: &[RefreshRun]) -> std::io::Result<()> {
    let file = Contents {
        format: FORMAT,
        runs: runs.iter().map(StoredRun::from_run).collect(),
    };
    let bytes = serde_json::to_vec(&file).map_err(std::io::Error::other)?;
    crate::atomic_file::write_atomic(path, &bytes)
}

impl StoredRun {
    pub(super) fn from_run(run: &RefreshRun) -> Self {
        StoredRun {
            by_team: run
                .by_team
                .iter()
                .map(|(team, t)| StoredTally {
                    team_id: team.clone(),
                    total: t.total,
                    done: t.done,
                    counts: t.counts.clone(),
                })
                .collect(),
            error_teams: run.errors.iter().map(|e| e.team_id.clone()).collect(),
            run: run.clone(),
        }
    }

    pub(super) fn into_run(self) -> RefreshRun {
        let mut run = self.run;
        run.by_team = self
            .by_team
            .into_iter()
            .map(|t| {
                let tally = Tally {
                    total: t.total,
                    done: t.done,
                    counts: t.counts,
                };
                (t.team_id, tally)
            })
            .collect();
        for (error, team) in run.errors.iter_mut().zip(self.error_teams) {
            error.team_id = team;
        }
        run
    }
}
