//! CSV exports: rows are spooled to disk while the header is collected, then
//! written out (BOM, header, records) to an HTTP response or a file. Memory
//! grows with the number of distinct columns, never with the number of rows.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{self, Write};
use std::path::Path;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use serde_json::{Number, Value};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::spool::{SpoolFile, SpoolWriter};
use super::{ExportError, Row, flatten};
use crate::atomic_file::write_atomic_blocking;

/// The UTF-8 byte order mark, so Excel reads the file as UTF-8.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Size of the chunks a streamed response is sent in.
const CHUNK: usize = 64 * 1024;

/// Consumes rows, spooling flattened rows to a temp file in `spool_dir` while
/// collecting the header (union of keys in a stable order: first-seen order,
/// except that any keys listed in `leading` come first in that order), then
/// produces the CSV bytes: UTF-8 BOM, header, records; numbers written plainly
/// (no exponent, no trailing ".0" for integers), text quoted per RFC 4180,
/// nulls empty. Memory does not grow with the number of rows, only with the
/// number of distinct columns. The first error of `rows` is returned as is.
pub async fn spool<S>(rows: S, leading: &[&str], spool_dir: &Path) -> Result<Spooled, ExportError>
where
    S: Stream<Item = Result<Row, ExportError>> + Send,
{
    let io_error = |e| ExportError::io(spool_dir, e);
    let mut out = SpoolWriter::new(SpoolFile::create(spool_dir)?);
    let mut index: HashMap<String, u32> = HashMap::new();
    let mut seen: Vec<String> = Vec::new();
    let mut count = 0u64;
    let mut rows = std::pin::pin!(rows);
    while let Some(row) = rows.next().await {
        let flat = flatten(&row?);
        let mut cells: Vec<(u32, Cow<'_, str>)> = Vec::with_capacity(flat.len());
        for (name, value) in &flat {
            let Some(text) = cell_text(value) else {
                continue;
            };
            let column = match index.get(name.as_str()) {
                Some(column) => *column,
                None => {
                    let column = u32::try_from(seen.len()).map_err(|_| {
                        ExportError::invalid("columns", "more than 4 billion columns")
                    })?;
                    index.insert(name.clone(), column);
                    seen.push(name.clone());
                    column
                }
            };
            cells.push((column, text));
        }
        out.push(cells.iter().map(|(column, text)| (*column, text.as_ref())))
            .await
            .map_err(io_error)?;
        count += 1;
    }
    let file = out.finish().await.map_err(io_error)?;

    // Output order: the leading columns that occur, then the rest as first seen.
    let mut columns: Vec<String> = Vec::with_capacity(seen.len());
    for name in leading {
        if index.contains_key(*name) && !columns.iter().any(|c| c == name) {
            columns.push(name.to_string());
        }
    }
    let rest: Vec<String> = seen
        .iter()
        .filter(|name| !columns.contains(name))
        .cloned()
        .collect();
    columns.extend(rest);
    let position: HashMap<&str, usize> = columns
        .iter()
        .enumerate()
        .map(|(i, name)| (name.as_str(), i))
        .collect();
    let order = seen.iter().map(|name| position[name.as_str()]).collect();
    Ok(Spooled {
        columns,
        rows: count,
        file,
        order,
    })
}

/// Rows spooled to disk with their header, ready to be written as CSV.
/// Dropping it removes the spool file.
#[derive(Debug)]
pub struct Spooled {
    /// The header, in output order.
    pub columns: Vec<String>,
    /// How many rows were spooled.
    pub rows: u64,
    file: SpoolFile,
    /// Spool column index (first-seen order) → output position.
    order: Vec<usize>,
}

impl Spooled {
    /// A streaming HTTP response: `text/csv; charset=utf-8`,
    /// `Content-Disposition: attachment; filename="<file_name>"`, body
    /// streamed from the spool file in chunks (the spool file is removed when
    /// the stream ends or is dropped). Must be called inside a Tokio runtime.
    pub fn into_response(self, file_name: &str) -> Response {
        let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(4);
        tokio::task::spawn_blocking(move || {
            let mut spooled = self;
            let sink = ChannelWriter {
                tx: tx.clone(),
                buf: Vec::with_capacity(CHUNK),
            };
            if let Err(e) = spooled.render(sink) {
                // A closed channel means the client went away: nothing to say.
                if e.kind() != io::ErrorKind::BrokenPipe {
                    tracing::warn!(error = %e, "streaming a CSV export failed");
                    let _ = tx.blocking_send(Err(e));
                }
            }
        });
        let headers = [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (header::CONTENT_DISPOSITION, attachment(file_name)),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ];
        (headers, Body::from_stream(ReceiverStream::new(rx))).into_response()
    }

    /// Writes the CSV (BOM, header, rows) to `path` atomically (temp file,
    /// fsync, rename, fsync the folder), returning the bytes written.
    pub async fn write_to(self, path: &Path) -> Result<u64, ExportError> {
        let render = self.into_render();
        write_atomic_blocking(path, move |out| render(out))
            .await
            .map_err(|e| ExportError::io(path, e))
    }

    /// The CSV as a function writing it (BOM, header, rows) to any writer,
    /// returning the bytes written: how a job store is handed the file.
    pub fn into_render(
        mut self,
    ) -> impl FnOnce(&mut dyn Write) -> io::Result<u64> + Send + 'static {
        move |out| self.render(out)
    }

    /// Writes BOM, header and records to `out`, returning the bytes written.
    fn render(&mut self, out: impl Write) -> io::Result<u64> {
        let mut out = CountingWriter {
            inner: out,
            bytes: 0,
        };
        out.write_all(BOM)?;
        let mut csv = ::csv::WriterBuilder::new()
            .terminator(::csv::Terminator::CRLF)
            .buffer_capacity(CHUNK)
            .from_writer(&mut out);
        if !self.columns.is_empty() {
            csv.write_record(&self.columns)?;
            let mut cells = vec![Vec::new(); self.columns.len()];
            let mut touched = Vec::new();
            let mut reader = self.file.reader()?;
            while reader.next_row(&self.order, &mut cells, &mut touched)? {
                csv.write_record(&cells)?;
                for position in touched.drain(..) {
                    cells[position].clear();
                }
            }
        }
        csv.flush()?;
        drop(csv);
        out.flush()?;
        Ok(out.bytes)
    }
}

