//! The metric registry: which insights metrics each object accepts, and for
//! each retired one its retirement date and replacement (wire-spec 6.2), so a
//! request naming one is refused before it reaches Meta.

use serde::Serialize;

/// The object a metric belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricObject {
    Campaign,
    Post,
    Reel,
    Page,
}

/// A retired metric: when, and what replaces it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RetiredMetric {
    pub metric: &'static str,
    /// campaign, post, reel or page.
    #[schema(value_type = String)]
    pub object: MetricObject,
    pub retired_on: &'static str,
    #[schema(required = true)]
    pub replacement: Option<&'static str>,
}

const CAMPAIGN: &[&str] = &[
    "impressions",
    "reach",
    "frequency",
    "clicks",
    "unique_clicks",
    "inline_link_clicks",
    "spend",
    "cpc",
    "cpm",
    "cpp",
    "ctr",
    "actions",
    "action_values",
    "conversions",
    "cost_per_action_type",
];

const POST: &[&str] = &[
    "post_clicks",
    "post_clicks_by_type",
    "post_reactions_by_type_total",
    "post_reactions_like_total",
    "post_reactions_love_total",
    "post_reactions_wow_total",
    "post_reactions_haha_total",
    "post_reactions_sorry_total",
    "post_reactions_anger_total",
    "post_activity_by_action_type",
    "post_video_views",
    "post_total_media_view_unique",
    "post_media_view",
];

const REEL: &[&str] = &[
    "blue_reels_play_count",
    "fb_reels_total_plays",
    "fb_reels_replay_count",
    "post_video_avg_time_watched",
    "post_video_view_time",
    "post_video_followers",
    "post_video_social_actions",
    "post_video_likes_by_reaction_type",
    "post_video_retention_graph",
];

const PAGE: &[&str] = &[
    "page_follows",
    "page_media_view",
    "page_total_media_view_unique",
    "page_post_engagements",
    "page_video_views",
    "page_daily_follows",
    "page_daily_unfollows_unique",
];

const fn retired(
    metric: &'static str,
    object: MetricObject,
    retired_on: &'static str,
    replacement: Option<&'static str>,
) -> RetiredMetric {
    RetiredMetric {
        metric,
        object,
        retired_on,
        replacement,
    }
}

use MetricObject::{Page as Pg, Post as Po, Reel as Re};

/// The deprecation waves of 2024-03-14, 2025-11-15 and 2026-06-15.
pub const RETIRED: &[RetiredMetric] = &[
    retired(
        "page_engaged_users",
        Pg,
        "2024-03-14",
        Some("page_post_engagements"),
    ),
    retired("page_consumptions", Pg, "2024-03-14", None),
    retired("page_consumptions_unique", Pg, "2024-03-14", None),
    retired("page_content_activity", Pg, "2024-03-14", None),
    retired("page_fans_gender_age", Pg, "2024-03-14", None),
    retired("post_engaged_users", Po, "2024-03-14", Some("post_clicks")),
    retired(
        "post_impressions_organic",
        Po,
        "2024-03-14",
        Some("post_media_view"),
    ),
    retired(
        "page_impressions",
        Pg,
        "2025-11-15",
        Some("page_media_view"),
    ),
    retired(
        "post_impressions",
        Po,
        "2025-11-15",
        Some("post_media_view"),
    ),
    retired("page_fans", Pg, "2025-11-15", Some("page_follows")),
    retired(
        "page_fans_city",
        Pg,
        "2025-11-15",
        Some("page_follows_city"),
    ),
    retired(
        "page_fans_country",
        Pg,
        "2025-11-15",
        Some("page_follows_country"),
    ),
    retired(
        "page_impressions_unique",
        Pg,
        "2026-06-15",
        Some("page_total_media_view_unique"),
    ),
    retired(
        "post_impressions_unique",
        Po,
        "2026-06-15",
        Some("post_total_media_view_unique"),
    ),
    retired("post_impressions_paid_unique", Po, "2026-06-15", None),
    retired("post_impressions_fan_unique", Po, "2026-06-15", None),
    retired("post_impressions_organic_unique", Po, "2026-06-15", None),
    retired("post_impressions_viral_unique", Po, "2026-06-15", None),
    retired("post_impressions_nonviral_unique", Po, "2026-06-15", None),
    retired("page_posts_impressions", Pg, "2026-06-15", None),
    retired("page_posts_impressions_unique", Pg, "2026-06-15", None),
    retired("post_video_views_unique", Re, "2026-06-15", None),
];

/// Breakdowns accepted for ads insights.
pub const BREAKDOWNS: &[&str] = &[
    "age",
    "gender",
    "country",
    "region",
    "publisher_platform",
    "platform_position",
    "device_platform",
    "impression_device",
];

pub fn valid(object: MetricObject) -> &'static [&'static str] {
    match object {
        MetricObject::Campaign => CAMPAIGN,
        MetricObject::Post => POST,
        MetricObject::Reel => REEL,
        MetricObject::Page => PAGE,
    }
}

/// A metric that cannot be used.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BadMetric {
    pub metric: String,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retired_on: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replacement: Option<&'static str>,
}

/// Checks every requested metric; returns all the bad ones.
pub fn check(object: MetricObject, metrics: &[String]) -> Result<(), Vec<BadMetric>> {
    let bad: Vec<BadMetric> = metrics
        .iter()
        .filter(|m| !valid(object).contains(&m.as_str()))
        .map(|m| match RETIRED.iter().find(|r| r.metric == m) {
            Some(r) => BadMetric {
                metric: m.clone(),
                reason: format!(
                    "retired by Meta on {}{}",
                    r.retired_on,
                    r.replacement
                        .map(|x| format!("; use {x}"))
                        .unwrap_or_default()
                ),
                retired_on: Some(r.retired_on),
                replacement: r.replacement,
            },
            None => BadMetric {
                metric: m.clone(),
                reason: format!("not a known {object:?} metric").to_lowercase(),
                retired_on: None,
                replacement: None,
            },
        })
        .collect();
    if bad.is_empty() { Ok(()) } else { Err(bad) }
}

/// The metric registry.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MetricsCatalogue {
    #[schema(value_type = Vec<String>)]
    pub campaign: &'static [&'static str],
    #[schema(value_type = Vec<String>)]
    pub post: &'static [&'static str],
    #[schema(value_type = Vec<String>)]
    pub reel: &'static [&'static str],
    #[schema(value_type = Vec<String>)]
    pub page: &'static [&'static str],
    #[schema(value_type = Vec<String>)]
    pub breakdowns: &'static [&'static str],
    #[schema(value_type = Vec<RetiredMetric>)]
    pub retired: &'static [RetiredMetric],
}

/// The registry as `GET /facebook/available_metrics` shows it.
pub fn catalogue() -> MetricsCatalogue {
    MetricsCatalogue {
        campaign: CAMPAIGN,
        post: POST,
        reel: REEL,
        page: PAGE,
        breakdowns: BREAKDOWNS,
        retired: RETIRED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retired_and_unknown_metrics_are_named_with_replacements() {
        let err = check(
            MetricObject::Post,
            &[
                "post_clicks".into(),
                "post_impressions".into(),
                "nope".into(),
            ],
        )
        .unwrap_err();
        assert_eq!(err.len(), 2);
        assert_eq!(err[0].metric, "post_impressions");
        assert_eq!(err[0].replacement, Some("post_media_view"));
        assert_eq!(err[0].retired_on, Some("2025-11-15"));
        assert!(err[1].reason.contains("not a known"));
        assert!(check(MetricObject::Campaign, &["spend".into(), "actions".into()]).is_ok());
    }
}
