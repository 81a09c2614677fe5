//! The journal beside the snapshot: `tokens.journal`, one JSON line per
//! group commit, appended and fsynced before the commit is acknowledged.
//! A line holds the generation it makes, the full records it changed (their
//! secrets still JWE) and the ids it removed, inside a checksummed envelope
//! like the snapshot's: `{"checksum":"hmac-sha256:<kid>:<hex>","entry":{...}}`
//! (after a format-1 snapshot, `sha256:<hex>`).
//!
//! Loading reads the snapshot, then applies every line whose generation
//! follows it. A torn last line (a crash mid-append) was never acknowledged:
//! it is dropped. A bad line before the last is corruption.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::crypto::Cipher;
use super::error::StoreError;
use super::file;
use super::integrity::{self, Checker, Refusal, SumKind};
use super::model::{DOCUMENT_FORMAT, Document};
use crate::domain::Connection;

pub const JOURNAL_FILE_NAME: &str = "tokens.journal";

/// What one group commit changed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub generation: u64,
    pub written_at: DateTime<Utc>,
    /// The records as they are after the commit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub put: Vec<Arc<Connection>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    checksum: String,
    #[serde(borrow)]
    entry: &'a RawValue,
}

/// The line for `entry`, newline included, signed with the current key.
pub fn encode(entry: &Entry, cipher: &Cipher) -> Result<Vec<u8>, StoreError> {
    let body = serde_json::to_vec(entry)
        .map_err(|e| StoreError::WriteFailed(format!("serializing a journal entry: {e}")))?;
    let mut out = Vec::with_capacity(body.len() + 128);
    out.extend_from_slice(b"{\"checksum\":\"");
    out.extend_from_slice(integrity::sign(cipher, &body).as_bytes());
    out.extend_from_slice(b"\",\"entry\":");
    out.extend_from_slice(&body);
    out.extend_from_slice(b"}\n");
    Ok(out)
}

/// Why a line was refused.
#[derive(Debug)]
enum LineError {
    /// Not a whole line, or damaged: as the last line, torn by a crash.
    Bad(String),
    /// Whole, but its HMAC does not match: written by someone without the
    /// key, wherever it is.
    Tampered(String),
}

fn decode(line: &[u8], checker: Checker<'_>) -> Result<(Entry, SumKind), LineError> {
    let envelope: Envelope = serde_json::from_slice(line)
        .map_err(|e| LineError::Bad(format!("not a journal line ({e})")))?;
    let kind = match integrity::check(checker, &envelope.checksum, envelope.entry.get().as_bytes())
    {
        Ok(kind) => kind,
        Err(
            r @ Refusal::Mismatch {
                kind: SumKind::Keyed,
            },
        ) => return Err(LineError::Tampered(r.reason())),
        Err(r @ Refusal::UnknownKey(_)) => return Err(LineError::Tampered(r.reason())),
        Err(r) => return Err(LineError::Bad(r.reason())),
    };
    serde_json::from_str(envelope.entry.get())
        .map(|entry| (entry, kind))
        .map_err(|e| LineError::Bad(format!("not a journal entry ({e})")))
}

/// The store as the snapshot and the journal beside it hold it.
pub struct Loaded {
    pub doc: Document,
    /// Lines applied on top of the snapshot.
    pub replayed: usize,
    /// Where the good lines end: a torn last line starts here.
    pub good_len: u64,
    /// What was wrong with a torn last line, when there was one.
    pub torn: Option<String>,
}

pub fn path_beside(snapshot: &Path) -> PathBuf {
    snapshot.with_file_name(JOURNAL_FILE_NAME)
}

