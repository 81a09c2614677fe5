//! Page post and reel insights. Posts come with their insights through field
//! expansion (one call per page of posts, not per post); reels through
//! `video_reels` then `video_insights` with bounded concurrency. A metric
//! Meta rejects is found with one probe per metric and reported as dropped.

use chrono::NaiveDate;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::answers::{DroppedMetric, PageInsightsAnswer, PostRows, Summary, rows_message};
use super::campaigns::parse_date;
use super::metrics::{self, MetricObject};
use super::values::accumulate;
use super::{Access, InsightsError, InsightsService, Row, invalid};
use crate::providers::UpstreamError;
use crate::providers::facebook::parse_graph_time;
use crate::secret::Secret;

pub const DEFAULT_POST_METRICS: &[&str] = &["post_clicks", "post_reactions_by_type_total"];
pub const DEFAULT_REEL_METRICS: &[&str] = &["blue_reels_play_count", "post_video_avg_time_watched"];

/// `GET /facebook/post_metrics` and `/facebook/reel_metrics`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageMetricsQuery {
    #[param(pattern = "^[0-9]+$")]
    pub page_id: String,
    /// Comma-separated metric names.
    pub metrics: Option<String>,
    #[param(format = Date)]
    pub start_date: String,
    #[param(format = Date)]
    pub end_date: String,
}

/// A validated time window and metric list.
#[derive(Debug, Clone)]
pub struct Window {
    pub since: i64,
    pub until: i64,
}

pub fn window(start: &str, end: &str) -> Result<Window, InsightsError> {
    let start: NaiveDate = parse_date("start_date", start)?;
    let end: NaiveDate = parse_date("end_date", end)?;
    if end < start {
        return Err(invalid("end_date", "must not be before start_date"));
    }
    let midnight = |d: NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc()
            .timestamp()
    };
    Ok(Window {
        since: midnight(start),
        until: midnight(end.succ_opt().unwrap_or(end)),
    })
}

pub fn metric_list(
    field: &str,
    given: Option<&str>,
    default: &[&str],
    object: MetricObject,
) -> Result<Vec<String>, InsightsError> {
    let list: Vec<String> = match given {
        Some(text) => text
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .collect(),
        None => default.iter().map(|m| m.to_string()).collect(),
    };
    if list.is_empty() {
        return Err(invalid(field, "name at least one metric"));
    }
    metrics::check(object, &list).map_err(InsightsError::BadMetrics)?;
    Ok(list)
}

/// `(#100)` without a subcode on an insights call: possibly a metric Meta
/// no longer accepts (the message never says which).
fn maybe_metric_rejection(e: &UpstreamError) -> bool {
    e.code == Some(100) && e.subcode.is_none()
}

