//! The journal beside the snapshot: a write appends what it changed, the
//! journal is folded into a new snapshot as it grows, and whatever instant
//! the process stops at, the files load to every acknowledged write.

use std::path::Path;
use std::time::Duration;

use tokenkeeper::store::integrity::Checker;
use tokenkeeper::store::{self, JsonFileStore, StoreOptions};

use crate::helpers::{open_store, page_connection, test_cipher};

fn len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The data folder as a crash would leave it: the files as they are now,
/// copied while the store is still open (no close, no final compaction).
fn crash_copy(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for name in ["tokens.json", "tokens.journal"] {
        std::fs::copy(from.join(name), to.path().join(name)).unwrap();
    }
    to
}

#[tokio::test]
async fn a_write_costs_what_it_changed_and_compaction_keeps_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        commit_window: Duration::ZERO,
        journal_max_bytes: 16 * 1024,
        ..StoreOptions::new(dir.path())
    };
    let store = JsonFileStore::open(&options, test_cipher()).unwrap();
    let cipher = test_cipher();
    let snapshot = dir.path().join("tokens.json");
    let journal = store::journal::path_beside(&snapshot);
    let mut ids = Vec::new();
    for i in 0..60 {
        let stored = store
            .put(page_connection(&cipher, &format!("p{i}"), "EAAB-secret"))
            .await
            .unwrap();
        ids.push(stored.id.clone());
    }
    // One more write: its line is about one record long, whatever the
    // store holds.
    let journal_before = len(&journal);
    // A compaction finishing on its own thread is taken in (and its bytes
    // counted) by whichever commit comes next: a measured write during which
    // that happened is made again.
    let mut line = u64::MAX;
    for attempt in 0..20 {
        let before = store.stats();
        let first = store.get(&ids[0]).unwrap();
        let mut changed = (*first).clone();
        changed.label = format!("renamed {attempt}");
        store.put(changed).await.unwrap();
        let after = store.stats();
        assert_eq!(after.file_writes - before.file_writes, 1);
        if after.compactions == before.compactions {
            line = after.bytes_written - before.bytes_written;
            break;
        }
    }
    assert!(
        line < 2 * 1024,
        "one changed record wrote {line} bytes (the store holds {})",
        len(&snapshot) + journal_before
    );

    // 60 records of about 1 KB each went past the 16 KiB limit: snapshots
    // were written, and the journal keeps only what came after the last.
    // On a loaded machine one may still be being written while the journal
    // grows: later commits take it in and start the next.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let settled = |store: &JsonFileStore| {
        store.stats().compactions > 0 && len(&journal) < 16 * 1024 + 4 * 1024
    };
    while !settled(&store) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        store
            .update(&ids[1], |c| c.consecutive_failures += 1)
            .await
            .unwrap();
    }
    assert!(store.stats().compactions >= 1, "{:?}", store.stats());
    assert!(
        len(&journal) < 16 * 1024 + 4 * 1024,
        "journal {}",
        len(&journal)
    );

    // A crash now (snapshot plus journal, no close) loads every write.
    let crashed = crash_copy(dir.path());
    let reopened = open_store(crashed.path());
    assert_eq!(reopened.list().len(), 60);
    assert!(reopened.get(&ids[0]).unwrap().label.starts_with("renamed"));
    reopened.close().await;

    // A clean close leaves the snapshot holding everything.
    store.close().await;
    assert_eq!(len(&journal), 0);
    let loaded = store::file::read(&snapshot, Checker::Keyring(&test_cipher())).unwrap();
    assert_eq!(loaded.connections.len(), 60);
}

#[tokio::test]
async fn a_torn_last_line_is_dropped_and_a_damaged_earlier_line_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let cipher = test_cipher();
    for i in 0..3 {
        store
            .put(page_connection(&cipher, &format!("p{i}"), "EAAB-secret"))
            .await
            .unwrap();
    }
    let crashed = crash_copy(dir.path());
    store.close().await;
    let journal = crashed.path().join("tokens.journal");
    let lines = std::fs::read(&journal).unwrap();
    assert_eq!(lines.iter().filter(|b| **b == b'\n').count(), 3);

    // Half a fourth line, as a crash mid-append leaves it: the three
    // acknowledged writes load, and the next write follows cleanly.
    let mut torn = lines.clone();
    torn.extend_from_slice(&lines[..lines.len() / 6]);
    std::fs::write(&journal, &torn).unwrap();
    let reopened = open_store(crashed.path());
    assert_eq!(reopened.list().len(), 3);
    reopened
        .put(page_connection(&cipher, "p3", "EAAB-secret"))
        .await
        .unwrap();
    reopened.close().await;
    let after = store::journal::load(
        &crashed.path().join("tokens.json"),
        Checker::Keyring(&test_cipher()),
    )
    .unwrap();
    assert_eq!((after.doc.connections.len(), after.torn), (4, None));

    // A flipped byte in the first line is no crash: refused, named, and
    // the file is left as it was.
    let mut damaged = lines.clone();
    damaged[40] ^= 1;
    std::fs::write(&journal, &damaged).unwrap();
    let err = JsonFileStore::open(&StoreOptions::new(crashed.path()), test_cipher())
        .err()
        .expect("a damaged journal is refused")
        .to_string();
    assert!(
        err.contains("line 1") && err.contains("store restore"),
        "{err}"
    );
    assert!(!err.contains("EAAB"), "secret in the error: {err}");
    assert_eq!(std::fs::read(&journal).unwrap(), damaged);
}
