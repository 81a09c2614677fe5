//! The OpenAPI document against the router it describes: every route is
//! documented, every example fits its schema, and the Swagger UI is served
//! from the binary.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use std::sync::Arc;

use tokenkeeper::clock::OffsetClock;

use crate::helpers::{TestApp, json_of, page_connection, test_cipher, test_settings};

const ADMIN_KEY: &str = "openapi-admin-key-0123456789";
const INTERNAL_KEY: &str = "openapi-internal-key-0123456789";

/// The router's source: routes are read from it, so the check cannot drift.
const ROUTER_SOURCE: &str = include_str!("../../src/api/mod.rs");
/// The dashboard's routes (its page; its static assets are not API).
const DASHBOARD_SOURCE: &str = include_str!("../../src/api/dashboard.rs");

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Every `(method, path)` that a `.route("PATH", get(..).post(..))` call in
/// the router's source registers, with axum's `{*rest}` as `{rest}`.
fn routes_in_source(source: &str) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    let mut rest = source;
    while let Some(at) = rest.find(".route(") {
        let call = &rest[at + ".route(".len()..];
        let end = call_end(call);
        let args = &call[..end];
        let path = first_string_literal(args).expect("a .route call names its path first");
        let path = path.replace("{*", "{");
        for method in methods_called(args) {
            routes.insert((method, path.clone()));
        }
        rest = &call[end..];
    }
    routes
}

/// The index of the parenthesis that closes a call whose `(` was just read.
fn call_end(text: &str) -> usize {
    let mut depth = 1;
    let mut in_string = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => in_string = !in_string,
            '(' if !in_string => depth += 1,
            ')' if !in_string => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced .route( call in src/api/mod.rs");
}

fn first_string_literal(text: &str) -> Option<String> {
    let start = text.find('"')? + 1;
    let len = text[start..].find('"')?;
    Some(text[start..start + len].to_string())
}

/// Method routers called in a `.route` call's arguments: `get(` or `.post(`,
/// not a handler such as `facebook::get_token` or `exports::get`.
fn methods_called(args: &str) -> Vec<String> {
    let mut found = Vec::new();
    for method in METHODS {
        let needle = format!("{method}(");
        let mut from = 0;
        while let Some(pos) = args[from..].find(&needle) {
            let at = from + pos;
            let before = args[..at].chars().next_back();
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                found.push(method.to_string());
            }
            from = at + needle.len();
        }
    }
    found
}

/// The served document.
pub async fn spec(app: &TestApp) -> Value {
    let r = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn operations(spec: &Value) -> Vec<(String, String, &Value)> {
    let mut ops = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                ops.push((method.to_string(), path.clone(), op));
            }
        }
    }
    ops
}

#[test]
fn the_route_scanner_reads_chained_methods_and_skips_handler_names() {
    let source = r#"
        .route("/a/{id}", get(x::get_token).delete(x::delete))
        .route(
            "/exports",
            post(exports::create).get(exports::list),
        )
        .route("/exports/{id}", get(exports::get))
        .route("/files/{*rest}", get(files::serve))
    "#;
    let routes: Vec<_> = routes_in_source(source).into_iter().collect();
    let expected: Vec<(String, String)> = [
        ("delete", "/a/{id}"),
        ("get", "/a/{id}"),
        ("get", "/exports"),
        ("get", "/exports/{id}"),
        ("get", "/files/{rest}"),
        ("post", "/exports"),
    ]
    .iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    assert_eq!(routes, expected);
}

