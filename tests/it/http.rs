//! The service over HTTP: probes, errors, and shutdown.

use crate::helpers::TestApp;

#[tokio::test]
async fn healthz_and_readyz_answer() {
    let app = TestApp::spawn().await;
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["store"]["connections"], 0);
    app.stop().await;
}

#[tokio::test]
async fn unknown_paths_get_the_error_envelope() {
    let app = TestApp::spawn().await;
    let r = app.client.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    assert!(body["error"]["message"].is_string());
    app.stop().await;
}

#[tokio::test]
async fn readyz_is_503_with_a_reason_when_the_store_is_closed() {
    let app = TestApp::spawn().await;
    app.store.close().await;
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("writer has stopped")
    );
    app.stop().await;
}

#[tokio::test]
async fn shutdown_flushes_pending_writes() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_in(dir.path()).await;
    let cipher = crate::helpers::test_cipher();
    let store = app.store.clone();
    let pending: Vec<_> = (0..50)
        .map(|i| {
            let store = store.clone();
            let conn = crate::helpers::page_connection(&cipher, &format!("p{i}"), "t");
            tokio::spawn(async move { store.put(conn).await })
        })
        .collect();
    app.stop().await;
    let acked = futures_count(pending).await;
    let reopened = crate::helpers::open_store(dir.path());
    assert!(reopened.list().len() >= acked);
    reopened.close().await;
}

async fn futures_count(
    tasks: Vec<
        tokio::task::JoinHandle<
            Result<std::sync::Arc<tokenkeeper::domain::Connection>, tokenkeeper::store::StoreError>,
        >,
    >,
) -> usize {
    let mut n = 0;
    for t in tasks {
        if t.await.unwrap().is_ok() {
            n += 1;
        }
    }
    n
}

#[tokio::test]
async fn no_secret_reaches_the_logs() {
    let app = TestApp::spawn().await;
    let cipher = crate::helpers::test_cipher();
    app.store
        .put(crate::helpers::page_connection(
            &cipher,
            "p1",
            "EAAB-log-leak-probe",
        ))
        .await
        .unwrap();
    for path in ["/readyz", "/healthz", "/nope"] {
        app.client.get(app.url(path)).send().await.unwrap();
    }
    app.stop().await;
    let logs = crate::helpers::logs().contents();
    assert!(logs.contains("tokenkeeper listening"), "logs were captured");
    assert!(!logs.contains("EAAB-log-leak-probe"));
    assert!(!logs.contains(crate::helpers::TEST_KEY));
}
