//! The operator CLI on a real store: `tokens status`, `tokens refresh`
//! (dry run, exit codes, filters) and `tokens check`.

use serde_json::{Value, json};

use crate::fb_support::*;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

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
        let mut items: Vec<(String, String, String)> = v["connections"]
            .as_array()
            .unwrap()
            .iter()
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
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let summary = text(&out.stdout);
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
