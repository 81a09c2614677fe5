//! Exports: CSV spooling and its format, async export jobs from queue to file,
//! restarts, failures and retention. A fake row source stands in for insights.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokenkeeper::clock::OffsetClock;
use tokenkeeper::export::jobs::{ExportsStorage, SourcedRows};
use tokenkeeper::export::{self, ExportError, ExportJob, ExportStatus, Exports, Row, RowSource};
use tokenkeeper::store::ExportFiles;

const VIETNAMESE: &str = "Xin chào, thế giới — “ngoặc kép”, dấu phẩy";
const MULTILINE: &str = "line one\nline \"two\", with comma";

/// Insights row `i`: a post with text, metrics, Meta actions and reactions.
fn sample_row(i: u64) -> Row {
    let message = match i % 3 {
        0 => json!(VIETNAMESE),
        1 => json!(MULTILINE),
        _ => Value::Null,
    };
    let mut actions = vec![json!({"action_type": "link_click", "value": i.to_string()})];
    if i.is_multiple_of(2) {
        actions.push(json!({"action_type": "video_view", "value": "2.50"}));
    }
    let row = json!({
        "date": format!("2024-05-{:02}", i % 28 + 1),
        "post_id": format!("1045_{i}"),
        "message": message,
        "reach": i * 10,
        "ctr": 1.0 + i as f64 / 4.0,
        "actions": actions,
        "post_reactions_by_type_total": {"like": i, "haha": null},
    });
    row.as_object().unwrap().clone()
}

/// The cells `sample_row(i)` must come back as, in `HEADER` order.
fn expected_cells(i: u64) -> Vec<String> {
    let message = match i % 3 {
        0 => VIETNAMESE,
        1 => MULTILINE,
        _ => "",
    };
    let ctr = 1.0 + i as f64 / 4.0;
    vec![
        format!("2024-05-{:02}", i % 28 + 1),
        format!("1045_{i}"),
        message.to_string(),
        (i * 10).to_string(),
        if ctr.fract() == 0.0 {
            format!("{ctr:.0}")
        } else {
            ctr.to_string()
        },
        i.to_string(),
        if i.is_multiple_of(2) {
            "2.5".into()
        } else {
            String::new()
        },
        i.to_string(),
    ]
}

const HEADER: [&str; 8] = [
    "date",
    "post_id",
    "message",
    "reach",
    "ctr",
    "actions.link_click",
    "actions.video_view",
    "post_reactions_by_type_total.like",
];

/// Rows on demand: `post_metrics` yields `rows` sample rows, each after
/// `delay_ms`; `broken` fails after three rows.
struct FakeSource {
    rows: u64,
    delay_ms: AtomicU64,
}

impl FakeSource {
    fn new(rows: u64) -> Arc<Self> {
        Arc::new(FakeSource {
            rows,
            delay_ms: AtomicU64::new(0),
        })
    }
}

impl RowSource for FakeSource {
    fn validate(&self, kind: &str, params: &Value) -> Result<(), ExportError> {
        if kind != "post_metrics" && kind != "broken" {
            return Err(ExportError::UnknownKind { kind: kind.into() });
        }
        match params.get("since") {
            None | Some(Value::String(_)) => Ok(()),
            Some(_) => Err(ExportError::InvalidParams {
                field: "since".into(),
                message: "must be a date".into(),
            }),
        }
    }

    /// The rows come from the connection the params name, if any.
    fn rows(
        &self,
        kind: &str,
        params: Value,
    ) -> BoxFuture<'static, Result<SourcedRows, ExportError>> {
        let connection_ids = params
            .get("connection_id")
            .and_then(Value::as_str)
            .map(|c| vec![c.to_string()])
            .unwrap_or_default();
        let delay = Duration::from_millis(self.delay_ms.load(Ordering::Relaxed));
        let broken = kind == "broken";
        let rows = self.rows;
        Box::pin(async move {
            let stream = futures::stream::iter(0..rows).then(move |i| async move {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                if broken && i == 3 {
                    return Err(ExportError::Source(
                        "Facebook error 190: the page token was revoked".into(),
                    ));
                }
                Ok(sample_row(i))
            });
            Ok(SourcedRows {
                connection_ids,
                rows: stream.boxed(),
            })
        })
    }

    fn leading_columns(&self, _kind: &str) -> Vec<String> {
        vec!["date".into(), "page_id".into(), "post_id".into()]
    }
}

async fn open(dir: &Path, source: Arc<FakeSource>, clock: OffsetClock) -> Exports {
    let files = ExportFiles::open(dir.to_path_buf()).await.unwrap();
    let storage = ExportsStorage {
        jobs: Arc::new(files),
        spool_dir: dir.to_path_buf(),
    };
    Exports::open_with_clock(
        storage,
        Duration::from_secs(3600),
        2,
        source,
        Arc::new(clock),
    )
    .await
    .unwrap()
}

