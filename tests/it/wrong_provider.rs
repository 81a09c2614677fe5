//! A token goes only to its own platform: every provider-specific operation
//! in the OpenAPI document refuses a connection of another provider (422
//! naming the field and the provider expected) without any upstream call.

use serde_json::{Value, json};

use crate::fb_support::*;
use crate::spec_calls::{In, operations, spec};

/// The provider whose platform an operation's path talks to.
fn provider_of(path: &str) -> Option<&'static str> {
    [
        ("/facebook/", "facebook"),
        ("/tiktok/", "tiktok_shop"),
        ("/google/", "google"),
    ]
    .into_iter()
    .find(|(prefix, _)| path.starts_with(prefix))
    .map(|(_, p)| p)
}

/// Every upstream call the simulator has answered so far.
pub async fn upstream_calls(fb: &FbApp) -> u64 {
    fb.sim
        .stats()
        .await
        .as_object()
        .unwrap()
        .values()
        .filter_map(Value::as_u64)
        .sum()
}

/// One connection of each provider, by provider name.
async fn one_connection_of_each_provider(fb: &FbApp) -> Vec<(&'static str, String)> {
    let user = fb.connect_user(1, None).await;
    let facebook = connection_id(&user, "user");
    let tiktok = fb.connect_shop("team-a", "Bob Shop").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let google = fb.connect_demo_google().await["connection"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    vec![
        ("facebook", facebook),
        ("tiktok_shop", tiktok),
        ("google", google),
    ]
}

#[tokio::test]
async fn every_provider_specific_operation_refuses_another_providers_connection_without_calling_upstream()
 {
    let fb = FbApp::start().await;
    let connections = one_connection_of_each_provider(&fb).await;
    let spec = spec(&fb).await;
    let mut checked = Vec::new();
    let mut failures = Vec::new();
    for op in operations(&spec) {
        let Some(provider) = provider_of(&op.path) else {
            continue;
        };
        let (place, field) = if op.takes(&spec, In::Path, "id") {
            (In::Path, "id")
        } else if op.takes(&spec, In::Query, "connection_id") {
            (In::Query, "connection_id")
        } else if op.takes(&spec, In::Body, "connection_id") {
            (In::Body, "connection_id")
        } else {
            continue;
        };
        for (other, id) in connections.iter().filter(|(p, _)| *p != provider) {
            let before = upstream_calls(&fb).await;
            let fill = |at: In, name: &str| (at == place && name == field).then(|| id.clone());
            let r = op
                .request(&spec, &fb, ADMIN_KEY, &fill)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            let calls = upstream_calls(&fb).await - before;
            let name = format!("{} with a {other} connection", op.name());
            let refused = status == 422
                && body["error"]["code"] == "validation_failed"
                && body["error"]["field"] == field
                && body["error"]["expected"]["provider"] == provider;
            if !refused || calls != 0 {
                failures.push(format!("{name}: {status} {body}, {calls} upstream calls"));
            }
            checked.push(name);
        }
    }
    // Facebook's token, page, debug, permission, campaign, business and
    // TikTok's integration operations, each tried with two other providers.
    assert!(
        checked.len() >= 30,
        "only {} checked: {checked:?}",
        checked.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Nothing was deleted by a refused DELETE.
    for (_, id) in &connections {
        let (status, _) = fb
            .get(&format!("/tokens/{id}/access-token"), USER_KEY)
            .await;
        assert_eq!(status, 200, "connection {id} is still there");
    }
    fb.stop().await;
}

#[tokio::test]
async fn a_page_connection_where_an_ad_account_reader_is_needed_is_refused_naming_the_kinds() {
    let fb = FbApp::start().await;
    let user = fb.connect_user(1, None).await;
    let page = connection_id(&user, "page");
    let before = upstream_calls(&fb).await;
    let (status, body) = fb
        .get(
            &format!("/facebook/campaigns?ad_account_id=act_111&connection_id={page}"),
            ANALYST_KEY,
        )
        .await;
    assert_field_error(status, &body, 422, "connection_id");
    assert_eq!(body["error"]["expected"]["provider"], "facebook");
    assert_eq!(
        body["error"]["expected"]["kinds"],
        json!(["system_user", "user"])
    );
    assert_eq!(upstream_calls(&fb).await, before);
    fb.stop().await;
}
