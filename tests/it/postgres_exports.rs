//! Export jobs on PostgreSQL: two instances on one database see each
//! other's exports and serve each other's files; a job claimed by one
//! runner is not run by another while it is alive. And `store export` writes
//! the database back out as a JSON store that verifies.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokenkeeper::app::Application;
use tokenkeeper::clock::OffsetClock;
use tokenkeeper::domain::{ExportJob, ExportStatus};
use tokenkeeper::export::jobs::{ExportsStorage, SourcedRows};
use tokenkeeper::export::{ExportError, Exports, RowSource};
use tokenkeeper::simulator::SimConfig;
use tokenkeeper::store::postgres::PgExportJobs;
use tokenkeeper::store::{ConnectionStore, ExportJobStore, StoreError};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use crate::fb_support::{APP_ID, APP_SECRET, connections};
use crate::helpers::{TEST_KEY, test_settings_with};
use crate::postgres_app::in_schema;
use crate::sim_support::Sim;
use crate::storage_contract::Postgres;

const ADMIN_KEY: &str = "postgres-exports-admin-key-0123456789";

/// One instance on the database at `url`, its Graph API the simulator at
/// `graph`, serving until `cancel`: its base URL and export service.
async fn instance(
    url: &str,
    graph: &str,
    clock: &OffsetClock,
    cancel: &CancellationToken,
) -> (String, Arc<Exports>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("test.toml");
    std::fs::write(
        &config,
        format!(
            "[facebook]\ngraph_base_url = \"{graph}\"\ndialog_base_url = \"{graph}\"\n\
             redirect_uri = \"http://localhost:8080/facebook/auth/callback\"\n\
             [refresh]\nenabled = false\n[exports]\nretention_hours = 1\n"
        ),
    )
    .unwrap();
    let settings = test_settings_with(
        &dir.path().join("data"),
        &[
            ("TOKENKEEPER__STORE__BACKEND", "postgres"),
            ("TOKENKEEPER_DATABASE_URL", url),
            ("TOKENKEEPER_ADMIN_API_KEY", ADMIN_KEY),
            ("FB_APP_ID", APP_ID),
            ("FB_APP_SECRET", APP_SECRET),
        ],
        Some(&config),
    );
    let app = Application::build_with_clock(settings, Arc::new(clock.clone()))
        .await
        .expect("the app builds on PostgreSQL");
    let (base, exports) = (
        format!("http://{}", app.addr()),
        app.state().exports.clone(),
    );
    tokio::spawn(app.run(cancel.clone()));
    (base, exports, dir)
}

async fn call(method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, url)
        .header("X-API-Key", ADMIN_KEY);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn get(url: String) -> (u16, Value) {
    call(reqwest::Method::GET, url, None).await
}

