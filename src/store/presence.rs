//! Whether a data folder holds a store, never held one, or lost it. A new
//! store is created only where no store ever existed: an empty store beside
//! backups would rotate those backups away with its first writes.

use std::fs;
use std::path::{Path, PathBuf};

use super::STORE_FILE_NAME;
use super::backup;
use super::error::StoreError;

/// The data folder's store, as far as opening it is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// No store, and no sign one ever existed: a new one may be created.
    Fresh,
    /// The store file is there (its content is checked when it is read).
    Present,
}

/// Prefix of the temp files an update writes before its rename; one left
/// behind may hold the only copy of acknowledged data.
pub fn update_temp_prefix() -> String {
    format!(".{STORE_FILE_NAME}.tmp-")
}

/// Prefix of the temp file that creates a brand-new, empty store; one left
/// behind by a crash holds nothing, so it is no sign of a lost store.
pub fn create_temp_prefix() -> String {
    format!(".{STORE_FILE_NAME}.new-")
}

/// Prefix of the temp file a compaction writes the shortened journal to;
/// until its rename the old journal holds every line, so it holds nothing.
pub fn journal_temp_prefix() -> String {
    format!(".{}.compact-", super::journal::JOURNAL_FILE_NAME)
}

/// Prefix of the copies `store restore` keeps of the file it replaced.
pub fn replaced_prefix() -> String {
    format!("{STORE_FILE_NAME}.replaced-")
}

/// Looks at `data_dir` without changing it. A missing store beside traces of
/// one (backups, replaced copies, update temp files) is refused, naming the
/// newest backup and the command that restores it; a store path that is not
/// a file is refused too.
pub fn check(data_dir: &Path) -> Result<Presence, StoreError> {
    let path = data_dir.join(STORE_FILE_NAME);
    match fs::metadata(&path) {
        Ok(meta) if meta.is_file() => return Ok(Presence::Present),
        Ok(meta) => {
            return Err(StoreError::NotAFile {
                kind: if meta.is_dir() {
                    "directory"
                } else {
                    "special file"
                },
                restore: restore_command(data_dir, None),
                path,
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(StoreError::io(&path, e)),
    }
    let traces = traces(data_dir)?;
    if traces.is_empty() {
        return Ok(Presence::Fresh);
    }
    let mut shown: Vec<String> = traces
        .iter()
        .take(3)
        .map(|p| p.display().to_string())
        .collect();
    if traces.len() > 3 {
        shown.push(format!("and {} more", traces.len() - 3));
    }
    let remedy = match backup::list(data_dir)?.first() {
        Some(newest) => format!(
            "the newest backup is {}; restore it with `{}` (and if {} is a volume, check that it is mounted)",
            newest.display(),
            restore_command(data_dir, Some(newest)),
            data_dir.display()
        ),
        None => format!(
            "restore a copy with `{}`, or move those files away to start an empty store",
            restore_command(data_dir, Some(Path::new("FILE")))
        ),
    };
    Err(StoreError::Missing {
        path,
        traces: shown.join(", "),
        remedy,
    })
}

/// The operator command that restores the store in `data_dir`.
fn restore_command(data_dir: &Path, from: Option<&Path>) -> String {
    let mut command = format!(
        "tokenkeeper store restore --data-dir {}",
        data_dir.display()
    );
    if let Some(from) = from {
        command.push_str(&format!(" --from {}", from.display()));
    }
    command
}

/// Files that exist only where a store existed, newest backups first.
fn traces(data_dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut found = backup::list(data_dir)?;
    let entries = match fs::read_dir(data_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(StoreError::io(data_dir, e)),
    };
    let (update_temp, replaced) = (update_temp_prefix(), replaced_prefix());
    let mut beside: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            let journal_with_lines = name == super::journal::JOURNAL_FILE_NAME
                && e.metadata().is_ok_and(|m| m.len() > 0);
            name.starts_with(&update_temp) || name.starts_with(&replaced) || journal_with_lines
        })
        .map(|e| e.path())
        .collect();
    beside.sort();
    found.extend(beside);
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_or_absent_folder_is_fresh_and_a_create_temp_is_no_trace() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(check(&dir.path().join("absent")).unwrap(), Presence::Fresh);
        assert_eq!(check(dir.path()).unwrap(), Presence::Fresh);
        fs::write(
            dir.path().join(format!("{}123", create_temp_prefix())),
            b"{",
        )
        .unwrap();
        assert_eq!(check(dir.path()).unwrap(), Presence::Fresh);
    }

    #[test]
    fn an_update_temp_or_replaced_copy_without_the_store_is_refused() {
        for name in [
            format!("{}123", update_temp_prefix()),
            format!("{}20260101T000000000000Z", replaced_prefix()),
        ] {
            let dir = tempfile::tempdir().unwrap();
            fs::write(dir.path().join(&name), b"{}").unwrap();
            let err = check(dir.path()).unwrap_err().to_string();
            assert!(err.contains(&name), "{err}");
            assert!(err.contains("tokenkeeper store restore"), "{err}");
            assert!(err.contains("move those files away"), "{err}");
        }
    }
}
