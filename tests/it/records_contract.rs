//! The contract of the stores of the records kept besides connections
//! (refresh runs, OAuth state nonces, export jobs and their files, the
//! insights cache), written once over the traits and run against each
//! backend (the embedded one, in a temp folder; PostgreSQL, in a schema of
//! its own). A new backend adds a `Records` impl (and an `ExportRecords`
//! one) and one `contract!` line.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgPool;
use tempfile::TempDir;
use tokenkeeper::domain::{ExportJob, ExportStatus, RefreshRun, RunError, RunStatus, Tally};
use tokenkeeper::insights::cache::{FileCache, InsightsCache};
use tokenkeeper::insights::pg_cache::PgCache;
use tokenkeeper::store::postgres::{PgNonces, PgRuns};
use tokenkeeper::store::{
    ExportFiles, ExportJobStore, MemoryNonces, Nonce, NonceError, NonceStore, RunStore, RunsFile,
    StoreError,
};
use tokio::io::AsyncReadExt;

/// A backend under test: opens each store, again and again, on the same data.
pub trait Records: Sync {
    /// The run store, keeping the `keep` most recent runs.
    fn runs(&self, keep: usize) -> Arc<dyn RunStore>;
    fn nonces(&self) -> Arc<dyn NonceStore>;
    /// The insights cache, keeping entries for `ttl`.
    fn cache(&self, ttl: Duration) -> Arc<dyn InsightsCache>;
}

/// A backend that keeps export jobs and their files too.
pub trait ExportRecords: Sync {
    fn export_jobs(&self) -> impl Future<Output = Arc<dyn ExportJobStore>> + Send;
}

pub struct Embedded {
    dir: TempDir,
}

impl Embedded {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }
}

impl Records for Embedded {
    fn runs(&self, keep: usize) -> Arc<dyn RunStore> {
        Arc::new(RunsFile::open(self.dir.path(), keep))
    }

    fn nonces(&self) -> Arc<dyn NonceStore> {
        Arc::new(MemoryNonces::default())
    }

    fn cache(&self, ttl: Duration) -> Arc<dyn InsightsCache> {
        Arc::new(FileCache::new(&self.dir.path().join("cache"), ttl))
    }
}

impl ExportRecords for Embedded {
    async fn export_jobs(&self) -> Arc<dyn ExportJobStore> {
        let dir = self.dir.path().join("exports");
        Arc::new(ExportFiles::open(dir).await.unwrap())
    }
}

/// The PostgreSQL implementations on the pool of a connection store in a
/// schema of its own; each store opened is a new handle on the same tables.
pub struct Postgres {
    pool: PgPool,
}

impl Postgres {
    /// `None` (the case is skipped, and says so) unless
    /// `TOKENKEEPER_TEST_DATABASE_URL` is set; under CI it must be.
    pub async fn from_env() -> Option<Self> {
        let backend = crate::storage_contract::Postgres::from_env()?;
        let store = backend.connect().await;
        Some(Self {
            pool: store.pool().clone(),
        })
    }
}

impl Records for Postgres {
    fn runs(&self, keep: usize) -> Arc<dyn RunStore> {
        Arc::new(PgRuns::new(self.pool.clone(), keep))
    }

    fn nonces(&self) -> Arc<dyn NonceStore> {
        Arc::new(PgNonces::new(self.pool.clone()))
    }

    fn cache(&self, ttl: Duration) -> Arc<dyn InsightsCache> {
        Arc::new(PgCache::new(self.pool.clone(), ttl))
    }
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000 + seconds, 0).unwrap()
}

/// A finished run `n` of team `team-a`, with one error.
fn run(n: i64) -> RefreshRun {
    let counts = BTreeMap::from([("refreshed".to_string(), 1), ("failed".to_string(), 1)]);
    let tally = Tally {
        total: 2,
        done: 2,
        counts: counts.clone(),
    };
    RefreshRun {
        id: format!("run-{n}"),
        trigger: "schedule".into(),
        status: RunStatus::Finished,
        started_at: at(n * 60),
        finished_at: Some(at(n * 60 + 5)),
        total: 2,
        done: 2,
        counts,
        errors: vec![RunError {
            connection_id: format!("conn-{n}"),
            label: "A page".into(),
            class: None,
            code: Some(190),
            subcode: None,
            message: "revoked".into(),
            team_id: Some("team-a".into()),
        }],
        by_team: BTreeMap::from([(Some("team-a".to_string()), tally)]),
    }
}

fn ids(runs: &[RefreshRun]) -> Vec<&str> {
    runs.iter().map(|r| r.id.as_str()).collect()
}

