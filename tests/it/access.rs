//! Who gets in, in what order: authentication and scope before any input is
//! read (driven from the OpenAPI document, so a new operation is covered),
//! JSON bodies that must be objects, failed authentication limited without
//! a bucket per presented key, and reserved key ids.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use serde_json::Value;
use tokenkeeper::clock::OffsetClock;

use crate::helpers::{TEST_KEY, TestApp, spawn_until_listening, test_settings_with};
use crate::openapi::spec;

const ADMIN_KEY: &str = "access-admin-key-0123456789";

/// Every scope, and which scopes a key may hold instead (tokens:admin
/// implies tokens:read and tokens:refresh, as docs/api.md says).
const SCOPES: [&str; 7] = [
    "tokens:read",
    "tokens:use",
    "tokens:refresh",
    "tokens:admin",
    "insights:read",
    "exports",
    "internal",
];

fn implied_by(scope: &str) -> &'static [&'static str] {
    match scope {
        "tokens:read" | "tokens:refresh" => &["tokens:admin"],
        _ => &[],
    }
}

/// A protected operation as the document describes it.
struct Operation {
    method: String,
    path: String,
    query: Vec<String>,
    has_body: bool,
    /// Any one of these lets a key in.
    accepted: BTreeSet<String>,
}

impl Operation {
    fn name(&self) -> String {
        format!("{} {}", self.method.to_uppercase(), self.path)
    }

    /// The path with every parameter filled with junk.
    fn url_path(&self) -> String {
        let mut out = String::new();
        let mut rest = self.path.as_str();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let close = rest[open..].find('}').expect("a closed path parameter") + open;
            out.push_str("no-such-id");
            rest = &rest[close + 1..];
        }
        out.push_str(rest);
        out
    }

    /// Every documented query parameter set to a value no parser accepts.
    fn garbage_query(&self) -> String {
        let pairs: Vec<String> = self.query.iter().map(|q| format!("{q}=%FF%FE")).collect();
        format!("?{}&%ZZ", pairs.join("&"))
    }
}

fn protected_operations(spec: &Value) -> Vec<Operation> {
    let mut ops = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in ["get", "post", "put", "patch", "delete"] {
            let Some(op) = item.get(method) else { continue };
            let accepted: BTreeSet<String> = op["security"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_object)
                .flat_map(|req| req.values())
                .filter_map(Value::as_array)
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
            if accepted.is_empty() {
                continue; // public
            }
            let query = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .filter_map(|p| p["name"].as_str().map(str::to_string))
                .collect();
            ops.push(Operation {
                method: method.to_string(),
                path: path.clone(),
                query,
                has_body: op.get("requestBody").is_some(),
                accepted,
            });
        }
    }
    ops
}

/// The scopes a key must lack so that it holds none of `accepted`.
fn none_of(accepted: &BTreeSet<String>) -> Vec<&'static str> {
    SCOPES
        .into_iter()
        .filter(|s| !accepted.contains(*s) && !accepted.iter().any(|a| implied_by(a).contains(s)))
        .collect()
}

fn key_toml(id: &str, scopes: &[&str]) -> String {
    let scopes: Vec<String> = scopes.iter().map(|s| format!("\"{s}\"")).collect();
    format!(
        "[[api.keys]]\nid = \"{id}\"\nkey = \"{id}-key-0123456789abcdef\"\nscopes = [{}]\n",
        scopes.join(", ")
    )
}

fn key_of(id: &str) -> String {
    format!("{id}-key-0123456789abcdef")
}

/// An app with the given extra configuration and the admin key.
async fn app_with(toml: &str) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("access.toml");
    std::fs::write(&file, toml).unwrap();
    let data = dir.path().join("data");
    let settings = test_settings_with(
        &data,
        &[("TOKENKEEPER_ADMIN_API_KEY", ADMIN_KEY)],
        Some(&file),
    );
    let mut app = TestApp::spawn_with(settings, Arc::new(OffsetClock::default())).await;
    app.keep_dir(dir);
    app
}

