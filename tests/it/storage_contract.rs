//! The contract every `ConnectionStore` keeps, written once over the trait
//! and run against each backend (the JSON file store, in a temp folder; the
//! PostgreSQL store, in a schema of its own on the server that
//! `TOKENKEEPER_TEST_DATABASE_URL` names). A new backend adds a `Backend`
//! impl and one `contract!` line.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tempfile::TempDir;
use tokenkeeper::clock::{Clock, OffsetClock};
use tokenkeeper::domain::{Connection, ConnectionKind, Provider, StoredSecrets};
use tokenkeeper::secret::Secret;
use tokenkeeper::store::crypto::{Binding, Field};
use tokenkeeper::store::{
    Cipher, ConnectionStore, ListFilter, PgConnectionStore, StoreError, Write, WriteGuard,
};

use crate::helpers::{open_store_with_clock, test_cipher};

/// A backend under test: opens its store, again and again, on the same data,
/// with leases that expire by `clock`.
#[async_trait::async_trait]
pub trait Backend: Sync {
    async fn open(&self) -> Arc<dyn ConnectionStore>;
    fn clock(&self) -> &OffsetClock;
}

pub struct JsonFile {
    dir: TempDir,
    clock: OffsetClock,
}

impl JsonFile {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            clock: OffsetClock::default(),
        }
    }
}

#[async_trait::async_trait]
impl Backend for JsonFile {
    async fn open(&self) -> Arc<dyn ConnectionStore> {
        Arc::new(open_store_with_clock(
            self.dir.path(),
            Arc::new(self.clock.clone()),
        ))
    }

    fn clock(&self) -> &OffsetClock {
        &self.clock
    }
}

/// The PostgreSQL store in a schema of its own (`tk_<uuid>`), so cases run
/// side by side on one database without seeing each other's rows.
pub struct Postgres {
    pub url: String,
    pub schema: String,
    clock: OffsetClock,
}

impl Postgres {
    /// `None` (the case is skipped, and says so) unless
    /// `TOKENKEEPER_TEST_DATABASE_URL` is set; under CI it must be.
    pub fn from_env() -> Option<Self> {
        let Ok(url) = std::env::var("TOKENKEEPER_TEST_DATABASE_URL") else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "TOKENKEEPER_TEST_DATABASE_URL is not set: under CI the PostgreSQL contract \
                 cases must run (.ci/run starts a server and sets it)"
            );
            eprintln!(
                "skipping PostgreSQL contract case: TOKENKEEPER_TEST_DATABASE_URL is not set"
            );
            return None;
        };
        Some(Self {
            url,
            schema: format!("tk_{}", uuid::Uuid::new_v4().simple()),
            clock: OffsetClock::default(),
        })
    }

    /// Another store handle (its own pool) on this backend's schema.
    pub async fn connect(&self) -> PgConnectionStore {
        self.connect_with(test_cipher()).await.unwrap()
    }

    /// [`Postgres::connect`] with the keyring `cipher`.
    pub async fn connect_with(&self, cipher: Cipher) -> Result<PgConnectionStore, StoreError> {
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&self.url)
            .await
            .expect("connecting to TOKENKEEPER_TEST_DATABASE_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS {}",
            self.schema
        )))
        .execute(&admin)
        .await
        .unwrap();
        admin.close().await;
        let options = PgConnectOptions::from_str(&self.url)
            .unwrap()
            .options([("search_path", self.schema.as_str())]);
        PgConnectionStore::connect_with(
            options,
            PgPoolOptions::new().max_connections(4),
            cipher,
            Arc::new(self.clock.clone()),
        )
        .await
    }
}

#[async_trait::async_trait]
impl Backend for Postgres {
    async fn open(&self) -> Arc<dyn ConnectionStore> {
        Arc::new(self.connect().await)
    }

    fn clock(&self) -> &OffsetClock {
        &self.clock
    }
}

/// A new record of `provider`/`kind` for `external_id` in `team`, its token
/// sealed by `store`.
fn record(
    store: &dyn ConnectionStore,
    provider: Provider,
    kind: ConnectionKind,
    external_id: &str,
    team: Option<&str>,
) -> Connection {
    let binding = Binding::new(provider, kind, external_id, team, Field::AccessToken);
    let secrets = StoredSecrets {
        access_token: store
            .secrets()
            .unwrap()
            .seal(&Secret::new(format!("token-{external_id}")), &binding)
            .unwrap(),
        refresh_token: None,
    };
    let mut conn = Connection::new(
        provider,
        kind,
        external_id,
        format!("Label {external_id}"),
        secrets,
        Utc::now(),
    );
    conn.team_id = team.map(str::to_string);
    conn
}

