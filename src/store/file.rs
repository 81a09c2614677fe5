//! The store file on disk: a checksummed envelope around the document,
//! written atomically (temp file, fsync, rename, fsync the folder).

use std::fs;
use std::io::Write;
use std::path::Path;

use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::error::StoreError;
use super::model::{DOCUMENT_FORMAT, Document};

/// The on-disk layout: `{"checksum": "sha256:<hex>", "document": {...}}`.
/// The checksum covers the exact bytes of `document` as they sit in the file.
#[derive(Deserialize)]
struct Envelope<'a> {
    checksum: String,
    #[serde(borrow)]
    document: &'a RawValue,
}

/// `sha256:<hex>` of `bytes`: the snapshot's and the journal lines' checksum.
pub(super) fn checksum(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Serializes a document into the file bytes.
pub fn encode(doc: &Document) -> Result<Vec<u8>, StoreError> {
    let body = serde_json::to_vec_pretty(doc)
        .map_err(|e| StoreError::WriteFailed(format!("serializing the document: {e}")))?;
    let sum = checksum(&body);
    let mut out = Vec::with_capacity(body.len() + 128);
    out.extend_from_slice(HEAD);
    out.extend_from_slice(sum.as_bytes());
    out.extend_from_slice(MID);
    out.extend_from_slice(&body);
    out.extend_from_slice(TAIL);
    Ok(out)
}

/// Writes `doc` as the file at `path`, atomically, as [`encode`] lays it
/// out, without holding the encoded document in memory (at 100,000
/// connections that is over 100 MB): the document streams through the
/// checksum into the file, and the checksum, whose length is fixed, is
/// written into its place after. Returns the bytes written.
pub fn write_snapshot(path: &Path, doc: &Document) -> Result<u64, StoreError> {
    use std::io::{Seek, SeekFrom};
    let placeholder = checksum(b"");
    crate::atomic_file::write_atomic_with(path, |out| {
        out.write_all(HEAD)?;
        out.write_all(placeholder.as_bytes())?;
        out.write_all(MID)?;
        let mut body = Hashing {
            out: &mut *out,
            hasher: Sha256::new(),
            len: 0,
        };
        serde_json::to_writer_pretty(&mut body, doc).map_err(std::io::Error::other)?;
        let (sum, body_len) = (
            format!("sha256:{}", hex::encode(body.hasher.finalize())),
            body.len,
        );
        out.write_all(TAIL)?;
        out.seek(SeekFrom::Start(HEAD.len() as u64))?;
        out.write_all(sum.as_bytes())?;
        Ok((HEAD.len() + sum.len() + MID.len() + TAIL.len()) as u64 + body_len)
    })
    .map_err(|e| StoreError::io(path, e))
}

/// Passes writes through to `out`, hashing and counting them.
struct Hashing<'a, W: Write> {
    out: &'a mut W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> Write for Hashing<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Parses and verifies file bytes: envelope, checksum, then the document.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<Document, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.is_empty() {
        return Err(corrupt("the file is empty".into()));
    }
    // A file as `encode` lays it out is split where it puts the document,
    // which saves a scan of the whole file; any other layout is parsed.
    let (expected, document) = match split_encoded(bytes) {
        Some(parts) => parts,
        None => {
            let envelope: Envelope = serde_json::from_slice(bytes)
                .map_err(|e| corrupt(format!("not a complete store document ({e})")))?;
            (envelope.checksum, envelope.document.get().as_bytes())
        }
    };
    let actual = checksum(document);
    if actual != expected {
        return Err(StoreError::ChecksumMismatch {
            path: path.to_path_buf(),
            expected,
            actual,
        });
    }
    let mut doc: Document = serde_json::from_slice(document)
        .map_err(|e| corrupt(format!("the document does not match the format ({e})")))?;
    doc.reindex();
    if doc.format != DOCUMENT_FORMAT {
        return Err(corrupt(format!(
            "format {} is not supported (this build reads {DOCUMENT_FORMAT})",
            doc.format
        )));
    }
    Ok(doc)
}

const HEAD: &[u8] = b"{\n\"checksum\": \"";
const MID: &[u8] = b"\",\n\"document\": ";
const TAIL: &[u8] = b"\n}\n";

/// The checksum and the document bytes of a file laid out by `encode`.
fn split_encoded(bytes: &[u8]) -> Option<(String, &[u8])> {
    let rest = bytes.strip_prefix(HEAD)?;
    let sum_len = "sha256:".len() + 64;
    let (sum, rest) = rest.split_at_checked(sum_len)?;
    let document = rest.strip_prefix(MID)?.strip_suffix(TAIL)?;
    Some((std::str::from_utf8(sum).ok()?.to_string(), document))
}

/// Reads and verifies the store file.
pub fn read(path: &Path) -> Result<Document, StoreError> {
    let bytes = fs::read(path).map_err(|e| StoreError::io(path, e))?;
    decode(path, &bytes)
}

/// Replaces `path` with `bytes` so that a crash at any instant leaves either
/// the old or the new file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    write_atomic_via(path, bytes, "tmp")
}

/// Like [`write_atomic`], with the temp file named `.<name>.<tag>-<unique>`:
/// the tag tells what a temp file left by a crash was about to become.
pub fn write_atomic_via(path: &Path, bytes: &[u8], tag: &str) -> Result<(), StoreError> {
    crate::atomic_file::write_atomic_tagged(path, tag, |out| out.write_all(bytes))
        .map_err(|e| StoreError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_decode_round_trips_and_checks_every_byte() {
        let doc = Document::empty("k-1");
        let bytes = encode(&doc).unwrap();
        let back = decode(Path::new("t.json"), &bytes).unwrap();
        assert_eq!(back.key_id, "k-1");
        // Flip one byte inside the document: the checksum catches it.
        let pos = bytes.windows(3).position(|w| w == b"k-1").unwrap();
        let mut bad = bytes.clone();
        bad[pos + 2] = b'2';
        assert!(matches!(
            decode(Path::new("t.json"), &bad),
            Err(StoreError::ChecksumMismatch { .. })
        ));
        // The streamed writer lays the file out byte for byte as encode does.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        let written = write_snapshot(&path, &doc).unwrap();
        assert_eq!(fs::read(&path).unwrap(), bytes);
        assert_eq!(written, bytes.len() as u64);
        // Truncation is refused too.
        assert!(matches!(
            decode(Path::new("t.json"), &bytes[..bytes.len() / 2]),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
