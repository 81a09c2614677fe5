//! The record of one sweep: its progress and outcome counts, overall and by
//! team, and the errors met. A record kept by the store's `RunStore`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error_class::ErrorClass;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Finished,
}

/// One connection a sweep could not refresh.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunError {
    pub connection_id: String,
    pub label: String,
    #[schema(required = true)]
    pub class: Option<ErrorClass>,
    #[schema(required = true)]
    pub code: Option<i64>,
    #[schema(required = true)]
    pub subcode: Option<i64>,
    pub message: String,
    /// The connection's team: a team-limited caller sees only its own
    /// (kept by the run store, never shown).
    #[serde(skip)]
    pub team_id: Option<String>,
}

/// A run's progress among the connections of one team.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub total: usize,
    pub done: usize,
    pub counts: BTreeMap<String, u64>,
}

/// The record of one sweep.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RefreshRun {
    pub id: String,
    /// What started it: `api`, `schedule`, `cli`.
    pub trigger: String,
    pub status: RunStatus,
    pub started_at: DateTime<Utc>,
    #[schema(required = true)]
    pub finished_at: Option<DateTime<Utc>>,
    #[schema(value_type = u64)]
    pub total: usize,
    #[schema(value_type = u64)]
    pub done: usize,
    /// Outcomes: refreshed, checked, failed, reauth_required, rate_limited,
    /// cannot_refresh, awaiting_reconnect, lapsed, not_due,
    /// provider_not_configured; with several instances, refreshed_elsewhere
    /// (another instance refreshed it during this sweep) and leased_elsewhere
    /// (another held its lease for the whole wait).
    pub counts: BTreeMap<String, u64>,
    pub errors: Vec<RunError>,
    /// The same progress by team (`None`: no team), so that a key limited to
    /// some teams is shown only their part of a run (kept by the run
    /// store, never shown).
    #[serde(skip)]
    pub by_team: BTreeMap<Option<String>, Tally>,
}

impl RefreshRun {
    /// The run as a caller limited to `teams` may see it: totals, counts
    /// and errors of those teams' connections only.
    pub fn seen_by(&self, teams: Option<&[String]>) -> RefreshRun {
        let Some(teams) = teams else {
            return self.clone();
        };
        let visible = |team: &Option<String>| team.as_ref().is_some_and(|t| teams.contains(t));
        let mut run = self.clone();
        run.total = 0;
        run.done = 0;
        run.counts.clear();
        run.by_team.retain(|team, _| visible(team));
        for tally in run.by_team.values() {
            run.total += tally.total;
            run.done += tally.done;
            for (k, n) in &tally.counts {
                *run.counts.entry(k.clone()).or_default() += n;
            }
        }
        run.errors.retain(|e| visible(&e.team_id));
        run
    }

    pub fn failed(&self) -> u64 {
        [
            "failed",
            "reauth_required",
            "rate_limited",
            "cannot_refresh",
        ]
        .iter()
        .map(|k| self.counts.get(*k).copied().unwrap_or(0))
        .sum()
    }
}
