//! The business-wide reads: posts and reels of every page a business (or
//! user) token reaches, read concurrently, and which pages' insights it can
//! read.

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, json};

use super::answers::{BusinessInsightsAnswer, PageAccess, PageReport, PagesAccess};
use super::metrics::MetricObject;
use super::posts::{
    DEFAULT_POST_METRICS, DEFAULT_REEL_METRICS, PageContent, Window, metric_list, post_rows, window,
};
use super::{Access, InsightsError, InsightsService, Row};
use crate::domain::ConnectionKind;
use crate::providers::facebook::PageAccount;

/// `check_business_pages_access`: which connection to look through.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PagesAccessQuery {
    /// A system-user (or user) connection; default: the first usable one.
    pub connection_id: Option<String>,
}

/// The business-wide endpoints.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BusinessQuery {
    /// A system-user (or user) connection; default: the first usable one.
    pub connection_id: Option<String>,
    pub metrics: Option<String>,
    pub reel_metrics: Option<String>,
    #[param(format = Date)]
    pub start_date: Option<String>,
    #[param(format = Date)]
    pub end_date: Option<String>,
}

/// One page's outcome in a business-wide request: id, name, posts and reels.
type PageOutcome = (
    String,
    String,
    Result<(PageContent, Option<PageContent>), InsightsError>,
);

impl InsightsService {
    /// The pages a system-user (or user) connection reaches, with their tokens.
    async fn business_pages(
        &self,
        access: &Access,
        connection_id: Option<&str>,
    ) -> Result<Vec<PageAccount>, InsightsError> {
        let (conn, token) = self
            .account_token(
                access,
                connection_id,
                &[ConnectionKind::SystemUser, ConnectionKind::User],
            )
            .await?;
        let graph = self.graph()?;
        self.using(&conn, async { Ok(graph.accounts(&token).await?) })
            .await
    }

    /// Posts (and reels) of every page the business token reaches, read
    /// concurrently; a failing page is reported, not fatal.
    pub async fn business_insights(
        &self,
        access: &Access,
        q: &BusinessQuery,
        with_reels: bool,
    ) -> Result<BusinessInsightsAnswer, InsightsError> {
        let post_metrics = metric_list(
            "metrics",
            q.metrics.as_deref(),
            DEFAULT_POST_METRICS,
            MetricObject::Post,
        )?;
        let reel_metrics = metric_list(
            "reel_metrics",
            q.reel_metrics.as_deref(),
            DEFAULT_REEL_METRICS,
            MetricObject::Reel,
        )?;
        let today = self.tokens.now().date_naive();
        let start = q
            .start_date
            .clone()
            .unwrap_or_else(|| (today - chrono::Duration::days(30)).to_string());
        let end = q.end_date.clone().unwrap_or_else(|| today.to_string());
        let w = window(&start, &end)?;
        let pages = self
            .business_pages(access, q.connection_id.as_deref())
            .await?;
        let concurrency = self.settings.insights.concurrency;
        let (pm, rm, wr) = (&post_metrics, &reel_metrics, &w);
        let results: Vec<PageOutcome> = futures::stream::iter(pages)
            .map(|page| async move {
                let posts = self.page_posts(&page.id, &page.access_token, pm, wr).await;
                let result = match posts {
                    Ok(posts) if with_reels => self
                        .page_reels(&page.id, &page.access_token, rm, wr)
                        .await
                        .map(|reels| (posts, Some(reels))),
                    Ok(posts) => Ok((posts, None)),
                    Err(e) => Err(e),
                };
                (page.id, page.name, result)
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let mut rows = Vec::new();
        let mut page_reports = Vec::new();
        let mut dropped = Vec::new();
        let mut failed = 0;
        for (page_id, page_name, result) in results {
            match result {
                Ok((posts, reels)) => {
                    let mut count = 0;
                    for (kind, content) in [("post", Some(posts)), ("reel", reels)] {
                        let Some(content) = content else { continue };
                        count += content.rows.len();
                        dropped.extend(content.dropped);
                        for mut row in content.rows {
                            let mut out = Map::new();
                            if with_reels {
                                out.insert("content_type".into(), json!(kind));
                            }
                            out.insert("page_name".into(), json!(page_name));
                            out.append(&mut row);
                            rows.push(out);
                        }
                    }
                    page_reports.push(PageReport {
                        page_id,
                        page_name,
                        status: "ok".into(),
                        rows: Some(count as u64),
                        error: None,
                    });
                }
                Err(e) => {
                    failed += 1;
                    page_reports.push(PageReport {
                        page_id,
                        page_name,
                        status: "failed".into(),
                        rows: None,
                        error: Some(e.to_string()),
                    });
                }
            }
        }
        rows.sort_by(|a, b| {
            let key = |r: &Row| {
                (
                    r["page_id"].as_str().unwrap_or("").to_string(),
                    r["created_time"].as_str().unwrap_or("").to_string(),
                )
            };
            key(a).cmp(&key(b))
        });
        page_reports.sort_by(|a, b| a.page_id.cmp(&b.page_id));
        dropped.sort_by(|a, b| a.metric.cmp(&b.metric));
        dropped.dedup();
        let mut all_metrics = post_metrics.clone();
        if with_reels {
            all_metrics.extend(reel_metrics.iter().cloned());
        }
        Ok(BusinessInsightsAnswer {
            rows: post_rows(rows, &all_metrics, dropped),
            pages: page_reports,
            failed_pages: failed,
        })
    }

    /// `GET /facebook/check_business_pages_access`: each page, whether its
    /// insights can be read, and why not.
    pub async fn check_business_pages_access(
        &self,
        access: &Access,
        q: &PagesAccessQuery,
    ) -> Result<PagesAccess, InsightsError> {
        let pages = self
            .business_pages(access, q.connection_id.as_deref())
            .await?;
        let total = pages.len();
        let now = self.tokens.now().timestamp();
        let w = Window {
            since: now - 86_400 * 30,
            until: now,
        };
        let w = &w;
        let checks: Vec<PageAccess> = futures::stream::iter(pages)
            .map(|page| async move {
                let analyze = page.tasks.is_empty() || page.tasks.iter().any(|t| t == "ANALYZE");
                let (ok, reason) = if !analyze {
                    (
                        false,
                        Some("the connected user lacks the ANALYZE task on this page".to_string()),
                    )
                } else {
                    match self
                        .fetch_posts(
                            &page.id,
                            &page.access_token,
                            &["post_clicks".to_string()],
                            w,
                            Some(1),
                        )
                        .await
                    {
                        Ok(_) => (true, None),
                        Err(e) => (false, Some(e.to_string())),
                    }
                };
                PageAccess {
                    page_id: page.id,
                    page_name: page.name,
                    tasks: page.tasks,
                    can_read_insights: ok,
                    reason,
                }
            })
            .buffered(self.settings.insights.concurrency)
            .collect()
            .await;
        let readable = checks.iter().filter(|c| c.can_read_insights).count();
        Ok(PagesAccess {
            success: true,
            pages: checks,
            readable: readable as u64,
            total: total as u64,
        })
    }
}
