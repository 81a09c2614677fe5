//! Insights and CSV against the simulator's deterministic data.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::fb_support::*;

/// Connects a user with `pages` pages and returns (user external id, page ids).
async fn user_with_pages(fb: &FbApp, pages: usize) -> (String, Vec<String>) {
    let answer = fb.connect_user(pages, None).await;
    let user = connection_of_kind(&answer, "user")["external_id"]
        .as_str()
        .unwrap()
        .to_string();
    let page_ids = connections(&answer)
        .filter(|c| c["kind"] == "page")
        .map(|c| c["external_id"].as_str().unwrap().to_string())
        .collect();
    (user, page_ids)
}

async fn seed_account(fb: &FbApp, user: &str) {
    fb.sim
        .control(
            "/_sim/ad_accounts",
            json!({ "id": "111", "user_ids": [user], "campaigns": [
                { "id": "120200000000000001", "name": "Summer Sale",
                  "daily": { "impressions": 1000, "reach": 800, "clicks": 25, "spend": "12.50",
                             "actions": { "link_click": 20, "post_engagement": 30 } },
                  "start_date": "2026-06-01", "end_date": "2026-06-10" },
                { "id": "120200000000000002", "name": "Khuyến mãi Tết",
                  "daily": { "impressions": 500, "reach": 400, "clicks": 10, "spend": "5.25",
                             "actions": { "link_click": 5 } },
                  "start_date": "2026-06-05", "end_date": "2026-06-20" }
            ]}),
        )
        .await;
}

fn metrics_request(start: &str, end: &str, increment: Value) -> Value {
    json!({ "ad_account_id": "act_111",
            "date_range": { "start_date": start, "end_date": end },
            "metrics": ["impressions", "clicks", "spend", "actions", "cpc"],
            "level": "campaign", "time_increment": increment })
}

