//! The store keeps every acknowledged write, refuses damaged files without
//! touching them, and recovers from backups.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use tokenkeeper::domain::{ConnectionKind, ErrorClass, LastError, Provider};
use tokenkeeper::store::ConnectionStore;
use tokenkeeper::store::{self, Cipher, JsonFileStore, StoreError, StoreOptions};

use crate::helpers::{open_store, page_connection, seal, test_cipher};
use tokenkeeper::store::crypto::{Binding, Field};

#[tokio::test]
async fn every_field_survives_a_restart_and_secrets_are_encrypted_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let cipher = test_cipher();
    let mut conn = page_connection(&cipher, "104518538110000", "EAAB-page-token-abc");
    conn.provider = Provider::TiktokShop;
    conn.kind = ConnectionKind::Shop;
    conn.team_id = Some("team-a".into());
    conn.secrets.access_token = seal(&cipher, &conn, Field::AccessToken, "EAAB-page-token-abc");
    conn.secrets.refresh_token = Some(seal(&cipher, &conn, Field::RefreshToken, "ROW_refresh-xyz"));
    let t = |s| Utc.timestamp_opt(s, 0).unwrap();
    conn.expires_at = Some(t(1_900_000_000));
    conn.refresh_token_expires_at = Some(t(1_950_000_000));
    conn.data_access_expires_at = Some(t(1_910_000_000));
    conn.scopes = vec!["pages_show_list".into(), "read_insights".into()];
    conn.last_refreshed_at = Some(t(1_800_000_000));
    conn.next_refresh_at = Some(t(1_850_000_000));
    conn.consecutive_failures = 3;
    conn.last_error = Some(LastError {
        class: ErrorClass::Transient,
        code: Some(2),
        subcode: None,
        message: "service temporarily unavailable".into(),
        at: t(1_800_000_100),
    });
    conn.reauth_required = true;
    conn.parent_id = Some("user-conn".into());
    let stored = store.put(conn.clone()).await.unwrap();
    assert_eq!(stored.version, 1);
    store.close().await;

    let raw = std::fs::read_to_string(dir.path().join("tokens.json")).unwrap();
    assert!(!raw.contains("EAAB-page-token-abc") && !raw.contains("ROW_refresh-xyz"));
    assert!(
        raw.contains("\"team_id\": \"team-a\""),
        "facts stay readable JSON"
    );

    let reopened = open_store(dir.path());
    let back = reopened.get(&conn.id).expect("the connection is back");
    let mut expected = conn.clone();
    expected.version = 1;
    expected.updated_at = back.updated_at;
    assert_eq!(*back, expected);
    assert_eq!(
        reopened
            .secrets()
            .unwrap()
            .access_token(&back)
            .unwrap()
            .expose(),
        "EAAB-page-token-abc"
    );
    assert_eq!(
        reopened
            .secrets()
            .unwrap()
            .refresh_token(&back)
            .unwrap()
            .unwrap()
            .expose(),
        "ROW_refresh-xyz"
    );
    reopened.close().await;
}

#[tokio::test]
async fn first_start_creates_an_empty_verifiable_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    store.close().await;
    let report = store::verify(dir.path(), &test_cipher()).unwrap();
    assert_eq!(report.connections, 0);
    // Even an empty store names its key, so a wrong key is caught.
    let other = Cipher::new([9u8; 32]);
    assert!(matches!(
        refusal(dir.path(), other),
        StoreError::WrongKey { .. }
    ));
}

