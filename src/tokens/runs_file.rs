//! `runs.json` beside the store: the recent finished refresh runs, so that
//! the dashboard and `/internal/refresh-runs` still show them after a
//! restart. Written atomically after each run; a missing or unreadable file
//! only means no history (the runs are a record, not state the service needs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::sweep::{RefreshRun, Tally};

pub const RUNS_FILE_NAME: &str = "runs.json";
const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct RunsFile {
    format: u32,
    runs: Vec<StoredRun>,
}

/// A run with the team facts the API view leaves out (`by_team`, each
/// error's team), which team-limited callers are filtered by.
#[derive(Serialize, Deserialize)]
struct StoredRun {
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

pub fn path_in(data_dir: &Path) -> PathBuf {
    data_dir.join(RUNS_FILE_NAME)
}

/// The runs saved in `path`, oldest first; none when there is no file or it
/// cannot be read (said in the log).
pub fn load(path: &Path) -> Vec<RefreshRun> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the recent refresh runs; starting without them");
            return Vec::new();
        }
    };
    let file: RunsFile = match serde_json::from_slice(&bytes) {
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
pub fn save(path: &Path, runs: &[RefreshRun]) -> Result<(), String> {
    let file = RunsFile {
        format: FORMAT,
        runs: runs.iter().map(StoredRun::from_run).collect(),
    };
    let bytes = serde_json::to_vec(&file).map_err(|e| e.to_string())?;
    crate::atomic_file::write_atomic(path, &bytes).map_err(|e| e.to_string())
}

impl StoredRun {
    fn from_run(run: &RefreshRun) -> Self {
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

    fn into_run(self) -> RefreshRun {
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
