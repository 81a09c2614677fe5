//! The record files kept beside a JSON store (`jobs.json`, `webhooks.json`,
//! `data_deletions.json`): `{"format": N, "<field>": [records]}`, read
//! whole at open and replaced atomically on each write. A missing file is
//! an empty ledger; a damaged one, or one of another format, is refused
//! without being touched.

use std::io;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::StoreError;
use crate::atomic_file::write_atomic;

/// One ledger file's shape: its format version and the field of its list.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ledger {
    pub format: u32,
    pub field: &'static str,
}

impl Ledger {
    /// The records in `path`, in file order.
    pub fn load<T: DeserializeOwned>(&self, path: &Path) -> Result<Vec<T>, StoreError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io(path, e)),
        };
        let corrupt = |reason: String| StoreError::CorruptRecord {
            path: path.to_path_buf(),
            reason,
        };
        let mut file: Map<String, Value> =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        let format = file.get("format").and_then(Value::as_u64);
        if format != Some(u64::from(self.format)) {
            return Err(corrupt(format!(
                "format {} is not supported (this build reads {})",
                format.map_or("missing".to_string(), |f| f.to_string()),
                self.format
            )));
        }
        let records = file
            .remove(self.field)
            .ok_or_else(|| corrupt(format!("has no `{}`", self.field)))?;
        serde_json::from_value(records).map_err(|e| corrupt(e.to_string()))
    }

    /// The file's bytes for `records`.
    pub fn encode<T: Serialize>(&self, records: &[T]) -> Result<Vec<u8>, serde_json::Error> {
        let mut file = Map::new();
        file.insert("format".into(), self.format.into());
        file.insert(self.field.into(), serde_json::to_value(records)?);
        serde_json::to_vec(&file)
    }

    /// Replaces `path` with `records` (atomically; blocking: call it off the
    /// async threads).
    pub fn save<T: Serialize>(&self, path: &Path, records: &[T]) -> Result<(), StoreError> {
        let bytes = self
            .encode(records)
            .map_err(|e| StoreError::io(path, io::Error::other(e)))?;
        write_atomic(path, &bytes).map_err(|e| StoreError::io(path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Ledger = Ledger {
        format: 1,
        field: "things",
    };

    #[test]
    fn round_trips_and_refuses_what_it_cannot_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("things.json");
        assert!(L.load::<u32>(&path).unwrap().is_empty());
        L.save(&path, &[3u32, 1, 2]).unwrap();
        assert_eq!(L.load::<u32>(&path).unwrap(), [3, 1, 2]);
        for bad in [
            r#"{"format": 2, "things": []}"#,
            r#"{"things": []}"#,
            r#"{"format": 1}"#,
            "{",
        ] {
            std::fs::write(&path, bad).unwrap();
            assert!(
                matches!(L.load::<u32>(&path), Err(StoreError::CorruptRecord { .. })),
                "{bad}"
            );
            assert_eq!(
                std::fs::read_to_string(&path).unwrap(),
                bad,
                "left untouched"
            );
        }
    }
}
