//! The spool file: rows kept on disk between collecting them and writing the
//! CSV, because the header (the union of all rows' columns) is known only after
//! the last row. Each row is stored sparse, as the cells it has:
//! `u32 count`, then per cell `u32 column`, `u32 length`, UTF-8 bytes
//! (little-endian). The file is unlinked as soon as it is created, so it
//! vanishes when its handle is dropped, even if the process dies.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek};
use std::path::{Path, PathBuf};

use tokio::io::{AsyncWriteExt, BufWriter};

use super::ExportError;

const BUFFER: usize = 256 * 1024;

/// An open spool file; removed from disk when dropped.
#[derive(Debug)]
pub(crate) struct SpoolFile {
    file: File,
    unlink: Unlink,
}

/// Removes the file on drop where it could not be unlinked while open.
#[derive(Debug)]
struct Unlink(Option<PathBuf>);

impl Drop for Unlink {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl SpoolFile {
    pub(crate) fn create(dir: &Path) -> Result<Self, ExportError> {
        std::fs::create_dir_all(dir).map_err(|e| ExportError::io(dir, e))?;
        let path = dir.join(format!(".spool-{}", uuid::Uuid::new_v4().simple()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| ExportError::io(&path, e))?;
        let unlink = match std::fs::remove_file(&path) {
            Ok(()) => Unlink(None),
            Err(_) => Unlink(Some(path)),
        };
        Ok(SpoolFile { file, unlink })
    }

    /// A reader over the records, from the first.
    pub(crate) fn reader(&mut self) -> io::Result<SpoolReader<'_>> {
        self.file.rewind()?;
        Ok(SpoolReader {
            input: BufReader::with_capacity(BUFFER, &self.file),
        })
    }
}

/// Appends rows to a spool file.
pub(crate) struct SpoolWriter {
    out: BufWriter<tokio::fs::File>,
    unlink: Unlink,
    record: Vec<u8>,
}

impl SpoolWriter {
    pub(crate) fn new(spool: SpoolFile) -> Self {
        let SpoolFile { file, unlink } = spool;
        SpoolWriter {
            out: BufWriter::with_capacity(BUFFER, tokio::fs::File::from_std(file)),
            unlink,
            record: Vec::with_capacity(4096),
        }
    }

    /// Appends one row given as `(column, text)` cells.
    pub(crate) async fn push<'a>(
        &mut self,
        cells: impl ExactSizeIterator<Item = (u32, &'a str)>,
    ) -> io::Result<()> {
        self.record.clear();
        self.record
            .extend_from_slice(&(cells.len() as u32).to_le_bytes());
        for (column, text) in cells {
            let len = u32::try_from(text.len())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "cell over 4 GiB"))?;
            self.record.extend_from_slice(&column.to_le_bytes());
            self.record.extend_from_slice(&len.to_le_bytes());
            self.record.extend_from_slice(text.as_bytes());
        }
        self.out.write_all(&self.record).await
    }

    /// Flushes and hands back the spool file for reading.
    pub(crate) async fn finish(mut self) -> io::Result<SpoolFile> {
        self.out.flush().await?;
        let file = self.out.into_inner().into_std().await;
        Ok(SpoolFile {
            file,
            unlink: self.unlink,
        })
    }
}

/// Reads records back in the order they were written.
pub(crate) struct SpoolReader<'a> {
    input: BufReader<&'a File>,
}

impl SpoolReader<'_> {
    /// Reads the next row into `cells`, each cell at `order[column]`, or
    /// returns false at the end. `touched` collects the positions set, so the
    /// caller can clear just those.
    pub(crate) fn next_row(
        &mut self,
        order: &[usize],
        cells: &mut [Vec<u8>],
        touched: &mut Vec<usize>,
    ) -> io::Result<bool> {
        let mut word = [0u8; 4];
        match self.input.read_exact(&mut word) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
            Err(e) => return Err(e),
        }
        let count = u32::from_le_bytes(word);
        for _ in 0..count {
            self.input.read_exact(&mut word)?;
            let column = u32::from_le_bytes(word) as usize;
            self.input.read_exact(&mut word)?;
            let len = u32::from_le_bytes(word) as usize;
            let position = order.get(column).copied().unwrap_or(usize::MAX);
            let cell = cells.get_mut(position).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, "spool names an unknown column")
            })?;
            cell.clear();
            cell.resize(len, 0);
            self.input.read_exact(cell)?;
            touched.push(position);
        }
        Ok(true)
    }
}
