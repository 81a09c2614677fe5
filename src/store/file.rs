//! The store file on disk: a checksummed envelope around the document,
//! written atomically (temp file, fsync, rename, fsync the folder).

use std::fs;
use std::io::Write;
use std::path::Path;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::crypto::{Cipher, Seal};
use super::error::StoreError;
use super::integrity::{self, Checker, Refusal, Signer, SumKind};
use super::model::{DOCUMENT_FORMAT, Document, LEGACY_FORMAT};

/// The on-disk layout: `{"checksum": "hmac-sha256:<kid>:<hex>", "document":
/// {...}}` (format 1: `"sha256:<hex>"`). The checksum covers the exact bytes
/// of `document` as they sit in the file.
#[derive(Deserialize)]
struct Envelope<'a> {
    checksum: String,
    #[serde(borrow)]
    document: &'a RawValue,
}

/// Serializes a document into the file bytes, signed with the current key.
pub fn encode(doc: &Document, cipher: &Cipher) -> Result<Vec<u8>, StoreError> {
    let body = serde_json::to_vec_pretty(doc)
        .map_err(|e| StoreError::WriteFailed(format!("serializing the document: {e}")))?;
    Ok(lay_out(&integrity::sign(cipher, &body), &body))
}

/// The file bytes of `body` under checksum `sum`.
pub fn lay_out(sum: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 128);
    out.extend_from_slice(HEAD);
    out.extend_from_slice(sum.as_bytes());
    out.extend_from_slice(MID);
    out.extend_from_slice(body);
    out.extend_from_slice(TAIL);
    out
}

/// Writes `doc` as the file at `path`, atomically, as [`encode`] lays it
/// out, without holding the encoded document in memory (at 100,000
/// connections that is over 100 MB): the document streams through the
/// checksum into the file, and the checksum, whose length is fixed, is
/// written into its place after. Returns the bytes written.
pub fn write_snapshot(path: &Path, doc: &Document, cipher: &Cipher) -> Result<u64, StoreError> {
    use std::io::{Seek, SeekFrom};
    let signer = Signer::new(cipher);
    let placeholder = "0".repeat(signer.sum_len());
    crate::atomic_file::write_atomic_with(path, |out| {
        out.write_all(HEAD)?;
        out.write_all(placeholder.as_bytes())?;
        out.write_all(MID)?;
        let mut body = Signing {
            out: &mut *out,
            signer,
            len: 0,
        };
        serde_json::to_writer_pretty(&mut body, doc).map_err(std::io::Error::other)?;
        let (sum, body_len) = (body.signer.finish(), body.len);
        out.write_all(TAIL)?;
        out.seek(SeekFrom::Start(HEAD.len() as u64))?;
        out.write_all(sum.as_bytes())?;
        Ok((HEAD.len() + sum.len() + MID.len() + TAIL.len()) as u64 + body_len)
    })
    .map_err(|e| StoreError::io(path, e))
}

/// Passes writes through to `out`, signing and counting them.
struct Signing<'a, W: Write> {
    out: &'a mut W,
    signer: Signer,
    len: u64,
}

impl<W: Write> Write for Signing<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.signer.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Parses and verifies file bytes: envelope, checksum, then the document.
pub fn decode(path: &Path, bytes: &[u8], checker: Checker<'_>) -> Result<Document, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let tampered = |reason: String| StoreError::Tampered {
        what: path.display().to_string(),
        reason: format!("{reason} (`tokenkeeper store restore` restores the newest good backup)"),
    };
    if bytes.is_empty() {
        return Err(corrupt("the file is empty".into()));
    }
    // A file as `encode` lays it out is split where it puts the document,
    // which saves a scan of the whole file; any other layout is parsed.
    let (sum, document) = match split_encoded(bytes) {
        Some(parts) => parts,
        None => {
            let envelope: Envelope = serde_json::from_slice(bytes)
                .map_err(|e| corrupt(format!("not a complete store document ({e})")))?;
            (envelope.checksum, envelope.document.get().as_bytes())
        }
    };
    let kind = match integrity::check(checker, &sum, document) {
        Ok(kind) => kind,
        Err(Refusal::Mismatch {
            kind: SumKind::Plain,
        }) => {
            return Err(StoreError::ChecksumMismatch {
                path: path.to_path_buf(),
                expected: sum,
                actual: integrity::plain(document),
            });
        }
        Err(Refusal::UnknownKey(kid)) => {
            let Checker::Keyring(cipher) = checker else {
                unreachable!("only a keyring refuses a key")
            };
            return Err(StoreError::WrongKey {
                path: path.to_path_buf(),
                stored: kid,
                configured: cipher.key_id().to_string(),
            });
        }
        Err(refusal @ Refusal::Mismatch { .. }) => return Err(tampered(refusal.reason())),
        Err(refusal) => return Err(corrupt(refusal.reason())),
    };
    let mut doc: Document = serde_json::from_slice(document)
        .map_err(|e| corrupt(format!("the document does not match the format ({e})")))?;
    doc.reindex();
    match (doc.format, kind) {
        (DOCUMENT_FORMAT, SumKind::Keyed) => {}
        (DOCUMENT_FORMAT, SumKind::Plain) => {
            return Err(tampered(format!(
                "a format-{DOCUMENT_FORMAT} document carries an unkeyed SHA-256 checksum, \
                 which tokenkeeper does not write"
            )));
        }
        (LEGACY_FORMAT, SumKind::Plain) => check_legacy(&doc).map_err(tampered)?,
        (LEGACY_FORMAT, SumKind::Keyed) => {
            return Err(corrupt(format!(
                "a format-{LEGACY_FORMAT} document carries a keyed checksum"
            )));
        }
        (other, _) => {
            return Err(corrupt(format!(
                "format {other} is not supported (this build reads {LEGACY_FORMAT} and \
                 {DOCUMENT_FORMAT})"
            )));
        }
    }
    Ok(doc)
}