fn user(store: &dyn ConnectionStore, external_id: &str, team: Option<&str>) -> Connection {
    record(
        store,
        Provider::Facebook,
        ConnectionKind::User,
        external_id,
        team,
    )
}

fn page(store: &dyn ConnectionStore, external_id: &str) -> Connection {
    record(
        store,
        Provider::Facebook,
        ConnectionKind::Page,
        external_id,
        None,
    )
}

/// The lease time of the lease cases, and a step of the clock past it.
const TTL: Duration = Duration::from_secs(30);

fn past(ttl: Duration) -> chrono::Duration {
    chrono::Duration::from_std(ttl).unwrap() + chrono::Duration::seconds(1)
}

async fn update(
    store: &dyn ConnectionStore,
    id: &str,
    guard: WriteGuard,
    edit: impl FnOnce(&mut Connection) + Send + 'static,
) -> Result<Arc<Connection>, StoreError> {
    store.update(id, guard, Box::new(edit)).await
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    let err = result.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
}

async fn insert(store: &dyn ConnectionStore, conn: Connection) -> Arc<Connection> {
    store.upsert(conn, Box::new(|_| {})).await.unwrap()
}

pub async fn get_returns_the_stored_record_and_none_for_an_unknown_id(backend: &dyn Backend) {
    let store = backend.open().await;
    let stored = insert(&*store, page(&*store, "p1")).await;
    assert_eq!(stored.version, 1);
    let back = store.get(&stored.id).await.unwrap().expect("stored");
    assert_eq!(back, stored);
    let token = store.secrets().unwrap().access_token(&back).unwrap();
    assert_eq!(token.expose(), "token-p1");
    assert!(store.get("no-such-id").await.unwrap().is_none());
    store.close().await;
}

pub async fn list_filters_by_provider_kind_team_and_due_time(backend: &dyn Backend) {
    let store = backend.open().await;
    let now = Utc::now();
    let mut due = record(
        &*store,
        Provider::TiktokShop,
        ConnectionKind::Shop,
        "s1",
        Some("a"),
    );
    due.next_refresh_at = Some(now - chrono::Duration::minutes(1));
    let due = insert(&*store, due).await;
    let mut later = record(
        &*store,
        Provider::TiktokShop,
        ConnectionKind::Shop,
        "s2",
        Some("b"),
    );
    later.next_refresh_at = Some(now + chrono::Duration::hours(1));
    let later = insert(&*store, later).await;
    let user = insert(&*store, user(&*store, "u1", Some("a"))).await;
    let page = insert(&*store, page(&*store, "p1")).await;

    let ids = |found: Vec<Arc<Connection>>| -> Vec<String> {
        found.iter().map(|c| c.id.clone()).collect::<Vec<_>>()
    };
    let sorted = |mut ids: Vec<String>| {
        ids.sort();
        ids
    };
    let list = |filter: ListFilter| {
        let store = store.clone();
        async move { ids(store.list(&filter).await.unwrap()) }
    };
    assert_eq!(
        list(ListFilter::default()).await,
        sorted(vec![
            due.id.clone(),
            later.id.clone(),
            user.id.clone(),
            page.id.clone()
        ]),
        "everything, by id"
    );
    assert_eq!(
        list(ListFilter {
            provider: Some(Provider::TiktokShop),
            ..ListFilter::default()
        })
        .await,
        sorted(vec![due.id.clone(), later.id.clone()])
    );
    assert_eq!(
        list(ListFilter {
            kind: Some(ConnectionKind::Page),
            ..ListFilter::default()
        })
        .await,
        vec![page.id.clone()]
    );
    assert_eq!(
        list(ListFilter {
            team_id: Some("a".into()),
            ..ListFilter::default()
        })
        .await,
        sorted(vec![due.id.clone(), user.id.clone()])
    );
    assert_eq!(
        list(ListFilter {
            due_before: Some(now),
            ..ListFilter::default()
        })
        .await,
        vec![due.id.clone()],
        "due: next_refresh_at at or before the time; none set is not due"
    );
    assert_eq!(
        list(ListFilter {
            provider: Some(Provider::TiktokShop),
            team_id: Some("b".into()),
            ..ListFilter::default()
        })
        .await,
        vec![later.id.clone()],
        "every field set must match"
    );
    store.close().await;
}

