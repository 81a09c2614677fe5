//! Crash safety: a child process updates the store in a loop and is killed
//! with SIGKILL at random moments; after every kill the store opens (a torn
//! journal tail is repaired, never refused), verifies, and holds every
//! update the child saw acknowledged.
//!
//! The child compacts its journal every few commits, so kills land during
//! appends and during compactions alike; the parent counts both from what
//! each kill left on disk. Every tenth round also tears the journal's tail
//! as a power cut would, which the next open must repair. `TK_CRASH_KILLS` sets the number of kills
//! (default 200) for a longer run.
//!
//! The child is this same test binary, started on `crash_child_writer` with
//! `TK_CRASH_DIR` set.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tokenkeeper::store::integrity::Checker;
use tokenkeeper::store::{self, JsonFileStore, StoreOptions};

use crate::helpers::{page_connection, test_cipher};

const WRITERS: usize = 8;

/// A journal this long is folded into a new snapshot: with eight writers
/// that is every few commits.
const JOURNAL_MAX_BYTES: u64 = 8 * 1024;

fn options(dir: &Path) -> StoreOptions {
    StoreOptions {
        journal_max_bytes: JOURNAL_MAX_BYTES,
        ..StoreOptions::new(dir)
    }
}

/// The parent's check of the last round may still hold the lock for a
/// moment after dropping its handle.
fn open_when_unlocked(dir: &Path) -> JsonFileStore {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match JsonFileStore::open(&options(dir), test_cipher()) {
            Err(store::StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            opened => return opened.unwrap(),
        }
    }
}

/// Runs only as the child of `kill_at_random_moments_never_loses_an_acknowledged_update`.
#[test]
fn crash_child_writer() {
    let Ok(dir) = std::env::var("TK_CRASH_DIR") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let store = open_when_unlocked(Path::new(&dir));
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
                    println!(
                        "ACK {} {} {}",
                        updated.id,
                        updated.label,
                        store.stats().compactions
                    );
                }
            }));
        }
        // The writers never finish: the parent kills this process.
        for t in tasks {
            let _ = t.await;
        }
    });
}

/// What one kill left behind, seen before the store is opened again.
#[derive(Default)]
struct Aftermath {
    /// The journal's last line was cut mid-append.
    torn_tail: bool,
    /// A snapshot (or journal rewrite) was being written.
    mid_compaction: bool,
}

fn aftermath(dir: &Path) -> Aftermath {
    let snapshot = dir.join("tokens.json");
    let torn_tail = store::journal::load(&snapshot, Checker::Keyring(&test_cipher()))
        .is_ok_and(|l| l.torn.is_some());
    let mid_compaction = std::fs::read_dir(dir).unwrap().any(|e| {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        name.starts_with(".tokens.") && name.contains('-')
    });
    Aftermath {
        torn_tail,
        mid_compaction,
    }
}

/// What a power cut mid-append leaves (SIGKILL cannot cut a write short):
/// the first half of one more line, never acknowledged.
fn tear_an_append(dir: &Path) {
    use std::io::Write;
    let journal = dir.join("tokens.journal");
    let bytes = std::fs::read(&journal).unwrap_or_default();
    let last = bytes[..bytes.len().saturating_sub(1)]
        .rsplit(|b| *b == b'\n')
        .next()
        .unwrap_or_default();
    if last.is_empty() {
        return;
    }
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&journal)
        .unwrap();
    file.write_all(&last[..last.len() / 2]).unwrap();
}

#[test]
fn kill_at_random_moments_never_loses_an_acknowledged_update() {
    let kills: usize = std::env::var("TK_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked: HashMap<String, u64> = HashMap::new();
    let (mut torn_tails, mut mid_compactions, mut unacknowledged) = (0, 0, 0);
    let mut compactions = 0u64;
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
        // mid-write. Most rounds count from the first acknowledgement, so
        // that a slow start on a loaded machine still gets writes (and
        // compactions) under way before the kill.
        if round % 4 != 0 {
            let _ = acked_once.recv_timeout(Duration::from_secs(30));
        }
        let wait_ms = rand::random_range(0..40u64);
        std::thread::sleep(Duration::from_millis(wait_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        let mut round_compactions = 0;
        for line in reader.join().unwrap() {
            if let Some(rest) = line.strip_prefix("ACK ") {
                let mut fields = rest.split(' ');
                let (id, n, c) = (fields.next(), fields.next(), fields.next());
                let n: u64 = n.unwrap().parse().unwrap();
                round_compactions = c.unwrap().parse::<u64>().unwrap().max(round_compactions);
                let e = acked.entry(id.unwrap().to_string()).or_default();
                *e = (*e).max(n);
            }
        }
        compactions += round_compactions;
        if !dir.path().join("tokens.json").exists() {
            continue; // killed before the first file was written
        }
        if round % 10 == 9 {
            tear_an_append(dir.path());
        }
        let left = aftermath(dir.path());
        torn_tails += usize::from(left.torn_tail);
        mid_compactions += usize::from(left.mid_compaction);

        // The store opens as the service would, whatever the kill left.
        let store = match JsonFileStore::open(&options(dir.path()), test_cipher()) {
            Ok(store) => store,
            Err(e) => panic!("round {round}: the store refuses to start: {e}"),
        };
        assert!(store.list().len() <= WRITERS);
        let mut ahead = false;
        for (id, n) in &acked {
            let stored: u64 = store.get(id).map_or(0, |c| c.label.parse().unwrap_or(0));
            assert!(
                stored >= *n,
                "round {round}: connection {id} acknowledged {n} but stored {stored}"
            );
            ahead |= stored > *n;
        }
        // A line on disk whose acknowledgement never got out: killed between
        // the append and the reply.
        unacknowledged += usize::from(ahead);
        // Dropped without a close, so the next child finds the files as
        // this open left them (the torn tail cut off, nothing compacted).
        drop(store);
        store::verify(dir.path(), &test_cipher())
            .unwrap_or_else(|e| panic!("round {round}: the store does not verify: {e}"));
    }
    let total: u64 = acked.values().sum();
    eprintln!(
        "{kills} kills: {total} acknowledged updates, none lost; {compactions} compactions; \
         {unacknowledged} kills between an append and its acknowledgement, {torn_tails} \
         torn mid-line by a simulated power cut (repaired), {mid_compactions} mid-compaction"
    );
    assert!(total > 0, "no update was ever acknowledged");
    assert!(
        compactions > 0,
        "no compaction ran, so none was interrupted"
    );
    assert!(
        unacknowledged > 0 && mid_compactions > 0 && torn_tails > 0,
        "the kills missed appends or compactions"
    );
}
