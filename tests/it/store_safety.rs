//! A store that existed is never silently replaced: a missing store beside
//! its backups, or a directory where the store file belongs, stops the start
//! with the command that recovers it; a start without the key writes no key.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tokenkeeper::store::{self, JsonFileStore, StoreOptions};

use crate::helpers::{TEST_KEY, TestApp, page_connection, test_cipher};

fn tokenkeeper(args: &[&str], key: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tokenkeeper"));
    cmd.args(args).env_remove("TOKENKEEPER_ENCRYPTION_KEY");
    if let Some(key) = key {
        cmd.env("TOKENKEEPER_ENCRYPTION_KEY", key);
    }
    cmd.output().unwrap()
}

/// `serve` on the folder, expected to refuse; one that starts instead is
/// stopped after a deadline and fails the test.
fn serve(dir: &Path, key: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tokenkeeper"));
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env_remove("TOKENKEEPER_ENCRYPTION_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(key) = key {
        cmd.env("TOKENKEEPER_ENCRYPTION_KEY", key);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("the service started instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Three writes with a backup before each: backups of 0, 1 and 2 connections.
async fn store_with_backups(dir: &Path) {
    let options = StoreOptions {
        backup_interval: std::time::Duration::ZERO,
        ..StoreOptions::new(dir)
    };
    let store = JsonFileStore::open(&options, test_cipher()).unwrap();
    for i in 0..3 {
        store
            .put(page_connection(&test_cipher(), &format!("p{i}"), "EAAB-x"))
            .await
            .unwrap();
    }
    store.close().await;
}

/// The backquoted `tokenkeeper store restore ...` command in a message.
fn restore_command(message: &str) -> Vec<String> {
    let start = message
        .find("`tokenkeeper store restore")
        .unwrap_or_else(|| panic!("no restore command in: {message}"));
    let rest = &message[start + 1..];
    let command = &rest[..rest.find('`').unwrap()];
    command
        .split_whitespace()
        .skip(1)
        .map(String::from)
        .collect()
}

#[tokio::test]
async fn missing_store_beside_backups_refuses_to_start_and_names_the_restore() {
    let dir = tempfile::tempdir().unwrap();
    store_with_backups(dir.path()).await;
    let backups = store::backup::list(dir.path()).unwrap();
    let newest = backups[0].clone();
    std::fs::remove_file(dir.path().join("tokens.json")).unwrap();

    for _ in 0..2 {
        let out = serve(dir.path(), Some(TEST_KEY));
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("tokens.json is missing"), "{err}");
        assert!(err.contains(newest.to_str().unwrap()), "{err}");
        // Nothing was created or rotated.
        assert!(!dir.path().join("tokens.json").exists());
        assert_eq!(store::backup::list(dir.path()).unwrap(), backups);
    }

    // The command it names brings the store back.
    let err = stderr(&serve(dir.path(), Some(TEST_KEY)));
    let args = restore_command(&err);
    assert!(
        args.contains(&newest.to_str().unwrap().to_string()),
        "{args:?}"
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = tokenkeeper(&args, Some(TEST_KEY));
    assert!(out.status.success(), "{}", stderr(&out));
    let report = store::verify(dir.path(), &test_cipher()).unwrap();
    assert_eq!(
        report.connections, 2,
        "the newest backup precedes the last write"
    );
}

#[tokio::test]
async fn a_directory_in_place_of_the_store_file_is_refused_clearly_and_restore_recovers() {
    let dir = tempfile::tempdir().unwrap();
    store_with_backups(dir.path()).await;
    let path = dir.path().join("tokens.json");
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("stray"), b"kept").unwrap();
    let d = dir.path().to_str().unwrap();

    let out = serve(dir.path(), Some(TEST_KEY));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("is a directory, not a store file"), "{err}");
    assert!(
        err.contains(&format!("tokenkeeper store restore --data-dir {d}")),
        "{err}"
    );
    let out = tokenkeeper(&["store", "verify", "--data-dir", d], Some(TEST_KEY));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is a directory"), "{}", stderr(&out));

    let out = tokenkeeper(&["store", "restore", "--data-dir", d], Some(TEST_KEY));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(path.is_file());
    assert_eq!(
        store::verify(dir.path(), &test_cipher())
            .unwrap()
            .connections,
        2
    );
    // The directory was moved aside whole, not deleted.
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && p.to_string_lossy().contains("tokens.json.replaced-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(std::fs::read(aside[0].join("stray")).unwrap(), b"kept");
}

#[tokio::test]
async fn starting_without_the_key_on_an_existing_store_writes_no_key_file() {
    let dir = tempfile::tempdir().unwrap();
    store_with_backups(dir.path()).await;
    let before = std::fs::read(dir.path().join("tokens.json")).unwrap();

    let out = serve(dir.path(), None);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("TOKENKEEPER_ENCRYPTION_KEY"), "{err}");
    assert!(err.contains("no new key was generated"), "{err}");
    assert!(
        !dir.path().join("master.key").exists(),
        "a key file was written for a store it cannot open"
    );
    assert_eq!(
        std::fs::read(dir.path().join("tokens.json")).unwrap(),
        before
    );
    // The same holds when the store is missing beside its backups.
    std::fs::remove_file(dir.path().join("tokens.json")).unwrap();
    assert_eq!(serve(dir.path(), None).status.code(), Some(1));
    assert!(!dir.path().join("master.key").exists());
}

#[test]
fn a_new_store_is_created_only_in_a_folder_that_never_held_one() {
    // A crash while creating the first store leaves its temp file: no trace.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".tokens.json.new-1"), b"{").unwrap();
    let opened = JsonFileStore::open(&StoreOptions::new(dir.path()), test_cipher()).unwrap();
    drop(opened);
    assert!(dir.path().join("tokens.json").is_file());
    assert!(!dir.path().join(".tokens.json.new-1").exists());

    // A temp file of an update, beside no store, may hold the only copy.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".tokens.json.tmp-1"), b"{").unwrap();
    let err = JsonFileStore::open(&StoreOptions::new(dir.path()), test_cipher())
        .err()
        .expect("the store opened");
    assert!(matches!(err, store::StoreError::Missing { .. }), "{err}");
    assert!(
        dir.path().join(".tokens.json.tmp-1").exists(),
        "left untouched"
    );
    assert!(!dir.path().join("tokens.json").exists());
}

/// Polls `/readyz` until it answers `status`.
async fn readyz_becomes(app: &TestApp, status: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = app.client.get(app.url("/readyz")).send().await.unwrap();
        let (got, body) = (r.status().as_u16(), r.text().await.unwrap());
        if got == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz stayed {got} (wanted {status}): {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn readiness_returns_with_the_disk_without_waiting_for_a_store_write() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let app = TestApp::spawn_in(&data).await;
    readyz_becomes(&app, 200).await;

    // The data folder stops taking writes (a file where the folder was: as
    // root, permissions would not stop a write), and a store write fails.
    let away = root.path().join("data.away");
    std::fs::rename(&data, &away).unwrap();
    std::fs::write(&data, b"not a folder").unwrap();
    let body = readyz_becomes(&app, 503).await;
    assert!(body.contains("\"unavailable\""), "{body}");
    let failed = app
        .store
        .put(page_connection(&test_cipher(), "p1", "EAAB-x"))
        .await;
    assert!(failed.is_err(), "the write went through");

    // The disk is back: ready again, though nothing was written since.
    std::fs::remove_file(&data).unwrap();
    std::fs::rename(&away, &data).unwrap();
    let writes = app.store.stats().file_writes;
    let body = readyz_becomes(&app, 200).await;
    assert!(body.contains("\"ready\""), "{body}");
    assert_eq!(
        app.store.stats().file_writes,
        writes,
        "a store write happened"
    );
    app.stop().await;
}
