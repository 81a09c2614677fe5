//! A token goes only to its own platform: every provider-specific operation
//! in the OpenAPI document refuses a connection of another provider (422
//! naming the field and the provider expected) without any upstream call.

use serde_json::{Map, Value, json};
use tokenkeeper::simulator::DEMO_CUSTOMER_ID;

use crate::fb_support::*;

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
async fn upstream_calls(fb: &FbApp) -> u64 {
    fb.sim
        .stats()
        .await
        .as_object()
        .unwrap()
        .values()
        .filter_map(Value::as_u64)
        .sum()
}

/// A parameter's documented example, as text.
fn example_of(param: &Value) -> Option<String> {
    let example = param
        .get("example")
        .or_else(|| param["schema"].get("example"))?;
    Some(match example {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// Where an operation takes the connection it uses, if anywhere.
enum Slot {
    Path,
    Query,
    Body(Map<String, Value>),
}

fn connection_slot(spec: &Value, path: &str, op: &Value) -> Option<Slot> {
    if path.contains("{id}") {
        return Some(Slot::Path);
    }
    let params = op["parameters"].as_array().cloned().unwrap_or_default();
    if params.iter().any(|p| p["name"] == "connection_id") {
        return Some(Slot::Query);
    }
    let body = resolve(spec, op.get("requestBody")?);
    let media = &body["content"]["application/json"];
    let schema = resolve(spec, &media["schema"]);
    schema["properties"].get("connection_id")?;
    let example = media["example"].as_object().cloned().unwrap_or_default();
    Some(Slot::Body(example))
}

fn resolve<'a>(spec: &'a Value, value: &'a Value) -> &'a Value {
    match value["$ref"].as_str() {
        Some(r) => {
            let pointer = r.trim_start_matches('#');
            resolve(spec, spec.pointer(pointer).expect("a $ref resolves"))
        }
        None => value,
    }
}

/// The request for `op` with connection `id` put where the operation takes
/// it, and every other required parameter from its documented example.
fn request(
    fb: &FbApp,
    method: &str,
    path: &str,
    op: &Value,
    slot: &Slot,
    id: &str,
) -> reqwest::RequestBuilder {
    let mut url_path = path.replace("{id}", id);
    let mut query: Vec<(String, String)> = Vec::new();
    for p in op["parameters"].as_array().cloned().unwrap_or_default() {
        let name = p["name"].as_str().unwrap().to_string();
        match p["in"].as_str() {
            Some("path") if name != "id" => {
                let value = example_of(&p).unwrap_or_else(|| "1".into());
                url_path = url_path.replace(&format!("{{{name}}}"), &value);
            }
            Some("query") if name == "connection_id" => query.push((name, id.to_string())),
            Some("query") if p["required"] == true => {
                query.push((name, example_of(&p).unwrap_or_else(|| "1".into())));
            }
            _ => {}
        }
    }
    let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let mut req = fb
        .app
        .client
        .request(method, fb.url(&url_path))
        .header("x-api-key", ADMIN_KEY)
        .query(&query);
    if let Slot::Body(example) = slot {
        let mut body = example.clone();
        body.insert("connection_id".into(), json!(id));
        req = req.json(&body);
    }
    req
}

/// One connection of each provider, by provider name.
async fn one_connection_of_each_provider(fb: &FbApp) -> Vec<(&'static str, String)> {
    let user = fb.connect_user(1, None).await;
    let facebook = connection_of_kind(&user, "user")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let shop = fb
        .sim
        .post("/_sim/tiktok/shops", json!({ "seller_name": "Bob Shop" }))
        .await;
    fb.sim
        .post(
            "/_sim/tiktok/dialog_shop",
            json!({ "open_id": shop["open_id"] }),
        )
        .await;
    let tiktok = fb
        .follow_consent("/tiktok/auth/url", "/tiktok/auth/callback")
        .await["integration"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let google = fb
        .follow_consent(
            &format!("/google/auth/url?customer_id={DEMO_CUSTOMER_ID}"),
            "/google/auth/callback",
        )
        .await["connection"]["id"]
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
    let spec: Value = fb
        .app
        .client
        .get(fb.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut checked = Vec::new();
    let mut failures = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        let Some(provider) = provider_of(path) else {
            continue;
        };
        for (method, op) in item.as_object().unwrap() {
            let Some(slot) = connection_slot(&spec, path, op) else {
                continue;
            };
            for (other, id) in connections.iter().filter(|(p, _)| *p != provider) {
                let before = upstream_calls(&fb).await;
                let r = request(&fb, method, path, op, &slot, id)
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                let calls = upstream_calls(&fb).await - before;
                let name = format!("{} {path} with a {other} connection", method.to_uppercase());
                let field = if matches!(slot, Slot::Path) {
                    "id"
                } else {
                    "connection_id"
                };
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
    let page = connection_of_kind(&user, "page")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = upstream_calls(&fb).await;
    let (status, body) = fb
        .get(
            &format!("/facebook/campaigns?ad_account_id=act_111&connection_id={page}"),
            ANALYST_KEY,
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "connection_id");
    assert_eq!(body["error"]["expected"]["provider"], "facebook");
    assert_eq!(
        body["error"]["expected"]["kinds"],
        json!(["system_user", "user"])
    );
    assert_eq!(upstream_calls(&fb).await, before);
    fb.stop().await;
}
