//! Store benchmark: load + verify 100,000 connections, from a snapshot alone
//! and with a 50 MB journal to replay; update all 10,000 connections of a
//! store in one burst (wall time, file writes, bytes per update). Run with
//! `cargo bench --bench store`.

use std::time::{Duration, Instant};

use chrono::Utc;
use tokenkeeper::domain::{Connection, ConnectionKind, Provider, StoredSecrets};
use tokenkeeper::secret::Secret;
use tokenkeeper::store::crypto::{Binding, Field};
use tokenkeeper::store::{self, Cipher, JsonFileStore, StoreOptions};

fn connection(cipher: &Cipher, i: usize) -> Connection {
    let token = format!("EAAB{}", "x".repeat(180)) + &i.to_string();
    let mut c = Connection::new(
        Provider::Facebook,
        ConnectionKind::Page,
        format!("1045185381{i:06}"),
        format!("Page {i}"),
        StoredSecrets {
            access_token: cipher
                .encrypt(
                    &Secret::new(token),
                    &Binding::new(
                        Provider::Facebook,
                        ConnectionKind::Page,
                        &format!("1045185381{i:06}"),
                        Some(&format!("team-{}", i % 10)),
                        Field::AccessToken,
                    ),
                )
                .unwrap(),
            refresh_token: None,
        },
        Utc::now(),
    );
    c.scopes = vec!["pages_show_list".into(), "read_insights".into()];
    c.team_id = Some(format!("team-{}", i % 10));
    c
}

async fn fill(dir: &std::path::Path, cipher: &Cipher, n: usize) -> Vec<String> {
    let store = JsonFileStore::open(&StoreOptions::new(dir), cipher.clone()).unwrap();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let store = store.clone();
        let conn = connection(cipher, i);
        tasks.push(tokio::spawn(async move {
            store.put(conn).await.unwrap().id.clone()
        }));
    }
    let mut ids = Vec::with_capacity(n);
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    store.close().await;
    ids
}

fn journal_len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Opens the store (snapshot and journal, checksums) and verifies it (every
/// secret decrypted), and prints both times against the 1 s target.
async fn load_and_verify(dir: &std::path::Path, cipher: &Cipher, what: &str) {
    let size = journal_len(&dir.join("tokens.json"));
    let journal = journal_len(&dir.join("tokens.journal"));
    let t = Instant::now();
    let store = JsonFileStore::open(&StoreOptions::new(dir), cipher.clone()).unwrap();
    let open = t.elapsed();
    let t = Instant::now();
    let report = store::verify(dir, cipher).unwrap();
    let verify = t.elapsed();
    println!(
        "load 100,000 connections, {what} ({:.1} MB snapshot, {:.1} MB journal): open \
         (read, replay, verify every checksum) {:.3} s (target < 1 s); `store verify` \
         (the same, and decrypt all {} secrets) {:.3} s",
        size as f64 / 1e6,
        journal as f64 / 1e6,
        secs(open),
        report.secrets,
        secs(verify),
    );
    // Close folds the journal into a new snapshot: one compaction.
    let t = Instant::now();
    store.close().await;
    if journal > 0 {
        println!(
            "  compaction at close (a {:.1} MB snapshot written, the journal emptied): {:.3} s",
            journal_len(&dir.join("tokens.json")) as f64 / 1e6,
            secs(t.elapsed())
        );
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[tokio::main]
async fn main() {
    let cipher = Cipher::new([42u8; 32]);

    // 1. Load and verify 100,000 connections: the snapshot alone, then with
    // a 50 MB journal of updates (left by dropping the store without a close,
    // as a crash would) to replay.
    let dir = tempfile::tempdir().unwrap();
    let ids = fill(dir.path(), &cipher, 100_000).await;
    load_and_verify(dir.path(), &cipher, "no journal").await;
    let journal = dir.path().join("tokens.journal");
    {
        let store = JsonFileStore::open(&StoreOptions::new(dir.path()), cipher.clone()).unwrap();
        let mut round = 0;
        while journal_len(&journal) < 50_000_000 {
            // Updates in bursts of 1,000: one journal line each.
            let tasks: Vec<_> = ids[round * 1_000 % ids.len()..][..1_000]
                .iter()
                .map(|id| {
                    let (store, id) = (store.clone(), id.clone());
                    tokio::spawn(async move {
                        store
                            .update(&id, |c| c.consecutive_failures += 1)
                            .await
                            .unwrap()
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
            round += 1;
        }
        assert_eq!(store.stats().compactions, 0, "the journal was compacted");
    }
    // The writer thread lets the lock go just after the handles are dropped.
    std::thread::sleep(Duration::from_millis(200));
    load_and_verify(dir.path(), &cipher, "with the journal").await;

    // 2. Update all 10,000 connections in one burst.
    let dir = tempfile::tempdir().unwrap();
    let ids = fill(dir.path(), &cipher, 10_000).await;
    let store = JsonFileStore::open(&StoreOptions::new(dir.path()), cipher.clone()).unwrap();
    let before = store.stats();
    let t = Instant::now();
    let tasks: Vec<_> = ids
        .into_iter()
        .map(|id| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .update(&id, |c| c.consecutive_failures += 1)
                    .await
                    .unwrap()
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let wall = t.elapsed();
    let after = store.stats();
    let writes = after.file_writes - before.file_writes;
    let bytes = after.bytes_written - before.bytes_written;
    println!(
        "burst of 10,000 updates: wall {:.3} s, {} file writes (ratio writes/updates {:.4}), {:.0} bytes written per update",
        secs(wall),
        writes,
        writes as f64 / 10_000.0,
        bytes as f64 / 10_000.0
    );
    store.close().await;
}
