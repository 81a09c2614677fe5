//! Example bodies for the OpenAPI document; `tests/it/openapi.rs` checks each
//! against its schema, so they stay true to the shapes.

use serde_json::{Value, json};

/// The error envelope.
pub fn error(code: &str, message: &str, field: Option<&str>) -> Value {
    let mut e = json!({ "code": code, "message": message });
    if let Some(field) = field {
        e["field"] = json!(field);
    }
    json!({ "error": e })
}

/// A Facebook page connection's facts.
pub fn facts() -> Value {
    json!({
        "id": "conn_8f3a2c",
        "provider": "facebook",
        "kind": "page",
        "external_id": "104729381234567",
        "team_id": "acme",
        "label": "Acme Coffee (page)",
        "health": "healthy",
        "expires_at": null,
        "refresh_token_expires_at": null,
        "data_access_expires_at": "2026-02-20T09:12:00Z",
        "scopes": ["pages_show_list", "pages_read_engagement", "read_insights"],
        "last_refreshed_at": "2025-11-22T09:12:00Z",
        "next_refresh_at": "2025-12-20T09:12:00Z",
        "consecutive_failures": 0,
        "last_error": null,
        "reauth_required": false,
        "parent_id": "conn_71bd09",
        "created_at": "2025-11-22T09:12:00Z",
        "updated_at": "2025-11-22T09:12:00Z",
        "version": 3
    })
}

/// A TikTok Shop connection's facts.
fn shop_facts() -> Value {
    json!({
        "id": "conn_tt41e0",
        "provider": "tiktok_shop",
        "kind": "shop",
        "external_id": "7494060252336514816",
        "team_id": "acme",
        "label": "Acme Coffee Shop",
        "health": "healthy",
        "expires_at": "2025-11-29T08:00:00Z",
        "refresh_token_expires_at": "2026-05-21T08:00:00Z",
        "data_access_expires_at": null,
        "scopes": [],
        "last_refreshed_at": "2025-11-22T08:00:00Z",
        "next_refresh_at": "2025-11-28T08:00:00Z",
        "consecutive_failures": 0,
        "last_error": null,
        "reauth_required": false,
        "parent_id": null,
        "created_at": "2025-11-01T08:00:00Z",
        "updated_at": "2025-11-22T08:00:00Z",
        "version": 7
    })
}

/// A Google Ads connection's facts.
pub fn google_facts() -> Value {
    let mut f = facts();
    f["id"] = json!("conn_g0a1b2");
    f["provider"] = json!("google");
    f["kind"] = json!("ads");
    f["external_id"] = json!("1234567890");
    f["label"] = json!("Acme Ads");
    f["data_access_expires_at"] = json!(null);
    f["parent_id"] = json!(null);
    f["scopes"] = json!(["https://www.googleapis.com/auth/adwords"]);
    f
}

pub fn connection() -> Value {
    json!({ "connection": facts() })
}

pub fn connected() -> Value {
    json!({ "connected": 1, "connections": [facts()] })
}

pub fn connection_list() -> Value {
    json!({ "count": 1, "connections": [facts()] })
}

pub fn auth_url(url: &str) -> Value {
    json!({ "url": url, "state": "eyJwIjoiZmFjZWJvb2siLCJ0IjoiYWNtZSJ9.3q2-7w", "state_expires_at": "2025-11-22T09:22:00Z" })
}

pub fn facebook_auth_url() -> Value {
    auth_url(
        "https://www.facebook.com/v25.0/dialog/oauth?client_id=1234&redirect_uri=https%3A%2F%2Ftokens.example.com%2Ffacebook%2Fauth%2Fcallback&state=eyJwIjoiZmFjZWJvb2siLCJ0IjoiYWNtZSJ9.3q2-7w&scope=pages_show_list,read_insights",
    )
}

pub fn tiktok_auth_url() -> Value {
    auth_url(
        "https://services.tiktokshop.com/open/authorize?service_id=7000&state=eyJwIjoidGlrdG9rX3Nob3AifQ.9f-1",
    )
}

