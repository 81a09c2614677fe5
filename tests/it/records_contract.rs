//! The contract of the stores of the records kept besides connections
//! (refresh runs, OAuth state nonces, export jobs and their files, the
//! insights cache, the webhook outbox, data deletion requests), written once over the traits and run against each
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
use tokenkeeper::domain::{
    AttemptOutcome, DeletionRequest, DeletionStatus, Delivery, DeliveryStatus, ExportJob,
    ExportStatus, Provider, RefreshRun, RunError, RunStatus, Tally,
};
use tokenkeeper::insights::cache::{FileCache, InsightsCache};
use tokenkeeper::insights::pg_cache::PgCache;
use tokenkeeper::store::postgres::{PgDeletions, PgNonces, PgOutbox, PgRuns};
use tokenkeeper::store::{
    DeletionStore, DeletionsFile, DeliveryFilter, ExportFiles, ExportJobStore, MemoryNonces, Nonce,
    NonceError, NonceStore, OutboxFile, OutboxStore, RunStore, RunsFile, StoreError,
};
use tokio::io::AsyncReadExt;

/// A backend under test: opens each store, again and again, on the same data.
pub trait Records: Sync {
    /// The run store, keeping the `keep` most recent runs.
    fn runs(&self, keep: usize) -> Arc<dyn RunStore>;
    fn nonces(&self) -> Arc<dyn NonceStore>;
    /// The insights cache, keeping entries for `ttl`.
    fn cache(&self, ttl: Duration) -> Arc<dyn InsightsCache>;
    fn outbox(&self) -> Arc<dyn OutboxStore>;
    /// A second handle on the outbox `first` is, as a second instance
    /// would have one: the embedded file has one writer, so it is `first`.
    fn outbox_again(&self, first: &Arc<dyn OutboxStore>) -> Arc<dyn OutboxStore>;
    fn deletions(&self) -> Arc<dyn DeletionStore>;
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

    fn outbox(&self) -> Arc<dyn OutboxStore> {
        Arc::new(OutboxFile::open(self.dir.path()).unwrap())
    }

    fn outbox_again(&self, first: &Arc<dyn OutboxStore>) -> Arc<dyn OutboxStore> {
        first.clone()
    }

