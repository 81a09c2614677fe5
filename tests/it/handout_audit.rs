//! Token hand-outs are audited durably: no audit line on disk, no token.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;
use tokenkeeper::clock::OffsetClock;

use crate::helpers::{TestApp, page_connection, test_cipher, test_settings_with};

const INBOX_KEY: &str = "inbox-key-0123456789abcdef";
const PAGE_TOKEN: &str = "EAAB-handout-secret-0123456789";

/// The app with an `inbox` key (scope `tokens:use`) and one page connection.
async fn app_with_a_page(data_dir: &Path, config_dir: &Path) -> (TestApp, String) {
    let config = config_dir.join("keys.toml");
    std::fs::write(
        &config,
        format!("[[api.keys]]\nid = \"inbox\"\nkey = \"{INBOX_KEY}\"\nscopes = [\"tokens:use\"]\n"),
    )
    .unwrap();
    let settings = test_settings_with(data_dir, &[], Some(&config));
    let app = TestApp::spawn_with(settings, Arc::new(OffsetClock::default())).await;
    let conn = app
        .store
        .put(page_connection(
            &test_cipher(),
            "104518538110000",
            PAGE_TOKEN,
        ))
        .await
        .unwrap();
    (app, conn.id.clone())
}

async fn get(app: &TestApp, path: &str) -> (u16, String) {
    let r = app
        .client
        .get(app.url(path))
        .header("X-API-Key", INBOX_KEY)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn a_hand_out_whose_audit_record_cannot_be_written_answers_503_without_the_token() {
    let (data, config) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (app, id) = app_with_a_page(data.path(), config.path()).await;
    // A directory where the audit file belongs: no line can be appended
    // (permissions would not stop the root user tests run as).
    let audit = data.path().join("audit.log");
    std::fs::create_dir(&audit).unwrap();

    for path in [
        format!("/tokens/{id}/access-token"),
        "/facebook/pages/104518538110000/access-token".to_string(),
    ] {
        let (status, body) = get(&app, &path).await;
        assert_eq!(status, 503, "{path}: {body}");
        assert!(
            !body.contains(PAGE_TOKEN),
            "{path} handed out the token: {body}"
        );
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"]["code"], "audit_unavailable", "{body}");
    }

    // Once the log can be written again, hand-outs resume.
    std::fs::remove_dir(&audit).unwrap();
    let (status, body) = get(&app, &format!("/tokens/{id}/access-token")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(PAGE_TOKEN));
    app.stop().await;
}

#[tokio::test]
async fn a_hand_out_leaves_an_audit_line_naming_connection_and_key_but_never_the_token() {
    let (data, config) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (app, id) = app_with_a_page(data.path(), config.path()).await;
    let (status, body) = get(&app, &format!("/tokens/{id}/access-token")).await;
    assert_eq!(status, 200, "{body}");
    // The line is on disk by the time the answer arrives: no waiting.
    let log = std::fs::read_to_string(data.path().join("audit.log")).unwrap();
    assert!(
        !log.contains(PAGE_TOKEN),
        "the token is in the audit log: {log}"
    );
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert_eq!(lines[0]["action"], "access_token");
    assert_eq!(lines[0]["key_id"], "inbox");
    assert_eq!(lines[0]["connection_id"], id.as_str());
    assert_eq!(lines[0]["outcome"], "issued");
    app.stop().await;
}
