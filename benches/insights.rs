//! Post insights benchmark: a business with 20 pages × 200 posts, read with
//! field expansion against the simulator at 20 ms per call. Prints upstream
//! calls and wall time against the bound calls × 20 ms / concurrency.
//! Run with `cargo bench --bench insights`.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};
use tokenkeeper::app::Application;
use tokenkeeper::clock::SystemClock;
use tokenkeeper::config::{Overrides, Settings};
use tokenkeeper::insights::Access;
use tokenkeeper::insights::business::BusinessQuery;
use tokenkeeper::secret::Secret;
use tokenkeeper::simulator::{self, SimConfig};

const PAGES: usize = 20;
const POSTS: usize = 200;
const LATENCY_MS: u64 = 20;

/// Upstream latency; `TK_BENCH_LATENCY_MS=0` shows the CPU cost alone
/// (simulator and service share the machine).
fn latency_ms() -> u64 {
    std::env::var("TK_BENCH_LATENCY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(LATENCY_MS)
}
const CONCURRENCY: usize = 10;

async fn post(http: &reqwest::Client, url: String, body: Value) -> Value {
    http.post(url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap_or(Value::Null)
}

#[tokio::main]
async fn main() {
    let sim = simulator::start(
        SimConfig {
            fb_app_id: "111".into(),
            fb_app_secret: "bench-secret-0123456789".into(),
            demo_user: false,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let base = sim.base_url();
    let http = reqwest::Client::new();
    let pages: Vec<Value> = (0..PAGES)
        .map(|i| json!({ "name": format!("Page {i}") }))
        .collect();
    let user = post(
        &http,
        format!("{base}/_sim/users"),
        json!({ "name": "Owner", "pages": pages }),
    )
    .await;
    let page_ids: Vec<String> = user["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    for page in &page_ids {
        post(
            &http,
            format!("{base}/_sim/pages/{page}/posts"),
            json!({ "count": POSTS, "interval_secs": 600 }),
        )
        .await;
    }
    let business = post(
        &http,
        format!("{base}/_sim/businesses"),
        json!({ "name": "Bench", "page_ids": page_ids }),
    )
    .await;

    let data = tempfile::tempdir().unwrap();
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("bench.toml");
    std::fs::write(
        &config,
        format!(
            "[facebook]\ngraph_base_url = \"{base}\"\ndialog_base_url = \"{base}\"\n\
             [refresh]\nenabled = false\n[insights]\nconcurrency = {CONCURRENCY}\ncache_ttl_secs = 0\n\
             [logging]\nlevel = \"warn\"\n"
        ),
    )
    .unwrap();
    let env = [
        ("FB_APP_ID".to_string(), "111".to_string()),
        (
            "FB_APP_SECRET".to_string(),
            "bench-secret-0123456789".to_string(),
        ),
        (
            "TOKENKEEPER_ENCRYPTION_KEY".to_string(),
            tokenkeeper::secret::generate_key(),
        ),
    ]
    .into();
    let settings = Settings::load_from(
        std::path::Path::new("/nonexistent"),
        &Overrides {
            config_file: Some(config),
            addr: Some("127.0.0.1:0".into()),
            data_dir: Some(data.path().to_path_buf()),
        },
        &env,
    )
    .unwrap();
    let app = Application::build_with_clock(settings, Arc::new(SystemClock))
        .await
        .unwrap();
    let state = app.state();
    let flow = tokenkeeper::providers::facebook::connect::business_token(
        state.registry.facebook().unwrap(),
        state.tokens.upstream(),
        &Secret::new(business["system_user_token"].as_str().unwrap()),
        None,
    )
    .await
    .unwrap();
    state.tokens.connect(None, flow).await.unwrap();

    http.delete(format!("{base}/_sim/stats"))
        .send()
        .await
        .unwrap();
    post(
        &http,
        format!("{base}/_sim/faults"),
        json!({ "path": "/", "latency_ms": latency_ms() }),
    )
    .await;
    let today = chrono::Utc::now().date_naive();
    let query = BusinessQuery {
        connection_id: None,
        metrics: Some("post_clicks,post_reactions_by_type_total".into()),
        reel_metrics: None,
        start_date: Some((today - chrono::Duration::days(30)).to_string()),
        end_date: Some(today.to_string()),
    };
    let started = Instant::now();
    let answer = state
        .insights
        .business_insights(&Access::default(), &query, false)
        .await
        .unwrap();
    let wall = started.elapsed().as_secs_f64();
    let stats: Value = http
        .get(format!("{base}/_sim/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let calls: u64 = stats
        .as_object()
        .unwrap()
        .values()
        .filter_map(Value::as_u64)
        .sum();
    let rows = answer.rows.data.len();
    let latency = latency_ms();
    let bound = calls as f64 * latency as f64 / 1000.0 / CONCURRENCY as f64;
    // Each page's listing calls follow one another (cursor paging), so the
    // shortest possible run is one accounts call plus the pages' chains.
    let per_page = (calls.saturating_sub(1)) as f64 / PAGES as f64;
    let waves = (PAGES as f64 / CONCURRENCY as f64).ceil();
    let critical = (1.0 + waves * per_page) * latency as f64 / 1000.0;
    println!(
        "business post insights: {PAGES} pages x {POSTS} posts, {latency} ms per call, concurrency {CONCURRENCY}"
    );
    println!(
        "  rows {rows}, upstream calls {calls} ({per_page:.2} per page after the accounts call), per-post calls 0"
    );
    if latency > 0 {
        println!(
            "  wall {wall:.3} s, bound {bound:.3} s (calls x {latency} ms / C), ratio {:.2}",
            wall / bound
        );
        println!(
            "  critical path with sequential paging per page: {critical:.3} s, ratio {:.2}",
            wall / critical
        );
    } else {
        println!(
            "  wall {wall:.3} s with no upstream latency: CPU of the simulator and the service"
        );
    }
    state.store.close().await;
}