#[tokio::test]
async fn every_route_in_the_router_is_documented_with_its_method() {
    let mut routes = routes_in_source(ROUTER_SOURCE);
    routes.extend(
        routes_in_source(DASHBOARD_SOURCE)
            .into_iter()
            .filter(|(_, path)| !path.starts_with("/dashboard/")),
    );
    assert!(
        routes.len() > 50,
        "the scanner found only {} routes in src/api/mod.rs",
        routes.len()
    );
    let app = TestApp::spawn().await;
    let spec = spec(&app).await;
    let documented: BTreeSet<(String, String)> = operations(&spec)
        .into_iter()
        .map(|(m, p, _)| (m, p))
        .collect();
    // "METHOD /path" of each operation in `a` and not in `b`.
    let missing = |a: &BTreeSet<(String, String)>, b: &BTreeSet<(String, String)>| {
        a.difference(b)
            .map(|(m, p)| format!("{} {p}", m.to_uppercase()))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let undocumented = missing(&routes, &documented);
    assert!(
        undocumented.is_empty(),
        "routes missing from /openapi.json:\n{undocumented}"
    );
    let stale = missing(&documented, &routes);
    assert!(stale.is_empty(), "documented but not routed:\n{stale}");
    app.stop().await;
}

#[tokio::test]
async fn every_operation_has_a_summary_tags_a_success_example_and_enveloped_errors() {
    let app = TestApp::spawn().await;
    let spec = spec(&app).await;
    let known_tags = [
        "facebook", "tiktok", "google", "tokens", "insights", "exports", "internal", "health",
    ];
    let mut problems = Vec::new();
    let mut operation_ids = BTreeSet::new();
    for (method, path, op) in operations(&spec) {
        let name = format!("{} {path}", method.to_uppercase());
        if op["summary"].as_str().is_none_or(str::is_empty) {
            problems.push(format!("{name}: no summary"));
        }
        if op["description"].as_str().is_none_or(str::is_empty) {
            problems.push(format!("{name}: no description"));
        }
        let tags: Vec<&str> = op["tags"]
            .as_array()
            .map(|t| t.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if tags.is_empty() || tags.iter().any(|t| !known_tags.contains(t)) {
            problems.push(format!("{name}: tags {tags:?}"));
        }
        if !operation_ids.insert(op["operationId"].as_str().unwrap_or("").to_string()) {
            problems.push(format!("{name}: duplicate operationId"));
        }
        let responses = op["responses"].as_object().expect("responses");
        let success_example = responses.iter().any(|(status, r)| {
            status.starts_with('2')
                && (status == "204"
                    || r["content"]
                        .as_object()
                        .is_some_and(|c| c.values().all(|m| m.get("example").is_some())))
        });
        if !success_example {
            problems.push(format!("{name}: no example for its success response"));
        }
        if op.get("requestBody").is_some_and(|b| {
            b["content"]
                .as_object()
                .is_some_and(|c| c.values().any(|m| m.get("example").is_none()))
        }) {
            problems.push(format!("{name}: request body without an example"));
        }
        let public = path.starts_with("/healthz")
            || path.starts_with("/readyz")
            || path == "/dashboard"
            || path == "/metrics"
            || path.ends_with("/auth/callback")
            // The status page of a data deletion request: its code is the link.
            || path.starts_with("/facebook/data-deletion/")
            // Platforms' callbacks (`/facebook/webhooks/...`,
            // `/tiktok/webhooks`): their signature is the authentication.
            // `/webhooks/...` is our own outbound webhooks' API, which
            // takes a key.
            || (path.contains("/webhooks") && !path.starts_with("/webhooks/"));
        let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
        if public == secured {
            problems.push(format!("{name}: public {public} but security {secured}"));
        }
        let lists_auth_errors = responses.contains_key("401") && responses.contains_key("403");
        if !public && !lists_auth_errors {
            problems.push(format!("{name}: 401/403 not listed"));
        }
        for (status, r) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                let r = resolve(&spec, r);
                let schema = &r["content"]["application/json"]["schema"];
                if schema["$ref"] != "#/components/schemas/ErrorBody" {
                    problems.push(format!("{name}: {status} is not an ErrorBody"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    app.stop().await;
}

#[tokio::test]
async fn every_documented_example_validates_against_its_schema() {
    let app = TestApp::spawn().await;
    let spec = spec(&app).await;
    let mut checked = 0;
    let mut failures = Vec::new();
    for (method, path, op) in operations(&spec) {
        let name = format!("{} {path}", method.to_uppercase());
        let mut bodies: Vec<(String, &Value)> = Vec::new();
        if let Some(body) = op.get("requestBody") {
            bodies.push(("request".into(), resolve(&spec, body)));
        }
        for (status, r) in op["responses"].as_object().expect("responses") {
            bodies.push((status.clone(), resolve(&spec, r)));
        }
        for (which, body) in bodies {
            let Some(content) = body["content"].as_object() else {
                continue;
            };
            for (media, m) in content {
                if let Some(example) = m.get("example") {
                    checked += 1;
                    if !m["schema"].is_object() {
                        failures.push(format!("{name} {which} {media}: example without a schema"));
                        continue;
                    }
                    let mut errors = Vec::new();
                    validate(&spec, &m["schema"], example, "$", &mut errors);
                    for e in errors {
                        failures.push(format!("{name} {which} {media}: {e}"));
                    }
                }
            }
        }
    }
    assert!(checked > 60, "only {checked} examples found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    app.stop().await;
}

/// What the running app answers fits what the document says it answers.
#[tokio::test]
async fn live_answers_fit_their_documented_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let settings = test_settings(
        dir.path(),
        &[
            ("TOKENKEEPER_ADMIN_API_KEY", ADMIN_KEY),
            ("TOKENKEEPER_INTERNAL_API_KEY", INTERNAL_KEY),
        ],
    );
    let mut app = TestApp::spawn_with(settings, Arc::new(OffsetClock::default())).await;
    app.keep_dir(dir);
    let conn = page_connection(&test_cipher(), "104729381234567", "EAAB-openapi-live-check");
    let id = conn.id.clone();
    app.store.put(conn).await.unwrap();
    let spec = spec(&app).await;

    let run = json_of(
        app.client
            .post(app.url("/internal/scheduled-refresh"))
            .header("X-API-Key", INTERNAL_KEY),
    )
    .await;
    let run_id = run["run"]["id"].as_str().expect("a run id").to_string();

    // (method, documented path, actual path, key, expected status)
    let calls = [
        ("get", "/healthz", "/healthz".to_string(), None, 200),
        ("get", "/readyz", "/readyz".to_string(), None, 200),
        (
            "get",
            "/tokens",
            "/tokens".to_string(),
            Some(ADMIN_KEY),
            200,
        ),
        ("get", "/tokens", "/tokens".to_string(), None, 401),
        (
            "get",
            "/tokens",
            "/tokens".to_string(),
            Some("nope-nope-nope"),
            403,
        ),
        (
            "get",
            "/tokens",
            "/tokens?health=bogus".to_string(),
            Some(ADMIN_KEY),
            400,
        ),
        (
            "get",
            "/tokens/health",
            "/tokens/health".to_string(),
            Some(ADMIN_KEY),
            200,
        ),
        (
            "get",
            "/facebook/tokens",
            "/facebook/tokens".to_string(),
            Some(ADMIN_KEY),
            200,
        ),
        (
            "get",
            "/facebook/tokens/{id}",
            format!("/facebook/tokens/{id}"),
            Some(ADMIN_KEY),
            200,
        ),
        (
            "get",
            "/facebook/tokens/{id}",
            "/facebook/tokens/nope".to_string(),
            Some(ADMIN_KEY),
            404,
        ),
        (
            "get",
            "/facebook/pages/{page_id}/token-status",
            "/facebook/pages/104729381234567/token-status".to_string(),
            Some(ADMIN_KEY),
            200,
        ),
        (
            "get",
            "/facebook/check-permissions",
            format!("/facebook/check-permissions?connection_id={id}&required=read_insights"),
            Some(ADMIN_KEY),
            200,
        ),
        (
            "get",
            "/tokens/{id}/access-token",
            format!("/tokens/{id}/access-token"),
            Some(ADMIN_KEY),
            200,
        ),
        (
            "get",
            "/facebook/available_metrics",
            "/facebook/available_metrics".to_string(),
            Some(ADMIN_KEY),
            200,
        ),
        (
            "get",
            "/tiktok/integrations",
            "/tiktok/integrations".to_string(),
            Some(ADMIN_KEY),
            200,
        ),
        (
            "get",
            "/tiktok/health",
            "/tiktok/health".to_string(),
            Some(ADMIN_KEY),
            200,
        ),
        (
            "get",
            "/exports",
            "/exports".to_string(),
            Some(ADMIN_KEY),
            200,
        ),
        (
            "get",
            "/internal/refresh-runs",
            "/internal/refresh-runs".to_string(),
            Some(INTERNAL_KEY),
            200,
        ),
        (
            "get",
            "/internal/refresh-runs/{run_id}",
            format!("/internal/refresh-runs/{run_id}"),
            Some(INTERNAL_KEY),
            200,
        ),
        (
            "get",
            "/facebook/internal/refresh-runs/{run_id}",
            format!("/facebook/internal/refresh-runs/{run_id}"),
            Some(INTERNAL_KEY),
            200,
        ),
        (
            "post",
            "/tiktok/internal/cleanup",
            "/tiktok/internal/cleanup".to_string(),
            Some(INTERNAL_KEY),
            409,
        ),
    ];
    let mut failures = Vec::new();
    for (method, documented, actual, key, status) in calls {
        let mut request = match method {
            "post" => app.client.post(app.url(&actual)),
            _ => app.client.get(app.url(&actual)),
        };
        if let Some(key) = key {
            request = request.header("X-API-Key", key);
        }
        let r = request.send().await.unwrap();
        let name = format!("{} {actual}", method.to_uppercase());
        if r.status() != status {
            failures.push(format!("{name}: answered {} not {status}", r.status()));
            continue;
        }
        let body: Value = r.json().await.unwrap();
        let Some(response) = spec["paths"][documented][method]["responses"].get(status.to_string())
        else {
            failures.push(format!("{name}: status {status} is not documented"));
            continue;
        };
        let schema = &resolve(&spec, response)["content"]["application/json"]["schema"];
        if !schema.is_object() {
            failures.push(format!("{name}: no JSON schema documented for {status}"));
            continue;
        }
        let mut errors = Vec::new();
        validate(&spec, schema, &body, "$", &mut errors);
        failures.extend(errors.into_iter().map(|e| format!("{name} {status}: {e}")));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    app.stop().await;
}

#[tokio::test]
async fn every_reference_in_the_document_resolves() {
    fn walk(spec: &Value, value: &Value, at: &str, dangling: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
                    let target = reference.strip_prefix('#').and_then(|p| spec.pointer(p));
                    if target.is_none() {
                        dangling.push(format!("{at}: {reference}"));
                    }
                }
                for (k, v) in map {
                    walk(spec, v, &format!("{at}/{k}"), dangling);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(spec, v, &format!("{at}/{i}"), dangling);
                }
            }
            _ => {}
        }
    }
    let app = TestApp::spawn().await;
    let spec = spec(&app).await;
    let mut dangling = Vec::new();
    walk(&spec, &spec, "", &mut dangling);
    assert!(dangling.is_empty(), "dangling references: {dangling:#?}");
    app.stop().await;
}

#[test]
fn the_validator_refuses_what_does_not_fit() {
    let spec = serde_json::json!({"components": {"schemas": {
        "E": {"type": "string", "enum": ["a", "b"]},
        "O": {"type": "object", "required": ["n", "e"], "properties": {
            "n": {"type": "integer", "minimum": 0},
            "e": {"$ref": "#/components/schemas/E"},
            "t": {"type": ["string", "null"]},
            "l": {"oneOf": [{"type": "null"}, {"type": "array", "items": {"type": "boolean"}}]}
        }}
    }}});
    let schema = serde_json::json!({"$ref": "#/components/schemas/O"});
    let check = |v: Value| {
        let mut errors = Vec::new();
        validate(&spec, &schema, &v, "$", &mut errors);
        errors
    };
    assert!(check(serde_json::json!({"n": 1, "e": "a", "t": null, "l": [true]})).is_empty());
    assert!(!check(serde_json::json!({"n": -1, "e": "a"})).is_empty());
    assert!(!check(serde_json::json!({"n": 1, "e": "c"})).is_empty());
    assert!(!check(serde_json::json!({"e": "a"})).is_empty());
    assert!(!check(serde_json::json!({"n": 1, "e": "a", "t": 3})).is_empty());
    assert!(!check(serde_json::json!({"n": 1, "e": "a", "l": [1]})).is_empty());
}

#[tokio::test]
async fn docs_serve_the_swagger_ui_from_the_binary_and_the_spec_declares_security() {
    let app = TestApp::spawn().await;
    for path in ["/docs", "/docs/"] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let html = r.text().await.unwrap();
        assert!(html.contains("swagger-ui"), "{path} is not the Swagger UI");
        for attr in ["src=\"http", "src='http", "href=\"http", "href='http"] {
            assert!(!html.contains(attr), "{path} loads an external asset");
        }
    }
    for asset in [
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "swagger-initializer.js",
    ] {
        let r = app
            .client
            .get(app.url(&format!("/docs/{asset}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{asset} is not served");
        if asset == "swagger-initializer.js" {
            assert!(r.text().await.unwrap().contains("/openapi.json"));
        }
    }
    let spec = spec(&app).await;
    let schemes = &spec["components"]["securitySchemes"];
    assert_eq!(schemes["api_key"]["type"], "apiKey");
    assert_eq!(schemes["api_key"]["in"], "header");
    assert_eq!(schemes["api_key"]["name"], "X-API-Key");
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    let internal = &spec["paths"]["/internal/scheduled-refresh"]["post"]["security"];
    assert_eq!(internal[0]["api_key"][0], "internal");
    app.stop().await;
}

/// A `$ref`'d object (schema or response), or the value itself.
fn resolve<'a>(spec: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("external $ref {reference}"));
            resolve(
                spec,
                spec.pointer(pointer)
                    .unwrap_or_else(|| panic!("dangling $ref {reference}")),
            )
        }
        None => value,
    }
}

/// Checks `value` against the subset of JSON Schema that utoipa emits:
/// `$ref`, `type` (one or a list), `enum`, `properties`, `required`,
/// `additionalProperties`, `items`, `oneOf`, `anyOf`, `allOf`, `nullable`,
/// `minimum`. Other keywords (`format`, `description`, ...) are not checked.
fn validate(spec: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(spec, schema);
    let Some(s) = schema.as_object() else {
        return;
    };
    if let Some(types) = s.get("type") {
        let mut allowed: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if s.get("nullable") == Some(&Value::Bool(true)) {
            allowed.push("null");
        }
        if !allowed.iter().any(|t| has_type(value, t)) {
            errors.push(format!("{at}: {value} is not of type {allowed:?}"));
            return;
        }
    }
    if let Some(Value::Array(options)) = s.get("enum")
        && !options.contains(value)
    {
        errors.push(format!("{at}: {value} is not one of {options:?}"));
    }
    if let (Some(min), Some(n)) = (s.get("minimum").and_then(Value::as_f64), value.as_f64())
        && n < min
    {
        errors.push(format!("{at}: {n} is below the minimum {min}"));
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(options)) = s.get(key) {
            let matching = options
                .iter()
                .filter(|o| {
                    let mut e = Vec::new();
                    validate(spec, o, value, at, &mut e);
                    e.is_empty()
                })
                .count();
            let ok = if key == "oneOf" {
                matching == 1
            } else {
                matching >= 1
            };
            if !ok {
                errors.push(format!(
                    "{at}: {value} matches {matching} of the {key} options"
                ));
            }
        }
    }
    if let Some(Value::Array(parts)) = s.get("allOf") {
        for part in parts {
            validate(spec, part, value, at, errors);
        }
    }
    if let Value::Object(object) = value {
        check_object(spec, s, object, at, errors);
    }
    if let (Some(items), Value::Array(list)) = (s.get("items"), value) {
        for (i, item) in list.iter().enumerate() {
            validate(spec, items, item, &format!("{at}[{i}]"), errors);
        }
    }
}

fn check_object(
    spec: &Value,
    s: &Map<String, Value>,
    object: &Map<String, Value>,
    at: &str,
    errors: &mut Vec<String>,
) {
    if let Some(Value::Array(required)) = s.get("required") {
        for name in required.iter().filter_map(Value::as_str) {
            if !object.contains_key(name) {
                errors.push(format!("{at}: required property '{name}' is missing"));
            }
        }
    }
    let properties = s.get("properties").and_then(Value::as_object);
    for (name, v) in object {
        let here = format!("{at}.{name}");
        match properties.and_then(|p| p.get(name)) {
            Some(p) => validate(spec, p, v, &here, errors),
            None => match s.get("additionalProperties") {
                Some(Value::Bool(false)) => errors.push(format!("{here}: not an allowed property")),
                Some(extra @ Value::Object(_)) => validate(spec, extra, v, &here, errors),
                _ => {}
            },
        }
    }
}

fn has_type(value: &Value, t: &str) -> bool {
    match t {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => false,
    }
}

/// The query parameter `name` of `GET path`, as the document states it.
fn query_schema<'a>(spec: &'a Value, path: &str, name: &str) -> &'a Value {
    spec["paths"][path]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .map(|p| &p["schema"])
        .unwrap_or_else(|| panic!("{path} has no parameter {name}"))
}

