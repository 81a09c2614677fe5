//! Sweeps: refresh every connection that is due and check the others, with
//! bounded concurrency, one at a time, each recorded as a `RefreshRun`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::error::TokenError;
use super::held_lease::HeldLease;
use super::manager::TokenManager;
use crate::domain::{Connection, ErrorClass, Health, Provider, RefreshRun, RunError, RunStatus};
use crate::notify::{Event, types};
use crate::store::{ListFilter, RunStore};

/// Which connections a sweep covers.
#[derive(Debug, Clone, Default)]
pub struct SweepFilter {
    pub provider: Option<Provider>,
    /// Only these teams (None: all).
    pub teams: Option<Vec<String>>,
    pub ids: Option<Vec<String>>,
    /// Refresh every selected connection, due or not.
    pub force: bool,
    /// Only check each token upstream (renew where checking is renewing).
    pub check_only: bool,
}

impl SweepFilter {
    fn matches(&self, c: &Connection) -> bool {
        self.provider.is_none_or(|p| p == c.provider)
            && self
                .teams
                .as_ref()
                .is_none_or(|t| c.team_id.as_ref().is_some_and(|team| t.contains(team)))
            && self.ids.as_ref().is_none_or(|ids| ids.contains(&c.id))
    }
}

/// Runs in memory: the one running now and the most recent ones, each
/// also saved in the [`RunStore`] (started and finished), so that they
/// survive a restart.
pub struct Runs {
    state: Mutex<RunsState>,
    keep: usize,
    store: Arc<dyn RunStore>,
}

struct RunsState {
    running: Option<String>,
    runs: VecDeque<RefreshRun>,
}

impl Runs {
    /// Keeps the `keep` most recent runs, starting with those `store` holds.
    pub async fn open(store: Arc<dyn RunStore>, keep: usize) -> Self {
        let keep = keep.max(1);
        let runs = store.recent(keep).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read the recent refresh runs; starting without them");
            Vec::new()
        });
        Self {
            state: Mutex::new(RunsState {
                running: None,
                runs: runs.into_iter().rev().collect(),
            }),
            keep,
            store,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut RunsState) -> R) -> R {
        f(&mut self.state.lock().expect("runs lock"))
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut RefreshRun)) {
        self.with(|s| {
            if let Some(run) = s.runs.iter_mut().find(|r| r.id == id) {
                f(run);
            }
        });
    }

    /// Saves run `id` in the store. A failure is logged, not returned: the
    /// sweep itself succeeded, only its record is not durable.
    async fn save(&self, id: &str) {
        let Some(run) = self.with(|s| s.runs.iter().find(|r| r.id == id).cloned()) else {
            return;
        };
        if let Err(e) = self.store.save(&run).await {
            tracing::warn!(run = %id, error = %e, "cannot save the recent refresh runs");
        }
    }
}

/// What a sweep will do with one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    Refresh { force: bool },
    Check,
    Skip(&'static str),
}

/// What happened to one connection in a sweep.
enum Outcome {
    Refreshed,
    Checked,
    /// Not attempted, with the reason (`awaiting_reconnect`, `lapsed`, ...).
    Skipped(&'static str),
    Failed(TokenError),
}

impl TokenManager {
    pub fn run(&self, id: &str) -> Option<RefreshRun> {
        self.runs
            .with(|s| s.runs.iter().find(|r| r.id == id).cloned())
    }

    /// Run `id` as this instance holds it (live while it runs), else as the
    /// run store has it: finished by any instance that shares the store.
    pub async fn find_run(&self, id: &str) -> Option<RefreshRun> {
        if let Some(run) = self.run(id) {
            return Some(run);
        }
        self.runs.store.get(id).await.unwrap_or_else(|e| {
            tracing::warn!(run = %id, error = %e, "cannot read a refresh run");
            None
        })
    }