    fn deletions(&self) -> Arc<dyn DeletionStore> {
        Arc::new(DeletionsFile::open(self.dir.path()).unwrap())
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

    fn outbox(&self) -> Arc<dyn OutboxStore> {
        Arc::new(PgOutbox::new(self.pool.clone()))
    }

    fn outbox_again(&self, _first: &Arc<dyn OutboxStore>) -> Arc<dyn OutboxStore> {
        self.outbox()
    }

    fn deletions(&self) -> Arc<dyn DeletionStore> {
        Arc::new(PgDeletions::new(self.pool.clone()))
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
        connection_ids: Vec::new(),
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
    cache.put("k", &json!({"a": 1}), &[], at(0)).await;
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
    cache.put("k", &answer, &[], at(0)).await;
    let back = cache.get("k", at(1)).await.expect("a hit");
    assert_eq!(back.to_string(), answer.to_string());
}

pub async fn a_zero_ttl_cache_keeps_and_serves_nothing(records: &impl Records) {
    let (off, on) = (
        records.cache(Duration::ZERO),
        records.cache(Duration::from_secs(60)),
    );
    off.put("k", &json!(1), &[], at(0)).await;
    assert!(on.get("k", at(1)).await.is_none(), "nothing was stored");
    on.put("k", &json!(1), &[], at(0)).await;
    assert!(off.get("k", at(1)).await.is_none(), "nothing is served");
}

pub async fn forgetting_connections_removes_their_answers_and_those_of_unknown_source(
    records: &impl Records,
) {
    let cache = records.cache(Duration::from_secs(60));
    let ids = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    cache.put("a", &json!(1), &ids(&["conn_a"]), at(0)).await;
    cache
        .put("ab", &json!(2), &ids(&["conn_b", "conn_a"]), at(0))
        .await;
    cache.put("b", &json!(3), &ids(&["conn_b"]), at(0)).await;
    cache.put("unknown", &json!(4), &[], at(0)).await;
    assert_eq!(cache.forget(&ids(&["conn_a"])).await.unwrap(), 3);
    for gone in ["a", "ab", "unknown"] {
        assert!(cache.get(gone, at(1)).await.is_none(), "{gone}");
    }
    assert_eq!(cache.get("b", at(1)).await, Some(json!(3)));
    assert_eq!(cache.forget(&ids(&["conn_a"])).await.unwrap(), 0);
}

pub async fn a_deletion_request_is_kept_by_code_and_replaced_in_place(records: &impl Records) {
    let store = records.deletions();
    let mut request = DeletionRequest::received("c0de".into(), Provider::Facebook, at(0));
    store.save(&request).await.unwrap();
    assert_eq!(store.get("c0de").await.unwrap(), Some(request.clone()));
    request.connection_ids = vec!["conn_1".into(), "conn_2".into()];
    request.status = DeletionStatus::Completed;
    request.completed_at = Some(at(5));
    request.exports = 1;
    store.save(&request).await.unwrap();
    assert_eq!(
        records.deletions().get("c0de").await.unwrap(),
        Some(request),
        "replaced, and read back by a new handle"
    );
    assert_eq!(store.get("other").await.unwrap(), None);
}

fn delivery(id: &str, team: &str, created: i64) -> Delivery {
    Delivery {
        id: id.into(),
        event_type: "connection.reauth_required".into(),
        team_id: Some(team.into()),
        connection_id: Some(format!("conn-{id}")),
        payload: format!(r#"{{"type":"connection.reauth_required","data":{{"n":"{id}"}}}}"#),
        status: DeliveryStatus::Pending,
        attempts: 0,
        created_at: at(created),
        next_attempt_at: Some(at(created)),
        last_attempt_at: None,
        last_status: None,
        last_error: None,
        delivered_at: None,
    }
}

fn all() -> DeliveryFilter {
    DeliveryFilter {
        limit: 100,
        ..DeliveryFilter::default()
    }
}

pub async fn a_claimed_delivery_is_held_then_recorded_and_survives_reopening(
    records: &impl Records,
) {
    let outbox = records.outbox();
    outbox
        .enqueue(&[delivery("a", "t1", 10), delivery("b", "t2", 20)])
        .await
        .unwrap();
    assert!(
        outbox
            .claim_due(at(5), at(65), 10)
            .await
            .unwrap()
            .is_empty(),
        "not due yet"
    );
    let due = outbox.claim_due(at(30), at(90), 10).await.unwrap();
    let due_ids: Vec<&str> = due.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(due_ids, ["a", "b"], "oldest due first");
    assert!(
        outbox
            .claim_due(at(31), at(91), 10)
            .await
            .unwrap()
            .is_empty(),
        "held"
    );

    let mut a = due[0].clone();
    a.attempted(at(32), &AttemptOutcome::Delivered { status: 204 });
    outbox.record(&a).await.unwrap();
    let mut b = due[1].clone();
    b.attempted(
        at(32),
        &AttemptOutcome::Failed {
            status: Some(503),
            error: "HTTP 503".into(),
            retry_at: Some(at(100)),
        },
    );
    outbox.record(&b).await.unwrap();

    let reopened = records.outbox();
    assert_eq!(reopened.get("a").await.unwrap().unwrap(), a);
    assert_eq!(reopened.get("b").await.unwrap().unwrap(), b);
    assert_eq!(reopened.next_due().await.unwrap(), Some(at(100)));
    assert!(
        reopened
            .claim_due(at(99), at(159), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = reopened.claim_due(at(100), at(160), 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id.as_str(), again[0].attempts), ("b", 1));

    let listed = reopened.list(&all()).await.unwrap();
    let listed: Vec<&str> = listed.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(listed, ["b", "a"], "newest first");
    let delivered = DeliveryFilter {
        status: Some(DeliveryStatus::Delivered),
        ..all()
    };
    assert_eq!(reopened.list(&delivered).await.unwrap(), [a.clone()]);
    let team = DeliveryFilter {
        teams: Some(vec!["t2".into()]),
        ..all()
    };
    assert_eq!(reopened.list(&team).await.unwrap(), [b.clone()]);
    let one = DeliveryFilter { limit: 1, ..all() };
    assert_eq!(reopened.list(&one).await.unwrap().len(), 1);
    assert_eq!(reopened.get("nope").await.unwrap(), None);
}

pub async fn concurrent_claims_take_each_delivery_once(records: &impl Records) {
    let outbox = records.outbox();
    let queued: Vec<Delivery> = (0..40)
        .map(|n| delivery(&format!("d{n:02}"), "t", n))
        .collect();
    outbox.enqueue(&queued).await.unwrap();
    let claim = |o: Arc<dyn OutboxStore>| async move {
        let mut got = Vec::new();
        for _ in 0..10 {
            got.extend(o.claim_due(at(100), at(160), 3).await.unwrap());
        }
        got
    };
    let (x, y) = tokio::join!(
        tokio::spawn(claim(outbox.clone())),
        tokio::spawn(claim(records.outbox_again(&outbox)))
    );
    let mut ids: Vec<String> = x
        .unwrap()
        .into_iter()
        .chain(y.unwrap())
        .map(|d| d.id)
        .collect();
    let taken = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), taken, "no delivery taken twice");
    assert_eq!(taken, 40, "every due delivery taken");
    assert!(
        outbox
            .claim_due(at(159), at(200), 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        outbox.claim_due(at(160), at(220), 100).await.unwrap().len(),
        40,
        "a lapsed claim is due again"
    );
}

pub async fn a_requeued_delivery_is_due_now_and_only_finished_ones_are_pruned(
    records: &impl Records,
) {
    let outbox = records.outbox();
    outbox
        .enqueue(&[
            delivery("old", "t", 0),
            delivery("kept", "t", 1),
            delivery("new", "t", 500),
        ])
        .await
        .unwrap();
    let mut old = outbox.claim_due(at(0), at(60), 1).await.unwrap().remove(0);
    old.attempted(
        at(1),
        &AttemptOutcome::Failed {
            status: None,
            error: "timed out".into(),
            retry_at: None,
        },
    );
    outbox.record(&old).await.unwrap();
    assert_eq!(old.status, DeliveryStatus::Exhausted);
    assert_eq!(
        outbox.prune(at(400)).await.unwrap(),
        1,
        "the exhausted one, not the pending ones"
    );
    assert_eq!(outbox.get("old").await.unwrap(), None);
    assert!(outbox.get("kept").await.unwrap().is_some());

    let mut kept = outbox.claim_due(at(2), at(62), 1).await.unwrap().remove(0);
    kept.attempted(
        at(3),
        &AttemptOutcome::Failed {
            status: Some(500),
            error: "HTTP 500".into(),
            retry_at: None,
        },
    );
    outbox.record(&kept).await.unwrap();
    let requeued = outbox.requeue("kept", at(700)).await.unwrap().unwrap();
    assert_eq!(requeued.status, DeliveryStatus::Pending);
    assert_eq!(requeued.attempts, 1, "the attempts so far are kept");
    assert_eq!(requeued.next_attempt_at, Some(at(700)));
    assert_eq!(
        records.outbox().get("kept").await.unwrap().unwrap(),
        requeued
    );
    let due: Vec<String> = outbox
        .claim_due(at(700), at(760), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(due, ["new", "kept"]);
    assert_eq!(outbox.requeue("nope", at(700)).await.unwrap(), None);
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
        forgetting_connections_removes_their_answers_and_those_of_unknown_source,
        a_deletion_request_is_kept_by_code_and_replaced_in_place,
        a_claimed_delivery_is_held_then_recorded_and_survives_reopening,
        concurrent_claims_take_each_delivery_once,
        a_requeued_delivery_is_due_now_and_only_finished_ones_are_pruned,
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
        forgetting_connections_removes_their_answers_and_those_of_unknown_source,
        a_deletion_request_is_kept_by_code_and_replaced_in_place,
        a_claimed_delivery_is_held_then_recorded_and_survives_reopening,
        concurrent_claims_take_each_delivery_once,
        a_requeued_delivery_is_due_now_and_only_finished_ones_are_pruned,
    ]
);
