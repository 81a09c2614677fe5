//! Google Ads campaigns and metrics through `searchStream`: the service
//! builds the GAQL, reads int64 strings as numbers and turns `costMicros`
//! into money. Tokens come from Google connections via the TokenManager.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::answers::rows_message;
use super::campaigns::{DateRange, parse_date, summarize};
use super::values::{as_f64, rounded};
use super::{Access, InsightsError, Row, invalid};
use crate::domain::{Connection, ConnectionKind, Provider};
use crate::providers::google::ads::GoogleAds;
use crate::secret::Secret;
use crate::tokens::TokenManager;

/// Metrics a request may name, and their GAQL fields.
pub const METRICS: &[(&str, &str)] = &[
    ("impressions", "metrics.impressions"),
    ("clicks", "metrics.clicks"),
    ("cost", "metrics.cost_micros"),
    ("conversions", "metrics.conversions"),
    ("ctr", "metrics.ctr"),
];

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GoogleCampaignsQuery {
    /// Digits, dashes allowed.
    #[param(pattern = "^[0-9]+(-[0-9]+)*$")]
    pub customer_id: String,
    pub connection_id: Option<String>,
}

/// `POST /google/campaign_metrics`: the Facebook request's shape.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct GoogleMetricsRequest {
    /// Digits, dashes allowed.
    #[schema(pattern = "^[0-9]+(-[0-9]+)*$")]
    pub customer_id: String,
    /// Numeric campaign ids.
    #[schema(inline, value_type = Option<Vec<GoogleCampaignId>>)]
    pub campaign_ids: Option<Vec<String>>,
    pub date_range: DateRange,
    #[schema(inline, value_type = Vec<GoogleMetric>, min_items = 1)]
    pub metrics: Vec<String>,
    /// `date` adds one row per day.
    #[schema(inline, value_type = Option<Vec<GoogleDimension>>)]
    pub dimensions: Option<Vec<String>>,
    pub connection_id: Option<String>,
}

/// Spec-only: what the request's lists accept (kept beside `METRICS`).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
enum GoogleMetric {
    Impressions,
    Clicks,
    Cost,
    Conversions,
    Ctr,
}

#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
enum GoogleDimension {
    Date,
}

#[derive(utoipa::ToSchema)]
#[schema(value_type = String, pattern = "^[0-9]+$")]
#[allow(dead_code)]
struct GoogleCampaignId(String);

fn customer(id: &str) -> Result<String, InsightsError> {
    let digits = id.replace('-', "");
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(invalid(
            "customer_id",
            "must be a Google Ads customer id (digits, dashes allowed)",
        ));
    }
    Ok(digits)
}

