//! The service on PostgreSQL (`store.backend = "postgres"`): two instances
//! on one database answer from the same connections, and `store migrate
//! --to postgres` moves a JSON store there.

use std::sync::Arc;

use serde_json::Value;
use tokenkeeper::app::Application;
use tokenkeeper::clock::OffsetClock;
use tokenkeeper::store::ConnectionStore;
use tokio_util::sync::CancellationToken;

use crate::helpers::{page_connection, test_cipher, test_settings};
use crate::storage_contract::Postgres;

const ADMIN_KEY: &str = "postgres-admin-key-0123456789";

/// An instance on `url`, serving until `cancel`; its address and store.
async fn instance(
    url: &str,
    dir: &std::path::Path,
    cancel: &CancellationToken,
) -> (String, Arc<dyn ConnectionStore>) {
    let settings = test_settings(
        dir,
        &[
            ("TOKENKEEPER__STORE__BACKEND", "postgres"),
            ("TOKENKEEPER_DATABASE_URL", url),
            ("TOKENKEEPER_ADMIN_API_KEY", ADMIN_KEY),
        ],
    );
    let app = Application::build_with_clock(settings, Arc::new(OffsetClock::default()))
        .await
        .expect("the app builds on PostgreSQL");
    assert!(app.file_store().is_none());
    let (addr, store) = (format!("http://{}", app.addr()), app.state().store.clone());
    tokio::spawn(app.run(cancel.clone()));
    (addr, store)
}

#[tokio::test]
async fn two_instances_on_one_database_share_every_connection() {
    let Some(pg) = Postgres::from_env() else {
        return;
    };
    pg.connect().await.close().await; // creates the schema
    let url = in_schema(&pg.url, &pg.schema);
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cancel = CancellationToken::new();
    let (a, store_a) = instance(&url, dir_a.path(), &cancel).await;
    let (b, _) = instance(&url, dir_b.path(), &cancel).await;

    let stored = store_a
        .upsert(
            page_connection(&test_cipher(), "104518538100001", "EAAB-shared"),
            Box::new(|_| {}),
        )
        .await
        .unwrap();
    let http = reqwest::Client::new();
    for base in [&a, &b] {
        let ready: Value = http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(ready["status"], "ready", "{base}: {ready}");
        assert_eq!(ready["store"]["connections"], 1, "{base}: {ready}");
        let listed = http
            .get(format!("{base}/facebook/tokens"))
            .header("X-API-Key", ADMIN_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(listed.status(), 200);
        let text = listed.text().await.unwrap();
        assert!(text.contains(&stored.id), "{base} does not list it: {text}");
        // The database holds the JWE string; no answer carries the token.
        assert!(!text.contains("EAAB-shared"));
    }
    cancel.cancel();
}

/// `url` with its `search_path` set to `schema`.
pub fn in_schema(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

#[tokio::test]
async fn store_migrate_copies_a_json_store_into_postgres_once_and_exactly() {
    let Some(pg) = Postgres::from_env() else {
        return;
    };
    pg.connect().await.close().await; // creates the schema
    let dir = tempfile::tempdir().unwrap();
    let file = crate::helpers::open_store(dir.path());
    let cipher = test_cipher();
    let mut originals = Vec::new();
    for i in 0..3 {
        let c = file
            .put(page_connection(
                &cipher,
                &format!("10451853810000{i}"),
                "EAAB-moved",
            ))
            .await
            .unwrap();
        // A second version, so the copy must keep versions as they are.
        let c = file
            .update(&c.id, |c| c.label = "edited".into())
            .await
            .unwrap();
        originals.push((*c).clone());
    }
    file.close().await;
    let url = in_schema(&pg.url, &pg.schema);
    let migrate = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_tokenkeeper"))
            .args(["store", "migrate", "--to", "postgres", "--data-dir"])
            .arg(dir.path())
            .env("TOKENKEEPER_ENCRYPTION_KEY", crate::helpers::TEST_KEY)
            .env("TOKENKEEPER_DATABASE_URL", &url)
            .output()
            .unwrap()
    };
    let first = migrate();
    let out = String::from_utf8_lossy(&first.stdout).into_owned();
    assert!(
        first.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        out.contains("copied 3 connections into PostgreSQL (0 already there)"),
        "{out}"
    );
    // Run again: nothing copied twice, still exactly the store.
    let again = migrate();
    let out = String::from_utf8_lossy(&again.stdout).into_owned();
    assert!(again.status.success(), "{out}");
    assert!(
        out.contains("copied 0 connections into PostgreSQL (3 already there)"),
        "{out}"
    );
    assert!(!out.contains("EAAB-moved") && !out.contains("postgres://"));

    // A folder without a store is refused, not copied as an empty store.
    let empty = tempfile::tempdir().unwrap();
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_tokenkeeper"))
        .args(["store", "migrate", "--to", "postgres", "--data-dir"])
        .arg(empty.path())
        .env("TOKENKEEPER_ENCRYPTION_KEY", crate::helpers::TEST_KEY)
        .env("TOKENKEEPER_DATABASE_URL", &url)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no JSON store here"));
    assert!(!empty.path().join("tokens.json").exists());

    let database = pg.connect().await;
    for original in &originals {
        let stored = database.get(&original.id).await.unwrap().unwrap();
        assert_eq!(*stored, *original, "the record changed on the way");
        assert_eq!(stored.version, 2);
        let token = database.secrets().unwrap().access_token(&stored).unwrap();
        assert_eq!(token.expose(), "EAAB-moved");
    }
    database.close().await;
}

#[tokio::test]
async fn an_instance_with_another_key_is_refused_before_it_writes() {
    let Some(pg) = Postgres::from_env() else {
        return;
    };
    let store = pg.connect().await; // records the test key's id
    let stored = store
        .upsert(
            page_connection(&test_cipher(), "104518538100002", "EAAB-sealed"),
            Box::new(|_| {}),
        )
        .await
        .unwrap();
    let other_key = tokenkeeper::secret::generate_key();
    let dir = tempfile::tempdir().unwrap();
    let settings = test_settings(
        dir.path(),
        &[
            ("TOKENKEEPER__STORE__BACKEND", "postgres"),
            ("TOKENKEEPER_DATABASE_URL", &in_schema(&pg.url, &pg.schema)),
            ("TOKENKEEPER_ENCRYPTION_KEY", &other_key),
        ],
    );
    let Err(e) = Application::build(settings).await else {
        panic!("an instance with another key started");
    };
    let message = e.to_string();
    assert!(
        message.contains(test_cipher().key_id())
            && message.contains("every instance needs the same keys"),
        "{message}"
    );
    assert!(
        !message.contains(&other_key),
        "the key itself is never shown"
    );
    // What was stored is as it was.
    assert_eq!(
        store.get(&stored.id).await.unwrap().unwrap().version,
        stored.version
    );
    store.close().await;
}
