//! Insights as rows for CSV: the `_csv` twins and async exports call the same
//! service functions as the JSON endpoints. An export's parameters are those
//! of its endpoint, as JSON (lists as arrays).

use std::sync::Arc;

use futures::StreamExt;
use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::business::BusinessQuery;
use super::campaigns::CampaignMetricsRequest;
use super::posts::PageMetricsQuery;
use super::{Access, InsightsError, InsightsService, Row};
use crate::export::ExportError;
use crate::export::jobs::{RowSource, SourcedRows};

/// The insights endpoints that can be exported.
pub const KINDS: &[&str] = &[
    "campaign_metrics",
    "google_campaign_metrics",
    "post_metrics",
    "reel_metrics",
    "business_post_insights",
    "business_posts_and_reels_insights",
];

/// Parameter added by the service (never by the caller) with the teams the
/// creating key may see.
pub const ACCESS_PARAM: &str = "_access_teams";

pub fn leading_columns(kind: &str) -> &'static [&'static str] {
    match kind {
        "campaign_metrics" => &[
            "date_start",
            "date_stop",
            "account_id",
            "campaign_id",
            "campaign_name",
        ],
        "post_metrics" => &[
            "page_id",
            "post_id",
            "created_time",
            "message",
            "permalink_url",
        ],
        "reel_metrics" => &[
            "page_id",
            "video_id",
            "created_time",
            "description",
            "permalink_url",
        ],
        _ => &[
            "content_type",
            "page_id",
            "page_name",
            "post_id",
            "video_id",
            "created_time",
        ],
    }
}

/// Comma lists may come as arrays in export params.
fn normalize(params: &Value) -> Value {
    let mut p = params.clone();
    if let Value::Object(o) = &mut p {
        for key in ["metrics", "reel_metrics"] {
            if let Some(Value::Array(items)) = o.get(key) {
                let joined = items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(",");
                o.insert(key.to_string(), Value::String(joined));
            }
        }
    }
    p
}

fn parse<T: DeserializeOwned>(params: Value) -> Result<T, InsightsError> {
    serde_json::from_value(params).map_err(|e| super::invalid("params", e.to_string()))
}

impl InsightsService {
    /// The rows of insights endpoint `kind` for `params`.
    pub async fn rows(
        &self,
        access: &Access,
        kind: &str,
        params: Value,
    ) -> Result<Vec<Row>, InsightsError> {
        let rows = match kind {
            // Campaign metrics take `metrics` as an array, like their JSON body.
            "campaign_metrics" => {
                let r: CampaignMetricsRequest = parse(params)?;
                return Ok(self.campaign_rows(access, &r).await?.0);
            }
            "google_campaign_metrics" => {
                let r: super::google::GoogleMetricsRequest = parse(params)?;
                return self.google()?.rows(access, &r).await;
            }
            "post_metrics" => {
                self.post_metrics(access, &parse::<PageMetricsQuery>(normalize(&params))?)
                    .await?
                    .rows
                    .data
            }
            "reel_metrics" => {
                self.reel_metrics(access, &parse::<PageMetricsQuery>(normalize(&params))?)
                    .await?
                    .rows
                    .data
            }
            "business_post_insights" => {
                self.business_insights(access, &parse::<BusinessQuery>(normalize(&params))?, false)
                    .await?
                    .rows
                    .data
            }
            "business_posts_and_reels_insights" => {
                self.business_insights(access, &parse::<BusinessQuery>(normalize(&params))?, true)
                    .await?
                    .rows
                    .data
            }
            other => {
                return Err(super::invalid(
                    "kind",
                    format!("'{other}' is not one of {}", KINDS.join(", ")),
                ));
            }
        };
        Ok(rows)
    }
}

/// Async exports read insights through this.
pub struct InsightsRows(pub Arc<InsightsService>);

impl RowSource for InsightsRows {
    fn validate(&self, kind: &str, params: &Value) -> Result<(), ExportError> {
        if !KINDS.contains(&kind) {
            return Err(ExportError::invalid(
                "kind",
                format!("'{kind}' is not one of {}", KINDS.join(", ")),
            ));
        }
        if !params.is_object() {
            return Err(ExportError::invalid(
                "params",
                "must be an object of the endpoint's parameters",
            ));
        }
        let p = normalize(params);
        let checked = match kind {
            "campaign_metrics" => parse::<CampaignMetricsRequest>(params.clone()).map(|_| ()),
            "google_campaign_metrics" => {
                parse::<super::google::GoogleMetricsRequest>(params.clone()).map(|_| ())
            }
            "post_metrics" | "reel_metrics" => parse::<PageMetricsQuery>(p).map(|_| ()),
            _ => parse::<BusinessQuery>(p).map(|_| ()),
        };
        checked.map_err(|e| ExportError::invalid("params", e.to_string()))
    }

    fn rows(
        &self,
        kind: &str,
        params: Value,
    ) -> BoxFuture<'static, Result<SourcedRows, ExportError>> {
        let service = self.0.clone();
        let kind = kind.to_string();
        Box::pin(async move {
            let teams = params
                .get(ACCESS_PARAM)
                .and_then(|t| serde_json::from_value::<Option<Vec<String>>>(t.clone()).ok())
                .flatten();
            let mut params = params;
            if let Value::Object(o) = &mut params {
                o.remove(ACCESS_PARAM);
            }
            let (rows, connection_ids) =
                super::sources::recording(service.rows(&Access { teams }, &kind, params)).await;
            let rows = rows.map_err(|e| ExportError::Source(e.to_string()))?;
            Ok(SourcedRows {
                connection_ids,
                rows: futures::stream::iter(rows.into_iter().map(Ok)).boxed(),
            })
        })
    }

    fn leading_columns(&self, kind: &str) -> Vec<String> {
        leading_columns(kind)
            .iter()
            .map(|c| c.to_string())
            .collect()
    }
}
