//! Ad campaigns and their metrics: validation, the sync insights endpoint,
//! and the async report flow for large requests (poll with backoff; a failed
//! job is retried once, then split by date range).

use std::time::Duration;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::answers::{CampaignList, CampaignMetricsAnswer, Paging, Summary, rows_message};
use super::metrics::{self, MetricObject};
use super::values::{accumulate, as_f64, parse_ads_row, rounded};
use super::{Access, InsightsError, InsightsService, Row, invalid};
use crate::domain::ConnectionKind;
use crate::providers::UpstreamError;
use crate::secret::Secret;

const ACCOUNT_KINDS: &[ConnectionKind] = &[ConnectionKind::SystemUser, ConnectionKind::User];

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct DateRange {
    #[schema(format = Date)]
    pub start_date: String,
    #[schema(format = Date)]
    pub end_date: String,
}

/// `POST /facebook/campaign_metrics`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct CampaignMetricsRequest {
    /// Numeric, with or without `act_`.
    #[schema(pattern = "^(act_)?[0-9]+$")]
    pub ad_account_id: String,
    pub campaign_ids: Option<Vec<String>>,
    pub date_range: DateRange,
    /// Campaign metrics (`GET /facebook/available_metrics`).
    #[schema(min_items = 1)]
    pub metrics: Vec<String>,
    /// Breakdowns (`GET /facebook/available_metrics`).
    pub dimensions: Option<Vec<String>>,
    #[schema(inline, value_type = Option<Level>)]
    pub level: Option<String>,
    /// Days per row (1-90), or "monthly" / "all_days".
    /// (The spec shows the day counts; the strings are accepted too.)
    #[schema(value_type = Option<u8>, minimum = 1, maximum = 90)]
    pub time_increment: Option<Value>,
    pub connection_id: Option<String>,
}

/// `GET /facebook/campaigns`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CampaignsQuery {
    /// Numeric, with or without `act_`.
    #[param(pattern = "^(act_)?[0-9]+$")]
    pub ad_account_id: String,
    /// Comma-separated effective statuses.
    pub effective_status: Option<String>,
    pub limit: Option<u32>,
    pub after: Option<String>,
    pub connection_id: Option<String>,
}

/// Spec-only: the levels `level` accepts.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
enum Level {
    Account,
    Campaign,
    Adset,
    Ad,
}

pub const EFFECTIVE_STATUSES: &[&str] = &[
    "ACTIVE",
    "PAUSED",
    "DELETED",
    "ARCHIVED",
    "IN_PROCESS",
    "WITH_ISSUES",
];

pub fn account_path(ad_account_id: &str) -> Result<String, InsightsError> {
    let id = ad_account_id.trim_start_matches("act_");
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(invalid(
            "ad_account_id",
            "must be a numeric ad account id (with or without act_)",
        ));
    }
    Ok(format!("act_{id}"))
}

pub fn parse_date(field: &str, text: &str) -> Result<NaiveDate, InsightsError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| invalid(field, "must be a date like 2024-06-30"))
}

