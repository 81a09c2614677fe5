//! The simulator's insights side: Marketing API campaigns and insights (sync
//! and async), page posts and reels with their insights, businesses and
//! batch requests.

use serde_json::{Value, json};
use tokenkeeper::simulator::SimConfig;

use crate::sim_support::{Sim, V, assert_graph_error};

impl Sim {
    /// Follows `paging.next` until it is absent; all rows and the call count.
    async fn all_pages(
        &self,
        path: &str,
        token: &str,
        query: &[(&str, &str)],
    ) -> (Vec<Value>, usize) {
        let (status, mut body) = self.graph_json(path, token, query).await;
        assert_eq!(status, 200, "{body}");
        let mut rows = Vec::new();
        let mut calls = 1;
        loop {
            rows.extend(body["data"].as_array().unwrap().iter().cloned());
            let Some(next) = body["paging"]["next"].as_str() else {
                break;
            };
            assert!(next.starts_with("http://"), "{next}");
            // `next` links carry no proof, as Meta's do not.
            let proof = self.proof(token);
            let r = self
                .client
                .get(format!("{next}&appsecret_proof={proof}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            body = r.json().await.unwrap();
            calls += 1;
        }
        (rows, calls)
    }

    /// A user with one page; (user id, long-lived user token, page id, page token).
    async fn user_with_page(&self) -> (String, String, String, String) {
        let user = self
            .control("/_sim/users", json!({"pages": [{"name": "Quán Cà Phê"}]}))
            .await;
        let user_id = user["id"].as_str().unwrap().to_string();
        let page_id = user["pages"][0]["id"].as_str().unwrap().to_string();
        let token = self.login(&user_id, true).await;
        let (_, accounts) = self
            .graph_json("/me/accounts", &token, &[("fields", "id,access_token")])
            .await;
        let page_token = accounts["data"][0]["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        (user_id, token, page_id, page_token)
    }

    /// A user owning ad account 111 with the given campaigns; the user token.
    async fn ad_account(&self, campaigns: Value) -> String {
        let (user_id, token, _, _) = self.user_with_page().await;
        self.control(
            "/_sim/ad_accounts",
            json!({"id": "111", "user_ids": [user_id], "campaigns": campaigns}),
        )
        .await;
        token
    }
}

fn summer_and_always_on() -> Value {
    json!([
        {"id": "120200000000000001", "name": "Summer Sale", "objective": "OUTCOME_SALES",
         "daily_budget": "5000",
         "daily": {"impressions": 1000, "reach": 800, "clicks": 25, "spend": "12.50",
                   "actions": {"link_click": 20, "post_engagement": 30}},
         "start_date": "2024-06-01", "end_date": "2024-06-10"},
        {"id": "120200000000000002", "name": "Always On",
         "daily": {"impressions": 185, "reach": 160, "clicks": 9, "spend": "14.35"}}
    ])
}

fn metric(row: &Value, name: &str) -> i64 {
    row[name].as_str().unwrap().parse().unwrap()
}

fn cents(row: &Value) -> i64 {
    let spend = row["spend"].as_str().unwrap();
    let (whole, frac) = spend.split_once('.').unwrap();
    assert_eq!(frac.len(), 2, "{spend}");
    whole.parse::<i64>().unwrap() * 100 + frac.parse::<i64>().unwrap()
}

const RANGE_JUNE_5_TO_14: &str = r#"{"since":"2024-06-05","until":"2024-06-14"}"#;

#[tokio::test]
async fn sync_insights_give_exact_string_totals_per_campaign_over_a_date_range() {
    let sim = Sim::start().await;
    let token = sim.ad_account(summer_and_always_on()).await;
    let fields = "campaign_id,campaign_name,impressions,reach,clicks,spend,cpc,cpm,ctr,actions";
    let (status, body) = sim
        .graph_json(
            "/act_111/insights",
            &token,
            &[
                ("level", "campaign"),
                ("fields", fields),
                ("time_range", RANGE_JUNE_5_TO_14),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let rows = body["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{body}");
    // Summer Sale runs June 1-10: 6 of the 10 days.
    let summer = &rows[0];
    assert_eq!(summer["campaign_id"], "120200000000000001");
    assert_eq!(summer["campaign_name"], "Summer Sale");
    assert_eq!(summer["account_id"], "111");
    assert_eq!(summer["impressions"], "6000");
    assert_eq!(summer["reach"], "4800");
    assert_eq!(summer["clicks"], "150");
    assert_eq!(summer["spend"], "75.00");
    assert_eq!(summer["cpc"], "0.500000");
    assert_eq!(summer["cpm"], "12.500000");
    assert_eq!(summer["ctr"], "2.500000");
    assert_eq!(
        summer["actions"],
        json!([{"action_type": "link_click", "value": "120"},
               {"action_type": "post_engagement", "value": "180"}])
    );
    assert_eq!(summer["date_start"], "2024-06-05");
    assert_eq!(summer["date_stop"], "2024-06-14");
    let always = &rows[1];
    assert_eq!(always["impressions"], "1850");
    assert_eq!(always["spend"], "143.50");
    assert_eq!(always["cpc"], "1.594444");
    assert_eq!(always["cpm"], "77.567568");
    assert_eq!(always["ctr"], "4.864865");
    assert!(always.get("actions").is_none(), "no actions, no key");

    // Daily rows at account level: zero-delivery days do not exist, and the
    // days sum to the same totals.
    let (days, _) = sim
        .all_pages(
            "/act_111/insights",
            &token,
            &[
                ("fields", "impressions,spend"),
                ("time_increment", "1"),
                (
                    "time_range",
                    r#"{"since":"2024-05-30","until":"2024-06-14"}"#,
                ),
                (
                    "filtering",
                    r#"[{"field":"campaign.id","operator":"IN","value":["120200000000000001"]}]"#,
                ),
            ],
        )
        .await;
    assert_eq!(days.len(), 10);
    assert_eq!(days[0]["date_start"], "2024-06-01");
    assert_eq!(days[0]["date_stop"], "2024-06-01");
    assert_eq!(
        days.iter().map(|d| metric(d, "impressions")).sum::<i64>(),
        10_000
    );
    assert_eq!(days.iter().map(cents).sum::<i64>(), 12_500);

    // The campaign node gives the campaign's own row.
    let (status, body) = sim
        .graph_json(
            "/120200000000000002/insights",
            &token,
            &[
                ("fields", "impressions"),
                ("time_range", RANGE_JUNE_5_TO_14),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"][0]["impressions"], "1850");
    sim.assert_counts(&[("/act_{id}/insights", 2), ("/{id}/insights", 1)])
        .await;
}

#[tokio::test]
async fn age_and_gender_breakdown_parts_sum_exactly_to_the_whole() {
    let sim = Sim::start().await;
    let token = sim.ad_account(summer_and_always_on()).await;
    let base = [
        ("fields", "impressions,reach,clicks,spend,actions"),
        ("time_range", RANGE_JUNE_5_TO_14),
    ];
    let (_, whole) = sim.graph_json("/act_111/insights", &token, &base).await;
    let whole = &whole["data"][0];
    let mut query = base.to_vec();
    query.push(("breakdowns", "age,gender"));
    query.push(("limit", "100"));
    let (status, parts) = sim.graph_json("/act_111/insights", &token, &query).await;
    assert_eq!(status, 200, "{parts}");
    let parts = parts["data"].as_array().unwrap();
    assert_eq!(parts.len(), 18, "6 ages × 3 genders, all delivering");
    assert_eq!(parts[0]["age"], "18-24");
    assert_eq!(parts[0]["gender"], "female");
    for name in ["impressions", "reach", "clicks"] {
        assert_eq!(
            parts.iter().map(|p| metric(p, name)).sum::<i64>(),
            metric(whole, name),
            "{name}"
        );
    }
    assert_eq!(parts.iter().map(cents).sum::<i64>(), cents(whole));
    let link_clicks: i64 = parts
        .iter()
        .filter_map(|p| p["actions"].as_array())
        .flatten()
        .filter(|a| a["action_type"] == "link_click")
        .map(|a| a["value"].as_str().unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(link_clicks, 120);
}

#[tokio::test]
async fn a_sync_call_over_the_row_limit_fails_and_the_async_report_gives_the_same_rows() {
    let config = SimConfig {
        sync_max_rows: 10,
        ..SimConfig::default()
    };
    let sim = Sim::start_with(config).await;
    let token = sim.ad_account(summer_and_always_on()).await;
    let fields = ("fields", "campaign_id,impressions,spend,cpc");
    let range = r#"{"since":"2024-06-01","until":"2024-06-12"}"#;
    let query = [
        fields,
        ("level", "campaign"),
        ("time_increment", "1"),
        ("time_range", range),
    ];
    let (status, body) = sim.graph_json("/act_111/insights", &token, &query).await;
    assert_graph_error(status, &body, 100, Some(1487534));
    assert_eq!(
        body["error"]["message"],
        "Please reduce the amount of data you're asking for, then retry your request"
    );

    let (status, started) = sim.graph_post("/act_111/insights", &token, &query).await;
    assert_eq!(status, 200, "{started}");
    let run = started["report_run_id"].as_str().unwrap().to_string();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let (status, job) = sim.graph_json(&format!("/{run}"), &token, &[]).await;
        assert_eq!(status, 200, "{job}");
        assert_eq!(job["id"], run.as_str());
        assert_eq!(job["account_id"], "111");
        assert_eq!(job["date_start"], "2024-06-01");
        assert_eq!(job["date_stop"], "2024-06-12");
        seen.push(job["async_status"].as_str().unwrap().to_string());
        if job["async_status"] == "Job Completed" {
            assert_eq!(job["async_percent_completion"], 100);
            assert!(job["time_completed"].is_i64());
        }
    }
    assert_eq!(seen, ["Job Not Started", "Job Running", "Job Completed"]);
    let (rows, calls) = sim
        .all_pages(&format!("/{run}/insights"), &token, &[("limit", "5")])
        .await;
    assert_eq!(rows.len(), 22, "10 + 12 daily rows");
    assert_eq!(calls, 5);

    // The same rows, fetched sync in slices small enough for the limit.
    let mut sync = Vec::new();
    for range in [
        r#"{"since":"2024-06-01","until":"2024-06-05"}"#,
        r#"{"since":"2024-06-06","until":"2024-06-10"}"#,
        r#"{"since":"2024-06-11","until":"2024-06-12"}"#,
    ] {
        let q = [
            fields,
            ("level", "campaign"),
            ("time_increment", "1"),
            ("time_range", range),
        ];
        let (status, body) = sim.graph_json("/act_111/insights", &token, &q).await;
        assert_eq!(status, 200, "{body}");
        sync.extend(body["data"].as_array().unwrap().iter().cloned());
    }
    let key = |r: &Value| format!("{}{}", r["date_start"], r["campaign_id"]);
    let mut async_rows = rows.clone();
    async_rows.sort_by_key(key);
    sync.sort_by_key(key);
    assert_eq!(async_rows, sync);
}

#[tokio::test]
async fn a_failed_report_run_ends_job_failed_with_code_minus_2_and_has_no_rows() {
    let sim = Sim::start().await;
    let token = sim.ad_account(summer_and_always_on()).await;
    sim.control("/_sim/ads/fail_reports", json!({"count": 1}))
        .await;
    let (_, started) = sim
        .graph_post("/act_111/insights", &token, &[("date_preset", "last_30d")])
        .await;
    let run = started["report_run_id"].as_str().unwrap().to_string();
    let mut last = Value::Null;
    for _ in 0..3 {
        last = sim.graph_json(&format!("/{run}"), &token, &[]).await.1;
    }
    assert_eq!(last["async_status"], "Job Failed", "{last}");
    assert_eq!(last["error_code"], -2);
    assert_eq!(last["error_subcode"], 2490547);
    let (status, body) = sim
        .graph_json(&format!("/{run}/insights"), &token, &[])
        .await;
    assert_graph_error(status, &body, 100, None);

    // Only one run fails.
    let (_, started) = sim.graph_post("/act_111/insights", &token, &[]).await;
    let run = started["report_run_id"].as_str().unwrap().to_string();
    for _ in 0..3 {
        last = sim.graph_json(&format!("/{run}"), &token, &[]).await.1;
    }
    assert_eq!(last["async_status"], "Job Completed", "{last}");
}

#[tokio::test]
async fn campaigns_page_by_status_and_strangers_get_permission_error_200() {
    let sim = Sim::start().await;
    let campaigns: Vec<Value> = (1..=7)
        .map(|i| {
            let status = match i {
                3 | 5 => "PAUSED",
                6 => "ARCHIVED",
                _ => "ACTIVE",
            };
            json!({"name": format!("C{i}"), "status": status, "daily_budget": 1000 * i})
        })
        .collect();
    let token = sim.ad_account(json!(campaigns)).await;
    let (rows, calls) = sim
        .all_pages(
            "/act_111/campaigns",
            &token,
            &[
                (
                    "fields",
                    "id,name,status,effective_status,daily_budget,created_time",
                ),
                ("effective_status", r#"["ACTIVE","PAUSED"]"#),
                ("limit", "2"),
            ],
        )
        .await;
    assert_eq!(calls, 3);
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["C1", "C2", "C3", "C4", "C5", "C7"]);
    assert_eq!(rows[2]["effective_status"], "PAUSED");
    assert_eq!(rows[1]["daily_budget"], "2000");
    assert!(rows[0]["id"].as_str().unwrap().len() >= 15);
    assert!(rows[0]["created_time"].as_str().unwrap().ends_with("+0000"));

    let (_, stranger, _, _) = sim.user_with_page().await;
    let (status, body) = sim.graph_json("/act_111/campaigns", &stranger, &[]).await;
    assert_graph_error(status, &body, 200, None);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("(#200)")
    );
    assert_eq!(sim.stats().await["/act_{id}/campaigns"], 4);
}

#[tokio::test]
async fn published_posts_expand_fields_for_120_posts_in_two_calls() {
    let sim = Sim::start().await;
    let (_, _, page, page_token) = sim.user_with_page().await;
    let created = sim
        .control(
            &format!("/_sim/pages/{page}/posts"),
            json!({"count": 120, "start": "2026-01-01T00:00:00+0000", "interval_secs": 3600,
                   "message": "Xin chào {n}"}),
        )
        .await;
    assert_eq!(created["ids"][0], format!("{page}_1"));
    let fields = "id,message,created_time,permalink_url,full_picture,status_type,shares,\
        reactions.summary(total_count).limit(0),comments.summary(true).limit(0),\
        insights.metric(post_clicks,post_reactions_by_type_total).period(lifetime)";
    let (posts, calls) = sim
        .all_pages(
            &format!("/{page}/published_posts"),
            &page_token,
            &[("fields", fields), ("limit", "100")],
        )
        .await;
    assert_eq!((posts.len(), calls), (120, 2));
    // Newest first: post 120, then 119, …
    let post = &posts[0];
    assert_eq!(post["id"], format!("{page}_120"));
    assert_eq!(post["message"], "Xin chào 120");
    assert_eq!(post["created_time"], "2026-01-05T23:00:00+0000");
    assert!(post.get("shares").is_none(), "120 % 4 == 0 shares: absent");
    assert_eq!(
        post["reactions"],
        json!({"data": [], "summary": {"total_count": 4}})
    );
    assert_eq!(post["comments"]["summary"]["total_count"], 0);
    let insights = post["insights"]["data"].as_array().unwrap();
    assert_eq!(insights[0]["name"], "post_clicks");
    assert_eq!(insights[0]["values"][0]["value"], 130);
    assert_eq!(
        insights[0]["id"],
        format!("{page}_120/insights/post_clicks/lifetime")
    );
    assert_eq!(
        insights[1]["values"][0]["value"],
        json!({"like": 2, "wow": 1, "anger": 1})
    );
    let post_7 = &posts[113];
    assert_eq!(post_7["id"], format!("{page}_7"));
    assert_eq!(post_7["shares"], json!({"count": 3}));
    assert_eq!(post_7["reactions"]["summary"]["total_count"], 1 + 1 + 1);
    assert_eq!(post_7["comments"]["summary"]["total_count"], 2);

    // since/until are Unix seconds, inclusive.
    let since = (1_767_225_600 + 10 * 3600).to_string(); // post 11
    let until = (1_767_225_600 + 14 * 3600).to_string(); // post 15
    let (status, body) = sim
        .graph_json(
            &format!("/{page}/published_posts"),
            &page_token,
            &[("since", since.as_str()), ("until", until.as_str())],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [15, 14, 13, 12, 11].map(|n| format!("{page}_{n}")));
    assert_eq!(sim.stats().await["/{id}/published_posts"], 3);
}

#[tokio::test]
async fn one_retired_metric_fails_the_whole_call_without_saying_which() {
    let sim = Sim::start().await;
    let (_, user_token, page, page_token) = sim.user_with_page().await;
    sim.seed_content(&page, "posts", 3).await;
    let post = format!("/{page}_2/insights");
    let (status, body) = sim
        .graph_json(
            &post,
            &page_token,
            &[
                ("metric", "post_clicks,post_clicks_by_type"),
                ("period", "lifetime"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"][0]["values"][0]["value"], 12);
    assert_eq!(body["data"][0]["title"], "Lifetime Post Clicks");
    assert_eq!(
        body["data"][1]["values"][0]["value"],
        json!({"link clicks": 6, "other clicks": 6})
    );
    assert!(body["paging"]["next"].is_string());

    for retired in [
        "post_impressions",
        "post_impressions_unique",
        "post_engaged_users",
        "page_fans",
        "no_such_metric",
    ] {
        let list = format!("post_clicks,{retired}");
        let (status, body) = sim
            .graph_json(&post, &page_token, &[("metric", list.as_str())])
            .await;
        assert_graph_error(status, &body, 100, None);
        assert_eq!(
            body["error"]["message"],
            "(#100) The value must be a valid insights metric"
        );
        assert_eq!(body["error"]["type"], "OAuthException");
    }
    let nested = "id,insights.metric(post_clicks,post_impressions).period(lifetime)";
    let (status, body) = sim
        .graph_json(
            &format!("/{page}/published_posts"),
            &page_token,
            &[("fields", nested)],
        )
        .await;
    assert_graph_error(status, &body, 100, None);

    let (status, body) = sim.graph_json(&post, &page_token, &[]).await;
    assert_graph_error(status, &body, 3001, Some(1504028));
    assert_eq!(body["error"]["error_user_title"], "No Metric Specified");

    let (status, body) = sim
        .graph_json(&post, &user_token, &[("metric", "post_clicks")])
        .await;
    assert_graph_error(status, &body, 210, None);
}

#[tokio::test]
async fn rejected_metrics_fail_like_retired_ones_until_cleared() {
    let sim = Sim::start().await;
    let (_, _, page, page_token) = sim.user_with_page().await;
    sim.seed_content(&page, "posts", 1).await;
    let post = format!("/{page}_1/insights");
    let query = [("metric", "post_clicks,post_video_views")];
    assert_eq!(sim.graph_json(&post, &page_token, &query).await.0, 200);
    sim.control(
        "/_sim/metrics/reject",
        json!({"metrics": ["post_video_views"]}),
    )
    .await;
    let (status, body) = sim.graph_json(&post, &page_token, &query).await;
    assert_graph_error(status, &body, 100, None);
    // Probing one metric at a time finds the culprit.
    assert_eq!(
        sim.graph_json(&post, &page_token, &[("metric", "post_clicks")])
            .await
            .0,
        200
    );
    assert_eq!(sim.delete("/_sim/metrics/reject").await, 200);
    assert_eq!(sim.graph_json(&post, &page_token, &query).await.0, 200);
}

#[tokio::test]
async fn video_reels_and_video_insights_follow_the_documented_formulas() {
    let sim = Sim::start().await;
    let (_, _, page, page_token) = sim.user_with_page().await;
    let created = sim
        .control(
            &format!("/_sim/pages/{page}/reels"),
            json!({"count": 30, "start": "2026-02-01T00:00:00+0000", "interval_secs": 86400}),
        )
        .await;
    let first = created["ids"][0].as_str().unwrap().to_string();
    assert!(first.bytes().all(|b| b.is_ascii_digit()));
    let (reels, calls) = sim
        .all_pages(
            &format!("/{page}/video_reels"),
            &page_token,
            &[("fields", "id,description,created_time,permalink_url,length")],
        )
        .await;
    assert_eq!((reels.len(), calls), (30, 2));
    let oldest = &reels[29];
    assert_eq!(oldest["id"], first.as_str());
    assert_eq!(oldest["description"], "Reel 1");
    assert_eq!(oldest["created_time"], "2026-02-01T00:00:00+0000");
    assert_eq!(oldest["length"], 11.5);

    let metrics = "blue_reels_play_count,fb_reels_total_plays,fb_reels_replay_count,\
        post_video_avg_time_watched,post_video_view_time,post_video_followers,\
        post_video_social_actions,post_video_likes_by_reaction_type";
    let (status, body) = sim
        .graph_json(
            &format!("/{first}/video_insights"),
            &page_token,
            &[("metric", metrics), ("period", "lifetime")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let values: Vec<Value> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["values"][0]["value"].clone())
        .collect();
    assert_eq!(
        values,
        [
            json!(1010),
            json!(1212),
            json!(202),
            json!(5100),
            json!(5100 * 1010),
            json!(1),
            json!({"COMMENT": 2, "SHARE": 1}),
            json!({"REACTION_LIKE": 5, "REACTION_LOVE": 1})
        ]
    );
    assert_eq!(
        body["data"][0]["id"],
        format!("{first}/video_insights/blue_reels_play_count/lifetime")
    );

    let (status, body) = sim
        .graph_json(
            &format!("/{first}/insights"),
            &page_token,
            &[("metric", "blue_reels_play_count")],
        )
        .await;
    assert_graph_error(status, &body, 100, None);
    assert_eq!(
        body["error"]["message"],
        "(#100) Tried accessing nonexisting field (insights) on node type (Video)"
    );
    let (status, body) = sim
        .graph_json(
            &format!("/{first}/video_insights"),
            &page_token,
            &[("metric", "blue_reels_play_count,post_impressions_unique")],
        )
        .await;
    assert_graph_error(status, &body, 100, None);
}

#[tokio::test]
async fn me_businesses_and_owned_pages_list_what_a_user_was_added_to() {
    let sim = Sim::start().await;
    let (user_id, token, page, _) = sim.user_with_page().await;
    let acme = sim
        .control(
            "/_sim/businesses",
            json!({"name": "Acme", "page_ids": [page, "555000000000001"], "user_ids": [user_id]}),
        )
        .await;
    sim.control("/_sim/businesses", json!({"name": "Other"}))
        .await;
    let (status, body) = sim
        .graph_json("/me/businesses", &token, &[("fields", "id,name")])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], json!([{"id": acme["id"], "name": "Acme"}]));

    let (pages, _) = sim
        .all_pages(
            &format!("/{}/owned_pages", acme["id"].as_str().unwrap()),
            &token,
            &[("fields", "id,name"), ("limit", "1")],
        )
        .await;
    assert_eq!(pages.len(), 2);
    assert_eq!(pages[0]["name"], "Quán Cà Phê");

    let system = acme["system_user_token"].as_str().unwrap();
    let (_, body) = sim.graph_json("/me/businesses", system, &[]).await;
    assert_eq!(body["data"][0]["name"], "Acme");
    let (status, body) = sim
        .graph_json("/me/businesses", &sim.user_with_page().await.1, &[])
        .await;
    assert_eq!(
        (status.as_u16(), body["data"].as_array().unwrap().len()),
        (200, 0)
    );
    let stats = sim.stats().await;
    assert_eq!(stats["/me/businesses"], 3);
    assert_eq!(stats["/{id}/owned_pages"], 2);
}

#[tokio::test]
async fn a_batch_runs_each_op_with_the_outer_token_and_nulls_faulted_ops() {
    let sim = Sim::start().await;
    let (_, _, page, page_token) = sim.user_with_page().await;
    sim.seed_content(&page, "posts", 3).await;
    sim.control(
        "/_sim/faults",
        json!({"path": format!("{page}_2/"), "batch_null": true, "count": 1}),
    )
    .await;
    let batch: Vec<Value> = ["post_clicks", "post_clicks", "post_impressions"]
        .iter()
        .enumerate()
        .map(|(i, m)| json!({"method": "GET", "relative_url": format!("{V}/{page}_{}/insights?metric={m}", i + 1)}))
        .collect();
    let batch = json!(batch).to_string();
    let (status, body) = sim
        .graph_post("/", &page_token, &[("batch", batch.as_str())])
        .await;
    assert_eq!(status, 200, "{body}");
    let results = body.as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["code"], 200);
    let inner: Value = serde_json::from_str(results[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(inner["data"][0]["values"][0]["value"], 11);
    let headers = results[0]["headers"].as_array().unwrap();
    assert!(headers.iter().any(|h| h["name"] == "Content-Type"));
    assert!(results[1].is_null(), "{body}");
    assert_eq!(results[2]["code"], 400);
    let error: Value = serde_json::from_str(results[2]["body"].as_str().unwrap()).unwrap();
    assert_eq!(error["error"]["code"], 100);

    // The null op answers on retry; include_headers=false drops headers.
    let retry =
        json!([{"method": "GET", "relative_url": format!("{page}_2/insights?metric=post_clicks")}])
            .to_string();
    let (_, body) = sim
        .graph_post(
            "/",
            &page_token,
            &[("batch", retry.as_str()), ("include_headers", "false")],
        )
        .await;
    assert_eq!(body[0]["code"], 200, "{body}");
    assert!(body[0].get("headers").is_none());
    sim.assert_counts(&[("/batch", 2), ("/{id}/insights", 4)])
        .await;

    let too_many = json!(vec![json!({"method": "GET", "relative_url": "me"}); 51]).to_string();
    let (status, body) = sim
        .graph_post("/", &page_token, &[("batch", too_many.as_str())])
        .await;
    assert_graph_error(status, &body, 100, None);
}