/// Asks for each metric alone (one call per metric) and returns those Meta
/// accepts; the rejected ones are added to `dropped`.
async fn probe<'a, T, F, Fut>(
    metrics: &'a [String],
    dropped: &mut Vec<DroppedMetric>,
    call: F,
) -> Vec<String>
where
    F: Fn(&'a [String]) -> Fut,
    Fut: std::future::Future<Output = Result<T, InsightsError>>,
{
    let mut kept = Vec::new();
    for m in metrics {
        match call(std::slice::from_ref(m)).await {
            Err(InsightsError::Upstream(e)) if maybe_metric_rejection(&e) => {
                dropped.push(DroppedMetric {
                    metric: m.clone(),
                    reason:
                        "rejected by Facebook: (#100) The value must be a valid insights metric"
                            .into(),
                })
            }
            _ => kept.push(m.clone()),
        }
    }
    kept
}

/// Rows plus the metrics Meta refused.
pub struct PageContent {
    pub rows: Vec<Row>,
    pub dropped: Vec<DroppedMetric>,
}

fn insight_values(item: &Value, metrics: &[String], row: &mut Row) {
    for m in metrics {
        row.insert(m.clone(), Value::Null);
    }
    if let Some(data) = item
        .pointer("/insights/data")
        .and_then(Value::as_array)
        .or_else(|| item["data"].as_array())
    {
        for d in data {
            if let (Some(name), Some(value)) = (d["name"].as_str(), d.pointer("/values/0/value")) {
                row.insert(name.to_string(), value.clone());
            }
        }
    }
}

fn time_text(v: &Value) -> Value {
    v.as_str()
        .and_then(parse_graph_time)
        .map_or(v.clone(), |t| json!(t.to_rfc3339()))
}

impl InsightsService {
    /// Posts of a page in the window, each with its insights.
    pub async fn page_posts(
        &self,
        page_id: &str,
        token: &Secret,
        metrics: &[String],
        w: &Window,
    ) -> Result<PageContent, InsightsError> {
        let mut good = metrics.to_vec();
        let mut dropped = Vec::new();
        loop {
            match self.fetch_posts(page_id, token, &good, w, None).await {
                Ok(items) => {
                    let rows = items.iter().map(|p| post_row(page_id, p, &good)).collect();
                    return Ok(PageContent { rows, dropped });
                }
                Err(InsightsError::Upstream(e))
                    if maybe_metric_rejection(&e) && dropped.is_empty() =>
                {
                    let kept = probe(&good, &mut dropped, |m| {
                        self.fetch_posts(page_id, token, m, w, Some(1))
                    })
                    .await;
                    if dropped.is_empty() || kept.is_empty() {
                        return Err(e.into());
                    }
                    good = kept;
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub(super) async fn fetch_posts(
        &self,
        page_id: &str,
        token: &Secret,
        metrics: &[String],
        w: &Window,
        limit: Option<u32>,
    ) -> Result<Vec<Value>, InsightsError> {
        let fields = format!(
            "id,message,created_time,permalink_url,status_type,shares,reactions.summary(total_count).limit(0),comments.summary(true).limit(0),insights.metric({}).period(lifetime)",
            metrics.join(",")
        );
        let params = [
            ("fields", fields),
            ("since", w.since.to_string()),
            ("until", w.until.to_string()),
            ("limit", limit.unwrap_or(100).to_string()),
        ];
        let graph = self.graph()?;
        let path = format!("/{page_id}/published_posts");
        Ok(match limit {
            // A probe needs one page only.
            Some(_) => graph.get(&path, token, &params).await?["data"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
            None => graph.get_all(&path, token, &params).await?,
        })
    }

    /// Reels of a page in the window, each with its insights.
    pub async fn page_reels(
        &self,
        page_id: &str,
        token: &Secret,
        metrics: &[String],
        w: &Window,
    ) -> Result<PageContent, InsightsError> {
        let graph = self.graph()?;
        let params = [
            (
                "fields",
                "id,description,created_time,permalink_url,length".to_string(),
            ),
            ("since", w.since.to_string()),
            ("until", w.until.to_string()),
            ("limit", "100".to_string()),
        ];
        let reels = graph
            .get_all(&format!("/{page_id}/video_reels"), token, &params)
            .await?;
        let mut good = metrics.to_vec();
        let mut dropped = Vec::new();
        if let Some(first) = reels.first().and_then(|r| r["id"].as_str())
            && let Err(InsightsError::Upstream(e)) = self.video_insights(first, token, &good).await
            && maybe_metric_rejection(&e)
        {
            let kept = probe(&good, &mut dropped, |m| {
                self.video_insights(first, token, m)
            })
            .await;
            if kept.is_empty() {
                return Err(e.into());
            }
            good = kept;
        }
        let ids: Vec<String> = reels
            .iter()
            .map(|r| r["id"].as_str().unwrap_or_default().to_string())
            .collect();
        let insights = self.videos_insights(token, &ids, &good).await?;
        let rows = reels
            .iter()
            .zip(insights)
            .map(|(reel, insights)| {
                let mut row = Map::new();
                row.insert("page_id".into(), json!(page_id));
                row.insert("video_id".into(), reel["id"].clone());
                row.insert("created_time".into(), time_text(&reel["created_time"]));
                for key in ["description", "permalink_url", "length"] {
                    row.insert(key.into(), reel.get(key).cloned().unwrap_or(Value::Null));
                }
                insight_values(&insights, &good, &mut row);
                row
            })
            .collect();
        Ok(PageContent { rows, dropped })
    }

    /// The insights of many videos through batch requests of up to 50
    /// (chunks in parallel); an op the platform left unanswered (`null`) is
    /// asked again, then on its own.
    async fn videos_insights(
        &self,
        token: &Secret,
        ids: &[String],
        metrics: &[String],
    ) -> Result<Vec<Value>, InsightsError> {
        let graph = self.graph()?;
        let urls: Vec<String> = ids
            .iter()
            .map(|id| {
                format!(
                    "{id}/video_insights?metric={}&period=lifetime",
                    metrics.join(",")
                )
            })
            .collect();
        // Owned chunks: borrowed stream items trip the Send check of handlers.
        let chunks: Vec<(usize, Vec<String>)> = urls
            .chunks(50)
            .enumerate()
            .map(|(i, c)| (i * 50, c.to_vec()))
            .collect();
        let answered: Vec<Vec<Value>> = futures::stream::iter(chunks)
            .map(|(offset, chunk)| async move {
                let mut results: Vec<Option<Result<Value, UpstreamError>>> =
                    vec![None; chunk.len()];
                for _ in 0..3 {
                    let pending: Vec<usize> =
                        (0..chunk.len()).filter(|i| results[*i].is_none()).collect();
                    if pending.is_empty() {
                        break;
                    }
                    let urls: Vec<String> = pending.iter().map(|i| chunk[*i].clone()).collect();
                    for (i, answer) in pending.into_iter().zip(graph.batch(token, &urls).await?) {
                        results[i] = answer;
                    }
                }
                let mut values = Vec::with_capacity(chunk.len());
                for (i, result) in results.into_iter().enumerate() {
                    let value = match result {
                        Some(r) => r?,
                        None => {
                            self.video_insights(&ids[offset + i], token, metrics)
                                .await?
                        }
                    };
                    values.push(value);
                }
                Ok::<Vec<Value>, InsightsError>(values)
            })
            .buffered(self.settings.insights.concurrency)
            .try_collect()
            .await?;
        Ok(answered.into_iter().flatten().collect())
    }

    async fn video_insights(
        &self,
        video_id: &str,
        token: &Secret,
        metrics: &[String],
    ) -> Result<Value, InsightsError> {
        let params = [
            ("metric", metrics.join(",")),
            ("period", "lifetime".to_string()),
        ];
        Ok(self
            .graph()?
            .get(&format!("/{video_id}/video_insights"), token, &params)
            .await?)
    }

    /// `GET /facebook/post_metrics`.
    pub async fn post_metrics(
        &self,
        access: &Access,
        q: &PageMetricsQuery,
    ) -> Result<PageInsightsAnswer, InsightsError> {
        self.page_metrics(access, q, false).await
    }

    /// `GET /facebook/reel_metrics`.
    pub async fn reel_metrics(
        &self,
        access: &Access,
        q: &PageMetricsQuery,
    ) -> Result<PageInsightsAnswer, InsightsError> {
        self.page_metrics(access, q, true).await
    }

    /// The posts, or the reels, of one page with their totals.
    async fn page_metrics(
        &self,
        access: &Access,
        q: &PageMetricsQuery,
        reels: bool,
    ) -> Result<PageInsightsAnswer, InsightsError> {
        let (defaults, object) = if reels {
            (DEFAULT_REEL_METRICS, MetricObject::Reel)
        } else {
            (DEFAULT_POST_METRICS, MetricObject::Post)
        };
        let metrics = metric_list("metrics", q.metrics.as_deref(), defaults, object)?;
        let w = window(&q.start_date, &q.end_date)?;
        let (page, token) = self.page_token(access, &q.page_id).await?;
        let read = async {
            if reels {
                self.page_reels(&q.page_id, &token, &metrics, &w).await
            } else {
                self.page_posts(&q.page_id, &token, &metrics, &w).await
            }
        };
        let content = self.using(&page, read).await?;
        Ok(PageInsightsAnswer {
            rows: post_rows(content.rows, &metrics, content.dropped),
            page_id: q.page_id.clone(),
        })
    }
}

fn post_row(page_id: &str, post: &Value, metrics: &[String]) -> Row {
    let mut row = Map::new();
    row.insert("page_id".into(), json!(page_id));
    row.insert("post_id".into(), post["id"].clone());
    row.insert("created_time".into(), time_text(&post["created_time"]));
    row.insert(
        "message".into(),
        post.get("message").cloned().unwrap_or(Value::Null),
    );
    row.insert(
        "permalink_url".into(),
        post.get("permalink_url").cloned().unwrap_or(Value::Null),
    );
    row.insert(
        "status_type".into(),
        post.get("status_type").cloned().unwrap_or(Value::Null),
    );
    row.insert(
        "shares".into(),
        post.pointer("/shares/count").cloned().unwrap_or(json!(0)),
    );
    row.insert(
        "reactions".into(),
        post.pointer("/reactions/summary/total_count")
            .cloned()
            .unwrap_or(json!(0)),
    );
    row.insert(
        "comments".into(),
        post.pointer("/comments/summary/total_count")
            .cloned()
            .unwrap_or(json!(0)),
    );
    insight_values(post, metrics, &mut row);
    row
}

/// Rows with their totals: of the metrics, and of the counts every post
/// row has.
pub(super) fn post_rows(
    rows: Vec<Row>,
    metrics: &[String],
    dropped: Vec<DroppedMetric>,
) -> PostRows {
    let mut totals = Map::new();
    for row in &rows {
        for key in metrics
            .iter()
            .map(String::as_str)
            .chain(["shares", "reactions", "comments"])
        {
            if let Some(v) = row.get(key) {
                accumulate(&mut totals, key, v);
            }
        }
    }
    PostRows {
        success: true,
        message: rows_message(&rows),
        summary: Summary {
            rows: rows.len() as u64,
            totals,
        },
        data: rows,
        dropped_metrics: dropped,
    }
}
