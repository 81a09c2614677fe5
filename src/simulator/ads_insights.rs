//! Marketing insights rows (wire-spec 5.2): parsing `level`, `fields`,
//! `time_range`/`date_preset`, `time_increment`, `breakdowns` and
//! `filtering`, then building one row per time bucket × object × breakdown
//! value, every metric a string.

use chrono::{Datelike, Duration, Months, NaiveDate};
use serde_json::{Map, Value, json};

use super::errors::GraphError;
use super::insights_world::{Campaign, Delivery, InsightsWorld};

/// Age buckets and their share of delivery in percent.
pub(crate) const AGE_SPLIT: [(&str, i64); 6] = [
    ("18-24", 15),
    ("25-34", 30),
    ("35-44", 25),
    ("45-54", 15),
    ("55-64", 10),
    ("65+", 5),
];
/// Gender buckets and their share in percent.
pub(crate) const GENDER_SPLIT: [(&str, i64); 3] = [("female", 50), ("male", 45), ("unknown", 5)];

const METRICS: [&str; 9] = [
    "impressions",
    "reach",
    "clicks",
    "spend",
    "cpc",
    "cpm",
    "ctr",
    "frequency",
    "actions",
];
/// Identity fields a row may be asked for; they are always sent.
const IDENTITY: [&str; 7] = [
    "account_id",
    "account_name",
    "campaign_id",
    "campaign_name",
    "objective",
    "date_start",
    "date_stop",
];
const DEFAULT_FIELDS: [&str; 2] = ["impressions", "spend"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Account,
    Campaign,
}

#[derive(Debug, Clone, Copy)]
enum Increment {
    Days(i64),
    Monthly,
    AllDays,
}

#[derive(Debug, Clone, Copy)]
enum Breakdown {
    Age,
    Gender,
}

#[derive(Debug, Clone)]
struct Filter {
    by_id: bool,
    negate: bool,
    values: Vec<String>,
}

/// A parsed insights request.
#[derive(Debug, Clone)]
pub(crate) struct InsightsQuery {
    pub level: Level,
    metrics: Vec<String>,
    pub since: NaiveDate,
    pub until: NaiveDate,
    increment: Increment,
    breakdowns: Vec<Breakdown>,
    filters: Vec<Filter>,
}