async fn download(url: String) -> (u16, Vec<u8>) {
    let response = reqwest::Client::new()
        .get(url)
        .header("X-API-Key", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn an_export_made_on_one_instance_is_listed_polled_and_downloaded_on_another() {
    let Some(pg) = Postgres::from_env() else {
        return;
    };
    pg.connect().await.close().await; // creates the schema
    let url = in_schema(&pg.url, &pg.schema);
    let sim = Sim::start_with(SimConfig {
        fb_app_id: APP_ID.into(),
        fb_app_secret: APP_SECRET.into(),
        ..SimConfig::default()
    })
    .await;
    let graph = sim.sim.base_url();
    let clock = OffsetClock::default();
    let cancel = CancellationToken::new();
    let (a, exports_a, _dir_a) = instance(&url, &graph, &clock, &cancel).await;
    let (b, _, _dir_b) = instance(&url, &graph, &clock, &cancel).await;

    let user = sim
        .create_user(json!({ "name": "Test User", "pages": [{ "name": "Page 0" }] }))
        .await;
    let token = sim.login(user["id"].as_str().unwrap(), false).await;
    let (status, answer) = call(
        reqwest::Method::POST,
        format!("{a}/facebook/auth/exchange"),
        Some(json!({ "access_token": token })),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let page = connections(&answer)
        .find(|c| c["kind"] == "page")
        .expect("a page connection")["external_id"]
        .as_str()
        .unwrap()
        .to_string();
    sim.seed_content(&page, "posts", 7).await;
    let today = chrono::Utc::now().date_naive();
    let (status, job) = call(
        reqwest::Method::POST,
        format!("{a}/exports"),
        Some(json!({ "kind": "post_metrics", "format": "csv", "params": {
            "page_id": page, "metrics": ["post_clicks"],
            "start_date": (today - chrono::Duration::days(30)).to_string(),
            "end_date": today.to_string() } })),
    )
    .await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();

    // B lists the job A created, and sees it through to completed.
    let (status, listed) = get(format!("{b}/exports")).await;
    assert_eq!(status, 200);
    assert!(
        listed["exports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["id"] == id),
        "B does not list A's export: {listed}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let done = loop {
        let (status, j) = get(format!("{b}/exports/{id}")).await;
        assert_eq!(status, 200, "{j}");
        if j["status"] == "completed" || j["status"] == "failed" {
            break j;
        }
        assert!(tokio::time::Instant::now() < deadline, "still {j}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["row_count"], 7);

    let (status, from_a) = download(format!("{a}/exports/{id}/download")).await;
    assert_eq!(status, 200);
    let (status, from_b) = download(format!("{b}/exports/{id}/download")).await;
    assert_eq!(status, 200);
    assert_eq!(from_a, from_b, "B serves A's file byte for byte");
    let text = String::from_utf8(from_b).unwrap();
    assert_eq!(text.trim_end().lines().count(), 8, "header and 7 rows");

    // Past retention, one instance's purge removes it for both.
    clock.advance(chrono::Duration::hours(2));
    assert_eq!(exports_a.purge_expired().await, 1);
    for base in [&a, &b] {
        let (status, _) = get(format!("{base}/exports/{id}")).await;
        assert_eq!(status, 404, "{base} still has it");
        let (status, _) = download(format!("{base}/exports/{id}/download")).await;
        assert_eq!(status, 404);
        let (_, listed) = get(format!("{base}/exports")).await;
        assert_eq!(listed["count"], 0, "{listed}");
    }
    let pool = pg.connect().await;
    let (chunks,): (i64,) = sqlx::query_as("SELECT count(*) FROM export_chunks")
        .fetch_one(pool.pool())
        .await
        .unwrap();
    assert_eq!(chunks, 0, "the file's chunks went with the job");
    pool.close().await;
    cancel.cancel();
}

fn queued_job(id: &str) -> ExportJob {
    ExportJob {
        id: id.into(),
        kind: "post_metrics".into(),
        params: json!({ "page_id": "1" }),
        format: "csv".into(),
        status: ExportStatus::Queued,
        rows_written: 0,
        row_count: None,
        error: None,
        owner: "key-1".into(),
        created_at: chrono::Utc::now(),
        started_at: None,
        finished_at: None,
        expires_at: None,
        file_name: "post_metrics-1.csv".into(),
        attempts: 0,
        connection_ids: Vec::new(),
    }
}

fn running(job: &ExportJob) -> ExportJob {
    ExportJob {
        status: ExportStatus::Running,
        attempts: job.attempts + 1,
        ..job.clone()
    }
}

#[tokio::test]
async fn a_claimed_job_runs_once_until_its_runner_stops_writing() {
    let Some(pg) = Postgres::from_env() else {
        return;
    };
    let database = pg.connect().await;
    let (one, other) = (
        Arc::new(PgExportJobs::new(database.pool().clone())),
        Arc::new(PgExportJobs::new(database.pool().clone())),
    );
    let queued = queued_job("job-1");
    one.create(&queued).await.unwrap();

    // Two runners claim the queued job at once: exactly one wins.
    let first = running(&queued);
    let (a, b) = tokio::join!(
        one.claim(&queued, &first, Duration::from_secs(60)),
        other.claim(&queued, &first, Duration::from_secs(60)),
    );
    assert_eq!([a.unwrap(), b.unwrap()].iter().filter(|w| **w).count(), 1);
    // While its runner writes, the running job is not taken over...
    let second = running(&first);
    assert!(
        !other
            .claim(&first, &second, Duration::from_secs(60))
            .await
            .unwrap()
    );
    // ...once it has stopped writing (a crashed instance), it is, once.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        other
            .claim(&first, &second, Duration::from_millis(10))
            .await
            .unwrap()
    );
    assert!(
        !one.claim(&first, &second, Duration::from_millis(10))
            .await
            .unwrap()
    );
    // The old runner's late writes are refused: the new run's state stands.
    let late = ExportJob {
        rows_written: 99,
        ..first.clone()
    };
    assert!(matches!(
        one.update(&late).await,
        Err(StoreError::TakenOver(id)) if id == "job-1"
    ));
    assert_eq!(other.get("job-1").await.unwrap().unwrap(), second);
    database.close().await;
}

#[tokio::test]
async fn an_export_file_streams_back_in_chunks_from_any_handle_until_deleted() {
    let Some(pg) = Postgres::from_env() else {
        return;
    };
    let database = pg.connect().await;
    let writer = PgExportJobs::new(database.pool().clone());
    let reader = PgExportJobs::new(pg.connect().await.pool().clone());
    writer.create(&queued_job("job-2")).await.unwrap();
    // Over two chunks, with bytes that would show a chunk out of order.
    let content: Vec<u8> = (0..1_300_000u32).map(|i| (i % 251) as u8).collect();
    let expected = content.clone();
    let written = writer
        .write_file(
            "job-2",
            Box::new(move |out: &mut dyn Write| {
                for piece in content.chunks(10_000) {
                    out.write_all(piece)?;
                }
                Ok(content.len() as u64)
            }),
        )
        .await
        .unwrap();
    assert_eq!(written, expected.len() as u64);
    let mut read = Vec::new();
    let mut file = reader.open_file("job-2").await.unwrap().expect("a file");
    file.read_to_end(&mut read).await.unwrap();
    assert!(read == expected, "the file reads back as written");
    // A file for no job is refused; deleting the job removes its file.
    assert!(matches!(
        writer
            .write_file("no-such-job", Box::new(|_: &mut dyn Write| Ok(0)))
            .await,
        Err(StoreError::NotFound(_))
    ));
    writer.delete(&["job-2".to_string()]).await.unwrap();
    assert!(reader.open_file("job-2").await.unwrap().is_none());
    assert!(reader.get("job-2").await.unwrap().is_none());
    database.close().await;
}

fn cli(args: &[&str], dir: &std::path::Path, url: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tokenkeeper"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("TOKENKEEPER_ENCRYPTION_KEY", TEST_KEY)
        .env("TOKENKEEPER_DATABASE_URL", url)
        .output()
        .unwrap()
}

fn ok(out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn a_json_store_moved_to_postgres_and_exported_back_verifies_with_the_same_records() {
    let Some(pg) = Postgres::from_env() else {
        return;
    };
    pg.connect().await.close().await; // creates the schema
    let url = in_schema(&pg.url, &pg.schema);
    let source = tempfile::tempdir().unwrap();
    let file = crate::helpers::open_store(source.path());
    let cipher = crate::helpers::test_cipher();
    for i in 0..3 {
        let c = file
            .put(crate::helpers::page_connection(
                &cipher,
                &format!("10451853820000{i}"),
                "EAAB-round-trip",
            ))
            .await
            .unwrap();
        file.update(&c.id, |c| c.label = "edited".into())
            .await
            .unwrap();
    }
    let originals: Vec<_> = file.list().iter().map(|c| (**c).clone()).collect();
    file.close().await;
    ok(&cli(
        &["store", "migrate", "--to", "postgres"],
        source.path(),
        &url,
    ));

    let target = tempfile::tempdir().unwrap();
    let to = target.path().join("exported");
    let to_arg = to.to_str().unwrap();
    let out = ok(&cli(
        &["store", "export", "--to", to_arg],
        source.path(),
        &url,
    ));
    assert!(out.contains("exported 3 connections"), "{out}");
    assert!(!out.contains("EAAB-round-trip") && !out.contains("postgres://"));
    let verified = ok(&cli(&["store", "verify"], &to, &url));
    assert!(verified.contains("ok: 3 connections"), "{verified}");
    let exported = tokenkeeper::store::JsonFileStore::open_read_only(&to).unwrap();
    let back: Vec<_> = exported.list().iter().map(|c| (**c).clone()).collect();
    assert_eq!(
        back, originals,
        "ids, versions and JWE strings as they were"
    );

    // An existing store is never overwritten: exit 1, the file unchanged.
    let before = std::fs::read(to.join("tokens.json")).unwrap();
    let again = cli(&["store", "export", "--to", to_arg], source.path(), &url);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a store"));
    assert_eq!(std::fs::read(to.join("tokens.json")).unwrap(), before);
    // No database configured is a usage error.
    let usage = std::process::Command::new(env!("CARGO_BIN_EXE_tokenkeeper"))
        .args(["store", "export", "--to"])
        .arg(target.path().join("other"))
        .env("TOKENKEEPER_ENCRYPTION_KEY", TEST_KEY)
        .env_remove("TOKENKEEPER_DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2));
    assert!(!target.path().join("other").exists());
}

/// Three rows for any kind, counting how often a run asked for them.
#[derive(Default)]
struct CountingSource {
    runs: std::sync::atomic::AtomicUsize,
}

impl RowSource for CountingSource {
    fn validate(&self, _kind: &str, _params: &Value) -> Result<(), ExportError> {
        Ok(())
    }

    fn rows(
        &self,
        _kind: &str,
        _params: Value,
    ) -> BoxFuture<'static, Result<SourcedRows, ExportError>> {
        self.runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let rows = (0..3).map(|i| Ok(json!({ "n": i }).as_object().unwrap().clone()));
        Box::pin(async move {
            Ok(SourcedRows {
                connection_ids: Vec::new(),
                rows: futures::stream::iter(rows).boxed(),
            })
        })
    }

    fn leading_columns(&self, _kind: &str) -> Vec<String> {
        Vec::new()
    }
}

#[tokio::test]
async fn a_job_left_running_by_a_crashed_instance_is_run_again_by_one_survivor() {
    let Some(pg) = Postgres::from_env() else {
        return;
    };
    let database = pg.connect().await;
    let store = Arc::new(PgExportJobs::new(database.pool().clone()));
    let left = running(&queued_job("job-3"));
    store.create(&left).await.unwrap();
    // Its instance died a while ago: nothing has written the job since.
    sqlx::query("UPDATE export_jobs SET heartbeat_at = now() - interval '1 hour'")
        .execute(database.pool())
        .await
        .unwrap();
    let source = Arc::new(CountingSource::default());
    let spool = tempfile::tempdir().unwrap();
    let open = || {
        Exports::open(
            ExportsStorage {
                jobs: store.clone(),
                spool_dir: spool.path().to_path_buf(),
            },
            Duration::from_secs(3600),
            2,
            source.clone(),
        )
    };
    // Two survivors start at once; both find the job, one runs it.
    let (b, c) = tokio::join!(open(), open());
    let (b, c) = (b.unwrap(), c.unwrap());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let done = loop {
        let job = c.get("job-3").await.unwrap().unwrap();
        if job.status.is_finished() {
            break job;
        }
        assert!(tokio::time::Instant::now() < deadline, "still {job:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(done.status, ExportStatus::Completed, "{done:?}");
    assert_eq!(done.attempts, 2, "one more run, not two");
    assert_eq!(done.row_count, Some(3));
    b.shutdown().await;
    c.shutdown().await;
    assert_eq!(source.runs.load(std::sync::atomic::Ordering::SeqCst), 1);
    database.close().await;
}
