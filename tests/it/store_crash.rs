//! Crash safety: a child process updates the store in a loop and is killed
//! with SIGKILL at random moments; after every kill the store loads, verifies,
//! and holds every update the child saw acknowledged.
//!
//! The child is this same test binary, started on `crash_child_writer` with
//! `TK_CRASH_DIR` set.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use tokenkeeper::store;

use crate::helpers::{open_store, page_connection, test_cipher};

const WRITERS: usize = 8;

/// Runs only as the child of `kill_at_random_moments_never_loses_an_acknowledged_update`.
#[test]
fn crash_child_writer() {
    let Ok(dir) = std::env::var("TK_CRASH_DIR") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let store = open_store(std::path::Path::new(&dir));
        let cipher = test_cipher();
        // One connection per writer, whose label counts that writer's updates.
        let mut ids = Vec::new();
        for w in 0..WRITERS {
            let external = format!("w{w}");
            let existing = store.list().into_iter().find(|c| c.external_id == external);
            let conn = match existing {
                Some(c) => c,
                None => store
                    .put(page_connection(&cipher, &external, "EAAB-crash"))
                    .await
                    .unwrap(),
            };
            ids.push(conn.id.clone());
        }
        println!("READY");
        let mut tasks = Vec::new();
        for id in ids {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    let updated = store
                        .update(&id, |c| {
                            let n: u64 = c.label.parse().unwrap_or(0);
                            c.label = (n + 1).to_string();
                        })
                        .await
                        .unwrap();
                    // Printed only after the write is acknowledged.
                    println!("ACK {} {}", updated.id, updated.label);
                }
            }));
        }
        // The writers never finish: the parent kills this process.
        futures_pending(tasks).await;
    });
}

async fn futures_pending(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
    }
}

#[test]
fn kill_at_random_moments_never_loses_an_acknowledged_update() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked: HashMap<String, u64> = HashMap::new();
    let kills = 200;
    for round in 0..kills {
        let mut child = Command::new(&exe)
            .args(["--exact", "store_crash::crash_child_writer", "--nocapture"])
            .env("TK_CRASH_DIR", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (first_ack, acked_once) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("ACK ") {
                    // Read once, by the parent, for this round; the rest go unread.
                    let _ = first_ack.send(());
                }
                lines.push(line);
            }
            lines
        });
        // Kill at a random moment: sometimes during start-up, mostly
        // mid-write. Every eighth round counts from the first
        // acknowledgement, so that a slow start on a loaded machine still
        // gets writes acknowledged before the kill.
        if round % 8 == 7 {
            let _ = acked_once.recv_timeout(Duration::from_secs(30));
        }
        let wait_ms = rand::random_range(0..40u64);
        std::thread::sleep(Duration::from_millis(wait_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        for line in reader.join().unwrap() {
            if let Some(rest) = line.strip_prefix("ACK ") {
                let (id, n) = rest.split_once(' ').unwrap();
                let n: u64 = n.parse().unwrap();
                let e = acked.entry(id.to_string()).or_default();
                *e = (*e).max(n);
            }
        }
        if !dir.path().join("tokens.json").exists() {
            continue; // killed before the first file was written
        }
        let report = store::verify(dir.path(), &test_cipher())
            .unwrap_or_else(|e| panic!("round {round}: the store does not verify: {e}"));
        let doc = store::journal::load(&dir.path().join("tokens.json"))
            .unwrap()
            .doc;
        assert!(report.connections <= WRITERS);
        for (id, n) in &acked {
            let stored: u64 = doc.connections[id].label.parse().unwrap_or(0);
            assert!(
                stored >= *n,
                "round {round}: connection {id} acknowledged {n} but stored {stored}"
            );
        }
    }
    let total: u64 = acked.values().sum();
    assert!(total > 0, "no update was ever acknowledged");
    eprintln!("{kills} kills, {total} acknowledged updates, none lost");
}
