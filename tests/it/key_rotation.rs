//! Keys that rotate and secrets that cannot be moved: rotation while a
//! sweep runs, a rotation killed midway and run again, secrets swapped
//! between records, a team edited with a recomputed SHA-256, and a store of
//! format 1 upgraded in place; on the JSON store and on PostgreSQL.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use tokenkeeper::domain::{Connection, ConnectionKind, Provider, StoredSecrets};
use tokenkeeper::secret::Secret;
use tokenkeeper::store::crypto::{Binding, Field};
use tokenkeeper::store::{
    Cipher, ConnectionStore, JsonFileStore, ListFilter, PgConnectionStore, StoreOptions, Write,
};

use crate::fb_support::{FbApp, INTERNAL_KEY, eventually};
use crate::helpers::{TEST_KEY, open_store, page_connection, seal, test_cipher, text};
use crate::storage_contract::Postgres;

/// The key rotated to (base64url of 32 bytes).
const NEW_KEY: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8";

fn new_cipher() -> Cipher {
    Cipher::new(tokenkeeper::secret::decode_key(NEW_KEY).unwrap())
}

fn tokenkeeper(dir: &Path, args: &[&str], keys: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tokenkeeper"));
    cmd.args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("TOKENKEEPER_ENCRYPTION_KEY")
        .env_remove("TOKENKEEPER_ENCRYPTION_PREVIOUS_KEYS");
    for (k, v) in keys {
        cmd.env(k, v);
    }
    cmd
}

const ROTATING: [(&str, &str); 2] = [
    ("TOKENKEEPER_ENCRYPTION_KEY", NEW_KEY),
    ("TOKENKEEPER_ENCRYPTION_PREVIOUS_KEYS", TEST_KEY),
];
const NEW_ONLY: [(&str, &str); 1] = [("TOKENKEEPER_ENCRYPTION_KEY", NEW_KEY)];
const OLD_ONLY: [(&str, &str); 1] = [("TOKENKEEPER_ENCRYPTION_KEY", TEST_KEY)];

/// Runs the command to its end.
fn run(dir: &Path, args: &[&str], keys: &[(&str, &str)]) -> std::process::Output {
    tokenkeeper(dir, args, keys).output().unwrap()
}

/// `n` page connections sealed with the test key, written to a new store.
async fn store_of_pages(dir: &Path, n: usize) -> Vec<Connection> {
    let store = open_store(dir);
    let cipher = test_cipher();
    let pages: Vec<Connection> = (0..n)
        .map(|i| page_connection(&cipher, &format!("20{i:05}"), &format!("EAAB-page-{i}")))
        .collect();
    for chunk in pages.chunks(500) {
        let writes = chunk
            .iter()
            .map(|c| Write::Upsert {
                new: Box::new(c.clone()),
                edit: Box::new(|_| {}),
            })
            .collect();
        store.write_all(writes).await.unwrap();
    }
    store.close().await;
    pages
}

