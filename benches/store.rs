//! Store benchmark: load + verify 100,000 connections; update all 10,000
//! connections of a store in one burst (wall time, file writes, bytes per
//! update). Run with `cargo bench --bench store`.

use std::time::{Duration, Instant};

use chrono::Utc;
use tokenkeeper::domain::{Connection, ConnectionKind, Provider, StoredSecrets};
use tokenkeeper::secret::Secret;
use tokenkeeper::store::{self, Cipher, JsonFileStore, StoreOptions};

fn connection(cipher: &Cipher, i: usize) -> Connection {
    let token = format!("EAAB{}", "x".repeat(180)) + &i.to_string();
    let mut c = Connection::new(
        Provider::Facebook,
        ConnectionKind::Page,
        format!("1045185381{i:06}"),
        format!("Page {i}"),
        StoredSecrets {
            access_token: cipher.encrypt(&Secret::new(token)).unwrap(),
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

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[tokio::main]
async fn main() {
    let cipher = Cipher::new([42u8; 32]);

    // 1. Load and verify 100,000 connections.
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), &cipher, 100_000).await;
    let size = std::fs::metadata(dir.path().join("tokens.json"))
        .unwrap()
        .len();
    let t = Instant::now();
    let store = JsonFileStore::open(&StoreOptions::new(dir.path()), cipher.clone()).unwrap();
    let open = t.elapsed();
    store.close().await;
    let t = Instant::now();
    let report = store::verify(dir.path(), &cipher).unwrap();
    let verify = t.elapsed();
    println!(
        "load 100,000 connections ({:.1} MB): open+checksum {:.3} s, full verify (decrypt {} secrets) {:.3} s",
        size as f64 / 1e6,
        secs(open),
        report.secrets,
        secs(verify)
    );

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
