//! Marketing API on the world (wire-spec 5): seeding ad accounts and
//! campaigns, who may read an account, the campaigns edge, sync insights and
//! async report runs.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::Sim;
use super::ads_insights::{InsightsQuery, Level};
use super::errors::{ControlError, GraphError};
use super::insights_world::{AdAccount, Campaign, Delivery, ReportRun, graph_time};
use super::state::{Caller, World};

/// Campaign fields the campaigns edge knows.
const CAMPAIGN_FIELDS: [&str; 14] = [
    "id",
    "account_id",
    "name",
    "status",
    "effective_status",
    "configured_status",
    "objective",
    "daily_budget",
    "lifetime_budget",
    "buying_type",
    "created_time",
    "start_time",
    "stop_time",
    "updated_time",
];

/// The body of `POST /_sim/ad_accounts`.
#[derive(Debug, Deserialize)]
pub(crate) struct NewAdAccount {
    pub id: String,
    #[serde(default)]
    pub user_ids: Vec<String>,
    #[serde(default)]
    pub business_ids: Vec<String>,
    #[serde(default)]
    pub campaigns: Vec<NewCampaign>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct NewCampaign {
    pub id: Option<String>,
    pub name: String,
    pub status: Option<String>,
    pub objective: Option<String>,
    pub daily_budget: Option<Value>,
    pub lifetime_budget: Option<Value>,
    #[serde(default)]
    pub daily: NewDelivery,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct NewDelivery {
    #[serde(default)]
    pub impressions: i64,
    #[serde(default)]
    pub reach: i64,
    #[serde(default)]
    pub clicks: i64,
    /// "12.50" or 12.5, in the account currency.
    pub spend: Option<Value>,
    #[serde(default)]
    pub actions: BTreeMap<String, i64>,
}

/// Which node an insights call is on.
pub(crate) enum InsightsNode<'a> {
    Account(&'a str),
    Campaign(&'a str),
}

impl World {
    /// Creates an ad account with its campaigns; 201 body.
    pub fn seed_ad_account(&mut self, req: NewAdAccount, now: i64) -> Result<Value, ControlError> {
        let id = req.id.trim_start_matches("act_").to_string();
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ControlError::Invalid("ids are numeric strings".into()));
        }
        if self.insights.ad_accounts.contains_key(&id) {
            return Err(ControlError::Conflict(format!("ad account {id} exists")));
        }
        if let Some(user) = req.user_ids.iter().find(|u| !self.users.contains_key(*u)) {
            return Err(ControlError::NotFound(format!("no user {user}")));
        }
        if let Some(b) = req
            .business_ids
            .iter()
            .find(|b| !self.businesses.contains_key(*b))
        {
            return Err(ControlError::NotFound(format!("no business {b}")));
        }
        let mut campaigns = Vec::with_capacity(req.campaigns.len());
        for new in req.campaigns {
            let campaign = campaign_from(&new, &id, now)?;
            let campaign_id = match new.id {
                Some(cid) if self.insights.campaigns.contains_key(&cid) => {
                    return Err(ControlError::Conflict(format!("campaign {cid} exists")));
                }
                Some(cid) => cid,
                None => self.insights.fresh_campaign_id(),
            };
            campaigns.push((campaign_id, campaign));
        }
        let summary: Vec<Value> = campaigns
            .iter()
            .map(|(cid, c)| json!({"id": cid, "name": c.name}))
            .collect();
        let campaign_ids = campaigns.iter().map(|(cid, _)| cid.clone()).collect();
        self.insights.campaigns.extend(campaigns);
        self.insights.ad_accounts.insert(
            id.clone(),
            AdAccount {
                user_ids: req.user_ids,
                business_ids: req.business_ids,
                campaign_ids,
            },
        );
        Ok(json!({"id": id, "account_id": format!("act_{id}"), "campaigns": summary}))
    }

    /// 100/33 for an unknown account, 200 for a caller that may not read it.
    fn readable_account(
        &self,
        token: &str,
        account_id: &str,
        now: i64,
    ) -> Result<&AdAccount, GraphError> {
        let caller = self.caller(token, now)?;
        let Some(account) = self.insights.ad_accounts.get(account_id) else {
            return Err(GraphError::unsupported_get(&format!("act_{account_id}")));
        };
        let allowed = match &caller {
            Caller::User { user_id } => {
                let scopes = &self.users[user_id].scopes;
                if !scopes
                    .iter()
                    .any(|s| s == "ads_read" || s == "ads_management")
                {
                    return Err(GraphError::new(
                        400,
                        200,
                        "OAuthException",
                        "(#200) Ad account owner has NOT grant ads_management or ads_read permission",
                    ));
                }
                account.user_ids.contains(user_id)
            }
            Caller::SystemUser { business_id } => account.business_ids.contains(business_id),
            Caller::Page { .. } | Caller::App => false,
        };
        if !allowed {
            return Err(GraphError::new(
                400,
                200,
                "OAuthException",
                format!(
                    "(#200) The user does not have permission to access ad account act_{account_id}: it needs ads_read or ads_management on the account"
                ),
            ));
        }
        Ok(account)
    }

    /// `/act_{id}/campaigns`: every campaign of the account (creation
    /// order) whose status is in `statuses`, with the asked fields.
    pub fn campaigns(
        &self,
        token: &str,
        account_id: &str,
        fields: &[&str],
        statuses: Option<&str>,
        now: i64,
    ) -> Result<Vec<Value>, GraphError> {
        let account = self.readable_account(token, account_id, now)?;
        let statuses: Option<Vec<String>> = match statuses {
            Some(text) => Some(serde_json::from_str(text).map_err(|_| {
                GraphError::param("(#100) effective_status must be a JSON list of statuses")
            })?),
            None => None,
        };
        let fields: Vec<&str> = if fields.is_empty() {
            vec!["id"]
        } else {
            fields.to_vec()
        };
        if let Some(bad) = fields.iter().find(|f| !CAMPAIGN_FIELDS.contains(f)) {
            return Err(GraphError::param(format!(
                "(#100) Tried accessing nonexisting field ({bad}) on node type (Campaign)"
            )));
        }
        let mut out = Vec::new();
        for id in &account.campaign_ids {
            let c = &self.insights.campaigns[id];
            if statuses.as_ref().is_some_and(|s| !s.contains(&c.status)) {
                continue;
            }
            let mut obj = Map::new();
            for field in &fields {
                let value = match *field {
                    "id" => json!(id),
                    "account_id" => json!(c.account_id),
                    "name" => json!(c.name),
                    "status" | "effective_status" | "configured_status" => json!(c.status),
                    "objective" => json!(c.objective),
                    "daily_budget" => json!(c.daily_budget),
                    "lifetime_budget" => json!(c.lifetime_budget),
                    "buying_type" => json!("AUCTION"),
                    "created_time" | "updated_time" => json!(graph_time(c.created_time)),
                    "start_time" => json!(c.start_date.map_or_else(
                        || graph_time(c.created_time),
                        |d| format!("{d}T00:00:00+0000")
                    )),
                    "stop_time" => json!(c.end_date.map(|d| format!("{d}T23:59:59+0000"))),
                    _ => Value::Null,
                };
                if !value.is_null() {
                    obj.insert(field.to_string(), value);
                }
            }
            out.push(Value::Object(obj));
        }
        Ok(out)
    }

    /// The account, parsed query and rows of an insights call on `node`.
    pub fn insights_rows<'a>(
        &self,
        token: &str,
        node: InsightsNode<'_>,
        get: impl Fn(&str) -> Option<&'a str>,
        now: i64,
    ) -> Result<(String, InsightsQuery, Vec<Value>), GraphError> {
        let (account_id, scope, level) = match node {
            InsightsNode::Account(id) => {
                let account = self.readable_account(token, id, now)?;
                (id.to_string(), account.campaign_ids.clone(), Level::Account)
            }
            InsightsNode::Campaign(id) => {
                let account_id = self.insights.campaigns[id].account_id.clone();
                self.readable_account(token, &account_id, now)?;
                (account_id, vec![id.to_string()], Level::Campaign)
            }
        };
        let today = DateTime::from_timestamp(now, 0)
            .unwrap_or_default()
            .date_naive();
        let query = InsightsQuery::parse(get, level, today)?;
        let rows = query.rows(&self.insights, &account_id, &scope);
        Ok((account_id, query, rows))
    }

