//! Page/post/video insights metrics (wire-spec 6.2, 6.3): which names exist
//! for posts and reels, their deterministic values (derived from the 1-based
//! index `n` of the post or reel on its page), the retired lists and the
//! validation that fails a whole request on one bad name.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use super::errors::GraphError;

/// The 2024-03-14, 2025-11-15 and 2026-06-15 deprecation waves.
const RETIRED: [&str; 44] = [
    // 2024-03-14
    "page_engaged_users",
    "page_consumptions",
    "page_consumptions_unique",
    "page_consumptions_by_consumption_type",
    "page_content_activity",
    "page_content_activity_by_action_type",
    "page_fans_gender_age",
    "post_engaged_users",
    "post_impressions_organic",
    // 2025-11-15
    "page_impressions",
    "page_impressions_paid",
    "page_impressions_organic_v2",
    "page_impressions_viral",
    "page_impressions_nonviral",
    "post_impressions",
    "post_impressions_paid",
    "post_impressions_fan",
    "post_impressions_viral",
    "post_impressions_nonviral",
    "page_fans",
    "page_fans_city",
    "page_fans_country",
    "page_fans_locale",
    "page_fan_adds",
    "page_fan_removes",
    // 2026-06-15
    "page_impressions_unique",
    "page_impressions_paid_unique",
    "page_impressions_organic_unique_v2",
    "page_impressions_viral_unique",
    "page_impressions_nonviral_unique",
    "post_impressions_unique",
    "post_impressions_paid_unique",
    "post_impressions_fan_unique",
    "post_impressions_organic_unique",
    "post_impressions_viral_unique",
    "post_impressions_nonviral_unique",
    "page_posts_impressions",
    "page_posts_impressions_unique",
    "page_posts_impressions_paid",
    "page_posts_impressions_organic",
    "page_posts_impressions_organic_unique",
    "page_posts_impressions_viral",
    "page_posts_impressions_nonviral",
    "post_video_views_unique",
];

/// `SimConfig::retired_metrics` by default.
pub(crate) fn default_retired_metrics() -> Vec<String> {
    RETIRED.iter().map(|m| m.to_string()).collect()
}

/// What an insights call is about.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Object {
    Post,
    Reel,
}

/// The reaction counts of post `n`, in insights' lowercase keys.
pub(crate) fn reactions(n: u64) -> [(&'static str, i64); 6] {
    let n = n as i64;
    [
        ("like", 1 + n % 7),
        ("love", n % 3),
        ("wow", i64::from(n % 4 == 0)),
        ("haha", n % 2),
        ("sorry", 0),
        ("anger", i64::from(n % 10 == 0)),
    ]
}

pub(crate) fn reactions_total(n: u64) -> i64 {
    reactions(n).iter().map(|(_, v)| v).sum()
}

pub(crate) fn comments(n: u64) -> i64 {
    (n % 5) as i64
}

pub(crate) fn shares(n: u64) -> i64 {
    (n % 4) as i64
}

/// `{"k": v}` without the zero entries, as Meta's `*_by_type` objects.
fn nonzero(pairs: &[(&str, i64)]) -> Value {
    let map: Map<String, Value> = pairs
        .iter()
        .filter(|(_, v)| *v != 0)
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    Value::Object(map)
}

/// The lifetime value of a post metric, `None` for names posts do not have.
fn post_value(name: &str, n: u64) -> Option<Value> {
    let i = n as i64;
    let reaction = |key: &str| {
        reactions(n)
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| json!(v))
    };
    Some(match name {
        "post_clicks" => json!(10 + i),
        "post_clicks_by_type" => {
            let link = (10 + i) / 2;
            nonzero(&[("link clicks", link), ("other clicks", 10 + i - link)])
        }
        "post_reactions_by_type_total" => nonzero(&reactions(n)),
        "post_reactions_like_total" => reaction("like")?,
        "post_reactions_love_total" => reaction("love")?,
        "post_reactions_wow_total" => reaction("wow")?,
        "post_reactions_haha_total" => reaction("haha")?,
        "post_reactions_sorry_total" => reaction("sorry")?,
        "post_reactions_anger_total" => reaction("anger")?,
        "post_activity_by_action_type" => nonzero(&[
            ("share", shares(n)),
            ("like", reactions_total(n)),
            ("comment", comments(n)),
        ]),
        "post_video_views" => json!(3 * i),
        "post_media_view" => json!(150 + 5 * i),
        "post_total_media_view_unique" => json!(100 + 3 * i),
        // Retired by default; answer when the config un-retires them.
        "post_impressions" | "post_impressions_organic" => json!(150 + 5 * i),
        "post_impressions_unique" | "post_impressions_organic_unique" => json!(100 + 3 * i),
        "post_impressions_paid" | "post_impressions_paid_unique" => json!(0),
        "post_engaged_users" => json!(20 + i),
        _ => return None,
    })
}

