//! The answers of the Facebook insights endpoints: each is what the handler
//! returns, what the cache keeps, and its schema in the OpenAPI document.
//! Rows stay maps: their columns are the metrics asked for. An `Option`
//! marked `required` is always present (`null` when unset).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// One row of an insights answer.
pub type Row = serde_json::Map<String, Value>;

/// `"<n> rows"`, the `message` of every rows answer.
pub fn rows_message(rows: &[Row]) -> String {
    format!("{} rows", rows.len())
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Paging {
    /// The cursor for the next page; `null` on the last.
    #[schema(required = true)]
    pub after: Option<String>,
}

/// An ad account's campaigns as Facebook lists them (budgets as numbers).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CampaignList {
    pub success: bool,
    pub count: u64,
    #[schema(value_type = Vec<HashMap<String, Value>>)]
    pub data: Vec<Value>,
    pub paging: Paging,
}

/// Row count and metric totals (ratios computed from the sums).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = InsightsSummary)]
pub struct Summary {
    pub rows: u64,
    #[schema(value_type = HashMap<String, Value>)]
    pub totals: Row,
}

/// A requested metric the platform refused, dropped from the answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DroppedMetric {
    pub metric: String,
    pub reason: String,
}

/// Campaign insights rows and their totals.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CampaignMetricsAnswer {
    pub success: bool,
    pub message: String,
    /// `sync` or `async` (a report job, for long date ranges).
    pub report: String,
    #[schema(value_type = Vec<HashMap<String, Value>>)]
    pub data: Vec<Row>,
    pub summary: Summary,
}

/// Post (and reel) rows, their totals, and the metrics Facebook refused.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PostRows {
    pub success: bool,
    pub message: String,
    #[schema(value_type = Vec<HashMap<String, Value>>)]
    pub data: Vec<Row>,
    pub summary: Summary,
    pub dropped_metrics: Vec<DroppedMetric>,
}

/// Post or reel insights of one page.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PageInsightsAnswer {
    #[serde(flatten)]
    pub rows: PostRows,
    pub page_id: String,
}

/// How one page of a business fared.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PageReport {
    pub page_id: String,
    pub page_name: String,
    /// `ok` or `failed`.
    pub status: String,
    /// With `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// With `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Posts (and reels) of every page a business token reaches.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BusinessInsightsAnswer {
    #[serde(flatten)]
    pub rows: PostRows,
    pub pages: Vec<PageReport>,
    pub failed_pages: u64,
}

/// Whether one page's insights can be read, and why not.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PageAccess {
    pub page_id: String,
    pub page_name: String,
    pub tasks: Vec<String>,
    pub can_read_insights: bool,
    #[schema(required = true)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PagesAccess {
    pub success: bool,
    pub pages: Vec<PageAccess>,
    pub readable: u64,
    pub total: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The cache keeps answers as JSON: read back, each must give the same
    /// JSON again, keys in order.
    fn round_trips<T: Serialize + serde::de::DeserializeOwned>(answer: Value) {
        let typed: T = serde_json::from_value(answer.clone()).unwrap();
        let again = serde_json::to_value(&typed).unwrap();
        assert_eq!(
            serde_json::to_string(&again).unwrap(),
            serde_json::to_string(&answer).unwrap()
        );
    }

    #[test]
    fn cached_answers_read_back_unchanged() {
        let rows = json!({
            "success": true,
            "message": "1 rows",
            "data": [{ "post_id": "1_2", "reach": 5, "spend": 45.23, "r": { "like": 1 } }],
            "summary": { "rows": 1, "totals": { "reach": 5, "spend": 45.23, "ctr": null } },
            "dropped_metrics": [{ "metric": "post_video_views", "reason": "rejected" }],
        });
        let mut page = rows.clone();
        page["page_id"] = json!("104729381234567");
        round_trips::<PageInsightsAnswer>(page);
        let mut business = rows;
        business["pages"] = json!([
            { "page_id": "1", "page_name": "A", "status": "ok", "rows": 1 },
            { "page_id": "2", "page_name": "B", "status": "failed", "error": "denied" }
        ]);
        business["failed_pages"] = json!(1);
        round_trips::<BusinessInsightsAnswer>(business);
        round_trips::<CampaignList>(json!({
            "success": true, "count": 1, "data": [{ "id": "238", "daily_budget": 50.0 }],
            "paging": { "after": null }
        }));
    }
}
