//! Tenancy: a key limited to team A never sees a team-B connection id,
//! label or error text, through any operation in the OpenAPI document.

use serde_json::{Value, json};

use crate::fb_support::*;
use crate::spec_calls::{In, operations, spec};

const TEAM_A_ALL_KEY: &str = "team-a-all-scopes-key-0123456789";

fn options() -> FbOptions {
    FbOptions {
        extra_toml: format!(
            r#"
[[api.keys]]
id = "team-a-all"
key = "{TEAM_A_ALL_KEY}"
scopes = ["tokens:read", "tokens:use", "tokens:refresh", "tokens:admin", "insights:read", "exports", "internal"]
teams = ["team-a"]
"#
        ),
        ..FbOptions::default()
    }
}

/// Connects a Facebook user with one page for `team`, with names of its own.
async fn connect_named(fb: &FbApp, team: &str, user: &str, page: &str) -> Value {
    let user = json!({ "name": user, "pages": [{ "name": page }] });
    fb.connect_new_user(user, Some(team)).await
}

#[tokio::test]
async fn a_team_a_key_never_sees_a_team_b_id_label_or_error_in_any_operation() {
    let fb = FbApp::start_with(options()).await;
    connect_named(&fb, "team-a", "Alice Owner", "Alice Page").await;
    let b = connect_named(&fb, "team-b", "Bob Owner", "Bob Page").await;
    let b_shop = fb.connect_shop("team-b", "Bob Shop").await;
    // A team-B page is revoked and a sweep records why.
    let b_page = connection_of_kind(&b, "page");
    fb.sim
        .revoke(json!({ "page_id": b_page["external_id"], "subcode": 460 }))
        .await;
    let run = fb.sweep("/internal/scheduled-refresh").await;
    let run_id = run["run"]["id"].as_str().unwrap().to_string();
    let b_page_id = b_page["id"].as_str().unwrap().to_string();
    let (_, flagged) = fb
        .get(&format!("/facebook/tokens/{b_page_id}"), ADMIN_KEY)
        .await;
    let error_text = flagged["connection"]["last_error"]["message"]
        .as_str()
        .expect("the sweep recorded the revocation")
        .to_string();
    assert!(
        run.to_string().contains(&error_text),
        "the admin sees the error in the run: {run}"
    );

    let mut secrets_of_b: Vec<String> = vec![error_text];
    let mut b_ids = Vec::new();
    for c in b["connections"].as_array().unwrap() {
        b_ids.push(c["id"].as_str().unwrap().to_string());
        secrets_of_b.push(c["label"].as_str().unwrap().to_string());
    }
    b_ids.push(b_shop["id"].as_str().unwrap().to_string());
    secrets_of_b.push("Bob Shop".into());
    secrets_of_b.extend(b_ids.iter().cloned());

    let spec = spec(&fb).await;
    let mut checked = 0;
    let mut leaks = Vec::new();
    for op in operations(&spec) {
        // Each operation with each team-B id wherever it takes one.
        for target in &b_ids {
            let fill = |at: In, name: &str| match (at, name) {
                (In::Path, "id") | (_, "connection_id") => Some(target.clone()),
                (In::Path, "run_id") => Some(run_id.clone()),
                (In::Path, "page_id") => b_page["external_id"].as_str().map(str::to_string),
                _ => None,
            };
            let r = op
                .request(&spec, &fb, TEAM_A_ALL_KEY, &fill)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            checked += 1;
            // The caller's own input may be echoed ("connection X not found").
            for s in secrets_of_b.iter().filter(|s| *s != target) {
                if text.contains(s.as_str()) {
                    leaks.push(format!("{} ({status}) shows '{s}': {text}", op.name()));
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} requests");
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
    // Nothing of team B was changed by team A's calls.
    for id in &b_ids {
        let (status, _) = fb
            .get(&format!("/tokens/{id}/access-token"), ADMIN_KEY)
            .await;
        assert!(
            status == 200 || status == 409,
            "{id} is still there ({status})"
        );
    }
    fb.stop().await;
}