/// A validated campaign metrics request.
struct Validated {
    account: String,
    start: NaiveDate,
    end: NaiveDate,
    params: Vec<(&'static str, String)>,
}

impl InsightsService {
    pub async fn campaigns(
        &self,
        access: &Access,
        q: &CampaignsQuery,
    ) -> Result<CampaignList, InsightsError> {
        let account = account_path(&q.ad_account_id)?;
        let mut params = vec![
            (
                "fields",
                "id,name,status,effective_status,objective,daily_budget,lifetime_budget,created_time,start_time,stop_time,updated_time".to_string(),
            ),
            ("limit", q.limit.unwrap_or(100).clamp(1, 500).to_string()),
        ];
        if let Some(statuses) = &q.effective_status {
            let list: Vec<&str> = statuses
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            if let Some(bad) = list.iter().find(|s| !EFFECTIVE_STATUSES.contains(s)) {
                return Err(invalid(
                    "effective_status",
                    format!("'{bad}' is not one of {}", EFFECTIVE_STATUSES.join(", ")),
                ));
            }
            params.push(("effective_status", json!(list).to_string()));
        }
        if let Some(after) = &q.after {
            params.push(("after", after.clone()));
        }
        let (conn, token) = self
            .account_token(access, q.connection_id.as_deref(), ACCOUNT_KINDS)
            .await?;
        let graph = self.graph()?;
        let path = format!("/{account}/campaigns");
        let body = self
            .using(&conn, async {
                Ok(graph.get(&path, &token, &params).await?)
            })
            .await?;
        let data: Vec<Value> = body["data"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|c| {
                let mut c = c;
                for budget in ["daily_budget", "lifetime_budget"] {
                    if let Some(v) = c.get(budget).and_then(as_f64) {
                        c[budget] = rounded(v);
                    }
                }
                c
            })
            .collect();
        let after = body
            .pointer("/paging/next")
            .is_some()
            .then(|| {
                body.pointer("/paging/cursors/after")
                    .and_then(Value::as_str)
            })
            .flatten()
            .map(String::from);
        Ok(CampaignList {
            success: true,
            count: data.len() as u64,
            data,
            paging: Paging { after },
        })
    }

    fn validate(&self, r: &CampaignMetricsRequest) -> Result<Validated, InsightsError> {
        let account = account_path(&r.ad_account_id)?;
        let start = parse_date("date_range.start_date", &r.date_range.start_date)?;
        let end = parse_date("date_range.end_date", &r.date_range.end_date)?;
        if end < start {
            return Err(invalid(
                "date_range.end_date",
                "must not be before start_date",
            ));
        }
        let today = self.tokens.now().date_naive();
        let oldest = today
            .checked_sub_months(chrono::Months::new(self.settings.insights.max_months_back))
            .unwrap_or(today);
        if start < oldest {
            return Err(invalid(
                "date_range.start_date",
                format!(
                    "must be within the last {} months (on or after {oldest})",
                    self.settings.insights.max_months_back
                ),
            ));
        }
        if r.metrics.is_empty() {
            return Err(invalid("metrics", "name at least one metric"));
        }
        metrics::check(MetricObject::Campaign, &r.metrics).map_err(InsightsError::BadMetrics)?;
        let breakdowns = r.dimensions.clone().unwrap_or_default();
        if let Some(bad) = breakdowns
            .iter()
            .find(|b| !metrics::BREAKDOWNS.contains(&b.as_str()))
        {
            return Err(invalid(
                "dimensions",
                format!(
                    "'{bad}' is not a known breakdown ({})",
                    metrics::BREAKDOWNS.join(", ")
                ),
            ));
        }
        let level = r.level.clone().unwrap_or_else(|| "campaign".into());
        if !["account", "campaign", "adset", "ad"].contains(&level.as_str()) {
            return Err(invalid("level", "must be account, campaign, adset or ad"));
        }
        let increment = match &r.time_increment {
            None => "all_days".to_string(),
            Some(Value::Number(n)) if n.as_u64().is_some_and(|d| (1..=90).contains(&d)) => {
                n.to_string()
            }
            Some(Value::String(s)) if s == "monthly" || s == "all_days" => s.clone(),
            Some(Value::String(s)) if s.parse::<u64>().is_ok_and(|d| (1..=90).contains(&d)) => {
                s.clone()
            }
            Some(_) => {
                return Err(invalid(
                    "time_increment",
                    "must be 1-90 days, \"monthly\" or \"all_days\"",
                ));
            }
        };
        let mut fields: Vec<String> = vec!["account_id".into()];
        if level != "account" {
            fields.push(format!("{level}_id"));
            fields.push(format!("{level}_name"));
        }
        fields.extend(r.metrics.iter().cloned());
        let mut params = vec![
            ("level", level),
            ("fields", fields.join(",")),
            (
                "time_range",
                json!({ "since": start.to_string(), "until": end.to_string() }).to_string(),
            ),
            ("time_increment", increment),
            ("limit", "500".to_string()),
        ];
        if !breakdowns.is_empty() {
            params.push(("breakdowns", breakdowns.join(",")));
        }
        if let Some(ids) = r.campaign_ids.as_ref().filter(|ids| !ids.is_empty()) {
            params.push((
                "filtering",
                json!([{ "field": "campaign.id", "operator": "IN", "value": ids }]).to_string(),
            ));
        }
        Ok(Validated {
            account,
            start,
            end,
            params,
        })
    }