impl InsightsQuery {
    /// Reads the parameters through `get`; `today` resolves `date_preset`.
    pub fn parse<'a>(
        get: impl Fn(&str) -> Option<&'a str>,
        default_level: Level,
        today: NaiveDate,
    ) -> Result<Self, GraphError> {
        let level = match get("level") {
            None | Some("") => default_level,
            Some("account") => Level::Account,
            Some("campaign") => Level::Campaign,
            Some(other) => {
                return Err(GraphError::param(format!(
                    "(#100) level must be one of the following values: account, campaign (got {other})"
                )));
            }
        };
        let mut metrics = Vec::new();
        let fields: Vec<&str> = match get("fields") {
            Some(f) if !f.trim().is_empty() => f.split(',').map(str::trim).collect(),
            _ => DEFAULT_FIELDS.to_vec(),
        };
        for field in fields.into_iter().filter(|f| !f.is_empty()) {
            if METRICS.contains(&field) {
                metrics.push(field.to_string());
            } else if !IDENTITY.contains(&field) {
                return Err(GraphError::param(format!(
                    "(#100) {field} is not valid for fields param. please check https://developers.facebook.com/docs/marketing-api/reference/ads-insights/ for all valid values"
                )));
            }
        }
        let (since, until) = match (get("time_range"), get("date_preset")) {
            (Some(range), _) => parse_time_range(range)?,
            (None, Some(preset)) => date_preset(preset, today)?,
            (None, None) => date_preset("last_30d", today)?,
        };
        let increment = match get("time_increment") {
            None | Some("all_days") | Some("") => Increment::AllDays,
            Some("monthly") => Increment::Monthly,
            Some(n) => match n.parse::<i64>() {
                Ok(days) if (1..=90).contains(&days) => Increment::Days(days),
                _ => {
                    return Err(GraphError::param(
                        "(#100) time_increment must be an integer between 1 and 90, monthly or all_days",
                    ));
                }
            },
        };
        let mut breakdowns = Vec::new();
        for b in get("breakdowns")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|b| !b.is_empty())
        {
            breakdowns.push(match b {
                "age" => Breakdown::Age,
                "gender" => Breakdown::Gender,
                other => {
                    return Err(GraphError::param(format!(
                        "(#100) breakdowns[0] must be one of the following values: age, gender (got {other})"
                    )));
                }
            });
        }
        let filters = match get("filtering") {
            Some(f) if !f.trim().is_empty() => parse_filtering(f)?,
            _ => Vec::new(),
        };
        Ok(Self {
            level,
            metrics,
            since,
            until,
            increment,
            breakdowns,
            filters,
        })
    }

    /// Every row, in order: time bucket, then campaign (creation order), then
    /// breakdown value. `campaign_ids` is the node's scope.
    pub fn rows(
        &self,
        world: &InsightsWorld,
        account_id: &str,
        campaign_ids: &[String],
    ) -> Vec<Value> {
        let campaigns: Vec<(&String, &Campaign)> = campaign_ids
            .iter()
            .filter_map(|id| world.campaigns.get(id).map(|c| (id, c)))
            .filter(|(id, c)| self.filters.iter().all(|f| f.keeps(id, c)))
            .collect();
        let groups: Vec<Vec<(&String, &Campaign)>> = match self.level {
            Level::Campaign => campaigns.iter().map(|c| vec![*c]).collect(),
            Level::Account => vec![campaigns],
        };
        let mut rows = Vec::new();
        for (start, stop) in self.buckets() {
            for group in &groups {
                let mut total = Delivery::default();
                for (_, campaign) in group {
                    total.add_times(&campaign.daily, campaign.days_in(start, stop));
                }
                if total.is_zero() {
                    continue;
                }
                for (labels, part) in self.break_down(total) {
                    if part.is_zero() {
                        continue;
                    }
                    let mut row = Map::new();
                    row.insert("account_id".into(), json!(account_id));
                    if self.level == Level::Campaign {
                        let (id, campaign) = group[0];
                        row.insert("campaign_id".into(), json!(id));
                        row.insert("campaign_name".into(), json!(campaign.name));
                    }
                    self.put_metrics(&mut row, &part);
                    for (key, value) in labels {
                        row.insert(key.into(), json!(value));
                    }
                    row.insert("date_start".into(), json!(start.to_string()));
                    row.insert("date_stop".into(), json!(stop.to_string()));
                    rows.push(Value::Object(row));
                }
            }
        }
        rows
    }

    fn buckets(&self) -> Vec<(NaiveDate, NaiveDate)> {
        let mut out = Vec::new();
        let mut start = self.since;
        while start <= self.until {
            let stop = match self.increment {
                Increment::AllDays => self.until,
                Increment::Days(n) => (start + Duration::days(n - 1)).min(self.until),
                Increment::Monthly => {
                    let first = start.with_day(1).expect("day 1 exists");
                    let next = first + Months::new(1);
                    (next - Duration::days(1)).min(self.until)
                }
            };
            out.push((start, stop));
            start = stop + Duration::days(1);
        }
        out
    }

    /// The breakdown parts with their labels (one unlabelled part without
    /// breakdowns).
    fn break_down(&self, total: Delivery) -> Vec<(Vec<(&'static str, &'static str)>, Delivery)> {
        let mut parts = vec![(Vec::new(), total)];
        for breakdown in &self.breakdowns {
            let (key, split): (&str, &[(&str, i64)]) = match breakdown {
                Breakdown::Age => ("age", &AGE_SPLIT),
                Breakdown::Gender => ("gender", &GENDER_SPLIT),
            };
            let weights: Vec<i64> = split.iter().map(|(_, w)| *w).collect();
            parts = parts
                .into_iter()
                .flat_map(|(labels, part)| {
                    part.split(&weights)
                        .into_iter()
                        .zip(split.iter())
                        .map(|(piece, (label, _))| {
                            let mut labels = labels.clone();
                            labels.push((key, *label));
                            (labels, piece)
                        })
                        .collect::<Vec<_>>()
                })
                .collect();
        }
        parts
    }

    fn put_metrics(&self, row: &mut Map<String, Value>, d: &Delivery) {
        for metric in &self.metrics {
            let value = match metric.as_str() {
                "impressions" => json!(d.impressions.to_string()),
                "reach" => json!(d.reach.to_string()),
                "clicks" => json!(d.clicks.to_string()),
                "spend" => json!(format!(
                    "{}.{:02}",
                    d.spend_cents / 100,
                    d.spend_cents % 100
                )),
                // spend/clicks, spend*1000/impressions, clicks*100/impressions
                // and impressions/reach, each scaled by 10^6 then rounded.
                "cpc" => ratio(d.spend_cents * 10_000, d.clicks),
                "cpm" => ratio(d.spend_cents * 10_000_000, d.impressions),
                "ctr" => ratio(d.clicks * 100_000_000, d.impressions),
                "frequency" => ratio(d.impressions * 1_000_000, d.reach),
                "actions" => {
                    let actions: Vec<Value> = d
                        .actions
                        .iter()
                        .filter(|(_, v)| **v != 0)
                        .map(|(k, v)| json!({"action_type": k, "value": v.to_string()}))
                        .collect();
                    if actions.is_empty() {
                        continue;
                    }
                    json!(actions)
                }
                _ => continue,
            };
            if !value.is_null() {
                row.insert(metric.clone(), value);
            }
        }
    }
}