/// A format-1 document was written before secrets were bound: one holding
/// a bound secret is a newer store rewritten to pass for an old one.
fn check_legacy(doc: &Document) -> Result<(), String> {
    let bound = doc.connections.values().find(|c| {
        std::iter::once(&c.secrets.access_token)
            .chain(&c.secrets.refresh_token)
            .any(|s| Seal::of(s).is_ok_and(|seal| seal.account().is_some()))
    });
    match bound {
        Some(c) => Err(format!(
            "a format-{LEGACY_FORMAT} document holds a secret sealed by format \
             {DOCUMENT_FORMAT} (connection {}), so it was rewritten to pass for an old store",
            c.id
        )),
        None => Ok(()),
    }
}

const HEAD: &[u8] = b"{\n\"checksum\": \"";
const MID: &[u8] = b"\",\n\"document\": ";
const TAIL: &[u8] = b"\n}\n";

/// The checksum and the document bytes of a file laid out by `encode`.
fn split_encoded(bytes: &[u8]) -> Option<(String, &[u8])> {
    let rest = bytes.strip_prefix(HEAD)?;
    // A checksum is under 128 bytes and has no quote.
    let sum_len = rest.iter().take(128).position(|&b| b == b'"')?;
    let (sum, rest) = rest.split_at(sum_len);
    let document = rest.strip_prefix(MID)?.strip_suffix(TAIL)?;
    Some((std::str::from_utf8(sum).ok()?.to_string(), document))
}

/// Reads and verifies the store file.
pub fn read(path: &Path, checker: Checker<'_>) -> Result<Document, StoreError> {
    let bytes = fs::read(path).map_err(|e| StoreError::io(path, e))?;
    decode(path, &bytes, checker)
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
        let cipher = Cipher::new([3u8; 32]);
        let keyring = Checker::Keyring(&cipher);
        let doc = Document::empty("k-1");
        let bytes = encode(&doc, &cipher).unwrap();
        let back = decode(Path::new("t.json"), &bytes, keyring).unwrap();
        assert_eq!(back.key_id, "k-1");
        // Flip one byte inside the document: the HMAC catches it.
        let pos = bytes.windows(3).position(|w| w == b"k-1").unwrap();
        let mut bad = bytes.clone();
        bad[pos + 2] = b'2';
        let err = decode(Path::new("t.json"), &bad, keyring).unwrap_err();
        assert!(matches!(err, StoreError::Tampered { .. }), "{err}");
        assert!(
            err.to_string().contains("edited outside tokenkeeper"),
            "{err}"
        );
        // Recomputing a plain SHA-256 over the edit does not pass either.
        let (_, body) = split_encoded(&bad).unwrap();
        let resummed = lay_out(&integrity::plain(body), body);
        let err = decode(Path::new("t.json"), &resummed, keyring).unwrap_err();
        assert!(
            err.to_string().contains("edited outside tokenkeeper"),
            "{err}"
        );
        // The streamed writer lays the file out byte for byte as encode does.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        let written = write_snapshot(&path, &doc, &cipher).unwrap();
        assert_eq!(fs::read(&path).unwrap(), bytes);
        assert_eq!(written, bytes.len() as u64);
        // Truncation is refused too.
        assert!(matches!(
            decode(Path::new("t.json"), &bytes[..bytes.len() / 2], keyring),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