#[tokio::test]
async fn campaign_metrics_have_exact_totals_and_numbers() {
    let fb = FbApp::start().await;
    let (user, _) = user_with_pages(&fb, 0).await;
    seed_account(&fb, &user).await;

    let (status, body) = fb
        .post(
            "/facebook/campaign_metrics",
            ANALYST_KEY,
            metrics_request("2026-06-01", "2026-06-30", json!("all_days")),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    let totals = &body["summary"]["totals"];
    assert_eq!(totals["impressions"], 18_000);
    assert_eq!(totals["clicks"], 410);
    assert_eq!(totals["spend"], 209.0);
    assert_eq!(totals["actions"]["link_click"], 280);
    assert_eq!(totals["cpc"], 0.509756);
    let row = &body["data"][0];
    assert!(
        row["impressions"].is_number() && row["spend"].is_number(),
        "{row}"
    );
    assert!(row["campaign_id"].is_string());

    let campaigns = fb
        .get_ok(
            "/facebook/campaigns?ad_account_id=111&effective_status=ACTIVE",
            ANALYST_KEY,
        )
        .await;
    assert_eq!(campaigns["count"], 2);

    // Validation names the field.
    let (status, body) = fb
        .post(
            "/facebook/campaign_metrics",
            ANALYST_KEY,
            metrics_request("2026-06-10", "2026-06-01", json!(1)),
        )
        .await;
    assert_field_error(status, &body, 422, "date_range.end_date");
    let (status, body) = fb
        .post(
            "/facebook/campaign_metrics",
            ANALYST_KEY,
            metrics_request("2020-01-01", "2020-01-02", json!(1)),
        )
        .await;
    assert_field_error(status, &body, 422, "date_range.start_date");
    let mut bad = metrics_request("2026-06-01", "2026-06-02", json!(1));
    bad["dimensions"] = json!(["zodiac"]);
    let (status, body) = fb
        .post("/facebook/campaign_metrics", ANALYST_KEY, bad)
        .await;
    assert_field_error(status, &body, 422, "dimensions");
    // A key without insights:read is refused.
    let (status, _) = fb
        .post(
            "/facebook/campaign_metrics",
            READER_KEY,
            metrics_request("2026-06-01", "2026-06-02", json!(1)),
        )
        .await;
    assert_eq!(status, 403);
    fb.stop().await;
}

#[tokio::test]
async fn large_ranges_use_async_reports_with_the_same_rows_as_sync() {
    let fb = FbApp::start_with(FbOptions {
        extra_toml:
            "[insights]\nasync_after_days = 5\nasync_poll_initial_ms = 10\nasync_poll_max_ms = 50\n"
                .into(),
        ..FbOptions::default()
    })
    .await;
    let (user, _) = user_with_pages(&fb, 0).await;
    seed_account(&fb, &user).await;

    let (status, small) = fb
        .post(
            "/facebook/campaign_metrics",
            ANALYST_KEY,
            metrics_request("2026-06-01", "2026-06-04", json!(1)),
        )
        .await;
    assert_eq!(status, 200, "{small}");
    assert_eq!(small["report"], "sync");
    // One failed job is retried.
    fb.sim
        .control("/_sim/ads/fail_reports", json!({ "count": 1 }))
        .await;
    let (status, large) = fb
        .post(
            "/facebook/campaign_metrics",
            ANALYST_KEY,
            metrics_request("2026-06-01", "2026-06-20", json!(1)),
        )
        .await;
    assert_eq!(status, 200, "{large}");
    assert_eq!(large["report"], "async");
    assert_eq!(large["summary"]["totals"]["impressions"], 18_000);
    let key = |r: &Value| r.to_string();
    let sync_rows: BTreeSet<String> = small["data"].as_array().unwrap().iter().map(key).collect();
    let async_rows: BTreeSet<String> = large["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["date_start"].as_str().unwrap() <= "2026-06-04")
        .map(key)
        .collect();
    assert_eq!(sync_rows.len(), 4);
    assert_eq!(sync_rows, async_rows);
    fb.stop().await;
}

fn today() -> String {
    chrono::Utc::now().date_naive().to_string()
}

fn month_ago() -> String {
    (chrono::Utc::now().date_naive() - chrono::Duration::days(30)).to_string()
}

#[tokio::test]
async fn retired_metrics_are_refused_and_upstream_rejections_are_dropped_and_reported() {
    let fb = FbApp::start().await;
    let (_, pages) = user_with_pages(&fb, 1).await;
    let page = &pages[0];
    fb.sim.seed_content(&page, "posts", 5).await;
    let window = format!("start_date={}&end_date={}", month_ago(), today());

    let (status, body) = fb
        .get(&format!("/facebook/post_metrics?page_id={page}&metrics=post_clicks,post_impressions&{window}"), ANALYST_KEY)
        .await;
    assert_error(status, &body, 422, "invalid_metrics");
    assert_eq!(body["error"]["metrics"][0]["metric"], "post_impressions");
    assert_eq!(
        body["error"]["metrics"][0]["replacement"],
        "post_media_view"
    );

    fb.sim
        .control(
            "/_sim/metrics/reject",
            json!({ "metrics": ["post_video_views"] }),
        )
        .await;
    let body = fb.get_ok(&format!("/facebook/post_metrics?page_id={page}&metrics=post_clicks,post_video_views&{window}"), ANALYST_KEY).await;
    assert_eq!(body["dropped_metrics"][0]["metric"], "post_video_views");
    assert_eq!(body["data"].as_array().unwrap().len(), 5);
    assert!(body["data"][0]["post_clicks"].is_number());

    let (status, catalogue) = fb.get("/facebook/available_metrics", ANALYST_KEY).await;
    assert_eq!(status, 200);
    assert!(
        catalogue["retired"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["metric"] == "post_impressions")
    );
    fb.stop().await;
}

#[tokio::test]
async fn field_expansion_reads_posts_with_their_insights_in_a_few_calls_per_page() {
    let fb = FbApp::start().await;
    let (_, pages) = user_with_pages(&fb, 3).await;
    for page in &pages {
        fb.sim.seed_content(&page, "posts", 120).await;
    }
    let before = fb.sim.stats().await;
    let window = format!("start_date={}&end_date={}", month_ago(), today());
    let mut total_rows = 0;
    for page in &pages {
        let body = fb.get_ok(&format!("/facebook/post_metrics?page_id={page}&metrics=post_clicks,post_reactions_by_type_total&{window}"), ANALYST_KEY).await;
        let rows = body["data"].as_array().unwrap();
        total_rows += rows.len();
        // post_clicks = 10 + n for posts n = 1..=120.
        let clicks: i64 = rows
            .iter()
            .map(|r| r["post_clicks"].as_i64().unwrap())
            .sum();
        assert_eq!(clicks, (1..=120).map(|n| 10 + n).sum::<i64>());
        assert!(rows[0]["post_reactions_by_type_total"].is_object());
    }
    assert_eq!(total_rows, 360);
    let after = fb.sim.stats().await;
    let calls = |s: &Value, k: &str| s[k].as_u64().unwrap_or(0);
    let listing = calls(&after, "/{id}/published_posts") - calls(&before, "/{id}/published_posts");
    assert!(
        listing <= 3 * 3,
        "{listing} listing calls for 3 pages of 120 posts"
    );
    assert_eq!(
        calls(&after, "/{id}/insights"),
        calls(&before, "/{id}/insights"),
        "no call per post"
    );
    fb.stop().await;
}

#[tokio::test]
async fn csv_keeps_nested_values_and_vietnamese_text_cell_by_cell() {
    let fb = FbApp::start().await;
    let (user, pages) = user_with_pages(&fb, 1).await;
    let page = &pages[0];
    fb.sim
        .control(
            &format!("/_sim/pages/{page}/posts"),
            json!({ "count": 4, "message": "Xin chào {n} — “ngoặc kép”, dấu phẩy\ndòng mới" }),
        )
        .await;
    let window = format!("start_date={}&end_date={}", month_ago(), today());
    let query = format!("page_id={page}&metrics=post_clicks,post_reactions_by_type_total&{window}");
    let (_, json_answer) = fb
        .get(&format!("/facebook/post_metrics?{query}"), ANALYST_KEY)
        .await;
    let r = fb
        .app
        .client
        .get(fb.url(&format!("/facebook/post_metrics_csv?{query}")))
        .header("X-API-Key", ANALYST_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("post_metrics")
    );
    let bytes = r.bytes().await.unwrap();
    assert_eq!(&bytes[..3], b"\xEF\xBB\xBF", "UTF-8 BOM");
    let mut reader = csv::Reader::from_reader(&bytes[3..]);
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(&header[..2], &["page_id", "post_id"]);
    assert!(
        header.contains(&"post_reactions_by_type_total.like".to_string()),
        "{header:?}"
    );
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let rows = json_answer["data"].as_array().unwrap();
    assert_eq!(records.len(), rows.len());
    for (record, row) in records.iter().zip(rows) {
        for (name, cell) in header.iter().zip(record.iter()) {
            let expected = match name.split_once('.') {
                Some((outer, inner)) => row[outer][inner].clone(),
                None => row[name.as_str()].clone(),
            };
            let expected = match expected {
                Value::Null => String::new(),
                Value::String(s) => s,
                other => other.to_string(),
            };
            assert_eq!(cell, expected, "column {name}");
        }
    }
    assert!(
        records[0]
            .iter()
            .any(|c| c.starts_with("Xin chào") && c.contains("“ngoặc kép”, dấu phẩy\ndòng mới"))
    );

    // Campaign metrics: nested actions become one column per action type.
    seed_account(&fb, &user).await;
    let r = fb
        .app
        .client
        .post(fb.url("/facebook/campaign_metrics_csv"))
        .header("X-API-Key", ANALYST_KEY)
        .json(&metrics_request(
            "2026-06-01",
            "2026-06-30",
            json!("all_days"),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().await.unwrap();
    let mut reader = csv::Reader::from_reader(&bytes[3..]);
    let header = reader.headers().unwrap().clone();
    let at = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no {name} in {header:?}"))
    };
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let sale = records
        .iter()
        .find(|r| &r[at("campaign_name")] == "Summer Sale")
        .unwrap();
    assert_eq!(&sale[at("actions.link_click")], "200");
    assert_eq!(&sale[at("spend")], "125");
    let tet = records
        .iter()
        .find(|r| &r[at("campaign_name")] == "Khuyến mãi Tết")
        .unwrap();
    assert_eq!(&tet[at("impressions")], "8000");
    fb.stop().await;
}

#[tokio::test]
async fn a_failing_page_is_reported_in_business_wide_insights_while_others_succeed() {
    let fb = FbApp::start().await;
    let (user, pages) = user_with_pages(&fb, 2).await;
    for page in &pages {
        fb.sim.seed_content(&page, "posts", 3).await;
        fb.sim.seed_content(&page, "reels", 2).await;
    }
    let business = fb
        .sim
        .control(
            "/_sim/businesses",
            json!({ "name": "Acme", "page_ids": pages, "user_ids": [user] }),
        )
        .await;
    let (status, _) = fb
        .post(
            "/facebook/business-tokens",
            ADMIN_KEY,
            json!({ "access_token": business["system_user_token"] }),
        )
        .await;
    assert_eq!(status, 201);
    let broken = &pages[1];
    fb.sim
        .fault(json!({ "path": format!("/{broken}/published_posts"),
                       "error": { "http_status": 400, "code": 100, "subcode": 33, "message": "Unsupported get request" } }))
        .await;
    let window = format!("start_date={}&end_date={}", month_ago(), today());
    let (status, body) = fb
        .get(
            &format!("/facebook/business_posts_and_reels_insights?{window}"),
            ANALYST_KEY,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["failed_pages"], 1);
    let reports = body["pages"].as_array().unwrap();
    let failed = reports
        .iter()
        .find(|p| p["page_id"] == broken.as_str())
        .unwrap();
    assert_eq!(failed["status"], "failed");
    assert!(failed["error"].as_str().unwrap().contains("100"));
    let rows = body["data"].as_array().unwrap();
    assert_eq!(rows.len(), 5, "3 posts and 2 reels of the working page");
    assert!(rows.iter().all(|r| r["page_id"] == pages[0].as_str()));
    assert_eq!(
        rows.iter().filter(|r| r["content_type"] == "reel").count(),
        2
    );

    let access = fb
        .get_ok("/facebook/check_business_pages_access", ANALYST_KEY)
        .await;
    assert_eq!(access["total"], 2);
    assert_eq!(access["readable"], 1);
    fb.stop().await;
}

#[tokio::test]
async fn an_export_survives_a_restart_and_only_its_creator_reads_it() {
    let fb = FbApp::start().await;
    let (_, pages) = user_with_pages(&fb, 1).await;
    let page = &pages[0];
    fb.sim.seed_content(&page, "posts", 7).await;
    let (status, job) = fb
        .post("/exports", ANALYST_KEY, json!({ "kind": "post_metrics", "format": "csv",
            "params": { "page_id": page, "metrics": ["post_clicks"], "start_date": month_ago(), "end_date": today() } }))
        .await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let done = loop {
        let (_, j) = fb.get(&format!("/exports/{id}"), ANALYST_KEY).await;
        if j["status"] == "completed" || j["status"] == "failed" {
            break j;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["row_count"], 7);
    let (status, _) = fb.get(&format!("/exports/{id}"), READER_KEY).await;
    assert_eq!(status, 403, "no exports scope");
    let (status, _) = fb.get(&format!("/exports/{id}"), TEAM_A_KEY).await;
    assert_eq!(status, 403);

    let fb = fb.restart().await;
    let (status, after) = fb.get(&format!("/exports/{id}"), ANALYST_KEY).await;
    assert_eq!(status, 200);
    assert_eq!(after["status"], "completed");
    let r = fb
        .app
        .client
        .get(fb.url(&format!("/exports/{id}/download")))
        .header("X-API-Key", ANALYST_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert_eq!(text.trim_end().lines().count(), 8, "header and 7 rows");
    let (status, body) = fb
        .post(
            "/exports",
            ANALYST_KEY,
            json!({ "kind": "nope", "params": {} }),
        )
        .await;
    assert_field_error(status, &body, 422, "kind");
    fb.stop().await;
}

#[tokio::test]
async fn reel_insights_come_in_batches_and_unanswered_ops_are_asked_again() {
    let fb = FbApp::start().await;
    let (_, pages) = user_with_pages(&fb, 1).await;
    let page = &pages[0];
    fb.sim.seed_content(&page, "reels", 60).await;
    // The platform leaves one op unanswered (null) once.
    fb.sim
        .fault(json!({ "path": "/video_insights", "batch_null": true, "count": 1 }))
        .await;
    let before = fb.sim.stats().await;
    let window = format!("start_date={}&end_date={}", month_ago(), today());
    let body = fb
        .get_ok(
            &format!(
                "/facebook/reel_metrics?page_id={page}&metrics=blue_reels_play_count&{window}"
            ),
            ANALYST_KEY,
        )
        .await;
    let rows = body["data"].as_array().unwrap();
    assert_eq!(rows.len(), 60);
    assert!(
        rows.iter().all(|r| r["blue_reels_play_count"]
            .as_i64()
            .is_some_and(|v| v >= 1000)),
        "{rows:?}"
    );
    let after = fb.sim.stats().await;
    let batches = after["/batch"].as_u64().unwrap_or(0) - before["/batch"].as_u64().unwrap_or(0);
    assert_eq!(
        batches, 3,
        "two chunks of up to 50, and one more for the unanswered op"
    );
    fb.stop().await;
}