/// The lifetime value of a reel metric, `None` for names reels do not have.
fn reel_value(name: &str, n: u64) -> Option<Value> {
    let i = n as i64;
    Some(match name {
        "blue_reels_play_count" => json!(1000 + 10 * i),
        "fb_reels_total_plays" => json!(1200 + 12 * i),
        "fb_reels_replay_count" => json!(200 + 2 * i),
        "post_video_avg_time_watched" => json!(5000 + 100 * i),
        "post_video_view_time" => json!((5000 + 100 * i) * (1000 + 10 * i)),
        "post_video_followers" => json!(i % 5),
        "post_video_social_actions" => nonzero(&[("COMMENT", 1 + i % 5), ("SHARE", i % 3)]),
        "post_video_likes_by_reaction_type" => {
            nonzero(&[("REACTION_LIKE", 4 + i % 7), ("REACTION_LOVE", i % 3)])
        }
        // A reel metric in wire-spec.md (Reels metrics); the share of
        // viewers still watching at each second, as an object by second.
        "post_video_retention_graph" => {
            json!({ "0": 1.0, "1": 0.8, "2": 0.6 - (i % 5) as f64 / 100.0 })
        }
        // Retired by default (2026-06-15).
        "post_impressions_unique" => json!(900 + 9 * i),
        _ => return None,
    })
}

fn title(name: &str) -> String {
    let words: Vec<String> = name
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    format!("Lifetime {}", words.join(" "))
}

/// The metric names of a `metric=` list (comma separated, trimmed).
pub(crate) fn metric_list(text: Option<&str>) -> Vec<String> {
    text.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect()
}

/// 3001/1504028 without metrics; 100 "(#100) The value must be a valid
/// insights metric" when any name is unknown for `object`, retired or
/// rejected (never saying which).
pub(crate) fn validate(
    object: Object,
    metrics: &[String],
    retired: &[String],
    rejected: &HashSet<String>,
) -> Result<(), GraphError> {
    if metrics.is_empty() {
        let mut error =
            GraphError::new(400, 3001, "OAuthException", "Invalid query").with_subcode(1504028);
        error.is_transient = Some(false);
        error.user_text = Some(Box::new((
            "No Metric Specified".into(),
            "No metric was specified to be fetched. Please specify one or more comma separated metrics to be fetched.".into(),
        )));
        return Err(error);
    }
    let bad = metrics.iter().any(|m| {
        retired.contains(m)
            || rejected.contains(m)
            || match object {
                Object::Post => post_value(m, 1).is_none(),
                Object::Reel => reel_value(m, 1).is_none(),
            }
    });
    if bad {
        return Err(GraphError::param(
            "(#100) The value must be a valid insights metric",
        ));
    }
    Ok(())
}

/// The `data` entries for already validated `metrics` of object `n`;
/// `edge` is `insights` or `video_insights`. Periods other than lifetime
/// give no entries.
pub(crate) fn entries(
    object: Object,
    object_id: &str,
    edge: &str,
    n: u64,
    metrics: &[String],
    period: Option<&str>,
) -> Vec<Value> {
    if !matches!(period, None | Some("lifetime")) {
        return Vec::new();
    }
    metrics
        .iter()
        .filter_map(|m| {
            let value = match object {
                Object::Post => post_value(m, n),
                Object::Reel => reel_value(m, n),
            }?;
            Some(json!({
                "name": m,
                "period": "lifetime",
                "values": [{"value": value}],
                "title": title(m),
                "description": format!("Lifetime: {} (simulated).", title(m).trim_start_matches("Lifetime ")),
                "id": format!("{object_id}/{edge}/{m}/lifetime"),
            }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_retired_metric_fails_the_whole_list_and_none_is_3001() {
        let retired = default_retired_metrics();
        let none = HashSet::new();
        let ok = ["post_clicks".to_string()];
        assert!(validate(Object::Post, &ok, &retired, &none).is_ok());
        let bad = ["post_clicks".to_string(), "post_impressions".to_string()];
        assert_eq!(
            validate(Object::Post, &bad, &retired, &none)
                .unwrap_err()
                .code,
            100
        );
        assert_eq!(
            validate(Object::Post, &[], &retired, &none)
                .unwrap_err()
                .code,
            3001
        );
        let reel_on_post = ["blue_reels_play_count".to_string()];
        assert!(validate(Object::Post, &reel_on_post, &retired, &none).is_err());
    }
}
