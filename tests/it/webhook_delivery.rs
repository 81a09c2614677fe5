//! Outbound webhooks as a receiver sees them: Standard Webhooks headers and
//! signatures (checked here from the specification, and by the reference
//! Python library when it is installed), retries with one `webhook-id`, an
//! outbox that survives a restart, exhaustion, and the deliveries API.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::fb_support::*;

const REAUTH: &str = "connection.reauth_required";

/// Connects a user with one page and has the page revoked upstream, so a
/// sweep flags it: one `connection.reauth_required` event.
async fn flag_a_page(fb: &FbApp) -> Value {
    let answer = fb.connect_user(1, Some("team-a")).await;
    let page = connection_of_kind(&answer, "page");
    fb.revoke_page_and_sweep(&page).await;
    page
}

fn reauth_deliveries(fb: &FbApp) -> Vec<Delivery> {
    fb.webhook
        .events()
        .into_iter()
        .filter(|d| d.json()["type"] == REAUTH)
        .collect()
}

async fn deliveries(fb: &FbApp, query: &str) -> Vec<Value> {
    let list = fb
        .get_ok(&format!("/webhooks/deliveries{query}"), INTERNAL_KEY)
        .await;
    list["deliveries"].as_array().unwrap().clone()
}

/// The reference library's verdict on `d`: `None` when it is not installed
/// (outside CI only; CI installs it, and fails without it).
fn python_verifies(d: &Delivery) -> Option<bool> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/scripts/verify_standard_webhook.py"
    );
    let headers: serde_json::Map<String, Value> =
        ["webhook-id", "webhook-timestamp", "webhook-signature"]
            .iter()
            .map(|h| (h.to_string(), json!(d.header(h))))
            .collect();
    let input = json!({ "secret": WEBHOOK_SECRET, "headers": headers, "body": d.body });
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    match out.status.code() {
        Some(0) => Some(true),
        Some(3) => {
            let in_ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
            assert!(
                !in_ci,
                "CI must have the standardwebhooks package (pip install standardwebhooks)"
            );
            eprintln!("skipped the standardwebhooks check: the package is not installed");
            None
        }
        _ => {
            eprintln!("{}", String::from_utf8_lossy(&out.stderr));
            Some(false)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_fails_twice_gets_the_event_three_times_with_one_id() {
    let fb = FbApp::start().await;
    fb.webhook.fail_next(REAUTH, 2);
    let page = flag_a_page(&fb).await;
    let tries = eventually("three attempts", || {
        let d = reauth_deliveries(&fb);
        (d.len() >= 3).then_some(d)
    })
    .await;
    assert_eq!(tries.len(), 3, "no attempt after the 2xx");
    let answered: Vec<u16> = tries.iter().map(|d| d.answered).collect();
    assert_eq!(answered, [500, 500, 200]);
    let id = tries[0].header("webhook-id");
    assert!(id.starts_with("msg_"), "{id}");
    let now = chrono::Utc::now().timestamp();
    for d in &tries {
        assert_eq!(d.header("webhook-id"), id, "the same id on every attempt");
        assert_eq!(d.body, tries[0].body, "the same body on every attempt");
        let ts: i64 = d.header("webhook-timestamp").parse().unwrap();
        assert!(
            (now - ts).abs() < 300,
            "the timestamp is the attempt's time"
        );
        assert_standard_signature(d);
        assert_ne!(
            python_verifies(d),
            Some(false),
            "standardwebhooks refused it"
        );
    }
    let event = tries[2].json();
    assert_eq!(event["data"]["connection"]["id"], page["id"]);
    assert!(
        event["timestamp"].as_str().unwrap().ends_with('Z'),
        "{event}"
    );

    // The library refuses a body changed after signing.
    let mut forged = tries[2].clone();
    forged.body = forged.body.replace("reauth_required", "recovered");
    assert_ne!(
        python_verifies(&forged),
        Some(true),
        "a changed body is refused"
    );

    let listed = deliveries(&fb, "?type=connection.reauth_required").await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["status"], "delivered");
    assert_eq!(listed[0]["attempts"], 3);
    assert_eq!(listed[0]["last_status"], 200);
    assert_eq!(listed[0]["connection_id"], page["id"]);
    assert_eq!(listed[0]["team_id"], "team-a");
    let one = fb
        .get_ok(&format!("/webhooks/deliveries/{id}"), INTERNAL_KEY)
        .await;
    assert_eq!(one["payload"], event, "the body as sent");
    fb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_between_attempts_loses_nothing() {
    // Two quick attempts, then the next one 60 s later: time to restart.
    let fb = FbApp::start()
        .await
        .restart_with_retries(&[0.05, 60.0])
        .await;
    fb.webhook.fail_next(REAUTH, u32::MAX);
    flag_a_page(&fb).await;
    eventually("two failed attempts", || {
        (reauth_deliveries(&fb).len() == 2).then_some(())
    })
    .await;
    let mut listed = Vec::new();
    for _ in 0..100 {
        listed = deliveries(&fb, "?status=pending&type=connection.reauth_required").await;
        if listed.first().is_some_and(|d| d["attempts"] == 2) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["attempts"], 2);
    assert_eq!(listed[0]["last_status"], 500);
    assert_eq!(listed[0]["last_error"], "HTTP 500");
    let id = listed[0]["id"].as_str().unwrap().to_string();

    let fb = fb.restart().await;
    fb.webhook.fail_next(REAUTH, 0);
    // The third attempt falls due a minute on.
    fb.advance_secs(90).await;
    let tries = eventually("the third attempt, after the restart", || {
        let d = reauth_deliveries(&fb);
        (d.len() == 3).then_some(d)
    })
    .await;
    assert_eq!(tries[2].answered, 200);
    assert_eq!(tries[2].header("webhook-id"), id, "the same event");
    assert_standard_signature(&tries[2]);
    let listed = deliveries(&fb, "").await;
    let ours = listed.iter().find(|d| d["id"] == id.as_str()).unwrap();
    assert_eq!(ours["status"], "delivered");
    assert_eq!(ours["attempts"], 3);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(reauth_deliveries(&fb).len(), 3, "sent once after the 2xx");
    fb.stop().await;
}

fn exhausted_count(metrics: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with("tokenkeeper_webhook_deliveries_total{outcome=\"exhausted\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

async fn scrape(fb: &FbApp) -> String {
    let r = fb.app.client.get(fb.url("/metrics")).send().await.unwrap();
    r.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_event_is_counted_and_a_retry_sends_it_again() {
    let fb = FbApp::start().await;
    let before = exhausted_count(&scrape(&fb).await);
    fb.webhook.fail_next(REAUTH, 3);
    flag_a_page(&fb).await;
    let mut listed = Vec::new();
    for _ in 0..250 {
        listed = deliveries(&fb, "?status=exhausted&type=connection.reauth_required").await;
        if !listed.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(listed.len(), 1, "exhausted after 3 attempts: {listed:?}");
    assert_eq!(listed[0]["attempts"], 3);
    assert_eq!(listed[0]["next_attempt_at"], Value::Null);
    assert_eq!(
        reauth_deliveries(&fb).len(),
        3,
        "no fourth attempt by itself"
    );
    assert!(
        exhausted_count(&scrape(&fb).await) >= before + 1.0,
        "the exhaustion metric moved"
    );

    let id = listed[0]["id"].as_str().unwrap();
    let (status, queued) = fb
        .post(
            &format!("/webhooks/deliveries/{id}/retry"),
            INTERNAL_KEY,
            json!({}),
        )
        .await;
    assert_eq!(status, 202, "{queued}");
    assert_eq!(queued["status"], "pending");
    let tries = eventually("the retried attempt", || {
        let d = reauth_deliveries(&fb);
        (d.len() == 4).then_some(d)
    })
    .await;
    assert_eq!(tries[3].answered, 200);
    assert_eq!(tries[3].header("webhook-id"), id);

    let (status, body) = fb
        .post(
            "/webhooks/deliveries/msg_nope/retry",
            INTERNAL_KEY,
            json!({}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = fb
        .get("/webhooks/deliveries?status=lost", INTERNAL_KEY)
        .await;
    assert_field_error(status, &body, 400, "status");
    let (status, body) = fb.get("/webhooks/deliveries?limit=0", INTERNAL_KEY).await;
    assert_field_error(status, &body, 400, "limit");
    let (status, _) = fb.get("/webhooks/deliveries", READER_KEY).await;
    assert_eq!(status, 403, "the internal scope only");
    fb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_refresh_is_announced_once_and_its_recovery_once() {
    let fb = FbApp::start().await;
    let answer = fb.connect_user(1, Some("team-a")).await;
    let user = connection_of_kind(&answer, "user");
    let user_id = user["id"].as_str().unwrap();
    // The exchange fails transiently on all 3 attempts of two refreshes.
    fb.sim
        .fault(json!({ "path": "/oauth/access_token", "count": 6,
                       "error": { "http_status": 500, "code": 2, "is_transient": true } }))
        .await;
    for _ in 0..2 {
        let (status, body) = fb.force_refresh(user_id).await;
        assert_ne!(status, 200, "{body}");
    }
    let failed = eventually("the refresh_failed event", || {
        fb.webhook
            .of_type("connection.refresh_failed")
            .first()
            .cloned()
    })
    .await;
    assert_eq!(failed["data"]["connection"]["id"], user["id"]);
    assert_eq!(failed["data"]["last_error"]["class"], "transient");
    let (status, body) = fb.force_refresh(user_id).await;
    assert_eq!(status, 200, "{body}");
    eventually("the recovered event", || {
        fb.webhook.of_type("connection.recovered").first().cloned()
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        fb.webhook.of_type("connection.refresh_failed").len(),
        1,
        "not once per failure"
    );
    assert_eq!(fb.webhook.of_type("connection.recovered").len(), 1);
    fb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_key_sees_only_its_teams_deliveries() {
    let fb = FbApp::start().await;
    flag_a_page(&fb).await;
    let answer = fb.connect_user(1, Some("team-b")).await;
    fb.revoke_page_and_sweep(&connection_of_kind(&answer, "page"))
        .await;
    eventually("both events", || {
        (reauth_deliveries(&fb).len() == 2).then_some(())
    })
    .await;
    let all = deliveries(&fb, "?type=connection.reauth_required").await;
    assert_eq!(all.len(), 2);
    let team_a = fb
        .get_ok(
            "/webhooks/deliveries?type=connection.reauth_required",
            TEAM_A_INTERNAL_KEY,
        )
        .await;
    let seen: Vec<&Value> = team_a["deliveries"].as_array().unwrap().iter().collect();
    assert_eq!(seen.len(), 1, "{team_a}");
    assert_eq!(seen[0]["team_id"], "team-a");
    let other = all.iter().find(|d| d["team_id"] == "team-b").unwrap();
    let (status, _) = fb
        .get(
            &format!("/webhooks/deliveries/{}", other["id"].as_str().unwrap()),
            TEAM_A_INTERNAL_KEY,
        )
        .await;
    assert_eq!(status, 404, "another team's event is not there for it");
    fb.stop().await;
}
