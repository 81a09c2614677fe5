//! The operator CLI on a real store: `tokens status`, `tokens refresh`
//! (dry run, exit codes, filters) and `tokens check`.

use serde_json::{Value, json};

use crate::fb_support::*;
use crate::helpers::{ok_stdout, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_commands_match_the_api_change_nothing_on_dry_run_and_report_by_exit_code() {
    let fb = FbApp::start().await;
    fb.connect_user(2, Some("team-a")).await;
    fb.connect_user(1, Some("team-b")).await;
    let (_, api) = fb.get("/tokens", ADMIN_KEY).await;
    let stopped = fb.stop_service().await;

    let out = stopped.cli(&["tokens", "status", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let cli: Value = serde_json::from_slice(&out.stdout).expect("status --format json is JSON");
    assert_eq!(cli["count"], 5);
    let key = |v: &Value| {
        let mut items: Vec<(String, String, String)> = connections(v)
            .map(|c| {
                (
                    c["id"].as_str().unwrap().into(),
                    c["health"].as_str().unwrap().into(),
                    c["label"].as_str().unwrap().into(),
                )
            })
            .collect();
        items.sort();
        items
    };
    assert_eq!(key(&cli), key(&api), "the CLI and the API agree");

    let out = stopped.cli(&["tokens", "status", "--team-id", "team-b"]);
    let table = text(&out.stdout);
    assert_eq!(
        table.lines().count(),
        1 + 2,
        "header and team-b's user and page:\n{table}"
    );
    assert!(table.contains("HEALTH") && table.contains("team-b") && !table.contains("team-a"));
    let out = stopped.cli(&["tokens", "status", "--format", "summary"]);
    assert!(text(&out.stdout).starts_with("5 connections"));

    let store = stopped.data_dir.path().join("tokens.json");
    let before = std::fs::read(&store).unwrap();
    let out = stopped.cli(&["tokens", "refresh", "--all", "--force", "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan = text(&out.stdout);
    assert!(
        plan.contains("refresh") && plan.contains("forced"),
        "{plan}"
    );
    assert!(plan.contains("nothing changed"));
    assert_eq!(
        std::fs::read(&store).unwrap(),
        before,
        "a dry run changes nothing on disk"
    );

    // Bad arguments: exit 2.
    assert_eq!(stopped.cli(&["tokens", "refresh"]).status.code(), Some(2));
    assert_eq!(
        stopped
            .cli(&["tokens", "refresh", "--all", "--provider", "myspace"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        stopped
            .cli(&["tokens", "refresh", "--id", "no-such-id"])
            .status
            .code(),
        Some(2)
    );

    // Everything succeeds: exit 0.
    let out = stopped.cli(&[
        "tokens",
        "refresh",
        "--all",
        "--team-id",
        "team-a",
        "--force",
    ]);
    let summary = ok_stdout(&out);
    assert!(summary.contains("3 connections"), "{summary}");
    assert_ne!(
        std::fs::read(&store).unwrap(),
        before,
        "a real refresh writes"
    );

    let out = stopped.cli(&["tokens", "check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("checked 5"),
        "{}",
        text(&out.stdout)
    );
    drop(stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_refresh_exits_1_and_names_the_connection() {
    let fb = FbApp::start().await;
    let answer = fb.connect_user(0, None).await;
    let user = connection_of_kind(&answer, "user");
    fb.sim
        .fault(json!({ "path": "/oauth/access_token", "error": { "code": 190, "subcode": 460, "message": "password changed" } }))
        .await;
    let stopped = fb.stop_service().await;
    let out = stopped.cli(&[
        "tokens",
        "refresh",
        "--id",
        user["id"].as_str().unwrap(),
        "--force",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let report = text(&out.stdout);
    assert!(
        report.contains("failed") && report.contains(user["id"].as_str().unwrap()),
        "{report}"
    );
    let out = stopped.cli(&["tokens", "status", "--format", "json"]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["connections"][0]["health"], "reauth_required");
}

/// A store where a sweep flagged one page of a healthy user (its token was
/// revoked with subcode 460), stopped. Returns the page's connection id.
async fn stopped_with_a_revoked_page() -> (StoppedApp, String) {
    let fb = FbApp::start().await;
    let answer = fb.connect_user(1, Some("agency-north")).await;
    let page = connection_of_kind(&answer, "page");
    fb.revoke_page_and_sweep(&page).await;
    (
        fb.stop_service().await,
        page["id"].as_str().unwrap().to_string(),
    )
}

fn health_of(stopped: &StoppedApp, id: &str) -> String {
    let out = stopped.cli(&["tokens", "status", "--format", "json"]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    connections(&status)
        .find(|c| c["id"] == id)
        .map(|c| c["health"].as_str().unwrap().to_string())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_force_recovers_a_flagged_page_through_its_user_as_the_api_does() {
    let (stopped, page) = stopped_with_a_revoked_page().await;
    let out = stopped.cli(&["tokens", "refresh", "--id", &page, "--force", "--dry-run"]);
    assert!(
        text(&out.stdout).contains("forced"),
        "{}",
        text(&out.stdout)
    );
    let out = stopped.cli(&["tokens", "refresh", "--id", &page, "--force"]);
    ok_stdout(&out);
    assert_eq!(health_of(&stopped, &page), "healthy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_that_leaves_a_connection_to_reconnect_exits_1_and_names_it() {
    let (stopped, page) = stopped_with_a_revoked_page().await;
    let out = stopped.cli(&["tokens", "refresh", "--all"]);
    let report = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains("reconnect") && report.contains(&page),
        "{report}"
    );
    assert!(report.contains("1 connection to reconnect"), "{report}");
}

/// The binary on the stopped app's files, with the app credentials but
/// without the encryption key.
fn cli_without_key(stopped: &StoppedApp, args: &[&str]) -> std::process::Output {
    stopped
        .command(args)
        .env_remove("TOKENKEEPER_ENCRYPTION_KEY")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_needs_neither_the_lock_nor_the_key() {
    let (stopped, page) = stopped_with_a_revoked_page().await;
    // A service holds the store, as while `serve` runs.
    let service = tokenkeeper::store::JsonFileStore::open(
        &tokenkeeper::store::StoreOptions::new(stopped.data_dir.path()),
        crate::helpers::test_cipher(),
    )
    .unwrap();
    let out = cli_without_key(&stopped, &["tokens", "refresh", "--all", "--dry-run"]);
    let plan = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{plan}{}", text(&out.stderr));
    assert!(
        plan.lines()
            .any(|l| l.contains(&page) && l.contains("awaiting reconnect")),
        "{plan}"
    );
    assert!(
        plan.contains("dry run: 2 connections, nothing changed"),
        "{plan}"
    );
    // The real refresh needs the lock.
    let out = cli_without_key(&stopped, &["tokens", "refresh", "--all"]);
    assert_ne!(out.status.code(), Some(0));
    service.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_failure_names_the_host_and_the_cause() {
    let fb = FbApp::start().await;
    fb.connect_user(0, None).await;
    let stopped = fb.stop_service().await;
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = stopped
        .command(&["tokens", "check"])
        .env(
            "TOKENKEEPER__FACEBOOK__GRAPH_BASE_URL",
            format!("http://127.0.0.1:{port}"),
        )
        .output()
        .unwrap();
    let report = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains(&format!("cannot reach 127.0.0.1:{port}: ")),
        "{report}"
    );
    assert!(report.to_lowercase().contains("refused"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_into_a_closed_pipe_ends_quietly() {
    let fb = FbApp::start().await;
    fb.connect_user(2, Some("agency-north")).await;
    let stopped = fb.stop_service().await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tokenkeeper"))
        .args(["tokens", "status", "--format", "json", "--config"])
        .arg(&stopped.config)
        .arg("--data-dir")
        .arg(stopped.data_dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // `| head -c 0`: the reader is gone before anything is written.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_columns_line_up_and_counts_read_as_english() {
    let fb = FbApp::start().await;
    fb.connect_user(1, Some("agency-north")).await;
    fb.connect_user(0, None).await;
    let stopped = fb.stop_service().await;
    let out = stopped.cli(&["tokens", "status"]);
    let table = text(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    let header = lines[0].find("HEALTH").unwrap();
    for line in &lines[1..] {
        let at = line.find("healthy").expect("every row is healthy");
        assert_eq!(at, header, "HEALTH out of line:\n{table}");
    }
    let out = stopped.cli(&[
        "tokens",
        "refresh",
        "--id",
        lines[1].split(' ').next().unwrap(),
        "--dry-run",
    ]);
    assert!(
        text(&out.stdout).contains("dry run: 1 connection, nothing changed"),
        "{}",
        text(&out.stdout)
    );
    // `tiktok`, as the URL paths spell it.
    let out = stopped.cli(&["tokens", "status", "--provider", "tiktok"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_cli_runs_keep_at_most_one_backup_per_interval() {
    let fb = FbApp::start().await;
    fb.connect_user(1, None).await;
    let stopped = fb.stop_service().await;
    let backups = || {
        std::fs::read_dir(stopped.data_dir.path().join("backups"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let before = backups();
    for _ in 0..3 {
        let out = stopped.cli(&["tokens", "refresh", "--all", "--force"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    }
    assert!(before <= 1, "the service's run took at most one: {before}");
    assert_eq!(
        backups(),
        before.max(1),
        "three runs within store.backup_interval_secs add no backup beyond the first"
    );
}