pub async fn runs_are_kept_newest_first_and_bounded(records: &impl Records) {
    let store = records.runs(3);
    for n in 1..=5 {
        store.save(&run(n)).await.unwrap();
    }
    let recent = store.recent(10).await.unwrap();
    assert_eq!(ids(&recent), ["run-5", "run-4", "run-3"]);
    assert_eq!(ids(&store.recent(2).await.unwrap()), ["run-5", "run-4"]);
    assert!(store.get("run-1").await.unwrap().is_none(), "dropped");
    let back = store.get("run-4").await.unwrap().expect("kept");
    assert_eq!(back.errors[0].team_id.as_deref(), Some("team-a"));
}

pub async fn a_saved_run_is_updated_in_place_and_survives_reopening(records: &impl Records) {
    let store = records.runs(5);
    let mut first = run(1);
    first.status = RunStatus::Running;
    first.finished_at = None;
    store.save(&first).await.unwrap();
    store.save(&run(1)).await.unwrap();
    store.save(&run(2)).await.unwrap();
    let recent = store.recent(10).await.unwrap();
    assert_eq!(ids(&recent), ["run-2", "run-1"]);
    assert_eq!(recent[1].status, RunStatus::Finished);

    let reopened = records.runs(5);
    let again = reopened.recent(10).await.unwrap();
    assert_eq!(ids(&again), ["run-2", "run-1"]);
    // The team facts the API view leaves out come back too.
    let seen = again[0].seen_by(Some(&["team-a".to_string()]));
    assert_eq!((seen.total, seen.errors.len()), (2, 1));
    assert_eq!(again[0].seen_by(Some(&["team-b".to_string()])).total, 0);
}

fn nonce(id: &str, ttl_secs: i64) -> Nonce {
    Nonce {
        id: id.into(),
        payload: format!("payload of {id}"),
        issued_at: at(0),
        expires_at: at(ttl_secs),
    }
}

pub async fn a_nonce_is_taken_once(records: &impl Records) {
    let store = records.nonces();
    store.issue(nonce("n1", 600)).await.unwrap();
    assert_eq!(store.take("n1", at(1)).await.unwrap(), "payload of n1");
    let again = store.take("n1", at(2)).await.unwrap_err();
    assert!(matches!(again, NonceError::AlreadyTaken), "{again}");
    let unknown = store.take("never-issued", at(2)).await.unwrap_err();
    assert!(matches!(unknown, NonceError::Unknown), "{unknown}");
}

pub async fn of_concurrent_takes_exactly_one_wins(records: &impl Records) {
    let store = records.nonces();
    // Rounds, so that the takes of some round do overlap.
    for round in 0..20 {
        let id = format!("n{round}");
        store.issue(nonce(&id, 600)).await.unwrap();
        let takes: Vec<_> = (0..8)
            .map(|_| {
                let (store, id) = (store.clone(), id.clone());
                tokio::spawn(async move { store.take(&id, at(1)).await })
            })
            .collect();
        let mut won = 0;
        for take in takes {
            match take.await.unwrap() {
                Ok(payload) => {
                    assert_eq!(payload, format!("payload of {id}"));
                    won += 1;
                }
                Err(e) => assert!(matches!(e, NonceError::AlreadyTaken), "{e}"),
            }
        }
        assert_eq!(won, 1, "round {round}");
    }
}

pub async fn an_expired_nonce_is_refused(records: &impl Records) {
    let store = records.nonces();
    store.issue(nonce("n1", 10)).await.unwrap();
    let err = store.take("n1", at(11)).await.unwrap_err();
    assert!(matches!(err, NonceError::Expired), "{err}");
    assert!(store.take("n1", at(12)).await.is_err(), "still refused");
}

fn job(id: &str, created: i64) -> ExportJob {
    ExportJob {
        id: id.into(),
        kind: "post_metrics".into(),
        params: json!({"since": "2024-05-01"}),
        format: "csv".into(),
        status: ExportStatus::Queued,
        rows_written: 0,
        row_count: None,
        error: None,
        owner: "key-1".into(),
        created_at: at(created),
        started_at: None,
        finished_at: None,
        expires_at: None,
        file_name: format!("post_metrics-{id}.csv"),
        attempts: 0,
    }
}