    /// Starts an async job holding `rows`; its id.
    pub fn start_report_run(
        &mut self,
        account_id: String,
        query: &InsightsQuery,
        rows: Vec<Value>,
        now: i64,
    ) -> String {
        let fails = self.insights.failing_reports > 0;
        if fails {
            self.insights.failing_reports -= 1;
        }
        let id = self.insights.fresh_report_run_id();
        self.insights.report_runs.insert(
            id.clone(),
            ReportRun {
                account_id,
                time_ref: now,
                time_completed: None,
                polls: 0,
                fails,
                date_start: query.since,
                date_stop: query.until,
                rows,
            },
        );
        id
    }

    /// The rows of a completed report run the caller may read.
    pub fn report_rows(&self, token: &str, id: &str, now: i64) -> Result<Vec<Value>, GraphError> {
        let run = &self.insights.report_runs[id];
        self.readable_account(token, &run.account_id, now)?;
        let polls_needed = self.config.report_polls_to_complete;
        let done = polls_needed == 0 || run.polls > polls_needed;
        if !done || run.fails {
            return Err(GraphError::param(format!(
                "(#100) Report run {id} has no results: it is not completed"
            )));
        }
        Ok(run.rows.clone())
    }
}

/// `GET /{id}` for a report run: counts the poll and answers its status.
/// `None` when `id` is not a report run.
pub(crate) fn report_run_status(
    sim: &Sim,
    token: &str,
    id: &str,
    now: i64,
) -> Option<Result<Value, GraphError>> {
    let mut world = sim.world();
    let account_id = world.insights.report_runs.get(id)?.account_id.clone();
    if let Err(e) = world.readable_account(token, &account_id, now) {
        return Some(Err(e));
    }
    let polls_needed = world.config.report_polls_to_complete;
    let run = world.insights.report_runs.get_mut(id)?;
    run.polls += 1;
    let (status, pct) = if run.polls > polls_needed || polls_needed == 0 {
        run.time_completed.get_or_insert(now);
        if run.fails {
            ("Job Failed", 0)
        } else {
            ("Job Completed", 100)
        }
    } else if run.polls == 1 {
        ("Job Not Started", 0)
    } else {
        ("Job Running", (run.polls - 1) * 100 / polls_needed)
    };
    let mut body = json!({
        "id": id,
        "account_id": run.account_id,
        "async_status": status,
        "async_percent_completion": pct,
        "is_running": status == "Job Running" || status == "Job Not Started",
        "time_ref": run.time_ref,
        "date_start": run.date_start.to_string(),
        "date_stop": run.date_stop.to_string(),
    });
    if let Some(done) = run.time_completed {
        body["time_completed"] = json!(done);
    }
    if status == "Job Failed" {
        body["error_code"] = json!(-2);
        body["error_subcode"] = json!(2490547);
        body["error_message"] =
            json!("The async job failed. Please retry it or split it into smaller jobs.");
    }
    Some(Ok(body))
}