/// Reads `snapshot` and replays the journal beside it (none: nothing to
/// replay). Lines at or below the snapshot's generation were compacted into
/// it already and are skipped; the others must follow it one by one.
pub fn load(snapshot: &Path, checker: Checker<'_>) -> Result<Loaded, StoreError> {
    let path = path_beside(snapshot);
    // The snapshot and the journal's lines are parsed and checksummed side
    // by side (each is most of a start's time); the lines are applied after.
    let (doc, lines) = std::thread::scope(|s| {
        let lines = s.spawn(|| read_lines(&path, checker));
        let doc = file::read(snapshot, checker);
        (doc, lines.join().expect("the journal reader panicked"))
    });
    let (mut doc, lines) = (doc?, lines?);
    let corrupt = |n: usize, why: String| StoreError::Corrupt {
        path: path.clone(),
        reason: format!(
            "line {n}: {why}; a line before the last cannot be torn by a crash, so the \
             journal was damaged: run `tokenkeeper store restore`"
        ),
    };
    let tampered = |n: usize, why: String| StoreError::Tampered {
        what: format!("{} line {n}", path.display()),
        reason: format!("{why} (`tokenkeeper store restore` restores the newest good backup)"),
    };
    // Lines follow their snapshot's format: keyed after a format-2 one.
    let expected = if doc.format == DOCUMENT_FORMAT {
        SumKind::Keyed
    } else {
        SumKind::Plain
    };
    let mut replayed = 0;
    for (i, entry) in lines.entries.into_iter().enumerate() {
        let n = i + 1;
        let (entry, kind) = match entry {
            Ok(decoded) => decoded,
            Err(LineError::Bad(why)) => return Err(corrupt(n, why)),
            Err(LineError::Tampered(why)) => return Err(tampered(n, why)),
        };
        if entry.generation > doc.generation {
            if kind != expected {
                return Err(tampered(
                    n,
                    format!(
                        "its checksum is {kind:?}, where the snapshot's format needs {expected:?}"
                    ),
                ));
            }
            if entry.generation != doc.generation + 1 {
                return Err(corrupt(
                    n,
                    format!(
                        "generation {} does not follow {}",
                        entry.generation, doc.generation
                    ),
                ));
            }
            apply(&mut doc, entry);
            replayed += 1;
        }
    }
    Ok(Loaded {
        doc,
        replayed,
        good_len: lines.good_len,
        torn: lines.torn,
    })
}

/// The journal's lines, decoded, up to a torn last line.
struct Lines {
    /// Each whole line in order; a bad one (before the last) is corruption,
    /// reported by the caller with its line number.
    entries: Vec<Result<(Entry, SumKind), LineError>>,
    good_len: u64,
    torn: Option<String>,
}

fn read_lines(path: &Path, checker: Checker<'_>) -> Result<Lines, StoreError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(StoreError::io(path, e)),
    };
    let mut entries = Vec::new();
    let mut offset = 0usize;
    let mut torn = None;
    while offset < bytes.len() {
        let n = entries.len() + 1;
        let rest = &bytes[offset..];
        let Some(end) = rest.iter().position(|b| *b == b'\n') else {
            torn = Some(format!("line {n} is incomplete"));
            break;
        };
        let entry = decode(&rest[..end], checker);
        if let Err(LineError::Bad(why)) = &entry
            && offset + end + 1 == bytes.len()
        {
            torn = Some(format!("line {n}: {why}"));
            break;
        }
        entries.push(entry);
        offset += end + 1;
    }
    Ok(Lines {
        entries,
        good_len: offset as u64,
        torn,
    })
}

fn apply(doc: &mut Document, entry: Entry) {
    for id in entry.removed {
        doc.remove(&id);
    }
    for conn in entry.put {
        doc.put(conn);
    }
    doc.generation = entry.generation;
    doc.written_at = entry.written_at;
}

/// The open journal the writer appends to.
pub struct Journal {
    path: PathBuf,
    file: File,
    len: u64,
}

