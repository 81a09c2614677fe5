//! The service on PostgreSQL (`store.backend = "postgres"`): two instances
//! on one database answer from the same connections.

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
    let separator = if pg.url.contains('?') { '&' } else { '?' };
    let url = format!(
        "{}{separator}options=-c%20search_path%3D{}",
        pg.url, pg.schema
    );
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
