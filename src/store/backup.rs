//! Backups of the store: compacted snapshots taken before updates, rotated,
//! and restored.

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};

use super::crypto::Cipher;
use super::error::StoreError;
use super::file;
use super::integrity::Checker;
use super::journal;
use super::model::Document;
use super::secret_check::{self, KeyCensus};

pub const BACKUP_DIR_NAME: &str = "backups";
const PREFIX: &str = "tokens-";
/// The UTC time a backup was taken, in its name (fixed width, so name order
/// is time order).
const NAME_TIME: &str = "%Y%m%dT%H%M%S%6fZ";

pub fn backup_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(BACKUP_DIR_NAME)
}

/// Keeps the current store file as a backup, then removes the oldest beyond
/// `keep`. A hard link costs nothing: the store is only ever replaced by
/// rename, never changed in place, so the linked file keeps the old bytes.
pub fn take(store_path: &Path, data_dir: &Path, keep: usize) -> Result<PathBuf, StoreError> {
    let dir = backup_dir(data_dir);
    fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
    let name = format!("{PREFIX}{}.json", Utc::now().format(NAME_TIME));
    let target = dir.join(name);
    if fs::hard_link(store_path, &target).is_err() {
        fs::copy(store_path, &target).map_err(|e| StoreError::io(&target, e))?;
    }
    for old in list(data_dir)?.into_iter().skip(keep) {
        fs::remove_file(&old).map_err(|e| StoreError::io(&old, e))?;
    }
    fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(&dir, e))?;
    Ok(target)
}

/// Backup files, newest first.
pub fn list(data_dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let dir = backup_dir(data_dir);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io(&dir, e)),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(PREFIX) && n.ends_with(".json"))
        })
        .collect();
    // Names carry a fixed-width UTC time, so name order is time order.
    files.sort();
    files.reverse();
    Ok(files)
}

/// When the newest backup was taken, from its name: the record every
/// process shares (a hard link keeps the store file's older mtime, so the
/// name is the one true time). `None` when there is none.
pub fn newest_time(data_dir: &Path) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(list(data_dir)?.iter().find_map(|p| taken_at(p)))
}

fn taken_at(path: &Path) -> Option<DateTime<Utc>> {
    let name = path.file_name()?.to_str()?;
    let time = name.strip_prefix(PREFIX)?.strip_suffix(".json")?;
    NaiveDateTime::parse_from_str(time, NAME_TIME)
        .ok()
        .map(|t| t.and_utc())
}

/// What a verified store file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub connections: usize,
    pub secrets: usize,
    pub generation: u64,
    /// Which keys seal the secrets.
    pub census: KeyCensus,
}

/// Loads `path` (and the journal beside it, if any), checks the checksums
/// and the keys, and opens every secret in the record it sits in. Every
/// problem found is named ([`StoreError::Unsound`]); a file whose HMAC
/// fails is still read, unauthenticated, to check its secrets.
pub fn verify_file(path: &Path, cipher: &Cipher) -> Result<(Document, VerifyReport), StoreError> {
    let mut problems = Vec::new();
    let doc = match journal::load(path, Checker::Keyring(cipher)) {
        Ok(loaded) => loaded.doc,
        Err(e @ StoreError::Tampered { .. }) => {
            problems.push(e.to_string());
            journal::load(path, Checker::Unkeyed)?.doc
        }
        Err(e) => return Err(e),
    };
    check_key(path, &doc, cipher)?;
    let conns: Vec<_> = doc.connections.values().map(|c| &**c).collect();
    let secrets = secret_check::check_all(&conns, cipher);
    problems.extend(secrets.problems);
    if !problems.is_empty() {
        return Err(StoreError::Unsound {
            what: path.display().to_string(),
            problems,
        });
    }
    let report = VerifyReport {
        connections: doc.connections.len(),
        secrets: secrets.opened,
        generation: doc.generation,
        census: secrets.census,
    };
    Ok((doc, report))
}

/// The document was signed by a key of the keyring.
pub fn check_key(path: &Path, doc: &Document, cipher: &Cipher) -> Result<(), StoreError> {
    if !cipher.has_key(&doc.key_id) {
        return Err(StoreError::WrongKey {
            path: path.to_path_buf(),
            stored: doc.key_id.clone(),
            configured: cipher.key_id().to_string(),
        });
    }
    Ok(())
}

/// Replaces the store file with a backup that verifies: `from` if given, else
/// the newest good one. The replaced file is kept beside it as
/// `tokens.json.replaced-<time>`. The caller holds the store lock.
pub fn restore(
    store_path: &Path,
    data_dir: &Path,
    from: Option<&Path>,
    cipher: &Cipher,
) -> Result<(PathBuf, VerifyReport), StoreError> {
    let (chosen, report) = match from {
        Some(path) => {
            let (_, report) = verify_file(path, cipher)?;
            (path.to_path_buf(), report)
        }
        None => {
            let mut reasons = Vec::new();
            let mut found = None;
            for candidate in list(data_dir)? {
                match verify_file(&candidate, cipher) {
                    Ok((_, report)) => {
                        found = Some((candidate, report));
                        break;
                    }
                    Err(e) => reasons.push(e.to_string()),
                }
            }
            found.ok_or_else(|| {
                StoreError::NoBackup(if reasons.is_empty() {
                    format!("{} holds no backups", backup_dir(data_dir).display())
                } else {
                    reasons.join("; ")
                })
            })?
        }
    };
    let bytes = fs::read(&chosen).map_err(|e| StoreError::io(&chosen, e))?;
    let aside = store_path.with_extension(format!(
        "json.replaced-{}",
        Utc::now().format("%Y%m%dT%H%M%S%6fZ")
    ));
    if store_path.is_file() {
        fs::copy(store_path, &aside).map_err(|e| StoreError::io(&aside, e))?;
    } else if fs::symlink_metadata(store_path).is_ok() {
        // A directory (or a dangling link) where the file belongs: the new
        // file cannot be renamed over it, so it moves aside whole.
        fs::rename(store_path, &aside).map_err(|e| StoreError::io(&aside, e))?;
    }
    file::write_atomic(store_path, &bytes)?;
    // The journal continues the replaced file's history, not the backup's.
    let journal = journal::path_beside(store_path);
    if journal.exists() {
        let aside = journal.with_extension(format!(
            "journal.replaced-{}",
            Utc::now().format("%Y%m%dT%H%M%S%6fZ")
        ));
        fs::rename(&journal, &aside).map_err(|e| StoreError::io(&aside, e))?;
    }
    Ok((chosen, report))
}