pub fn google_auth_url() -> Value {
    auth_url(
        "https://accounts.google.com/o/oauth2/v2/auth?client_id=abc.apps.googleusercontent.com&access_type=offline&prompt=consent&state=eyJwIjoiZ29vZ2xlIn0.c2",
    )
}

pub fn extend_permissions() -> Value {
    let mut v = facebook_auth_url();
    v["scopes"] = json!(["read_insights"]);
    v
}

pub fn page_token_status() -> Value {
    json!({ "page_id": "104729381234567", "health": "healthy", "usable": true, "reauth_required": false, "connection": facts() })
}

pub fn refresh_result() -> Value {
    json!({ "refreshed": true, "connection": facts() })
}

pub fn debug_token() -> Value {
    json!({
        "connection_id": "conn_8f3a2c",
        "is_valid": true,
        "type": "PAGE",
        "app_id": "1234",
        "user_id": "10223344556677",
        "profile_id": "104729381234567",
        "expires_at": null,
        "data_access_expires_at": "2026-02-20T09:12:00Z",
        "issued_at": "2025-11-22T09:12:00Z",
        "scopes": ["pages_show_list", "read_insights"],
        "error": null
    })
}

pub fn permission_check() -> Value {
    json!({
        "connection_id": "conn_8f3a2c",
        "granted": ["pages_show_list", "pages_read_engagement"],
        "required": ["pages_show_list", "read_insights"],
        "missing": ["read_insights"],
        "ok": false
    })
}

pub fn access_token() -> Value {
    json!({
        "connection_id": "conn_8f3a2c",
        "provider": "facebook",
        "kind": "page",
        "external_id": "104729381234567",
        "access_token": "EAAB...redacted-example...ZDZD",
        "expires_at": null,
        "health": "healthy"
    })
}

fn run_record() -> Value {
    json!({
        "id": "run_5c1e",
        "trigger": "api",
        "status": "finished",
        "started_at": "2025-11-22T03:00:00Z",
        "finished_at": "2025-11-22T03:00:04Z",
        "total": 12,
        "done": 12,
        "counts": { "refreshed": 3, "checked": 8, "reauth_required": 1 },
        "errors": [{
            "connection_id": "conn_71bd09",
            "label": "Jane Doe (user)",
            "class": "reauth_required",
            "code": 190,
            "subcode": 460,
            "message": "Error validating access token: the user changed their password"
        }]
    })
}

pub fn run() -> Value {
    json!({ "run": run_record() })
}

pub fn run_started() -> Value {
    json!({ "run_id": "run_5c1e", "status": "running" })
}

pub fn runs() -> Value {
    json!({ "runs": [run_record()] })
}

pub fn tokens_health() -> Value {
    json!({
        "total": 2,
        "providers": {
            "facebook": {
                "total": 1,
                "by_health": { "healthy": 1 },
                "soonest_expiries": [{ "id": "conn_8f3a2c", "label": "Acme Coffee (page)", "team_id": "acme", "lapses_at": "2026-02-20T09:12:00Z", "health": "healthy" }],
                "next_scheduled_run": "2025-11-23T03:00:00Z"
            },
            "tiktok_shop": {
                "total": 1,
                "by_health": { "expiring_soon": 1 },
                "soonest_expiries": [{ "id": "conn_tt41e0", "label": "Acme Coffee Shop", "team_id": "acme", "lapses_at": "2025-11-29T08:00:00Z", "health": "expiring_soon" }],
                "next_scheduled_run": "2025-11-22T12:00:00Z"
            },
            "google": { "total": 0, "by_health": {}, "soonest_expiries": [], "next_scheduled_run": null }
        },
        "running_run": null
    })
}

fn integration_value() -> Value {
    let mut v = shop_facts();
    v["token_status"] = json!({
        "status": "Healthy",
        "is_access_token_expired": false,
        "is_refresh_token_expired": false,
        "needs_refresh": false,
        "can_refresh": true,
        "access_token_expires_at": "2025-11-29T08:00:00Z",
        "refresh_token_expires_at": "2026-05-21T08:00:00Z"
    });
    v
}