/// Sends one request; `key` None sends none, `garbage` fills every input
/// with junk (else the request carries no query and no body).
async fn call(app: &TestApp, op: &Operation, key: Option<&str>, garbage: bool) -> (u16, Value) {
    let mut url = app.url(&op.url_path());
    if garbage {
        url.push_str(&op.garbage_query());
    }
    let method = reqwest::Method::from_bytes(op.method.to_uppercase().as_bytes()).unwrap();
    let mut req = app.client.request(method, url);
    if let Some(key) = key {
        req = req.header("X-API-Key", key);
    }
    if garbage && op.has_body {
        req = req
            .header("content-type", "application/json")
            .body("[null, {\"garbage\": ");
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let body = r.json().await.unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test]
async fn every_protected_operation_checks_key_and_scope_before_reading_its_input() {
    let probe = TestApp::spawn().await;
    let ops = protected_operations(&spec(&probe).await);
    probe.stop().await;
    assert!(ops.len() > 40, "only {} protected operations", ops.len());

    // One key holding nothing, one per scope, one per accepted set holding
    // every scope but those.
    let mut toml = String::from(
        "[api]\nrate_limit_per_second = 100000\nrate_limit_burst = 100000\n\
         failed_auth_per_client_per_minute = 100000\nfailed_auth_per_second = 100000\n",
    );
    toml.push_str(&key_toml("noscope", &[]));
    for scope in SCOPES {
        toml.push_str(&key_toml(
            &format!("only-{}", scope.replace(':', "-")),
            &[scope],
        ));
    }
    let sets: BTreeSet<&BTreeSet<String>> = ops.iter().map(|o| &o.accepted).collect();
    let mut none_of_key = BTreeMap::new();
    for (i, set) in sets.into_iter().enumerate() {
        let id = format!("noneof-{i}");
        toml.push_str(&key_toml(&id, &none_of(set)));
        none_of_key.insert(set.clone(), key_of(&id));
    }
    let app = app_with(&toml).await;

    let mut problems = Vec::new();
    for op in &ops {
        let name = op.name();
        for garbage in [false, true] {
            let (status, body) = call(&app, op, None, garbage).await;
            if status != 401 || body["error"]["code"] != "unauthorized" {
                problems.push(format!(
                    "{name} without a key (garbage {garbage}): {status} {body}"
                ));
            }
            let (status, body) = call(&app, op, Some(&key_of("noscope")), garbage).await;
            if status != 403 || body["error"]["code"] != "forbidden" {
                problems.push(format!(
                    "{name} with a key without scopes (garbage {garbage}): {status} {body}"
                ));
            }
        }
        let (status, body) = call(&app, op, Some(&none_of_key[&op.accepted]), true).await;
        if status != 403 {
            problems.push(format!(
                "{name} with a key holding every scope but {:?}: {status} {body}",
                op.accepted
            ));
        }
        // The documented scope is enough to get past authorization.
        for scope in &op.accepted {
            let key = key_of(&format!("only-{}", scope.replace(':', "-")));
            let (status, body) = call(&app, op, Some(&key), true).await;
            if status == 401 || status == 403 {
                problems.push(format!("{name} with only {scope}: {status} {body}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    app.stop().await;
}

#[tokio::test]
async fn extend_permissions_refuses_a_body_that_is_not_an_object_naming_it() {
    let app = app_with("").await;
    let post = |body: &'static str| {
        app.client
            .post(app.url("/facebook/extend-permissions"))
            .header("X-API-Key", ADMIN_KEY)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = post("[null,null]").await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request", "{body}");
    assert_eq!(body["error"]["field"], "body", "{body}");

    let r = post(r#"{"scopes": [null]}"#).await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["field"], "scopes[0]", "{body}");

    let r = post(r#"{"scopes": ["pages_show_list"], "team_id": null}"#)
        .await
        .unwrap();
    assert_ne!(r.status(), 400, "an object still gets through");
    app.stop().await;
}

#[tokio::test]
async fn every_json_body_must_be_an_object() {
    let app = app_with("").await;
    let ops: Vec<Operation> = protected_operations(&spec(&app).await)
        .into_iter()
        .filter(|o| o.has_body)
        .collect();
    assert!(ops.len() >= 8, "only {} operations with a body", ops.len());
    let mut problems = Vec::new();
    for op in &ops {
        for body in ["[null,null]", "[]", "null", "\"x\""] {
            let method = reqwest::Method::from_bytes(op.method.to_uppercase().as_bytes()).unwrap();
            let r = app
                .client
                .request(method, app.url(&op.url_path()))
                .header("X-API-Key", ADMIN_KEY)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let answer: Value = r.json().await.unwrap_or(Value::Null);
            if status != 400 || answer["error"]["field"] != "body" {
                problems.push(format!("{} with {body}: {status} {answer}", op.name()));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    app.stop().await;
}

/// The service as its own process, so its resident memory is its own.
struct Service {
    child: std::process::Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Service {
    fn start(toml: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("flood.toml");
        std::fs::write(&file, toml).unwrap();
        let (child, addr) = spawn_until_listening(
            Command::new(env!("CARGO_BIN_EXE_tokenkeeper"))
                .args(["serve", "--addr", "127.0.0.1:0", "--config"])
                .arg(&file)
                .arg("--data-dir")
                .arg(dir.path().join("data"))
                .env("TOKENKEEPER_ENCRYPTION_KEY", TEST_KEY)
                .env("TOKENKEEPER__LOGGING__FORMAT", "json")
                .env("TOKENKEEPER__REFRESH__ENABLED", "false")
                .env("NO_COLOR", "1")
                .stdout(Stdio::null()),
        );
        Self {
            child,
            addr,
            _dir: dir,
        }
    }

    /// Resident memory, in kB.
    fn rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `n` requests to `/tokens`, each with a fresh random key, over
/// `concurrency` kept-alive connections, pipelined in batches so that the
/// client costs little; the statuses counted.
async fn flood(addr: &str, n: usize, concurrency: usize) -> BTreeMap<u16, usize> {
    const BATCH: usize = 50;
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let addr = addr.to_string();
            tokio::spawn(async move {
                let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
                let mut reader = ResponseReader::default();
                let mut counts = BTreeMap::new();
                let mut left = n / concurrency;
                while left > 0 {
                    let batch = left.min(BATCH);
                    let mut requests = String::new();
                    for _ in 0..batch {
                        requests.push_str(&format!(
                            "GET /tokens HTTP/1.1\r\nHost: tokenkeeper\r\nX-API-Key: random-{:032x}\r\n\r\n",
                            rand::random::<u128>()
                        ));
                    }
                    conn.write_all(requests.as_bytes()).await.unwrap();
                    for _ in 0..batch {
                        let status = reader.next_status(&mut conn).await;
                        *counts.entry(status).or_insert(0) += 1;
                    }
                    left -= batch;
                }
                counts
            })
        })
        .collect();
    let mut total = BTreeMap::new();
    for t in tasks {
        for (status, n) in t.await.unwrap() {
            *total.entry(status).or_insert(0) += n;
        }
    }
    total
}

/// Reads pipelined responses (status line, headers, Content-Length body).
#[derive(Default)]
struct ResponseReader {
    data: Vec<u8>,
}

impl ResponseReader {
    async fn next_status(&mut self, conn: &mut tokio::net::TcpStream) -> u16 {
        loop {
            if let Some(end) = self.data.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.data[..end]).unwrap();
                let (status, length) = crate::helpers::status_and_length(head);
                if self.data.len() >= end + 4 + length {
                    self.data.drain(..end + 4 + length);
                    return status;
                }
            }
            let mut buf = [0u8; 16 * 1024];
            let read = conn.read(&mut buf).await.unwrap();
            assert!(read > 0, "the service closed a flooding connection");
            self.data.extend_from_slice(&buf[..read]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_api_keys_are_rate_limited_and_cost_no_memory() {
    let service = Service::start(&format!(
        "[api]\nfailed_auth_per_client_per_minute = 60\nfailed_auth_per_second = 50\n{}",
        key_toml("reader", &["tokens:read"])
    ));
    let client = reqwest::Client::new();
    let url = format!("http://{}/tokens", service.addr);
    // Warm up connections, allocator arenas and the limiter.
    let warm = flood(&service.addr, 4_000, 16).await;
    assert!(warm.contains_key(&429), "{warm:?}");
    let before = service.rss_kb();
    let started = Instant::now();
    let counts = flood(&service.addr, 100_000, 16).await;
    let took = started.elapsed();
    let after = service.rss_kb();
    let growth_kb = after.saturating_sub(before);
    eprintln!(
        "100000 random keys in {took:?}: {counts:?}; VmRSS {before} kB -> {after} kB (+{growth_kb} kB)"
    );
    assert_eq!(counts.values().sum::<usize>(), 100_000);
    assert!(counts.keys().all(|s| [403, 429].contains(s)), "{counts:?}");
    assert!(counts[&429] > 90_000, "{counts:?}");
    assert!(
        growth_kb < 5 * 1024,
        "resident memory grew by {growth_kb} kB"
    );

    // A valid key is not held back by the flood.
    let r = client
        .get(&url)
        .header("X-API-Key", key_of("reader"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A client over its failed-authentication limit is told when to retry.
    let r = client
        .get(&url)
        .header("X-API-Key", "random-one-more")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
}

#[test]
fn a_configured_key_with_a_reserved_or_repeated_id_stops_the_service_with_exit_2() {
    for (keys, named) in [
        (key_toml("admin", &["exports"]), "api.keys[0].id"),
        (
            format!(
                "{}{}",
                key_toml("ops", &["exports"]),
                key_toml("internal", &[])
            ),
            "api.keys[1].id",
        ),
        (
            format!("{}{}", key_toml("ops", &["exports"]), key_toml("ops", &[])),
            "api.keys[1].id",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys.toml");
        std::fs::write(&file, keys).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_tokenkeeper"))
            .args(["serve", "--addr", "127.0.0.1:0", "--config"])
            .arg(&file)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env("TOKENKEEPER_ENCRYPTION_KEY", TEST_KEY)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(named), "{stderr}");
        assert!(!dir.path().join("data").join("tokens.json").exists());
    }
}
