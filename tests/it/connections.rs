//! Connection and request time limits, and the cap on connections, as a
//! client on a raw socket sees them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokenkeeper::clock::OffsetClock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::fb_support::{FbApp, FbOptions, READER_KEY, assert_error, connection_id};
use crate::helpers::{TestApp, test_settings_with};

const ADMIN_KEY: &str = "connections-admin-key-0123456789";
/// Far more than any limit under test takes to act.
const DEADLINE: Duration = Duration::from_secs(10);

async fn app_with_server(server_toml: &str) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server.toml");
    std::fs::write(&file, format!("[server]\n{server_toml}\n")).unwrap();
    let settings = test_settings_with(
        &dir.path().join("data"),
        &[("TOKENKEEPER_ADMIN_API_KEY", ADMIN_KEY)],
        Some(&file),
    );
    let mut app = TestApp::spawn_with(settings, Arc::new(OffsetClock::default())).await;
    app.keep_dir(dir);
    app
}

/// Waits until the server closes `stream` (EOF or reset), discarding what
/// it sends; how long that took. Panics after [`DEADLINE`].
async fn closed_by_server(stream: &mut TcpStream) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(DEADLINE, stream.read(&mut buf)).await {
            Err(_) => panic!("the connection is still open after {DEADLINE:?}"),
            Ok(Ok(0) | Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
        }
    }
}

/// Reads one response: status line, headers, and a Content-Length body.
async fn read_response(stream: &mut TcpStream) -> (u16, Value) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = tokio::time::timeout(DEADLINE, stream.read(&mut buf))
            .await
            .expect("a response in time")
            .unwrap();
        assert!(n > 0, "closed before a response");
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let (status, length) = crate::helpers::status_and_length(&head);
    while data.len() < head_end + length {
        let n = tokio::time::timeout(DEADLINE, stream.read(&mut buf))
            .await
            .expect("the body in time")
            .unwrap();
        assert!(n > 0, "closed within the body");
        data.extend_from_slice(&buf[..n]);
    }
    let body = serde_json::from_slice(&data[head_end..head_end + length]).unwrap_or(Value::Null);
    (status, body)
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: tokenkeeper\r\n\r\n";

#[tokio::test]
async fn a_client_that_sends_half_a_header_is_disconnected_after_the_header_timeout() {
    let app = app_with_server("header_read_timeout_secs = 1\nidle_timeout_secs = 60").await;
    let mut half = TcpStream::connect(app.addr).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: tokenkeeper\r\nX-Slow: ")
        .await
        .unwrap();
    let took = closed_by_server(&mut half).await;
    assert!(took >= Duration::from_millis(800), "closed after {took:?}");

    // A connection that sends nothing at all is held no longer.
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    closed_by_server(&mut silent).await;

    // On a kept-alive connection, the next request's headers are timed too.
    let mut kept = TcpStream::connect(app.addr).await.unwrap();
    kept.write_all(HEALTHZ).await.unwrap();
    assert_eq!(read_response(&mut kept).await.0, 200);
    kept.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    let took = closed_by_server(&mut kept).await;
    assert!(took >= Duration::from_millis(800), "closed after {took:?}");
    app.stop().await;
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let app = app_with_server("header_read_timeout_secs = 30\nidle_timeout_secs = 1").await;
    let mut conn = TcpStream::connect(app.addr).await.unwrap();
    for _ in 0..3 {
        conn.write_all(HEALTHZ).await.unwrap();
        assert_eq!(read_response(&mut conn).await.0, 200, "kept alive");
    }
    let took = closed_by_server(&mut conn).await;
    assert!(took >= Duration::from_millis(800), "closed after {took:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_slow_body_is_cut_off_with_408_in_the_envelope() {
    let app = app_with_server("body_read_timeout_secs = 1").await;
    let mut conn = TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /facebook/extend-permissions HTTP/1.1\r\nHost: tokenkeeper\r\n\
         X-API-Key: {ADMIN_KEY}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"scopes\": "
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (status, body) = read_response(&mut conn).await;
    assert!(started.elapsed() >= Duration::from_millis(800));
    assert_error(status, &body, 408, "request_timeout");
    closed_by_server(&mut conn).await;
    app.stop().await;
}

#[tokio::test]
async fn a_request_not_answered_in_time_gets_503_timeout_in_the_envelope() {
    let fb = FbApp::start_with(FbOptions {
        extra_toml: "[server]\nrequest_timeout_secs = 2\n[insights]\nasync_timeout_secs = 1\n"
            .into(),
        ..FbOptions::default()
    })
    .await;
    let answer = fb.connect_user(1, None).await;
    let id = connection_id(&answer, "user");
    fb.sim
        .fault(json!({ "path": "/debug_token", "latency_ms": 8000 }))
        .await;
    let started = Instant::now();
    let (status, body) = fb
        .get(
            &format!("/facebook/debug_token?connection_id={id}"),
            READER_KEY,
        )
        .await;
    let took = started.elapsed();
    assert_error(status, &body, 503, "timeout");
    assert!(
        took >= Duration::from_millis(1800) && took < Duration::from_secs(7),
        "answered after {took:?}"
    );
    fb.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let app = app_with_server(
        "max_connections = 2\nheader_read_timeout_secs = 30\nidle_timeout_secs = 30",
    )
    .await;
    // Two kept-alive connections take both slots.
    let mut first = TcpStream::connect(app.addr).await.unwrap();
    let mut second = TcpStream::connect(app.addr).await.unwrap();
    for conn in [&mut first, &mut second] {
        conn.write_all(HEALTHZ).await.unwrap();
        assert_eq!(read_response(conn).await.0, 200);
    }
    // A third is not served while they are open...
    let mut third = TcpStream::connect(app.addr).await.unwrap();
    third.write_all(HEALTHZ).await.unwrap();
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(500), third.peek(&mut byte)).await;
    assert!(early.is_err(), "the third connection was served at once");
    // ...and is as soon as one closes.
    drop(first);
    assert_eq!(read_response(&mut third).await.0, 200);
    second.write_all(HEALTHZ).await.unwrap();
    assert_eq!(read_response(&mut second).await.0, 200);
    app.stop().await;
}
