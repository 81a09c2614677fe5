//! Readiness: whether the store could be written right now, found out by
//! writing (a small probe file, fsynced and removed) rather than by
//! remembering how the last store write went, so readiness comes back as soon
//! as the disk does. At most one probe per second; a stalled disk answers
//! "not ready" after a timeout instead of hanging the probe.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::STORE_FILE_NAME;
use super::backup::BACKUP_DIR_NAME;

/// The probe file in the data folder (rewritten, then removed, each time).
pub const PROBE_FILE_NAME: &str = ".readyz-probe";
/// A probe result is reused for this long.
const REUSE_FOR: Duration = Duration::from_secs(1);
/// A probe that has not finished by then counts as a failure.
const TIMEOUT: Duration = Duration::from_secs(2);

type Outcome = Result<(), String>;

pub struct WriteProbe {
    data_dir: PathBuf,
    last: Mutex<Option<(Instant, Outcome)>>,
    /// Set while a probe's blocking task runs, which may outlive its timeout:
    /// a stalled disk then gets no pile of probes.
    running: Arc<AtomicBool>,
}

impl WriteProbe {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            data_dir: data_dir.to_path_buf(),
            last: Mutex::new(None),
            running: Arc::new(AtomicBool::new(false)),
        }
    }

    /// `Ok` if the data folder took a write within the last second (probing
    /// again when the last result is older).
    pub async fn check(&self) -> Outcome {
        let mut last = self.last.lock().await;
        if let Some((at, outcome)) = &*last
            && at.elapsed() < REUSE_FOR
        {
            return outcome.clone();
        }
        let outcome = self.probe().await;
        *last = Some((Instant::now(), outcome.clone()));
        outcome
    }

    async fn probe(&self) -> Outcome {
        if self.running.swap(true, Ordering::AcqRel) {
            return Err(format!(
                "the previous write probe in {} has not finished: the disk is stalled",
                self.data_dir.display()
            ));
        }
        let (dir, running) = (self.data_dir.clone(), self.running.clone());
        let task = tokio::task::spawn_blocking(move || {
            let outcome = probe_dir(&dir);
            running.store(false, Ordering::Release);
            outcome
        });
        match tokio::time::timeout(TIMEOUT, task).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => Err(format!("the write probe failed: {e}")),
            Err(_) => Err(format!(
                "{} did not take a write within {} s",
                self.data_dir.display(),
                TIMEOUT.as_secs()
            )),
        }
    }
}

/// The store file is a file, and the folder takes a new, synced file.
fn probe_dir(dir: &Path) -> Outcome {
    let store = dir.join(STORE_FILE_NAME);
    match fs::metadata(&store) {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Err(format!("{} is not a file", store.display())),
        Err(e) => return Err(format!("{}: {e}", store.display())),
    }
    let backups = dir.join(BACKUP_DIR_NAME);
    if backups.exists() && !backups.is_dir() {
        return Err(format!("{} is not a folder", backups.display()));
    }
    let path = dir.join(PROBE_FILE_NAME);
    let written =
        File::create(&path).and_then(|mut f| f.write_all(b"ready\n").and_then(|_| f.sync_data()));
    let removed = fs::remove_file(&path);
    written
        .and(removed)
        .map_err(|e| format!("{} does not take writes: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_folder_that_takes_writes_is_ready_and_the_probe_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(STORE_FILE_NAME), b"{}").unwrap();
        let probe = WriteProbe::new(dir.path());
        probe.check().await.unwrap();
        assert!(!dir.path().join(PROBE_FILE_NAME).exists());
        // Within a second the result is reused, not probed again.
        fs::remove_file(dir.path().join(STORE_FILE_NAME)).unwrap();
        probe.check().await.unwrap();
        let fresh = WriteProbe::new(dir.path());
        let err = fresh.check().await.unwrap_err();
        assert!(err.contains(STORE_FILE_NAME), "{err}");
    }
}