pub fn integration() -> Value {
    json!({ "integration": integration_value() })
}

pub fn integration_list() -> Value {
    json!({ "count": 1, "integrations": [integration_value()] })
}

pub fn integration_refresh() -> Value {
    json!({ "refreshed": true, "integration": integration_value() })
}

pub fn tiktok_health() -> Value {
    json!({ "total": 3, "by_status": { "healthy": 2, "expiring_soon": 1, "needs_refresh": 0, "degraded": 0, "expired": 0, "cannot_refresh": 0, "reauth_required": 0 } })
}

pub fn cleanup() -> Value {
    json!({
        "removed": 1,
        "integrations": [{ "id": "conn_tt0001", "label": "Old Shop", "external_id": "7494060250000000000", "team_id": null, "expired_at": "2025-09-01T00:00:00Z" }],
        "older_than_days": 30
    })
}

pub fn metrics_catalogue() -> Value {
    json!({
        "campaign": ["impressions", "clicks", "spend", "cpc", "ctr"],
        "post": ["post_clicks", "post_reactions_by_type_total", "post_media_view"],
        "reel": ["blue_reels_play_count", "post_video_avg_time_watched"],
        "page": ["page_post_engagements", "page_media_view"],
        "breakdowns": ["age", "gender", "country"],
        "retired": [{ "metric": "post_impressions", "object": "post", "retired_on": "2025-11-15", "replacement": "post_media_view" }]
    })
}

pub fn campaign_list() -> Value {
    json!({
        "success": true,
        "count": 1,
        "data": [{ "id": "23851234567890123", "name": "Autumn launch", "status": "ACTIVE", "objective": "OUTCOME_TRAFFIC", "daily_budget": 50.0 }],
        "paging": { "after": null }
    })
}

pub fn campaign_metrics_request() -> Value {
    json!({
        "ad_account_id": "act_1234567890",
        "campaign_ids": ["23851234567890123"],
        "date_range": { "start_date": "2025-11-01", "end_date": "2025-11-07" },
        "metrics": ["impressions", "clicks", "spend", "ctr"],
        "level": "campaign",
        "time_increment": 1
    })
}

fn campaign_row() -> Value {
    json!({ "date": "2025-11-01", "campaign_id": "23851234567890123", "campaign_name": "Autumn launch", "impressions": 10922, "clicks": 311, "spend": 45.23, "ctr": 2.85 })
}

pub fn campaign_metrics() -> Value {
    json!({
        "success": true,
        "message": "1 rows",
        "report": "sync",
        "data": [campaign_row()],
        "summary": { "rows": 1, "totals": { "impressions": 10922, "clicks": 311, "spend": 45.23, "ctr": 2.85 } }
    })
}

fn post_row() -> Value {
    json!({ "page_id": "104729381234567", "post_id": "104729381234567_8123", "created_time": "2025-11-03T10:00:00+0000", "message": "New roast is in", "permalink_url": "https://www.facebook.com/104729381234567/posts/8123", "post_clicks": 42, "shares": 3 })
}

pub fn page_insights() -> Value {
    json!({
        "success": true,
        "message": "1 rows",
        "data": [post_row()],
        "summary": { "rows": 1, "totals": { "post_clicks": 42, "shares": 3 } },
        "dropped_metrics": [],
        "page_id": "104729381234567"
    })
}

pub fn business_insights() -> Value {
    json!({
        "success": true,
        "message": "1 rows",
        "data": [post_row()],
        "summary": { "rows": 1, "totals": { "post_clicks": 42, "shares": 3 } },
        "dropped_metrics": [{ "metric": "post_video_views", "reason": "rejected by Facebook: (#100) The value must be a valid insights metric" }],
        "pages": [
            { "page_id": "104729381234567", "page_name": "Acme Coffee", "status": "ok", "rows": 1 },
            { "page_id": "104729381299999", "page_name": "Acme Tea", "status": "failed", "error": "Facebook answered 403 (code 10): permission denied" }
        ],
        "failed_pages": 1
    })
}