impl Journal {
    /// Opens (or creates) the journal, cutting off a torn last line past
    /// `good_len` so that the next line starts clean.
    pub fn open(path: PathBuf, good_len: u64) -> Result<Self, StoreError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        let len = file.metadata().map_err(|e| StoreError::io(&path, e))?.len();
        if len > good_len {
            file.set_len(good_len)
                .and_then(|()| file.sync_all())
                .map_err(|e| StoreError::io(&path, e))?;
        }
        let mut journal = Self {
            path,
            file,
            len: good_len,
        };
        journal.seek_end()?;
        Ok(journal)
    }

    fn seek_end(&mut self) -> Result<(), StoreError> {
        use std::io::Seek;
        self.file
            .seek(std::io::SeekFrom::Start(self.len))
            .map(|_| ())
            .map_err(|e| StoreError::io(&self.path, e))
    }

    /// Bytes of lines on disk.
    pub fn bytes(&self) -> u64 {
        self.len
    }

    /// Appends one line and makes it durable.
    pub fn append(&mut self, line: &[u8]) -> Result<(), StoreError> {
        self.check_in_place()?;
        let written = self
            .file
            .write_all(line)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // Leave no partial line behind for the next append to follow.
            let _ = self.file.set_len(self.len);
            let _ = self.seek_end();
            return Err(StoreError::io(&self.path, e));
        }
        self.len += line.len() as u64;
        Ok(())
    }

    /// The open file is still the one at the journal's path: a line written
    /// to a file that was moved or replaced would be acknowledged and lost.
    fn check_in_place(&self) -> Result<(), StoreError> {
        use std::os::unix::fs::MetadataExt;
        let open = self
            .file
            .metadata()
            .map_err(|e| StoreError::io(&self.path, e))?;
        let named = fs::metadata(&self.path).map_err(|e| StoreError::io(&self.path, e))?;
        if (open.dev(), open.ino()) != (named.dev(), named.ino()) {
            return Err(StoreError::WriteFailed(format!(
                "{} was moved or replaced while open",
                self.path.display()
            )));
        }
        Ok(())
    }

    /// Once a snapshot holds everything up to the line ending at `from`:
    /// keeps only the lines after it, by an atomic replace of the file.
    pub fn drop_before(&mut self, from: u64) -> Result<(), StoreError> {
        let bytes = fs::read(&self.path).map_err(|e| StoreError::io(&self.path, e))?;
        let from = usize::try_from(from).unwrap_or(usize::MAX).min(bytes.len());
        file::write_atomic_via(&self.path, &bytes[from..], "compact")?;
        *self = Self::open(self.path.clone(), (bytes.len() - from) as u64)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Cipher {
        Cipher::new([5u8; 32])
    }

    fn line(generation: u64) -> Vec<u8> {
        encode(&entry(generation), &key()).unwrap()
    }

    fn load(snapshot: &Path) -> Result<Loaded, StoreError> {
        super::load(snapshot, Checker::Keyring(&key()))
    }

    fn entry(generation: u64) -> Entry {
        Entry {
            generation,
            written_at: Utc::now(),
            put: Vec::new(),
            removed: vec![format!("gone-{generation}")],
        }
    }

    fn store_with(lines: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let snapshot = dir.path().join("tokens.json");
        fs::write(
            &snapshot,
            file::encode(&Document::empty("k"), &key()).unwrap(),
        )
        .unwrap();
        fs::write(path_beside(&snapshot), lines).unwrap();
        (dir, snapshot)
    }

    #[test]
    fn lines_replay_in_order_and_a_torn_last_line_is_dropped() {
        let mut lines = [line(1), line(2)].concat();
        let good = lines.len() as u64;
        let third = line(3);
        lines.extend_from_slice(&third[..third.len() / 2]);
        let (_dir, snapshot) = store_with(&lines);
        let loaded = load(&snapshot).unwrap();
        assert_eq!(loaded.doc.generation, 2);
        assert_eq!(loaded.replayed, 2);
        assert_eq!(loaded.good_len, good);
        assert!(loaded.torn.unwrap().contains("line 3"));
    }

    #[test]
    fn a_bad_line_before_the_last_is_corruption_named_by_its_number() {
        // A byte of the second line's entry changes: not torn, and not
        // written by tokenkeeper.
        let mut second = line(2);
        let at = second.len() - 10;
        second[at] ^= 1;
        let lines = [line(1), second, line(3)].concat();
        let (_dir, snapshot) = store_with(&lines);
        let err = load(&snapshot).err().unwrap().to_string();
        assert!(
            err.contains("line 2")
                && err.contains("edited outside tokenkeeper")
                && err.contains("store restore"),
            "{err}"
        );
    }

    #[test]
    fn lines_the_snapshot_holds_are_skipped_and_a_gap_is_refused() {
        let lines = [line(1), line(3)].concat();
        let (_dir, snapshot) = store_with(&lines);
        let err = load(&snapshot).err().unwrap().to_string();
        assert!(err.contains("generation 3 does not follow 1"), "{err}");

        let mut doc = Document::empty("k");
        doc.generation = 1;
        fs::write(&snapshot, file::encode(&doc, &key()).unwrap()).unwrap();
        let lines = [line(1), line(2)].concat();
        fs::write(path_beside(&snapshot), lines).unwrap();
        let loaded = load(&snapshot).unwrap();
        assert_eq!((loaded.doc.generation, loaded.replayed), (2, 1));
    }
}