fn campaign_from(new: &NewCampaign, account_id: &str, now: i64) -> Result<Campaign, ControlError> {
    let status = new.status.clone().unwrap_or_else(|| "ACTIVE".into());
    if !["ACTIVE", "PAUSED", "DELETED", "ARCHIVED"].contains(&status.as_str()) {
        return Err(ControlError::Invalid(
            "status is ACTIVE, PAUSED, DELETED or ARCHIVED".into(),
        ));
    }
    if let (Some(start), Some(end)) = (new.start_date, new.end_date)
        && start > end
    {
        return Err(ControlError::Invalid("start_date is after end_date".into()));
    }
    let spend_cents = match &new.daily.spend {
        None => 0,
        Some(value) => cents(value).ok_or_else(|| {
            ControlError::Invalid("daily.spend is a decimal like \"12.50\"".into())
        })?,
    };
    Ok(Campaign {
        account_id: account_id.to_string(),
        name: new.name.clone(),
        status,
        objective: new
            .objective
            .clone()
            .unwrap_or_else(|| "OUTCOME_TRAFFIC".into()),
        daily_budget: new.daily_budget.as_ref().map(budget_string),
        lifetime_budget: new.lifetime_budget.as_ref().map(budget_string),
        daily: Delivery {
            impressions: new.daily.impressions,
            reach: new.daily.reach,
            clicks: new.daily.clicks,
            spend_cents,
            actions: new.daily.actions.clone(),
        },
        start_date: new.start_date,
        end_date: new.end_date,
        created_time: now,
    })
}

fn budget_string(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string)
}

/// "12.5" / "12.50" / 12.5 → 1250.
fn cents(value: &Value) -> Option<i64> {
    let text = match value {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let (whole, frac) = text.split_once('.').unwrap_or((&text, ""));
    if frac.len() > 2 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = format!("{frac:0<2}").parse().ok()?;
    Some(whole * 100 + frac)
}