/// `micros / den` rounded half up, printed with 6 decimals; null for /0.
fn ratio(micros: i64, den: i64) -> Value {
    if den == 0 {
        return Value::Null;
    }
    let scaled = (i128::from(micros) * 2 + i128::from(den)) / (2 * i128::from(den));
    json!(format!("{}.{:06}", scaled / 1_000_000, scaled % 1_000_000))
}

impl Filter {
    fn keeps(&self, id: &str, campaign: &Campaign) -> bool {
        let value = if self.by_id { id } else { &campaign.status };
        self.values.iter().any(|v| v == value) != self.negate
    }
}

fn parse_time_range(text: &str) -> Result<(NaiveDate, NaiveDate), GraphError> {
    let bad = || {
        GraphError::param(
            "(#100) Param time_range must be a JSON object with since and until dates (YYYY-MM-DD)",
        )
    };
    let range: Value = serde_json::from_str(text).map_err(|_| bad())?;
    let date = |key: &str| {
        range[key]
            .as_str()
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            .ok_or_else(bad)
    };
    let (since, until) = (date("since")?, date("until")?);
    if since > until {
        return Err(GraphError::param(
            "(#100) time_range: since must be on or before until",
        ));
    }
    Ok((since, until))
}

fn parse_filtering(text: &str) -> Result<Vec<Filter>, GraphError> {
    let bad = |why: &str| GraphError::param(format!("(#100) Filtering: {why}"));
    let list: Vec<Value> =
        serde_json::from_str(text).map_err(|_| bad("must be a JSON list of filters"))?;
    let mut filters = Vec::with_capacity(list.len());
    for item in list {
        let by_id = match item["field"].as_str() {
            Some("campaign.id") => true,
            Some("campaign.effective_status") => false,
            Some(other) => return Err(bad(&format!("the field {other} is not supported"))),
            None => return Err(bad("each filter needs a field")),
        };
        let values: Vec<String> = match &item["value"] {
            Value::Array(values) => values
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect(),
            Value::String(v) => vec![v.clone()],
            Value::Number(v) => vec![v.to_string()],
            _ => return Err(bad("each filter needs a value")),
        };
        let negate = match item["operator"].as_str() {
            Some("IN") | Some("EQUAL") => false,
            Some("NOT_IN") | Some("NOT_EQUAL") => true,
            _ => return Err(bad("operator must be IN, NOT_IN, EQUAL or NOT_EQUAL")),
        };
        filters.push(Filter {
            by_id,
            negate,
            values,
        });
    }
    Ok(filters)
}

