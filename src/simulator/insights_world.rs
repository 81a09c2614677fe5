//! The insights side of the simulated world: ad accounts, campaigns and
//! report runs (Marketing API), page posts and reels (Pages API), business
//! members and the metrics rejected through `/_sim/metrics/reject`.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

/// First id handed to a seeded campaign (18 digits, as Meta's are).
const FIRST_CAMPAIGN_ID: u64 = 120_200_000_000_000_001;
/// First id handed to an async report run.
const FIRST_REPORT_RUN_ID: u64 = 6_023_451_234_567;
/// First id handed to a reel (a video id).
const FIRST_VIDEO_ID: u64 = 323_790_578_640_001;

#[derive(Default)]
pub(crate) struct InsightsWorld {
    pub ad_accounts: HashMap<String, AdAccount>,
    pub campaigns: HashMap<String, Campaign>,
    pub report_runs: HashMap<String, ReportRun>,
    /// Report runs still to be created that will end "Job Failed".
    pub failing_reports: u64,
    /// Posts of each page in creation order; post `n` (1-based) has the id
    /// `{page_id}_{n}`.
    pub posts: HashMap<String, Vec<Post>>,
    /// Reels of each page in creation order.
    pub reels: HashMap<String, Vec<Reel>>,
    /// Video id to (page id, 0-based index in `reels[page]`).
    pub videos: HashMap<String, (String, usize)>,
    /// Metrics rejected like retired ones, on top of the config's list.
    pub rejected_metrics: HashSet<String>,
    /// Users added to each business (for `/me/businesses`).
    pub business_members: HashMap<String, Vec<String>>,
    next_campaign: u64,
    next_report_run: u64,
    next_video: u64,
}

impl InsightsWorld {
    pub fn fresh_campaign_id(&mut self) -> String {
        loop {
            let id = (FIRST_CAMPAIGN_ID + self.next_campaign).to_string();
            self.next_campaign += 1;
            if !self.campaigns.contains_key(&id) {
                return id;
            }
        }
    }

    pub fn fresh_report_run_id(&mut self) -> String {
        self.next_report_run += 1;
        (FIRST_REPORT_RUN_ID + self.next_report_run - 1).to_string()
    }

    pub fn fresh_video_id(&mut self) -> String {
        self.next_video += 1;
        (FIRST_VIDEO_ID + self.next_video - 1).to_string()
    }

    /// The page and 1-based index of a post id `{page_id}_{n}` that exists.
    pub fn post<'a>(&'a self, post_id: &'a str) -> Option<(&'a str, u64, &'a Post)> {
        let (page_id, n) = post_id.rsplit_once('_')?;
        let n: u64 = n.parse().ok()?;
        let post = self
            .posts
            .get(page_id)?
            .get(usize::try_from(n).ok()?.checked_sub(1)?)?;
        Some((page_id, n, post))
    }

    /// The page, 1-based index and record of a reel.
    pub fn reel(&self, video_id: &str) -> Option<(&str, u64, &Reel)> {
        let (page_id, index) = self.videos.get(video_id)?;
        let reel = &self.reels[page_id][*index];
        Some((page_id, *index as u64 + 1, reel))
    }
}

pub(crate) struct AdAccount {
    pub user_ids: Vec<String>,
    /// Businesses whose system user may read the account.
    pub business_ids: Vec<String>,
    /// In creation order.
    pub campaign_ids: Vec<String>,
}

/// What a campaign delivers on each date it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Delivery {
    pub impressions: i64,
    pub reach: i64,
    pub clicks: i64,
    pub spend_cents: i64,
    pub actions: BTreeMap<String, i64>,
}

impl Delivery {
    pub fn is_zero(&self) -> bool {
        self.impressions == 0
            && self.reach == 0
            && self.clicks == 0
            && self.spend_cents == 0
            && self.actions.values().all(|v| *v == 0)
    }