#[tokio::test]
async fn the_document_states_the_constraints_the_validators_enforce() {
    let app = TestApp::spawn().await;
    let spec = spec(&app).await;
    let dates = query_schema(&spec, "/facebook/post_metrics", "start_date");
    assert_eq!(dates["format"], "date");
    // Metric lists: a comma-separated list of registry names, never empty.
    let metrics = query_schema(&spec, "/facebook/post_metrics", "metrics");
    let pattern = metrics["pattern"].as_str().unwrap();
    assert!(pattern.contains("post_clicks") && pattern.starts_with('^'));
    let reels = query_schema(&spec, "/facebook/reel_metrics", "metrics");
    assert!(
        reels["pattern"]
            .as_str()
            .unwrap()
            .contains("blue_reels_play_count")
    );
    let account = query_schema(&spec, "/facebook/campaigns", "ad_account_id");
    assert_eq!(account["pattern"], "^(act_)?[0-9]+$");
    let provider = query_schema(&spec, "/tokens", "provider");
    assert_eq!(
        provider["enum"],
        serde_json::json!(["facebook", "tiktok_shop", "google"])
    );
    let required: Vec<&Value> = spec["paths"]["/facebook/debug_token"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "connection_id")
        .collect();
    assert_eq!(required[0]["required"], true);
    let body = &spec["components"]["schemas"]["CampaignMetricsRequest"]["properties"];
    assert!(
        body["metrics"]["items"]["enum"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("impressions"))
    );
    assert_eq!(body["metrics"]["minItems"], 1);
}