/// The dates of a `date_preset`, in the account's time zone (UTC here).
/// `last_Nd` ends yesterday, as Meta's do.
fn date_preset(preset: &str, today: NaiveDate) -> Result<(NaiveDate, NaiveDate), GraphError> {
    let yesterday = today - Duration::days(1);
    let month_start = today.with_day(1).expect("day 1 exists");
    let quarter_start = NaiveDate::from_ymd_opt(today.year(), (today.month0() / 3) * 3 + 1, 1)
        .expect("quarter start exists");
    let year_start = NaiveDate::from_ymd_opt(today.year(), 1, 1).expect("1 Jan exists");
    let monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
    let sunday = today - Duration::days(i64::from(today.weekday().num_days_from_sunday()));
    let range = match preset {
        "today" => (today, today),
        "yesterday" => (yesterday, yesterday),
        "this_month" => (month_start, today),
        "last_month" => (
            month_start - Months::new(1),
            month_start - Duration::days(1),
        ),
        "this_quarter" => (quarter_start, today),
        "last_quarter" => (
            quarter_start - Months::new(3),
            quarter_start - Duration::days(1),
        ),
        "this_year" => (year_start, today),
        "last_year" => (year_start - Months::new(12), year_start - Duration::days(1)),
        "this_week_mon_today" => (monday, today),
        "this_week_sun_today" => (sunday, today),
        "last_week_mon_sun" => (monday - Duration::days(7), monday - Duration::days(1)),
        "last_week_sun_sat" => (sunday - Duration::days(7), sunday - Duration::days(1)),
        "maximum" | "data_maximum" => (today - Months::new(37), today),
        other => {
            let days = other
                .strip_prefix("last_")
                .and_then(|d| d.strip_suffix('d'))
                .and_then(|d| d.parse::<i64>().ok())
                .filter(|d| [3, 7, 14, 28, 30, 90].contains(d));
            match days {
                Some(n) => (today - Duration::days(n), yesterday),
                None => {
                    return Err(GraphError::param(format!(
                        "(#100) date_preset must be one of the following values: today, yesterday, this_month, last_month, this_quarter, maximum, data_maximum, last_3d, last_7d, last_14d, last_28d, last_30d, last_90d, last_week_mon_sun, last_week_sun_sat, last_quarter, last_year, this_week_mon_today, this_week_sun_today, this_year (got {other})"
                    )));
                }
            }
        }
    };
    Ok(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_match_metas_sample_row() {
        assert_eq!(ratio(1435 * 10_000, 9), json!("1.594444"));
        assert_eq!(ratio(1435 * 10_000_000, 185), json!("77.567568"));
        assert_eq!(ratio(9 * 100_000_000, 185), json!("4.864865"));
        assert_eq!(ratio(5, 0), Value::Null);
    }

    #[test]
    fn monthly_buckets_follow_calendar_months_clipped_to_the_range() {
        let get = |k: &str| match k {
            "time_range" => Some(r#"{"since":"2024-01-15","until":"2024-03-03"}"#),
            "time_increment" => Some("monthly"),
            _ => None,
        };
        let today = NaiveDate::from_ymd_opt(2024, 6, 1).unwrap();
        let q = InsightsQuery::parse(get, Level::Account, today).unwrap();
        let b: Vec<String> = q
            .buckets()
            .iter()
            .map(|(a, z)| format!("{a}..{z}"))
            .collect();
        assert_eq!(
            b,
            [
                "2024-01-15..2024-01-31",
                "2024-02-01..2024-02-29",
                "2024-03-01..2024-03-03"
            ]
        );
    }
}