    pub fn add_times(&mut self, other: &Delivery, times: i64) {
        self.impressions += other.impressions * times;
        self.reach += other.reach * times;
        self.clicks += other.clicks * times;
        self.spend_cents += other.spend_cents * times;
        for (kind, value) in &other.actions {
            *self.actions.entry(kind.clone()).or_default() += value * times;
        }
    }

    /// Splits every metric by `weights` (percent, summing to 100): bucket i>0
    /// gets `floor(v * w_i / 100)`, bucket 0 the remainder, so the parts sum
    /// to the whole exactly.
    pub fn split(&self, weights: &[i64]) -> Vec<Delivery> {
        let part = |v: i64| -> Vec<i64> {
            let mut parts: Vec<i64> = weights.iter().map(|w| v * w / 100).collect();
            parts[0] = v - parts[1..].iter().sum::<i64>();
            parts
        };
        let impressions = part(self.impressions);
        let reach = part(self.reach);
        let clicks = part(self.clicks);
        let spend = part(self.spend_cents);
        let actions: Vec<(String, Vec<i64>)> = self
            .actions
            .iter()
            .map(|(k, v)| (k.clone(), part(*v)))
            .collect();
        (0..weights.len())
            .map(|i| Delivery {
                impressions: impressions[i],
                reach: reach[i],
                clicks: clicks[i],
                spend_cents: spend[i],
                actions: actions.iter().map(|(k, p)| (k.clone(), p[i])).collect(),
            })
            .collect()
    }
}

pub(crate) struct Campaign {
    pub account_id: String,
    pub name: String,
    pub status: String,
    pub objective: String,
    pub daily_budget: Option<String>,
    pub lifetime_budget: Option<String>,
    pub daily: Delivery,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub created_time: i64,
}

impl Campaign {
    /// Days of `[since, until]` on which the campaign delivers.
    pub fn days_in(&self, since: NaiveDate, until: NaiveDate) -> i64 {
        let from = self.start_date.map_or(since, |s| s.max(since));
        let to = self.end_date.map_or(until, |e| e.min(until));
        if from > to {
            0
        } else {
            (to - from).num_days() + 1
        }
    }
}

/// An async insights job.
pub(crate) struct ReportRun {
    pub account_id: String,
    pub time_ref: i64,
    pub time_completed: Option<i64>,
    pub polls: u32,
    pub fails: bool,
    pub date_start: NaiveDate,
    pub date_stop: NaiveDate,
    /// The rows a sync call would have given, computed at creation.
    pub rows: Vec<Value>,
}

pub(crate) struct Post {
    pub created_time: i64,
    pub message: Option<String>,
}

pub(crate) struct Reel {
    pub id: String,
    pub created_time: i64,
    pub description: String,
}

/// `2024-03-12T15:02:47+0000`, Meta's datetime style.
pub(crate) fn graph_time(unix: i64) -> String {
    DateTime::<Utc>::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S+0000").to_string())
        .unwrap_or_else(|| unix.to_string())
}

/// Parses Meta's `%Y-%m-%dT%H:%M:%S%z` (also with `Z` or a colon offset).
pub(crate) fn parse_graph_time(text: &str) -> Option<i64> {
    DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%z")
        .or_else(|_| DateTime::parse_from_rfc3339(text))
        .ok()
        .map(|t| t.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_parts_sum_to_the_whole_with_the_remainder_first() {
        let mut d = Delivery {
            impressions: 1001,
            reach: 7,
            clicks: 3,
            spend_cents: 1250,
            ..Delivery::default()
        };
        d.actions.insert("link_click".into(), 19);
        let parts = d.split(&[15, 30, 25, 15, 10, 5]);
        let mut sum = Delivery::default();
        for p in &parts {
            sum.add_times(p, 1);
        }
        assert_eq!(sum, d);
        assert_eq!(parts[1].impressions, 300);
        assert_eq!(parts[0].impressions, 1001 - 300 - 250 - 150 - 100 - 50);
    }
}