    /// The most recent runs, newest first: this instance's, and the finished
    /// ones of any instance that shares the run store.
    pub async fn recent_runs(&self) -> Vec<RefreshRun> {
        let mut runs: Vec<RefreshRun> = self.runs.with(|s| s.runs.iter().cloned().collect());
        match self.runs.store.recent(self.runs.keep).await {
            Ok(stored) => {
                for run in stored {
                    if !runs.iter().any(|r| r.id == run.id) {
                        runs.push(run);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the recent refresh runs"),
        }
        runs.sort_by_key(|r| std::cmp::Reverse(r.started_at));
        runs.truncate(self.runs.keep);
        runs
    }

    pub fn running_run(&self) -> Option<String> {
        self.runs.with(|s| s.running.clone())
    }

    /// Starts a sweep in the background. `Err(run_id)` when one is running.
    pub fn start_sweep(
        self: &Arc<Self>,
        trigger: &str,
        filter: SweepFilter,
    ) -> Result<(String, tokio::task::JoinHandle<RefreshRun>), String> {
        let id = uuid::Uuid::new_v4().to_string();
        let run = RefreshRun {
            id: id.clone(),
            trigger: trigger.to_string(),
            status: RunStatus::Running,
            started_at: self.now(),
            finished_at: None,
            total: 0,
            done: 0,
            counts: BTreeMap::new(),
            errors: Vec::new(),
            by_team: BTreeMap::new(),
        };
        let keep = self.runs.keep;
        self.runs.with(|s| {
            if let Some(running) = &s.running {
                return Err(running.clone());
            }
            s.running = Some(id.clone());
            s.runs.push_back(run);
            while s.runs.len() > keep {
                s.runs.pop_front();
            }
            Ok(())
        })?;
        let manager = self.clone();
        let run_id = id.clone();
        let handle = tokio::spawn(async move {
            manager.runs.save(&run_id).await;
            let started = std::time::Instant::now();
            manager.sweep(&run_id, filter).await;
            let finished_at = manager.now();
            let failures = manager.run(&run_id).map_or(0, |r| r.failed());
            crate::metrics::sweep_finished(started, failures, finished_at);
            manager.runs.update(&run_id, |r| {
                r.status = RunStatus::Finished;
                r.finished_at = Some(finished_at);
            });
            manager.runs.with(|s| s.running = None);
            manager.runs.save(&run_id).await;
            let run = manager.run(&run_id).expect("the run is recorded");
            tracing::info!(run = %run.id, total = run.total, counts = ?run.counts, "sweep finished");
            if run.failed() > 0 {
                manager
                    .notifier
                    .send(Event::new(
                        types::SWEEP_FAILED,
                        finished_at,
                        json!({ "run_id": run.id, "total": run.total, "counts": run.counts,
                                "errors": run.errors.iter().take(20).collect::<Vec<_>>() }),
                    ))
                    .await;
            }
            run
        });
        Ok((id, handle))
    }

    async fn sweep(self: &Arc<Self>, run_id: &str, filter: SweepFilter) {
        let stored = ListFilter {
            provider: filter.provider,
            ..ListFilter::default()
        };
        let selected: Vec<Arc<Connection>> = match self.store.list(&stored).await {
            Ok(all) => all.into_iter().filter(|c| filter.matches(c)).collect(),
            Err(e) => {
                tracing::error!(run = %run_id, error = %e, "cannot list the connections to sweep");
                Vec::new()
            }
        };
        self.runs.update(run_id, |r| {
            r.total = selected.len();
            for c in &selected {
                r.by_team.entry(c.team_id.clone()).or_default().total += 1;
            }
        });
        // Parents first: renewing a user re-derives its pages.
        let (users, others): (Vec<_>, Vec<_>) =
            selected.into_iter().partition(|c| c.parent_id.is_none());
        let refreshed = self.sweep_phase(run_id, users, &filter, &[]).await;
        self.sweep_phase(run_id, others, &filter, &refreshed).await;
    }

    /// Handles `conns` with bounded concurrency; returns the ids refreshed.
    /// Connections to refresh or check are claimed in batches (leased to
    /// this instance), so that instances sweeping at once share the work:
    /// one leased elsewhere is come back to once its lease is given back or
    /// runs out, and planned again on the record as it is then.
    async fn sweep_phase(
        self: &Arc<Self>,
        run_id: &str,
        conns: Vec<Arc<Connection>>,
        filter: &SweepFilter,
        refreshed_parents: &[String],
    ) -> Vec<String> {
        let mut phase = Phase::new(self.clone(), run_id, filter);
        let batch = self.settings.refresh.concurrency;
        let mut pending = Vec::with_capacity(batch);
        let mut elsewhere = Vec::new();
        for conn in conns {
            if conn
                .parent_id
                .as_ref()
                .is_some_and(|p| refreshed_parents.contains(p))
            {
                // Its token was re-derived moments ago by its parent's refresh.
                self.record(run_id, &conn, Outcome::Refreshed);
                continue;
            }
            if let Plan::Skip(reason) = self.plan(&conn, filter.force, filter.check_only) {
                self.record(run_id, &conn, Outcome::Skipped(reason));
                continue;
            }
            pending.push(conn);
            if pending.len() == batch {
                elsewhere.extend(phase.claim(std::mem::take(&mut pending)).await);
            }
        }
        elsewhere.extend(phase.claim(pending).await);
        // Another holder gives a lease back when its refresh is written, or
        // dies and its lease runs out: by then every one is claimable.
        let give_up = tokio::time::Instant::now() + self.lease_ttl() + RECLAIM_PAUSE;
        while !elsewhere.is_empty() {
            if tokio::time::Instant::now() >= give_up {
                for conn in elsewhere {
                    self.record(run_id, &conn, Outcome::Skipped("leased_elsewhere"));
                }
                break;
            }
            tokio::time::sleep(RECLAIM_PAUSE).await;
            phase.take_finished();
            let mut still = Vec::new();
            for chunk in elsewhere.chunks(batch) {
                still.extend(phase.claim(chunk.to_vec()).await);
            }
            elsewhere = still;
        }
        phase.finish().await
    }

    /// What a sweep will do with a connection, and why (also shown by
    /// `tokens refresh --dry-run`).
    pub fn plan(&self, conn: &Connection, force: bool, check_only: bool) -> Plan {
        // Known states were announced when entered; a sweep does not retry
        // what only the user can fix. Force means what the API's force=true
        // means: try anyway (a flagged page is renewed through its user, which
        // may recover it), so only lapsed tokens, which nothing can extend,
        // stay skipped.
        match self.health(conn) {
            Health::ReauthRequired if force && !check_only => {
                return Plan::Refresh { force: true };
            }
            Health::ReauthRequired => return Plan::Skip("awaiting_reconnect"),
            Health::Expired | Health::CannotRefresh => return Plan::Skip("lapsed"),
            _ => {}
        }
        let Ok(lifecycle) = self.lifecycle(conn.provider) else {
            return Plan::Skip("provider_not_configured");
        };
        let renewable = self.policy(conn.provider).renewable(conn);
        let checks = lifecycle.validates_upstream();
        match (
            check_only,
            renewable && (force || self.is_due(conn)),
            checks,
        ) {
            (true, _, true) | (false, false, true) => Plan::Check,
            (true, _, false) => Plan::Refresh { force: true },
            (false, true, _) => Plan::Refresh { force },
            (false, false, false) => Plan::Skip("not_due"),
        }
    }

    /// Refreshes or checks a claimed connection as `plan` says, under
    /// `lease`, and gives the lease back.
    async fn sweep_one(&self, conn: &Connection, plan: Plan, lease: HeldLease) -> Outcome {
        let result = match plan {
            Plan::Skip(reason) => {
                lease.give_back().await;
                return Outcome::Skipped(reason);
            }
            Plan::Refresh { force } => self
                .refresh_claimed(conn, force, lease)
                .await
                .map(|_| Outcome::Refreshed),
            Plan::Check => {
                let claimed = lease.claimed_record().cloned();
                let checked = match claimed {
                    Some(conn) => self.check(conn).await,
                    None => self.validate(&conn.id).await,
                };
                lease.give_back().await;
                checked.map(|_| Outcome::Checked)
            }
        };
        result.unwrap_or_else(Outcome::Failed)
    }

    fn record(&self, run_id: &str, conn: &Connection, outcome: Outcome) {
        let (key, error) = match outcome {
            Outcome::Refreshed => ("refreshed", None),
            Outcome::Checked => ("checked", None),
            Outcome::Skipped(reason) => (reason, None),
            Outcome::Failed(e) => {
                let key = match &e {
                    TokenError::ReauthRequired { .. } => "reauth_required",
                    TokenError::CannotRefresh { .. } => "cannot_refresh",
                    TokenError::Upstream(u) => match u.class {
                        ErrorClass::ReauthRequired => "reauth_required",
                        ErrorClass::RateLimited => "rate_limited",
                        _ => "failed",
                    },
                    _ => "failed",
                };
                let (class, code, subcode, message) = match &e {
                    TokenError::Upstream(u) => {
                        (Some(u.class), u.code, u.subcode, u.message.clone())
                    }
                    other => (None, None, None, other.to_string()),
                };
                (
                    key,
                    Some(RunError {
                        connection_id: conn.id.clone(),
                        label: conn.label.clone(),
                        class,
                        code,
                        subcode,
                        message,
                        team_id: conn.team_id.clone(),
                    }),
                )
            }
        };
        self.runs.update(run_id, |r| {
            *r.counts.entry(key.to_string()).or_default() += 1;
            r.done += 1;
            let tally = r.by_team.entry(conn.team_id.clone()).or_default();
            *tally.counts.entry(key.to_string()).or_default() += 1;
            tally.done += 1;
            if let Some(e) = error {
                r.errors.push(e);
            }
        });
    }
}

/// How long a sweep waits before it tries again to claim connections that
/// were leased elsewhere.
const RECLAIM_PAUSE: std::time::Duration = std::time::Duration::from_millis(250);

/// One phase of a sweep in progress: the claimed connections being handled.
struct Phase {
    manager: Arc<TokenManager>,
    run_id: String,
    force: bool,
    check_only: bool,
    /// Upstream calls are bounded by the manager; this only bounds the
    /// connections in progress (memory), generously so that store writes of
    /// finished ones are committed together.
    permits: Arc<Semaphore>,
    tasks: JoinSet<(Arc<Connection>, Outcome)>,
    refreshed: Vec<String>,
    /// When the sweep began.
    started_at: DateTime<Utc>,
}

impl Phase {
    fn new(manager: Arc<TokenManager>, run_id: &str, filter: &SweepFilter) -> Self {
        let permits = Arc::new(Semaphore::new(manager.settings.refresh.concurrency * 10));
        Self {
            started_at: manager
                .run(run_id)
                .map_or_else(|| manager.now(), |r| r.started_at),
            manager,
            run_id: run_id.to_string(),
            force: filter.force,
            check_only: filter.check_only,
            permits,
            tasks: JoinSet::new(),
            refreshed: Vec::new(),
        }
    }

    /// Claims `batch` and starts each connection claimed; returns the ones
    /// leased elsewhere.
    async fn claim(&mut self, batch: Vec<Arc<Connection>>) -> Vec<Arc<Connection>> {
        if batch.is_empty() {
            return batch;
        }
        let m = self.manager.clone();
        let ids: Vec<String> = batch.iter().map(|c| c.id.clone()).collect();
        let claimed = match m.store.claim(&ids, &m.holder, m.lease_ttl()).await {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::error!(run = %self.run_id, error = %e, "cannot claim connections to sweep");
                for conn in &batch {
                    m.record(
                        &self.run_id,
                        conn,
                        Outcome::Failed(TokenError::Store(e.to_string())),
                    );
                }
                return Vec::new();
            }
        };
        let mut listed: HashMap<String, Arc<Connection>> =
            batch.into_iter().map(|c| (c.id.clone(), c)).collect();
        for (lease, conn) in claimed {
            listed.remove(&conn.id);
            let lease = HeldLease::claimed(lease, conn.clone(), m.store.clone());
            self.start(conn, lease).await;
        }
        listed.into_values().collect()
    }

    /// Starts the sweep of a claimed connection, planned again on the record
    /// as claimed: another instance may have refreshed it (or re-derived it
    /// with its parent) since this sweep began, which is enough, forced or not.
    async fn start(&mut self, conn: Arc<Connection>, lease: HeldLease) {
        let plan = if conn.last_refreshed_at.is_some_and(|t| t >= self.started_at) {
            Plan::Skip("refreshed_elsewhere")
        } else {
            self.manager.plan(&conn, self.force, self.check_only)
        };
        // A task is spawned only with a permit, and finished ones are taken
        // in as it goes: a spawned task holds its whole future, so a sweep
        // of N would otherwise hold N of them at once.
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore open");
        self.take_finished();
        let manager = self.manager.clone();
        self.tasks.spawn(async move {
            let _permit = permit;
            let outcome = manager.sweep_one(&conn, plan, lease).await;
            (conn, outcome)
        });
    }

    fn take_finished(&mut self) {
        while let Some(joined) = self.tasks.try_join_next() {
            self.done(joined);
        }
    }

    fn done(&mut self, joined: Result<(Arc<Connection>, Outcome), tokio::task::JoinError>) {
        let Ok((conn, outcome)) = joined else {
            return;
        };
        if matches!(outcome, Outcome::Refreshed) {
            self.refreshed.push(conn.id.clone());
        }
        self.manager.record(&self.run_id, &conn, outcome);
    }

    /// Waits for every started connection; the ids refreshed.
    async fn finish(mut self) -> Vec<String> {
        while let Some(joined) = self.tasks.join_next().await {
            self.done(joined);
        }
        self.refreshed
    }
}