    /// The rows of a campaign metrics request, numbers parsed.
    pub async fn campaign_rows(
        &self,
        access: &Access,
        r: &CampaignMetricsRequest,
    ) -> Result<(Vec<Row>, &'static str), InsightsError> {
        let v = self.validate(r)?;
        let (conn, token) = self
            .account_token(access, r.connection_id.as_deref(), ACCOUNT_KINDS)
            .await?;
        let (rows, path) = self.using(&conn, self.fetch_rows(&token, &v)).await?;
        let rows = rows
            .iter()
            .filter_map(Value::as_object)
            .map(parse_ads_row)
            .collect();
        Ok((rows, path))
    }

    /// The raw insights rows of a validated request: synchronously, or as an
    /// async report for long ranges and answers too large to give at once.
    async fn fetch_rows(
        &self,
        token: &Secret,
        v: &Validated,
    ) -> Result<(Vec<Value>, &'static str), InsightsError> {
        let days = (v.end - v.start).num_days() + 1;
        let fetched = if days > self.settings.insights.async_after_days {
            (
                self.async_rows(token, &v.account, &v.params, v.start, v.end, 0)
                    .await?,
                "async",
            )
        } else {
            match self
                .graph()?
                .get_all(&format!("/{}/insights", v.account), token, &v.params)
                .await
            {
                Ok(rows) => (rows, "sync"),
                Err(e) if asks_for_less_data(&e) => {
                    tracing::info!(account = %v.account, "sync insights too large; using an async report");
                    (
                        self.async_rows(token, &v.account, &v.params, v.start, v.end, 0)
                            .await?,
                        "async",
                    )
                }
                Err(e) => return Err(e.into()),
            }
        };
        Ok(fetched)
    }

    /// `POST /facebook/campaign_metrics`: rows and totals.
    pub async fn campaign_metrics(
        &self,
        access: &Access,
        r: &CampaignMetricsRequest,
    ) -> Result<CampaignMetricsAnswer, InsightsError> {
        let (rows, path) = self.campaign_rows(access, r).await?;
        Ok(CampaignMetricsAnswer {
            success: true,
            message: rows_message(&rows),
            report: path.to_string(),
            summary: summarize(&rows, &r.metrics),
            data: rows,
        })
    }

