//! CSV export benchmark: spool and write 100,000 then 1,000,000 synthetic
//! insight rows (12 metrics, 5 Meta action types, Vietnamese text), printing
//! rows per second and the peak RSS after each size, to show that memory does
//! not grow with the number of rows. Run with `cargo bench --bench csv`.

use std::time::Instant;

use futures::StreamExt;
use serde_json::json;
use tokenkeeper::export::{self, ExportError, Row};

const ACTIONS: [&str; 5] = [
    "link_click",
    "post_engagement",
    "video_view",
    "comment",
    "offsite_conversion.fb_pixel_purchase",
];

fn row(i: u64) -> Row {
    let actions: Vec<_> = ACTIONS
        .iter()
        .enumerate()
        .map(|(k, action)| json!({"action_type": action, "value": ((i * 7 + k as u64) % 1000).to_string()}))
        .collect();
    let row = json!({
        "date": format!("2024-{:02}-{:02}", i % 12 + 1, i % 28 + 1),
        "page_id": "104518538100000",
        "post_id": format!("104518538100000_{i}"),
        "message": if i.is_multiple_of(4) { "Xin chào, thế giới — “ngoặc kép”, dấu phẩy" } else { "Khuyến mãi cuối tuần" },
        "impressions": (i * 31) % 100_000,
        "reach": (i * 17) % 80_000,
        "spend": format!("{}.{:02}", i % 500, i % 100),
        "clicks": i % 900,
        "ctr": (i % 1000) as f64 / 137.0,
        "cpc": (i % 300) as f64 / 100.0,
        "cpm": (i % 5000) as f64 / 10.0,
        "frequency": 1.0 + (i % 50) as f64 / 25.0,
        "video_views": i % 4000,
        "engagement": i % 2500,
        "post_reactions_by_type_total": {"like": i % 90, "love": i % 13},
        "actions": actions,
    });
    row.as_object().unwrap().clone()
}

fn rows(n: u64) -> impl futures::Stream<Item = Result<Row, ExportError>> + Send {
    futures::stream::iter((0..n).map(|i| Ok(row(i))))
}

/// Peak resident set size so far, in KiB (`VmHWM`).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Spools `n` rows and writes them with `write_to`, then spools them again
/// and drains `into_response`'s body; returns the peak RSS after both.
async fn run(n: u64, dir: &std::path::Path) -> u64 {
    let started = Instant::now();
    let spooled = export::spool(rows(n), &["date", "page_id", "post_id"], dir)
        .await
        .unwrap();
    let spooled_in = started.elapsed();
    let columns = spooled.columns.len();
    let path = dir.join(format!("bench-{n}.csv"));
    let bytes = spooled.write_to(&path).await.unwrap();
    let total = started.elapsed();
    println!(
        "{n:>9} rows, {columns} columns, {:.1} MiB CSV: spool {:.2} s, spool+write_to {:.2} s = {:.0} rows/s",
        bytes as f64 / 1048576.0,
        spooled_in.as_secs_f64(),
        total.as_secs_f64(),
        n as f64 / total.as_secs_f64()
    );
    std::fs::remove_file(&path).unwrap();

    let started = Instant::now();
    let spooled = export::spool(rows(n), &["date", "page_id", "post_id"], dir)
        .await
        .unwrap();
    let mut body = spooled
        .into_response("bench.csv")
        .into_body()
        .into_data_stream();
    let mut streamed = 0u64;
    while let Some(chunk) = body.next().await {
        streamed += chunk.unwrap().len() as u64;
    }
    let total = started.elapsed();
    assert_eq!(streamed, bytes);
    println!(
        "{n:>9} rows: spool+into_response body drained {:.2} s = {:.0} rows/s",
        total.as_secs_f64(),
        n as f64 / total.as_secs_f64()
    );
    let peak = peak_rss_kib();
    println!("{n:>9} rows: peak RSS (VmHWM) {:.1} MiB", mib(peak));
    peak
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    println!("start: peak RSS (VmHWM) {:.1} MiB", mib(peak_rss_kib()));
    let small = run(100_000, dir.path()).await;
    let large = run(1_000_000, dir.path()).await;
    println!(
        "peak RSS growth from 100,000 to 1,000,000 rows: {:.1} MiB (target: within 10 MB)",
        mib(large.saturating_sub(small))
    );
}