pub async fn upsert_is_keyed_by_natural_key(backend: &dyn Backend) {
    let store = backend.open().await;
    let first = insert(&*store, page(&*store, "p1")).await;
    let again = store
        .upsert(
            page(&*store, "p1"),
            Box::new(|c| c.label = "Renamed".into()),
        )
        .await
        .unwrap();
    assert_eq!(
        again.id, first.id,
        "the same account updates its one record"
    );
    assert_eq!(again.version, first.version + 1);
    assert_eq!(again.label, "Renamed");
    assert_eq!(again.created_at, first.created_at);

    let mut other_team = page(&*store, "p1");
    other_team.team_id = Some("team-b".into());
    let other_team = insert(&*store, other_team).await;
    assert_ne!(other_team.id, first.id, "another team is another record");
    let as_user = insert(&*store, user(&*store, "p1", None)).await;
    assert_ne!(as_user.id, first.id, "another kind is another record");
    assert_eq!(store.list(&ListFilter::default()).await.unwrap().len(), 3);
    store.close().await;
}

pub async fn concurrent_upserts_of_one_account_converge_on_one_record(backend: &dyn Backend) {
    let store = backend.open().await;
    // Several rounds, so the later ones race on connections already open.
    for round in 0..5 {
        let external_id = format!("p{round}");
        let upserts = (0..8).map(|i| {
            let (store, external_id) = (store.clone(), external_id.clone());
            tokio::spawn(async move {
                let new = page(&*store, &external_id);
                store
                    .upsert(new, Box::new(move |c| c.scopes.push(format!("s{i}"))))
                    .await
            })
        });
        let stored = futures::future::join_all(upserts).await;
        let stored: Vec<_> = stored.into_iter().map(|r| r.unwrap().unwrap()).collect();
        let mut versions: Vec<u64> = stored.iter().map(|c| c.version).collect();
        versions.sort();
        assert_eq!(
            versions,
            (1..=8).collect::<Vec<_>>(),
            "each edit applied once"
        );
        let one = store.get(&stored[0].id).await.unwrap().unwrap();
        assert!(stored.iter().all(|c| c.id == one.id), "one record");
        assert_eq!(one.scopes.len(), 8, "no edit lost: {:?}", one.scopes);
    }
    let all = store.list(&ListFilter::default()).await.unwrap();
    assert_eq!(all.len(), 5, "one record per account");
    store.close().await;
}

pub async fn an_update_expecting_an_old_version_is_refused(backend: &dyn Backend) {
    let store = backend.open().await;
    let stored = insert(&*store, page(&*store, "p1")).await;
    let (id, first) = (stored.id.as_str(), WriteGuard::Version(stored.version));
    let updated = update(&*store, id, first, |c| c.consecutive_failures = 1);
    let updated = updated.await.unwrap();
    assert_eq!(updated.version, stored.version + 1);
    let stale = update(&*store, id, first, |c| c.consecutive_failures = 99);
    let err = stale.await.unwrap_err();
    assert!(
        matches!(err, StoreError::VersionConflict { expected, current, .. }
            if expected == stored.version && current == updated.version),
        "{err}"
    );
    let now = store.get(&stored.id).await.unwrap().unwrap();
    assert_eq!(
        now.consecutive_failures, 1,
        "the refused edit left no trace"
    );
    let latest = update(&*store, &stored.id, WriteGuard::Latest, |c| {
        c.label = "x".into()
    })
    .await
    .unwrap();
    assert_eq!(latest.version, updated.version + 1);
    assert_not_found(update(&*store, "no-such-id", WriteGuard::Latest, |_| {}).await);
    store.close().await;
}

pub async fn write_all_applies_every_write_or_none(backend: &dyn Backend) {
    let store = backend.open().await;
    let user = insert(&*store, user(&*store, "u1", None)).await;
    let renewed = |id: &str, label: &str| {
        let label = label.to_string();
        Write::Update {
            id: id.to_string(),
            guard: WriteGuard::Latest,
            edit: Box::new(move |c: &mut Connection| c.label = label),
        }
    };
    let derived = |external_id: &str| Write::Upsert {
        new: Box::new(page(&*store, external_id)),
        edit: Box::new(|c: &mut Connection| c.consecutive_failures = 0),
    };
    let stored = store
        .write_all(vec![
            renewed(&user.id, "renewed"),
            derived("p1"),
            derived("p2"),
        ])
        .await
        .unwrap();
    let kinds: Vec<_> = stored
        .iter()
        .map(|c| (c.kind, c.external_id.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            (ConnectionKind::User, "u1"),
            (ConnectionKind::Page, "p1"),
            (ConnectionKind::Page, "p2")
        ],
        "the records as stored, in the order written"
    );
    assert_eq!(stored[0].label, "renewed");
    assert_eq!(stored[0].version, user.version + 1);

    // A batch whose last write fails leaves no trace of the others.
    let failing = store
        .write_all(vec![
            renewed(&user.id, "lost"),
            derived("p3"),
            renewed("no-such-id", "x"),
        ])
        .await;
    assert_not_found(failing);
    let now = store.get(&user.id).await.unwrap().unwrap();
    assert_eq!(
        (now.label.as_str(), now.version),
        ("renewed", stored[0].version)
    );
    let pages = ListFilter {
        kind: Some(ConnectionKind::Page),
        ..ListFilter::default()
    };
    assert_eq!(
        store.list(&pages).await.unwrap().len(),
        2,
        "p3 was not inserted"
    );
    store.close().await;

    // What was acknowledged survives a reopen; the refused batch does not.
    let reopened = backend.open().await;
    let all = reopened.list(&ListFilter::default()).await.unwrap();
    assert_eq!(all.len(), 3);
    assert!(all.iter().all(|c| c.label != "lost"));
    reopened.close().await;
}