pub fn pages_access() -> Value {
    json!({
        "success": true,
        "pages": [
            { "page_id": "104729381234567", "page_name": "Acme Coffee", "tasks": ["ANALYZE", "ADVERTISE"], "can_read_insights": true, "reason": null },
            { "page_id": "104729381299999", "page_name": "Acme Tea", "tasks": ["ADVERTISE"], "can_read_insights": false, "reason": "the connected user lacks the ANALYZE task on this page" }
        ],
        "readable": 1,
        "total": 2
    })
}

pub fn google_campaigns() -> Value {
    json!({ "success": true, "count": 1, "data": [{ "id": "111", "name": "Search - Brand", "status": "ENABLED" }] })
}

pub fn google_metrics_request() -> Value {
    json!({
        "customer_id": "123-456-7890",
        "campaign_ids": ["111"],
        "date_range": { "start_date": "2025-11-01", "end_date": "2025-11-07" },
        "metrics": ["impressions", "clicks", "cost"],
        "dimensions": ["date"]
    })
}

pub fn google_metrics() -> Value {
    json!({
        "success": true,
        "message": "1 rows",
        "data": [{ "date": "2025-11-01", "customer_id": "1234567890", "campaign_id": "111", "campaign_name": "Search - Brand", "impressions": 10922, "clicks": 311, "cost": 45.23 }],
        "summary": { "rows": 1, "totals": { "impressions": 10922, "clicks": 311, "cost": 45.23 } }
    })
}

pub const CSV: &str =
    "date,page_id,post_id,post_clicks\r\n2025-11-03,104729381234567,104729381234567_8123,42\r\n";

pub fn export_request() -> Value {
    json!({ "kind": "post_metrics", "params": { "page_id": "104729381234567", "start_date": "2025-11-01", "end_date": "2025-11-07" }, "format": "csv" })
}

fn export_job(completed: bool) -> Value {
    let mut v = json!({
        "id": "exp_1a2b3c4d",
        "kind": "post_metrics",
        "params": { "page_id": "104729381234567", "start_date": "2025-11-01", "end_date": "2025-11-07" },
        "format": "csv",
        "status": "queued",
        "rows_written": 0,
        "row_count": null,
        "error": null,
        "owner": "reporting",
        "created_at": "2025-11-22T09:12:00Z",
        "started_at": null,
        "finished_at": null,
        "expires_at": null,
        "file_name": "post_metrics-1a2b3c4d.csv",
        "attempts": 0
    });
    if completed {
        v["status"] = json!("completed");
        v["rows_written"] = json!(120);
        v["row_count"] = json!(120);
        v["started_at"] = json!("2025-11-22T09:12:01Z");
        v["finished_at"] = json!("2025-11-22T09:12:05Z");
        v["expires_at"] = json!("2025-11-23T09:12:05Z");
        v["attempts"] = json!(1);
        v["download_url"] = json!("/exports/exp_1a2b3c4d/download");
    }
    v
}

pub fn export_queued() -> Value {
    export_job(false)
}

pub fn export_completed() -> Value {
    export_job(true)
}

pub fn export_list() -> Value {
    json!({ "count": 1, "exports": [export_job(true)] })
}

pub fn liveness() -> Value {
    json!({ "status": "ok" })
}

pub fn readiness() -> Value {
    json!({ "status": "ready", "store": { "connections": 12, "generation": 48 } })
}

pub fn google_connection() -> Value {
    json!({ "connection": google_facts() })
}

pub fn exchange_request() -> Value {
    json!({ "access_token": "EAABsbCS1iHgBA...short-lived-user-token", "team_id": "acme" })
}

pub fn business_token_request() -> Value {
    json!({ "access_token": "EAABsbCS1iHgBA...system-user-token", "label": "Acme BM", "team_id": "acme" })
}

pub fn extend_request() -> Value {
    json!({ "scopes": ["read_insights"], "team_id": "acme" })
}

pub fn create_integration_request() -> Value {
    json!({ "auth_code": "ROW_Jp3bbgAAAAB7xbyJ", "team_id": "acme" })
}