/// Polls the job until `done` holds, failing after a deadline.
async fn wait_for(exports: &Exports, id: &str, done: impl Fn(&ExportJob) -> bool) -> ExportJob {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let job = exports.get(id).await.unwrap().expect("the job exists");
        if done(&job) {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting; job is {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn parse_csv(bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    assert!(
        bytes.starts_with(export::csv::BOM),
        "the file starts with the BOM"
    );
    let mut reader = csv::Reader::from_reader(&bytes[3..]);
    let header = reader.headers().unwrap().iter().map(String::from).collect();
    let records = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    (header, records)
}

fn ledger_status(dir: &Path, id: &str) -> String {
    let ledger: Value =
        serde_json::from_slice(&std::fs::read(dir.join("jobs.json")).unwrap()).unwrap();
    let job = ledger["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|job| job["id"] == id)
        .expect("the job is in jobs.json");
    job["status"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn spooled_csv_starts_with_the_bom_and_parses_back_cell_by_cell() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows: Vec<Result<Row, ExportError>> = (0..7).map(|i| Ok(sample_row(i))).collect();
    // A column only the last row has still makes the header.
    let mut last = sample_row(7);
    last.insert("note".into(), json!("chỉ một lần"));
    rows.push(Ok(last));
    let spooled = export::spool(
        futures::stream::iter(rows),
        &["date", "page_id", "post_id"],
        dir.path(),
    )
    .await
    .unwrap();
    let mut header: Vec<&str> = HEADER.to_vec();
    header.push("note");
    assert_eq!(spooled.columns, header);
    assert_eq!(spooled.rows, 8);

    let path = dir.path().join("out.csv");
    let written = spooled.write_to(&path).await.unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(written, bytes.len() as u64);
    let (got_header, records) = parse_csv(&bytes);
    assert_eq!(got_header, header);
    assert_eq!(records.len(), 8);
    for (i, record) in records.iter().enumerate() {
        let mut expected = expected_cells(i as u64);
        expected.push(if i == 7 {
            "chỉ một lần".into()
        } else {
            String::new()
        });
        assert_eq!(record, &expected, "row {i}");
    }
    // RFC 4180: fields with commas, quotes or newlines are quoted, quotes doubled.
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    assert!(text.contains(&format!("\"{VIETNAMESE}\"")));
    assert!(text.contains("\"line one\nline \"\"two\"\", with comma\""));
    // Only the CSV is left in the folder: the spool file is gone.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[tokio::test]
async fn streamed_response_carries_the_same_csv_with_download_headers() {
    let dir = tempfile::tempdir().unwrap();
    let rows = || futures::stream::iter((0..2_000).map(|i| Ok(sample_row(i))));
    let to_file = export::spool(rows(), &["date"], dir.path()).await.unwrap();
    let path = dir.path().join("reference.csv");
    to_file.write_to(&path).await.unwrap();

    let spooled = export::spool(rows(), &["date"], dir.path()).await.unwrap();
    let response = spooled.into_response("post_metrics-1a2b3c4d.csv");
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"post_metrics-1a2b3c4d.csv\""
    );
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    assert_eq!(body.as_ref(), std::fs::read(&path).unwrap().as_slice());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[tokio::test]
async fn an_export_job_runs_to_completed_with_its_row_count_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let exports = open(dir.path(), FakeSource::new(250), OffsetClock::default()).await;
    let job = exports
        .create(
            "key-1",
            "post_metrics",
            json!({"since": "2024-05-01"}),
            "csv",
        )
        .await
        .unwrap();
    assert_eq!(job.status, ExportStatus::Queued);
    assert!(job.file_name.starts_with("post_metrics-") && job.file_name.ends_with(".csv"));
    // The job is on disk before `create` returns.
    assert!(
        std::fs::read_to_string(dir.path().join("jobs.json"))
            .unwrap()
            .contains(&job.id)
    );

    let done = wait_for(&exports, &job.id, |j| j.status.is_finished()).await;
    assert_eq!(done.status, ExportStatus::Completed, "{done:?}");
    assert_eq!(done.row_count, Some(250));
    assert_eq!(done.rows_written, 250);
    assert_eq!(done.attempts, 1);
    assert!(done.started_at.is_some() && done.finished_at.is_some());
    assert_eq!(
        done.expires_at,
        Some(done.finished_at.unwrap() + chrono::Duration::hours(1))
    );

    let file = exports
        .file(&job.id)
        .await
        .unwrap()
        .expect("a completed job has a file");
    assert_eq!(file, dir.path().join(format!("{}.csv", job.id)));
    let (header, records) = parse_csv(&std::fs::read(&file).unwrap());
    assert_eq!(header, HEADER);
    assert_eq!(records.len(), 250);
    assert_eq!(records[249], expected_cells(249));
    assert_eq!(ledger_status(dir.path(), &job.id), "completed");
    assert_eq!(exports.list(Some("key-1")).await.unwrap().len(), 1);
    assert!(exports.list(Some("key-2")).await.unwrap().is_empty());
    exports.shutdown().await;
}

#[tokio::test]
async fn create_refuses_unknown_kinds_bad_params_and_other_formats() {
    let dir = tempfile::tempdir().unwrap();
    let exports = open(dir.path(), FakeSource::new(1), OffsetClock::default()).await;
    let err = exports
        .create("k", "post_metrics", json!({}), "xlsx")
        .await
        .unwrap_err();
    assert!(
        matches!(err, ExportError::InvalidParams { ref field, .. } if field == "format"),
        "{err:?}"
    );
    let err = exports
        .create("k", "nope", json!({}), "csv")
        .await
        .unwrap_err();
    assert!(
        matches!(err, ExportError::UnknownKind { ref kind } if kind == "nope"),
        "{err:?}"
    );
    let err = exports
        .create("k", "post_metrics", json!({"since": 5}), "csv")
        .await
        .unwrap_err();
    assert!(
        matches!(err, ExportError::InvalidParams { ref field, .. } if field == "since"),
        "{err:?}"
    );
    assert!(exports.list(None).await.unwrap().is_empty());
    exports.shutdown().await;
}

#[tokio::test]
async fn a_job_interrupted_by_shutdown_resumes_after_reopening_and_completes() {
    let dir = tempfile::tempdir().unwrap();
    let source = FakeSource::new(60);
    source.delay_ms.store(20, Ordering::Relaxed);
    let exports = open(dir.path(), source.clone(), OffsetClock::default()).await;
    let job = exports
        .create("key-1", "post_metrics", json!({}), "csv")
        .await
        .unwrap();
    wait_for(&exports, &job.id, |j| {
        j.status == ExportStatus::Running && j.rows_written >= 3
    })
    .await;
    exports.shutdown().await;

    let left = exports.get(&job.id).await.unwrap().unwrap();
    assert_eq!(left.status, ExportStatus::Running);
    assert!(left.rows_written < 60);
    assert_eq!(ledger_status(dir.path(), &job.id), "running");
    assert!(exports.file(&job.id).await.unwrap().is_none());
    assert!(
        exports
            .create("key-1", "post_metrics", json!({}), "csv")
            .await
            .is_err(),
        "a shut-down service takes no new jobs"
    );

    source.delay_ms.store(0, Ordering::Relaxed);
    let reopened = open(dir.path(), source, OffsetClock::default()).await;
    let done = wait_for(&reopened, &job.id, |j| j.status.is_finished()).await;
    assert_eq!(done.status, ExportStatus::Completed, "{done:?}");
    assert_eq!(done.attempts, 2);
    assert_eq!(done.row_count, Some(60));
    let (_, records) =
        parse_csv(&std::fs::read(reopened.file(&job.id).await.unwrap().unwrap()).unwrap());
    assert_eq!(records.len(), 60);
    // Nothing but the ledger and the file: no spool or temp files remain.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    reopened.shutdown().await;
}

#[tokio::test]
async fn a_job_whose_source_fails_is_failed_with_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let exports = open(dir.path(), FakeSource::new(10), OffsetClock::default()).await;
    let job = exports
        .create("key-1", "broken", json!({}), "csv")
        .await
        .unwrap();
    let done = wait_for(&exports, &job.id, |j| j.status.is_finished()).await;
    assert_eq!(done.status, ExportStatus::Failed);
    assert_eq!(
        done.error.as_deref(),
        Some("Facebook error 190: the page token was revoked")
    );
    assert_eq!(done.row_count, None);
    assert!(exports.file(&job.id).await.unwrap().is_none());
    assert_eq!(ledger_status(dir.path(), &job.id), "failed");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "only jobs.json"
    );
    exports.shutdown().await;
}

#[tokio::test]
async fn retention_removes_expired_jobs_and_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let clock = OffsetClock::default();
    let exports = open(dir.path(), FakeSource::new(5), clock.clone()).await;
    let first = exports
        .create("key-1", "post_metrics", json!({}), "csv")
        .await
        .unwrap();
    wait_for(&exports, &first.id, |j| j.status == ExportStatus::Completed).await;
    let file = exports.file(&first.id).await.unwrap().unwrap();

    clock.advance(chrono::Duration::minutes(59));
    assert_eq!(exports.purge_expired().await, 0);
    assert!(file.exists());

    let second = exports
        .create("key-1", "post_metrics", json!({}), "csv")
        .await
        .unwrap();
    wait_for(&exports, &second.id, |j| {
        j.status == ExportStatus::Completed
    })
    .await;
    clock.advance(chrono::Duration::minutes(2));
    assert_eq!(exports.purge_expired().await, 1);
    assert!(exports.get(&first.id).await.unwrap().is_none());
    assert!(!file.exists());
    assert!(
        !std::fs::read_to_string(dir.path().join("jobs.json"))
            .unwrap()
            .contains(&first.id)
    );
    exports.shutdown().await;

    // Opening again later purges what expired meanwhile.
    clock.advance(chrono::Duration::hours(2));
    let reopened = open(dir.path(), FakeSource::new(5), clock).await;
    assert!(reopened.get(&second.id).await.unwrap().is_none());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "only jobs.json"
    );
    reopened.shutdown().await;
}