pub async fn delete_removes_the_record_and_an_unknown_id_is_not_found(backend: &dyn Backend) {
    let store = backend.open().await;
    let stored = insert(&*store, page(&*store, "p1")).await;
    store.delete(&stored.id).await.unwrap();
    assert!(store.get(&stored.id).await.unwrap().is_none());
    assert_not_found(store.delete(&stored.id).await);
    store.close().await;
}

pub async fn a_lease_excludes_other_holders_until_released(backend: &dyn Backend) {
    let store = backend.open().await;
    let id = insert(&*store, page(&*store, "p1")).await.id.clone();
    let ttl = Duration::from_secs(60);
    let a = store.lease(&id, "worker-a", ttl).await.unwrap();
    assert_eq!(a.holder, "worker-a");
    assert!(a.expires_at > backend.clock().now());
    let err = store.lease(&id, "worker-b", ttl).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Leased { holder, .. } if holder == "worker-a"),
        "{err}"
    );
    let renewed = store.lease(&id, "worker-a", ttl).await.unwrap();
    assert!(renewed.fencing_token > a.fencing_token, "the holder renews");
    store.release(&renewed).await.unwrap();
    let b = store.lease(&id, "worker-b", ttl).await.unwrap();
    assert!(b.fencing_token > renewed.fencing_token);
    assert_not_found(store.lease("no-such-id", "worker-a", ttl).await);
    store.close().await;
}

pub async fn a_lease_lapses_after_its_ttl(backend: &dyn Backend) {
    let store = backend.open().await;
    let id = insert(&*store, page(&*store, "p1")).await.id.clone();
    let a = store.lease(&id, "worker-a", TTL).await.unwrap();
    backend.clock().advance(past(TTL));
    let b = store
        .lease(&id, "worker-b", TTL)
        .await
        .expect("the first lease has lapsed");
    assert!(b.fencing_token > a.fencing_token);
    store.close().await;
}

pub async fn a_fenced_write_is_refused_after_a_newer_lease(backend: &dyn Backend) {
    let store = backend.open().await;
    let id = insert(&*store, page(&*store, "p1")).await.id.clone();
    let a = store.lease(&id, "worker-a", TTL).await.unwrap();
    let fenced = |token, label: &'static str| {
        let (store, id) = (store.clone(), id.clone());
        async move {
            update(&*store, &id, WriteGuard::Fenced(token), move |c| {
                c.label = label.into()
            })
            .await
        }
    };
    fenced(a.fencing_token, "by a").await.unwrap();
    // Worker a stalls past its lease; worker b takes over.
    backend.clock().advance(past(TTL));
    let b = store.lease(&id, "worker-b", TTL).await.unwrap();
    let err = fenced(a.fencing_token, "late a").await.unwrap_err();
    assert!(matches!(err, StoreError::StaleLease { .. }), "{err}");
    fenced(b.fencing_token, "by b").await.unwrap();
    let now = store.get(&id).await.unwrap().unwrap();
    assert_eq!(now.label, "by b");
    store.close().await;
}

pub async fn a_last_fenced_write_ends_its_lease_and_a_refused_one_does_not(backend: &dyn Backend) {
    let store = backend.open().await;
    let id = insert(&*store, page(&*store, "p1")).await.id.clone();
    let a = store.lease(&id, "worker-a", TTL).await.unwrap();
    update(&*store, &id, WriteGuard::FencedLast(a.fencing_token), |c| {
        c.label = "by a".into()
    })
    .await
    .unwrap();
    // The write ended a's lease: b need not wait for it to run out.
    let b = store.lease(&id, "worker-b", TTL).await.unwrap();
    let err = update(&*store, &id, WriteGuard::FencedLast(a.fencing_token), |c| {
        c.label = "late a".into()
    })
    .await
    .unwrap_err();
    assert!(matches!(err, StoreError::StaleLease { .. }), "{err}");
    // The refused write left b's lease in place.
    let err = store.lease(&id, "worker-c", TTL).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Leased { holder, .. } if holder == "worker-b"),
        "{err}"
    );
    assert_eq!(store.get(&id).await.unwrap().unwrap().label, "by a");
    assert!(b.fencing_token > a.fencing_token);
    store.close().await;
}