/// The GAQL for a metrics request (validated).
pub fn metrics_query(r: &GoogleMetricsRequest) -> Result<String, InsightsError> {
    let start = parse_date("date_range.start_date", &r.date_range.start_date)?;
    let end = parse_date("date_range.end_date", &r.date_range.end_date)?;
    if end < start {
        return Err(invalid(
            "date_range.end_date",
            "must not be before start_date",
        ));
    }
    if r.metrics.is_empty() {
        return Err(invalid("metrics", "name at least one metric"));
    }
    let mut fields = vec!["campaign.id", "campaign.name", "campaign.status"];
    for m in &r.metrics {
        let field = METRICS
            .iter()
            .find(|(name, _)| name == m)
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                invalid(
                    "metrics",
                    format!(
                        "'{m}' is not one of {}",
                        METRICS
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
        fields.push(field);
    }
    for d in r.dimensions.iter().flatten() {
        match d.as_str() {
            "date" => fields.push("segments.date"),
            other => {
                return Err(invalid(
                    "dimensions",
                    format!("'{other}' is not supported (date)"),
                ));
            }
        }
    }
    let mut query = format!(
        "SELECT {} FROM campaign WHERE segments.date BETWEEN '{start}' AND '{end}'",
        fields.join(", ")
    );
    if let Some(ids) = r.campaign_ids.as_ref().filter(|ids| !ids.is_empty()) {
        if ids
            .iter()
            .any(|id| id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(invalid("campaign_ids", "must be numeric campaign ids"));
        }
        query.push_str(&format!(" AND campaign.id IN ({})", ids.join(", ")));
    }
    Ok(query)
}

/// One searchStream result as a flat row; int64 strings become numbers.
fn row(customer_id: &str, result: &Value) -> Row {
    let mut out = Map::new();
    out.insert("customer_id".into(), json!(customer_id));
    out.insert(
        "campaign_id".into(),
        result
            .pointer("/campaign/id")
            .cloned()
            .unwrap_or(Value::Null),
    );
    out.insert(
        "campaign_name".into(),
        result
            .pointer("/campaign/name")
            .cloned()
            .unwrap_or(Value::Null),
    );
    out.insert(
        "campaign_status".into(),
        result
            .pointer("/campaign/status")
            .cloned()
            .unwrap_or(Value::Null),
    );
    if let Some(date) = result.pointer("/segments/date") {
        out.insert("date".into(), date.clone());
    }
    if let Some(metrics) = result.get("metrics").and_then(Value::as_object) {
        for (k, v) in metrics {
            match k.as_str() {
                "costMicros" => {
                    out.insert(
                        "cost".into(),
                        as_f64(v).map_or(Value::Null, |m| rounded(m / 1_000_000.0)),
                    );
                }
                other => {
                    out.insert(other.to_string(), as_f64(v).map_or(Value::Null, rounded));
                }
            }
        }
    }
    out
}

pub struct GoogleInsights<'a> {
    pub tokens: &'a Arc<TokenManager>,
    pub ads: &'a GoogleAds,
}

impl GoogleInsights<'_> {
    async fn token(
        &self,
        access: &Access,
        customer_id: &str,
        connection_id: Option<&str>,
    ) -> Result<(Arc<Connection>, Secret), InsightsError> {
        let need = access.need(Provider::Google, &[ConnectionKind::Ads]);
        // Prefer the connection made for this customer.
        let rank = |c: &Connection| c.external_id != customer_id;
        let missing = "no usable Google connection: connect Google Ads first";
        super::pick_token(self.tokens, &need, access, connection_id, rank, missing).await
    }

    /// One GAQL search with `conn`'s token; a rejected token is recorded on
    /// the connection.
    async fn search(
        &self,
        conn: &Connection,
        token: &Secret,
        customer_id: &str,
        query: &str,
    ) -> Result<Vec<Value>, InsightsError> {
        let result = self.ads.search_stream(token, customer_id, query).await;
        if let Err(e) = &result {
            self.tokens.observe(&conn.id, e).await;
        }
        Ok(result?)
    }

    pub async fn campaigns(
        &self,
        access: &Access,
        q: &GoogleCampaignsQuery,
    ) -> Result<Value, InsightsError> {
        let customer_id = customer(&q.customer_id)?;
        let (conn, token) = self
            .token(access, &customer_id, q.connection_id.as_deref())
            .await?;
        let results = self
            .search(&conn, &token, &customer_id, "SELECT campaign.id, campaign.name, campaign.status FROM campaign ORDER BY campaign.id")
            .await?;
        let data: Vec<Value> = results
            .iter()
            .map(|r| json!({ "id": r.pointer("/campaign/id"), "name": r.pointer("/campaign/name"), "status": r.pointer("/campaign/status") }))
            .collect();
        Ok(json!({ "success": true, "count": data.len(), "data": data }))
    }

    pub async fn rows(
        &self,
        access: &Access,
        r: &GoogleMetricsRequest,
    ) -> Result<Vec<Row>, InsightsError> {
        let customer_id = customer(&r.customer_id)?;
        let query = metrics_query(r)?;
        let (conn, token) = self
            .token(access, &customer_id, r.connection_id.as_deref())
            .await?;
        let results = self.search(&conn, &token, &customer_id, &query).await?;
        Ok(results.iter().map(|res| row(&customer_id, res)).collect())
    }

    pub async fn campaign_metrics(
        &self,
        access: &Access,
        r: &GoogleMetricsRequest,
    ) -> Result<Value, InsightsError> {
        let rows = self.rows(access, r).await?;
        let mut summary = summarize(&rows, &r.metrics);
        // CTR over the whole range, from the totals.
        if r.metrics.iter().any(|m| m == "ctr") {
            let t = &summary.totals;
            let ctr = match (
                t.get("clicks").and_then(as_f64),
                t.get("impressions").and_then(as_f64),
            ) {
                (Some(c), Some(i)) if i > 0.0 => rounded(c / i),
                _ => Value::Null,
            };
            summary.totals.insert("ctr".into(), ctr);
        }
        Ok(
            json!({ "success": true, "message": rows_message(&rows), "data": rows, "summary": summary }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaql_is_built_from_the_request() {
        let r = GoogleMetricsRequest {
            customer_id: "123-456-7890".into(),
            campaign_ids: Some(vec!["11".into(), "12".into()]),
            date_range: DateRange {
                start_date: "2026-06-01".into(),
                end_date: "2026-06-30".into(),
            },
            metrics: vec!["impressions".into(), "cost".into()],
            dimensions: Some(vec!["date".into()]),
            connection_id: None,
        };
        assert_eq!(
            metrics_query(&r).unwrap(),
            "SELECT campaign.id, campaign.name, campaign.status, metrics.impressions, metrics.cost_micros, segments.date FROM campaign WHERE segments.date BETWEEN '2026-06-01' AND '2026-06-30' AND campaign.id IN (11, 12)"
        );
        let mut bad = r.clone();
        bad.metrics = vec!["spend".into()];
        assert!(
            matches!(metrics_query(&bad), Err(InsightsError::Invalid { field, .. }) if field == "metrics")
        );
    }

    #[test]
    fn cost_micros_become_money_and_int64_strings_numbers() {
        let r = row(
            "1",
            &json!({"campaign": {"id": "111", "name": "A", "status": "ENABLED"},
            "metrics": {"impressions": "10922", "clicks": "311", "costMicros": "45230000", "conversions": 12.5},
            "segments": {"date": "2026-06-01"}}),
        );
        assert_eq!(r["impressions"], 10922);
        assert_eq!(r["cost"], 45.23);
        assert_eq!(r["conversions"], 12.5);
        assert_eq!(r["date"], "2026-06-01");
    }
}
