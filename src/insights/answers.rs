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

/// Post or reel insights of one page.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PageInsightsAnswer {
    pub success: bool,
    pub message: String,
    #[schema(value_type = Vec<HashMap<String, Value>>)]
    pub data: Vec<Row>,
    pub summary: Summary,
    pub dropped_metrics: Vec<DroppedMetric>,
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
    pub success: bool,
    pub message: String,
    #[schema(value_type = Vec<HashMap<String, Value>>)]
    pub data: Vec<Row>,
    pub summary: Summary,
    pub dropped_metrics: Vec<DroppedMetric>,
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