    /// Runs an async report, retrying a failed job once, then splitting the
    /// date range in two.
    fn async_rows<'a>(
        &'a self,
        token: &'a Secret,
        account: &'a str,
        params: &'a [(&'static str, String)],
        start: NaiveDate,
        end: NaiveDate,
        depth: u32,
    ) -> futures::future::BoxFuture<'a, Result<Vec<Value>, InsightsError>> {
        Box::pin(async move {
            let mut params = params.to_vec();
            for p in params.iter_mut() {
                if p.0 == "time_range" {
                    p.1 =
                        json!({ "since": start.to_string(), "until": end.to_string() }).to_string();
                }
            }
            let mut last_error = String::new();
            for _ in 0..2 {
                match self.run_report(token, account, &params).await {
                    Ok(rows) => return Ok(rows),
                    Err(InsightsError::ReportFailed(e)) => last_error = e,
                    Err(e) => return Err(e),
                }
            }
            if depth < 3 && end > start {
                let mid = start + (end - start) / 2;
                tracing::info!(%start, %end, "async report failed twice; splitting the date range");
                let mut rows = self
                    .async_rows(token, account, &params, start, mid, depth + 1)
                    .await?;
                rows.extend(
                    self.async_rows(
                        token,
                        account,
                        &params,
                        mid.succ_opt().unwrap_or(mid),
                        end,
                        depth + 1,
                    )
                    .await?,
                );
                return Ok(rows);
            }
            Err(InsightsError::ReportFailed(last_error))
        })
    }

    async fn run_report(
        &self,
        token: &Secret,
        account: &str,
        params: &[(&str, String)],
    ) -> Result<Vec<Value>, InsightsError> {
        let graph = self.graph()?;
        let started = graph
            .post(&format!("/{account}/insights"), token, params)
            .await?;
        let run_id = started["report_run_id"]
            .as_str()
            .map(str::to_string)
            .or_else(|| started["report_run_id"].as_i64().map(|n| n.to_string()))
            .ok_or_else(|| InsightsError::ReportFailed("no report_run_id in the answer".into()))?;
        let s = &self.settings.insights;
        let mut delay = Duration::from_millis(s.async_poll_initial_ms);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(s.async_timeout_secs);
        loop {
            tokio::time::sleep(delay).await;
            let status = graph.get(&format!("/{run_id}"), token, &[]).await?;
            match status["async_status"].as_str().unwrap_or("") {
                "Job Completed" => break,
                "Job Failed" | "Job Skipped" => {
                    return Err(InsightsError::ReportFailed(format!(
                        "report {run_id}: {} (code {})",
                        status["async_status"].as_str().unwrap_or(""),
                        status["error_code"]
                    )));
                }
                _ => {}
            }
            if tokio::time::Instant::now() > deadline {
                return Err(InsightsError::ReportFailed(format!(
                    "report {run_id} did not finish in time"
                )));
            }
            delay = (delay * 2).min(Duration::from_millis(s.async_poll_max_ms));
        }
        Ok(graph
            .get_all(
                &format!("/{run_id}/insights"),
                token,
                &[("limit", "500".into())],
            )
            .await?)
    }
}

/// Meta's ways of saying a sync insights call asks for too much (wire-spec 2.3, 5.2).
fn asks_for_less_data(e: &UpstreamError) -> bool {
    matches!(
        (e.code, e.subcode),
        (Some(100), Some(1487534 | 1504018)) | (Some(1), _) | (Some(2), Some(1504043))
    )
}

/// Totals of numeric metrics (actions summed by type) and recomputed ratios.
pub fn summarize(rows: &[Row], metrics: &[String]) -> Summary {
    let mut totals = Map::new();
    for row in rows {
        for m in metrics {
            let Some(v) = row.get(m) else { continue };
            match v {
                Value::Array(items) => {
                    for item in items {
                        if let (Some(t), Some(val)) =
                            (item["action_type"].as_str(), item.get("value"))
                        {
                            let entry = totals
                                .entry(m.clone())
                                .or_insert_with(|| Value::Object(Map::new()));
                            if let Value::Object(o) = entry {
                                accumulate(o, t, val);
                            }
                        }
                    }
                }
                other => accumulate(&mut totals, m, other),
            }
        }
    }
    let get = |k: &str| totals.get(k).and_then(as_f64);
    let (spend, clicks, impressions) = (get("spend"), get("clicks"), get("impressions"));
    // Ratios of sums, not sums of ratios.
    if metrics.iter().any(|m| m == "cpc") {
        totals.insert("cpc".into(), ratio(spend, clicks, 1.0));
    }
    if metrics.iter().any(|m| m == "cpm") {
        totals.insert("cpm".into(), ratio(spend, impressions, 1000.0));
    }
    if metrics.iter().any(|m| m == "ctr") {
        totals.insert("ctr".into(), ratio(clicks, impressions, 100.0));
    }
    if metrics.iter().any(|m| m == "frequency") {
        totals.remove("frequency");
    }
    Summary {
        rows: rows.len() as u64,
        totals,
    }
}

fn ratio(num: Option<f64>, den: Option<f64>, scale: f64) -> Value {
    match (num, den) {
        (Some(n), Some(d)) if d > 0.0 => rounded(n / d * scale),
        _ => Value::Null,
    }
}