pub async fn reopening_keeps_every_acknowledged_write(backend: &dyn Backend) {
    let store = backend.open().await;
    let kept = insert(&*store, page(&*store, "p1")).await;
    let kept = update(&*store, &kept.id, WriteGuard::Latest, |c| {
        c.scopes = vec!["read".into()]
    })
    .await
    .unwrap();
    let gone = insert(&*store, page(&*store, "p2")).await;
    store.delete(&gone.id).await.unwrap();
    store.close().await;

    let reopened = backend.open().await;
    let back = reopened.get(&kept.id).await.unwrap().expect("kept");
    assert_eq!(back, kept);
    assert!(reopened.get(&gone.id).await.unwrap().is_none());
    let summary = reopened.ready().await.unwrap();
    assert_eq!(summary.connections, 1);
    reopened.close().await;
}

/// One test per contract case for a backend.
macro_rules! contract {
    ($module:ident, $backend:expr) => {
        mod $module {
            use super::*;
            contract!(@cases $backend;
                get_returns_the_stored_record_and_none_for_an_unknown_id,
                list_filters_by_provider_kind_team_and_due_time,
                upsert_is_keyed_by_natural_key,
                concurrent_upserts_of_one_account_converge_on_one_record,
                an_update_expecting_an_old_version_is_refused,
                write_all_applies_every_write_or_none,
                delete_removes_the_record_and_an_unknown_id_is_not_found,
                a_lease_excludes_other_holders_until_released,
                a_lease_lapses_after_its_ttl,
                a_fenced_write_is_refused_after_a_newer_lease,
                a_last_fenced_write_ends_its_lease_and_a_refused_one_does_not,
                reopening_keeps_every_acknowledged_write
            );
        }
    };
    (@cases $backend:expr; $($case:ident),*) => {
        $(
            #[tokio::test]
            async fn $case() {
                if let Some(backend) = $backend {
                    super::$case(&backend).await;
                }
            }
        )*
    };
}

contract!(json_file, Some(JsonFile::new()));
contract!(postgres, Postgres::from_env());

/// Two instances (two pools) race for one connection: exactly one gets the
/// lease; once it lapses and the other takes over, the first one's late
/// fenced write is refused.
#[tokio::test]
async fn postgres_leases_exclude_across_instances_and_fence_the_late_holder() {
    let Some(backend) = Postgres::from_env() else {
        return;
    };
    let (one, two) = (backend.connect().await, backend.connect().await);
    let id = insert(&one, page(&one, "p1")).await.id.clone();
    let (a, b) = tokio::join!(
        one.lease(&id, "instance-one", TTL),
        two.lease(&id, "instance-two", TTL)
    );
    let (winner, loser, won) = match (a, b) {
        (Ok(lease), Err(e)) => (&one, &two, (lease, e)),
        (Err(e), Ok(lease)) => (&two, &one, (lease, e)),
        (a, b) => panic!("exactly one lease must be granted: {a:?} / {b:?}"),
    };
    let (first, refused) = won;
    assert!(
        matches!(&refused, StoreError::Leased { holder, .. } if *holder == first.holder),
        "{refused}"
    );

    backend.clock().advance(past(TTL));
    let other = if first.holder == "instance-one" {
        "instance-two"
    } else {
        "instance-one"
    };
    let second = loser.lease(&id, other, TTL).await.unwrap();
    assert!(second.fencing_token > first.fencing_token);
    let late = update(winner, &id, WriteGuard::Fenced(first.fencing_token), |c| {
        c.label = "late".into()
    })
    .await
    .unwrap_err();
    assert!(
        matches!(late, StoreError::StaleLease { token, newest, .. }
            if token == first.fencing_token.0 && newest == second.fencing_token.0),
        "{late}"
    );
    let by_second = update(loser, &id, WriteGuard::Fenced(second.fencing_token), |c| {
        c.label = "by the new holder".into()
    })
    .await
    .unwrap();
    assert_eq!(by_second.label, "by the new holder");
    one.close().await;
    two.close().await;
}
