//! Atomic file replacement for the store file, `runs.json`, export files,
//! `jobs.json` and the insights cache: temp file in the same folder, fsync,
//! rename, fsync the folder. A
//! crash at any instant leaves either the old file (or none) or the complete
//! new one.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// Replaces `path` with what `fill` writes, returning what `fill` returns.
pub(crate) fn write_atomic_with<T>(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> io::Result<T>,
) -> io::Result<T> {
    write_atomic_tagged(path, "tmp", fill)
}

/// [`write_atomic_with`] on a blocking thread, for async callers.
pub(crate) async fn write_atomic_blocking<T: Send + 'static>(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let target = path.to_path_buf();
    tokio::task::spawn_blocking(move || write_atomic_with(&target, fill))
        .await
        .map_err(io::Error::other)?
}

/// Like [`write_atomic_with`], with the temp file named
/// `.<name>.<tag>-<unique>`: the tag tells what a temp file left by a crash
/// was about to become (the store tells a new store from an update by it).
pub(crate) fn write_atomic_tagged<T>(
    path: &Path,
    tag: &str,
    fill: impl FnOnce(&mut BufWriter<File>) -> io::Result<T>,
) -> io::Result<T> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("export");
    // Unique per call: several exports may be written into one folder at once.
    let tmp = dir.join(format!(".{name}.{tag}-{}", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut out = BufWriter::with_capacity(256 * 1024, File::create(&tmp)?);
        let value = fill(&mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        // The rename is durable only once the folder itself is synced.
        File::open(dir)?.sync_all()?;
        Ok(value)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Replaces `path` with `bytes`.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |out| out.write_all(bytes))
}

/// Whether `name` is one of the temp files `write_atomic_with` leaves behind
/// when the process dies mid-write.
pub(crate) fn is_leftover_temp(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp-")
}