#[tokio::test]
async fn group_commit_writes_ten_thousand_updates_in_a_handful_of_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let cipher = test_cipher();
    let mut ids = Vec::new();
    for i in 0..100 {
        let c = store
            .put(page_connection(&cipher, &format!("p{i}"), "tok"))
            .await
            .unwrap();
        ids.push(c.id.clone());
    }
    let before = store.stats();
    let ids = Arc::new(ids);
    let mut tasks = Vec::new();
    for n in 0..10_000u32 {
        let store = store.clone();
        let ids = ids.clone();
        tasks.push(tokio::spawn(async move {
            let id = ids[(n % 100) as usize].clone();
            store
                .update(&id, move |c| c.consecutive_failures += 1)
                .await
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let after = store.stats();
    let writes = after.file_writes - before.file_writes;
    assert_eq!(after.updates_committed - before.updates_committed, 10_000);
    assert!(writes <= 50, "10,000 updates took {writes} file writes");
    store.close().await;

    let reopened = open_store(dir.path());
    let total: u32 = reopened.list().iter().map(|c| c.consecutive_failures).sum();
    assert_eq!(total, 10_000, "every acknowledged update is on disk");
    assert!(reopened.list().iter().all(|c| c.version == 101));
    reopened.close().await;
}

/// Opens a store, puts page connections `p0`… with `token`, one commit
/// each, and closes it.
async fn write_pages(options: &StoreOptions, count: usize, token: &str) {
    let store = JsonFileStore::open(options, test_cipher()).unwrap();
    let cipher = test_cipher();
    for i in 0..count {
        store
            .put(page_connection(&cipher, &format!("p{i}"), token))
            .await
            .unwrap();
    }
    store.close().await;
}

/// Writes a few generations so there are backups, then returns the store file.
async fn store_with_backups(dir: &std::path::Path) -> Vec<u8> {
    let options = StoreOptions {
        backup_interval: std::time::Duration::ZERO,
        ..StoreOptions::new(dir)
    };
    write_pages(&options, 3, "EAAB-secret").await;
    std::fs::read(dir.join("tokens.json")).unwrap()
}

/// Why the store in `dir` does not open, waiting out a lock copy that a child
/// process another test is spawning may briefly hold.
fn refusal(dir: &std::path::Path, cipher: Cipher) -> StoreError {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match JsonFileStore::open(&StoreOptions::new(dir), cipher.clone()) {
            Ok(_) => panic!("the store opened"),
            Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => return e,
        }
    }
}

fn assert_refused_untouched(dir: &std::path::Path, bytes: &[u8], expect: &str) {
    let err = refusal(dir, test_cipher()).to_string();
    assert!(err.contains(expect), "unclear error: {err}");
    assert!(!err.contains("EAAB"), "secret in error: {err}");
    assert_eq!(std::fs::read(dir.join("tokens.json")).unwrap(), bytes);
}

#[tokio::test]
async fn damaged_files_are_refused_untouched_and_restore_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let good = store_with_backups(dir.path()).await;
    let path = dir.path().join("tokens.json");

    let truncated = &good[..good.len() * 2 / 3];
    std::fs::write(&path, truncated).unwrap();
    assert_refused_untouched(dir.path(), truncated, "corrupt");

    let mut flipped = good.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x01;
    std::fs::write(&path, &flipped).unwrap();
    let err = refusal(dir.path(), test_cipher()).to_string();
    assert!(err.contains("HMAC does not match"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), flipped);

    std::fs::write(&path, &good).unwrap();
    let wrong = Cipher::new([3u8; 32]);
    let err = refusal(dir.path(), wrong);
    assert!(err.to_string().contains("written with key"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), good);

    // Damage it again and restore from the newest good backup.
    std::fs::write(&path, truncated).unwrap();
    let (from, report) = store::restore(dir.path(), None, &test_cipher()).unwrap();
    assert!(from.starts_with(dir.path().join("backups")));
    assert_eq!(
        report.connections, 2,
        "the newest backup precedes the last write"
    );
    let store = open_store(dir.path());
    assert_eq!(store.list().len(), 2);
    store.close().await;
}

#[tokio::test]
async fn backups_rotate_to_the_configured_count() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        backup_interval: std::time::Duration::ZERO,
        backup_count: 3,
        commit_window: std::time::Duration::ZERO,
        ..StoreOptions::new(dir.path())
    };
    write_pages(&options, 8, "t").await;
    let backups = store::backup::list(dir.path()).unwrap();
    assert_eq!(backups.len(), 3);
    // Each backup is a whole, verifiable store.
    for b in backups {
        store::backup::verify_file(&b, &test_cipher()).unwrap();
    }
}

#[tokio::test]
async fn a_second_writer_is_refused_with_the_holders_pid() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let err = JsonFileStore::open(&StoreOptions::new(dir.path()), test_cipher())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    store.close().await;
    // Closing releases the lock.
    open_store(dir.path()).close().await;
}

#[tokio::test]
async fn secrets_stay_out_of_debug_output_and_errors() {
    let cipher = test_cipher();
    let conn = page_connection(&cipher, "1", "EAAB-debug-leak-check");
    let debug = format!("{conn:?}");
    assert!(!debug.contains("EAAB-debug-leak-check"));
    assert!(debug.contains("[encrypted]"));
    let other = Cipher::new([5u8; 32]);
    let binding = Binding::of(&conn, Field::AccessToken);
    let err = other
        .decrypt(&conn.id, &conn.secrets.access_token, &binding)
        .unwrap_err();
    assert!(!err.to_string().contains("EAAB"));
}