/// The store file's document part, and the bytes before it.
fn split(file: &str) -> (&str, &str) {
    let at = file.find("\"document\": ").unwrap() + "\"document\": ".len();
    (&file[..at], file[at..].strip_suffix("\n}\n").unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn swapped_access_tokens_fail_verify_naming_both_and_the_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pages = store_of_pages(dir.path(), 2).await;
    let path = dir.path().join("tokens.json");
    let file = std::fs::read_to_string(&path).unwrap();
    let doc: Value = serde_json::from_str(split(&file).1).unwrap();
    let token = |c: &Connection| {
        doc["connections"][&c.id]["secrets"]["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (a, b) = (token(&pages[0]), token(&pages[1]));
    let swapped = file.replace(&a, "SWAP").replace(&b, &a).replace("SWAP", &b);
    std::fs::write(&path, swapped).unwrap();

    let out = run(dir.path(), &["store", "verify"], &OLD_ONLY);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("edited outside tokenkeeper"), "{err}");
    for (holder, owner) in [(&pages[0], &pages[1]), (&pages[1], &pages[0])] {
        assert!(
            err.contains(&format!(
                "connection {}'s access_token was sealed as the access_token of connection {}",
                holder.id, owner.id
            )),
            "{err}"
        );
    }
    assert!(!err.contains("EAAB-page"), "no secret in the report: {err}");
    let refused = JsonFileStore::open(&StoreOptions::new(dir.path()), test_cipher())
        .err()
        .expect("the edited store is refused");
    assert!(
        refused.to_string().contains("edited outside tokenkeeper"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_secret_moved_to_another_record_is_not_handed_out_even_under_a_valid_checksum() {
    // Someone with the key (or a bug) wrote a record holding another's
    // secret: the store takes it, the binding refuses to open it.
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let cipher = test_cipher();
    let a = store
        .put(page_connection(&cipher, "1", "EAAB-a"))
        .await
        .unwrap();
    let mut b = page_connection(&cipher, "2", "EAAB-b");
    b.secrets.access_token = a.secrets.access_token.clone();
    let b = store.put(b).await.unwrap();
    let secrets = store.secrets().unwrap();
    assert_eq!(secrets.access_token(&a).unwrap().expose(), "EAAB-a");
    let err = secrets.access_token(&b).unwrap_err().to_string();
    assert!(
        err.contains(&b.id) && err.contains("facebook/page/1"),
        "{err}"
    );
    assert!(!err.contains("EAAB"), "{err}");
    store.close().await;
}

#[tokio::test]
async fn a_team_moved_with_a_recomputed_sha256_is_refused_as_edited_outside_tokenkeeper() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let cipher = test_cipher();
    let mut conn = page_connection(&cipher, "1", "EAAB-team");
    conn.team_id = Some("team-a".into());
    conn.secrets.access_token = seal(&cipher, &conn, Field::AccessToken, "EAAB-team");
    store.put(conn).await.unwrap();
    store.close().await;
    let path = dir.path().join("tokens.json");
    let file = std::fs::read_to_string(&path).unwrap();
    let (_, body) = split(&file);
    for (what, body) in [
        ("team moved", body.replace("\"team-a\"", "\"team-b\"")),
        (
            "team moved, format set back to 1",
            body.replace("\"team-a\"", "\"team-b\"")
                .replace("\"format\": 2", "\"format\": 1"),
        ),
    ] {
        let plain = tokenkeeper::store::integrity::plain(body.as_bytes());
        std::fs::write(
            &path,
            tokenkeeper::store::file::lay_out(&plain, body.as_bytes()),
        )
        .unwrap();
        let err = JsonFileStore::open(&StoreOptions::new(dir.path()), test_cipher())
            .err()
            .unwrap_or_else(|| panic!("{what}: the store opened"));
        assert!(
            err.to_string().contains("edited outside tokenkeeper"),
            "{what}: {err}"
        );
        let out = run(dir.path(), &["store", "verify"], &OLD_ONLY);
        assert_eq!(out.status.code(), Some(1), "{what}");
        assert!(
            text(&out.stderr).contains("edited outside tokenkeeper"),
            "{what}"
        );
    }
}

#[tokio::test]
async fn a_format_1_store_loads_its_secrets_and_is_upgraded_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format1/tokens.json");
    std::fs::copy(&fixture, dir.path().join("tokens.json")).unwrap();

    let status = run(dir.path(), &["keys", "status"], &OLD_ONLY);
    let status = text(&status.stdout);
    assert!(
        status.contains("2 secrets sealed before secrets were bound"),
        "{status}"
    );

    let store = open_store(dir.path());
    let all = store.list();
    assert_eq!(all.len(), 2);
    let secrets = store.secrets().unwrap();
    let mut tokens: Vec<String> = all
        .iter()
        .map(|c| secrets.access_token(c).unwrap().expose().to_string())
        .collect();
    tokens.sort();
    assert_eq!(
        tokens,
        ["EAAB-fixture-page-token", "EAAB-fixture-user-token"]
    );
    assert_eq!(
        all[0].version, 3,
        "the records are as the fixture holds them"
    );
    store.close().await;
    let upgraded = std::fs::read_to_string(dir.path().join("tokens.json")).unwrap();
    assert!(upgraded.contains("\"checksum\": \"hmac-sha256:"));
    assert!(upgraded.contains("\"format\": 2"));

    // Rotation binds the old secrets to their records.
    let out = run(dir.path(), &["keys", "rotate"], &OLD_ONLY);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status = run(dir.path(), &["keys", "status"], &OLD_ONLY);
    let status = text(&status.stdout);
    assert!(
        !status.contains("not yet bound") && !status.contains("before secrets were bound"),
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotation_killed_midway_completes_when_run_again() {
    let dir = tempfile::tempdir().unwrap();
    store_of_pages(dir.path(), 3000).await;
    let mut child = tokenkeeper(dir.path(), &["keys", "rotate", "--at-once", "4"], &ROTATING)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // The count before the first write, then two reports (every 500).
    for _ in 0..3 {
        let line = lines.next().unwrap().unwrap();
        assert!(line.starts_with("re-sealing: "), "{line}");
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let status = run(dir.path(), &["keys", "status"], &ROTATING);
    let status = text(&status.stdout);
    let old = test_cipher();
    assert!(
        status.contains(&format!("{}  ", old.key_id())) && status.contains("(previous)"),
        "some secrets still have the old key: {status}"
    );

    // Until the rotation finishes, the store needs the old key: without
    // it, verify fails naming the key.
    let early = run(dir.path(), &["store", "verify"], &NEW_ONLY);
    assert_eq!(early.status.code(), Some(1));
    assert!(
        text(&early.stderr).contains(old.key_id()),
        "{}",
        text(&early.stderr)
    );

    let again = run(dir.path(), &["keys", "rotate"], &ROTATING);
    assert!(again.status.success(), "{}", text(&again.stderr));
    let report = text(&again.stdout);
    assert!(
        report.contains("no secret needs a previous key"),
        "{report}"
    );
    assert!(
        report.contains(&format!("{}: 3000", new_cipher().key_id())),
        "{report}"
    );
    // The old key retires: the store verifies without it.
    let verify = run(dir.path(), &["store", "verify"], &NEW_ONLY);
    assert!(verify.status.success(), "{}", text(&verify.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_while_a_sweep_runs_fails_no_refresh_and_the_old_key_can_retire() {
    let fb = FbApp::start().await;
    // Users due for renewal, each with a page, sealed with the old key.
    let created = fb
        .sim
        .control("/_sim/users", json!({ "count": 60, "pages_per_user": 1 }))
        .await;
    let cipher = test_cipher();
    let now = Utc::now();
    for u in created["users"].as_array().unwrap() {
        let id = u["id"].as_str().unwrap();
        let login = fb
            .sim
            .control(
                &format!("/_sim/users/{id}/login"),
                json!({ "long_lived": true }),
            )
            .await;
        let binding = Binding::new(
            Provider::Facebook,
            ConnectionKind::User,
            id,
            None,
            Field::AccessToken,
        );
        let token = Secret::new(login["access_token"].as_str().unwrap());
        let mut user = Connection::new(
            Provider::Facebook,
            ConnectionKind::User,
            id,
            "user",
            StoredSecrets {
                access_token: cipher.encrypt(&token, &binding).unwrap(),
                refresh_token: None,
            },
            now,
        );
        user.expires_at = Some(now + Duration::days(10));
        user.data_access_expires_at = Some(now + Duration::days(80));
        fb.app.store.put(user).await.unwrap();
    }
    let fb = fb.restart_with_keys(NEW_KEY, Some(TEST_KEY)).await;
    // Slow renewals, so that the sweep is still going when the rotation runs.
    fb.sim
        .fault(json!({ "path": "/oauth/access_token", "latency_ms": 200 }))
        .await;

    let (status, started) = fb
        .post(
            "/internal/scheduled-refresh?wait=false",
            INTERNAL_KEY,
            json!({}),
        )
        .await;
    assert_eq!(status, 202, "{started}");
    let (status, rotated) = fb
        .post("/internal/keys/rotate", INTERNAL_KEY, json!({}))
        .await;
    assert_eq!(status, 200, "{rotated}");
    let run_id = started["run_id"].as_str().unwrap().to_string();
    let (_, during) = fb
        .get(&format!("/internal/refresh-runs/{run_id}"), INTERNAL_KEY)
        .await;
    assert_eq!(
        during["run"]["status"], "running",
        "the rotation ran during the sweep: {during}"
    );
    let run = eventually("the sweep finishes", || {
        let run =
            futures_lite_block(fb.get(&format!("/internal/refresh-runs/{run_id}"), INTERNAL_KEY));
        (run.1["run"]["status"] != "running").then_some(run.1)
    })
    .await;
    assert!(run["run"]["counts"].get("failed").is_none(), "{run}");
    assert_eq!(run["run"]["counts"]["refreshed"], 60, "{run}");

    // A second rotation moves anything the sweep sealed meanwhile (nothing:
    // it sealed with the new key), then only the new key is in use.
    let (_, rotated) = fb
        .post("/internal/keys/rotate", INTERNAL_KEY, json!({}))
        .await;
    let (_, keys) = fb.get("/internal/keys", INTERNAL_KEY).await;
    let new_id = new_cipher().key_id().to_string();
    assert_eq!(keys["current"], new_id.as_str(), "{keys}");
    assert_eq!(
        keys["in_use"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec![&new_id],
        "{keys} after {rotated}"
    );
    assert_eq!(keys["unbound"], 0);

    // Without the old key every token still opens.
    let fb = fb.restart_with_keys(NEW_KEY, None).await;
    let store: Arc<dyn ConnectionStore> = Arc::new(fb.app.store.clone());
    let all = store.list(&ListFilter::default()).await.unwrap();
    assert!(all.len() >= 120, "users and their pages: {}", all.len());
    for conn in &all {
        store.secrets().unwrap().access_token(conn).unwrap();
    }
    fb.stop().await;
}

/// Runs a future to completion from a synchronous `eventually` check.
fn futures_lite_block<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

/// Two page connections written to a PostgreSQL store with the test key.
async fn database_of_pages(pg: &Postgres) -> (PgConnectionStore, Vec<Arc<Connection>>) {
    let store = pg.connect().await;
    let cipher = test_cipher();
    let mut pages = Vec::new();
    for i in 1..=2 {
        let mut page = page_connection(&cipher, &format!("300{i}"), &format!("EAAB-db-{i}"));
        page.team_id = Some("team-a".into());
        page.secrets.access_token =
            seal(&cipher, &page, Field::AccessToken, &format!("EAAB-db-{i}"));
        pages.push(store.upsert(page, Box::new(|_| {})).await.unwrap());
    }
    (store, pages)
}

#[tokio::test]
async fn on_postgres_swapped_secrets_are_not_handed_out_and_verify_names_both() {
    let Some(pg) = Postgres::from_env() else {
        return;
    };
    let (store, pages) = database_of_pages(&pg).await;
    let (a, b) = (&pages[0], &pages[1]);
    sqlx::query(
        "UPDATE connections c SET record = jsonb_set(c.record, '{secrets,access_token}', \
         o.record->'secrets'->'access_token') \
         FROM connections o WHERE c.id <> o.id",
    )
    .execute(store.pool())
    .await
    .unwrap();
    for conn in [a, b] {
        let moved = store.get(&conn.id).await.unwrap().unwrap();
        let err = store.secrets().unwrap().access_token(&moved).unwrap_err();
        assert!(
            matches!(err, tokenkeeper::store::StoreError::Misbound { .. }),
            "{err}"
        );
    }
    let problems = match store.verify().await {
        Err(tokenkeeper::store::StoreError::Unsound { problems, .. }) => problems.join("\n"),
        other => panic!("verify passed a swapped store: {other:?}"),
    };
    for (holder, owner) in [(a, b), (b, a)] {
        assert!(
            problems.contains(&format!(
                "connection {}'s access_token was sealed as the access_token of connection {}",
                holder.id, owner.id
            )),
            "{problems}"
        );
    }
    store.close().await;
}

#[tokio::test]
async fn on_postgres_a_row_moved_to_another_team_is_refused_as_edited_outside() {
    let Some(pg) = Postgres::from_env() else {
        return;
    };
    let (store, pages) = database_of_pages(&pg).await;
    let moved = &pages[0];
    sqlx::query(
        "UPDATE connections SET team_id = 'team-b', \
         record = jsonb_set(record, '{team_id}', '\"team-b\"') WHERE id = $1",
    )
    .bind(&moved.id)
    .execute(store.pool())
    .await
    .unwrap();
    let err = store.get(&moved.id).await.unwrap_err().to_string();
    assert!(
        err.contains("edited outside tokenkeeper") && err.contains(&moved.id),
        "{err}"
    );
    // Listings leave it out rather than fail for every other connection.
    let listed = store.list(&ListFilter::default()).await.unwrap();
    assert_eq!(
        listed.iter().map(|c| &c.id).collect::<Vec<_>>(),
        vec![&pages[1].id]
    );
    let Err(tokenkeeper::store::StoreError::Unsound { problems, .. }) = store.verify().await else {
        panic!("verify passed an edited row");
    };
    // The row's HMAC, and its secret's binding to the old team.
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems.iter().all(|p| p.contains(&moved.id)),
        "{problems:?}"
    );
    // Clearing the row's HMAC does not get it signed again.
    sqlx::query("UPDATE connections SET identity_mac = NULL WHERE id = $1")
        .bind(&moved.id)
        .execute(store.pool())
        .await
        .unwrap();
    store.close().await;
    let again = pg.connect().await;
    let err = again.get(&moved.id).await.unwrap_err().to_string();
    assert!(err.contains("has no identity HMAC"), "{err}");
    again.close().await;
}

#[tokio::test]
async fn on_postgres_rows_from_before_identity_macs_are_signed_once_at_connect() {
    let Some(pg) = Postgres::from_env() else {
        return;
    };
    let (store, pages) = database_of_pages(&pg).await;
    // As a store of the previous version left them.
    sqlx::query("UPDATE connections SET identity_mac = NULL")
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query("DELETE FROM store_meta WHERE name = 'identity_macs'")
        .execute(store.pool())
        .await
        .unwrap();
    store.close().await;
    let upgraded = pg.connect().await;
    for page in &pages {
        let back = upgraded.get(&page.id).await.unwrap().unwrap();
        assert_eq!(back.version, page.version, "signing changed no record");
    }
    upgraded.close().await;
}

#[tokio::test]
async fn on_postgres_rotation_moves_every_secret_and_row_to_the_new_key() {
    let Some(pg) = Postgres::from_env() else {
        return;
    };
    let (store, pages) = database_of_pages(&pg).await;
    store.close().await;
    let previous = Secret::new(TEST_KEY);
    let ring = new_cipher().with_previous(Some(&previous)).unwrap();
    let rotating = pg.connect_with(ring).await.unwrap();
    let report = tokenkeeper::store::rotation::rotate(&rotating, 1, &|_| {})
        .await
        .unwrap();
    assert_eq!(report.resealed, 2);
    assert_eq!(
        report.in_use.kids.keys().collect::<Vec<_>>(),
        vec![new_cipher().key_id()]
    );
    rotating.close().await;
    // The old key retires: secrets open, rows check, the database's key id
    // is the new one, and an instance on the old key alone is refused.
    let retired = pg.connect_with(new_cipher()).await.unwrap();
    for page in &pages {
        let back = retired.get(&page.id).await.unwrap().unwrap();
        retired.secrets().unwrap().access_token(&back).unwrap();
    }
    retired.verify().await.unwrap();
    retired.close().await;
    let err = pg.connect_with(test_cipher()).await.err().unwrap();
    assert!(err.to_string().contains(new_cipher().key_id()), "{err}");
}

#[test]
fn keygen_previous_prints_the_lines_that_start_a_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["keygen", "--previous"], &OLD_ONLY);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let new = lines[0]
        .strip_prefix("TOKENKEEPER_ENCRYPTION_KEY=")
        .unwrap();
    tokenkeeper::secret::decode_key(new).expect("a usable key");
    assert_ne!(new, TEST_KEY);
    assert_eq!(
        lines[1],
        format!("TOKENKEEPER_ENCRYPTION_PREVIOUS_KEYS={TEST_KEY}")
    );
    // Without a key there is nothing to rotate from.
    let out = run(dir.path(), &["keygen", "--previous"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no current key"));
}

#[tokio::test]
async fn a_master_key_file_is_warned_about_on_every_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(dir.path(), &[]);
    settings.secrets.encryption_key = None;
    for _ in 0..2 {
        let app = crate::helpers::TestApp::spawn_with(
            settings.clone(),
            Arc::new(tokenkeeper::clock::OffsetClock::default()),
        )
        .await;
        app.stop().await;
    }
    let folder = dir.path().display().to_string();
    let logs = crate::helpers::logs().contents();
    let ours: Vec<&str> = logs.lines().filter(|l| l.contains(&folder)).collect();
    assert!(
        ours.iter()
            .any(|l| l.contains("generated a master key file")),
        "the first start generates it: {ours:?}"
    );
    assert!(
        ours.iter()
            .any(|l| l.contains("the master key comes from a file")),
        "the second start warns: {ours:?}"
    );
}