/// The text of one cell; `None` for an empty cell.
fn cell_text(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::Null => None,
        Value::String(text) if text.is_empty() => None,
        Value::String(text) => Some(Cow::Borrowed(text)),
        Value::Number(number) => Some(Cow::Owned(format_number(number))),
        Value::Bool(true) => Some(Cow::Borrowed("true")),
        Value::Bool(false) => Some(Cow::Borrowed("false")),
        // `flatten` leaves no containers; kept total for safety.
        other => Some(Cow::Owned(other.to_string())),
    }
}

/// A number as spreadsheets expect it: `13`, not `13.0`; `0.0000001`, not
/// `1e-7`; `1000000000000000000000`, not `1e21`.
pub fn format_number(number: &Number) -> String {
    if let Some(int) = number.as_i64() {
        return int.to_string();
    }
    if let Some(int) = number.as_u64() {
        return int.to_string();
    }
    match number.as_f64() {
        // Rust's `Display` for floats is the shortest round-trip form and
        // never uses an exponent; it prints integral values without ".0".
        Some(0.0) => "0".to_string(),
        Some(float) => float.to_string(),
        None => number.to_string(),
    }
}

/// `attachment; filename="…"` with anything that could break the header
/// (quotes, backslashes, control and non-ASCII characters) replaced by `_`.
fn attachment(file_name: &str) -> HeaderValue {
    let safe: String = file_name
        .chars()
        .map(|c| match c {
            '"' | '\\' => '_',
            c if c.is_ascii_graphic() || c == ' ' => c,
            _ => '_',
        })
        .collect();
    HeaderValue::from_str(&format!("attachment; filename=\"{safe}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

struct CountingWriter<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Sends what is written as body chunks of about `CHUNK` bytes; fails with
/// `BrokenPipe` once the response body is dropped.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(buf);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn number(value: Value) -> String {
        format_number(value.as_number().unwrap())
    }

    #[test]
    fn numbers_are_written_plainly() {
        assert_eq!(number(json!(13)), "13");
        assert_eq!(number(json!(-4)), "-4");
        assert_eq!(number(json!(u64::MAX)), "18446744073709551615");
        assert_eq!(number(json!(13.0)), "13");
        assert_eq!(number(json!(2.5)), "2.5");
        assert_eq!(number(json!(0.1)), "0.1");
        assert_eq!(number(json!(1e21)), "1000000000000000000000");
        assert_eq!(number(json!(1.5e-7)), "0.00000015");
        assert_eq!(number(json!(-0.0)), "0");
        assert_eq!(number(json!(123456.789)), "123456.789");
    }

    #[test]
    fn cells_are_text_or_empty() {
        assert_eq!(cell_text(&json!(null)), None);
        assert_eq!(cell_text(&json!("")), None);
        assert_eq!(cell_text(&json!(true)).unwrap(), "true");
        assert_eq!(cell_text(&json!("Hà Nội")).unwrap(), "Hà Nội");
        assert_eq!(cell_text(&json!(7.0)).unwrap(), "7");
    }

    #[test]
    fn attachment_names_cannot_break_the_header() {
        assert_eq!(
            attachment("post_metrics-1a2b.csv"),
            "attachment; filename=\"post_metrics-1a2b.csv\""
        );
        assert_eq!(
            attachment("a\"b\r\nc\\dé.csv"),
            "attachment; filename=\"a_b__c_d_.csv\""
        );
    }

    #[tokio::test]
    async fn leading_columns_come_first_and_the_spool_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let rows = vec![
            json!({"reach": 5, "post_id": "p1", "date": "2024-05-01"}),
            json!({"likes": 2, "date": "2024-05-02", "page_id": null}),
        ];
        let rows = futures::stream::iter(
            rows.into_iter()
                .map(|row| Ok(row.as_object().unwrap().clone())),
        );
        let spooled = spool(rows, &["date", "page_id", "post_id"], dir.path())
            .await
            .unwrap();
        assert_eq!(spooled.columns, ["date", "post_id", "reach", "likes"]);
        assert_eq!(spooled.rows, 2);
        let target = dir.path().join("out.csv");
        let bytes = spooled.write_to(&target).await.unwrap();
        let text = std::fs::read(&target).unwrap();
        assert_eq!(bytes, text.len() as u64);
        assert_eq!(
            text,
            b"\xEF\xBB\xBFdate,post_id,reach,likes\r\n2024-05-01,p1,5,\r\n2024-05-02,,,2\r\n"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["out.csv"]);
    }
}