pub async fn an_export_job_goes_from_queued_to_deleted(records: &impl ExportRecords) {
    let store = records.export_jobs().await;
    store.create(&job("b", 2)).await.unwrap();
    store.create(&job("a", 1)).await.unwrap();
    let mut done = job("b", 2);
    done.status = ExportStatus::Completed;
    done.row_count = Some(3);
    done.attempts = 1;
    done.finished_at = Some(at(5));
    store.update(&done).await.unwrap();
    assert_eq!(store.get("b").await.unwrap(), Some(done.clone()));
    let err = store.update(&job("nope", 3)).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");

    let reopened = records.export_jobs().await;
    let listed = reopened.list().await.unwrap();
    assert_eq!(listed, [job("a", 1), done], "oldest first, as recorded");
    reopened
        .delete(&["b".to_string(), "unknown".to_string()])
        .await
        .unwrap();
    assert!(reopened.get("b").await.unwrap().is_none());
    assert_eq!(reopened.list().await.unwrap().len(), 1);
}

pub async fn an_export_file_reads_back_as_written_until_deleted(records: &impl ExportRecords) {
    let store = records.export_jobs().await;
    store.create(&job("a", 1)).await.unwrap();
    let bytes = "\u{feff}date,page_id\r\n2024-05-01,\"1, 2\"\r\n".as_bytes();
    let written = store
        .write_file(
            "a",
            Box::new(move |out: &mut dyn Write| {
                out.write_all(bytes)?;
                Ok(bytes.len() as u64)
            }),
        )
        .await
        .unwrap();
    assert_eq!(written, bytes.len() as u64);
    let mut file = store.open_file("a").await.unwrap().expect("a file");
    let mut back = Vec::new();
    file.read_to_end(&mut back).await.unwrap();
    assert_eq!(back, bytes);

    store.delete_file("a").await.unwrap();
    assert!(store.open_file("a").await.unwrap().is_none());
    store.delete_file("a").await.unwrap();
    assert!(store.open_file("never").await.unwrap().is_none());
}

pub async fn a_cached_answer_is_a_miss_after_its_ttl(records: &impl Records) {
    let cache = records.cache(Duration::from_secs(60));
    cache.put("k", &json!({"a": 1}), at(0)).await;
    assert_eq!(cache.get("k", at(59)).await, Some(json!({"a": 1})));
    assert_eq!(
        records.cache(Duration::from_secs(60)).get("k", at(1)).await,
        Some(json!({"a": 1}))
    );
    assert!(cache.get("k", at(61)).await.is_none());
    assert!(cache.get("other", at(0)).await.is_none());
}

pub async fn a_cached_answer_keeps_its_key_order(records: &impl Records) {
    let cache = records.cache(Duration::from_secs(60));
    let answer = json!({"zeta": 1, "alpha": {"y": 2, "b": 3}, "mid": [1.5, "x"]});
    cache.put("k", &answer, at(0)).await;
    let back = cache.get("k", at(1)).await.expect("a hit");
    assert_eq!(back.to_string(), answer.to_string());
}

pub async fn a_zero_ttl_cache_keeps_and_serves_nothing(records: &impl Records) {
    let (off, on) = (
        records.cache(Duration::ZERO),
        records.cache(Duration::from_secs(60)),
    );
    off.put("k", &json!(1), at(0)).await;
    assert!(on.get("k", at(1)).await.is_none(), "nothing was stored");
    on.put("k", &json!(1), at(0)).await;
    assert!(off.get("k", at(1)).await.is_none(), "nothing is served");
}

/// One test per contract case for a backend, skipped when `$backend` is
/// `None` (on two threads, so that the concurrent cases are concurrent).
macro_rules! contract {
    ($module:ident, $backend:expr, [$($case:ident),* $(,)?]) => {
        mod $module {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    if let Some(backend) = $backend {
                        super::$case(&backend).await;
                    }
                }
            )*
        }
    };
}

contract!(
    embedded,
    Some(Embedded::new()),
    [
        runs_are_kept_newest_first_and_bounded,
        a_saved_run_is_updated_in_place_and_survives_reopening,
        a_nonce_is_taken_once,
        of_concurrent_takes_exactly_one_wins,
        an_expired_nonce_is_refused,
        an_export_job_goes_from_queued_to_deleted,
        an_export_file_reads_back_as_written_until_deleted,
        a_cached_answer_is_a_miss_after_its_ttl,
        a_cached_answer_keeps_its_key_order,
        a_zero_ttl_cache_keeps_and_serves_nothing,
    ]
);

contract!(
    postgres,
    Postgres::from_env().await,
    [
        runs_are_kept_newest_first_and_bounded,
        a_saved_run_is_updated_in_place_and_survives_reopening,
        a_nonce_is_taken_once,
        of_concurrent_takes_exactly_one_wins,
        an_expired_nonce_is_refused,
        a_cached_answer_is_a_miss_after_its_ttl,
        a_cached_answer_keeps_its_key_order,
        a_zero_ttl_cache_keeps_and_serves_nothing,
    ]
);
