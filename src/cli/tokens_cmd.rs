//! `tokenkeeper tokens status|refresh|check`: the seeds' operator tasks
//! (`rake facebook:tokens:*`, `php artisan tiktok:*`) on the same store as the
//! service. `status` and `refresh --dry-run` read the file without the lock
//! or the key, so they work while the service runs; `refresh` and `check`
//! need the lock and refuse politely while a service holds it (use the
//! internal HTTP endpoints then).

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use super::output::{self, count, finish, table};
use crate::clock::SystemClock;
use crate::config::Settings;
use crate::domain::policy;
use crate::domain::{Connection, ConnectionFacts, Health, Provider};
use crate::store::{ConnectionStore, JsonFileStore, ListFilter, StoreError, StoreOptions};
use crate::tokens::{Plan, SweepFilter};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Table,
    Summary,
    Json,
}

/// Which connections a command covers.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub provider: Option<Provider>,
    pub team_id: Option<String>,
    pub id: Option<String>,
}

impl Selection {
    fn matches(&self, c: &Connection) -> bool {
        self.provider.is_none_or(|p| c.provider == p)
            && self
                .team_id
                .as_ref()
                .is_none_or(|t| c.team_id.as_ref() == Some(t))
            && self.id.as_ref().is_none_or(|id| &c.id == id)
    }
}

/// A provider as the store names it, or as the URL paths do (`tiktok`).
pub fn parse_provider(text: &str) -> Result<Provider, String> {
    match text {
        "tiktok" => Ok(Provider::TiktokShop),
        _ => serde_json::from_value(json!(text)).map_err(|_| {
            format!("unknown provider '{text}' (facebook, tiktok or tiktok_shop, google)")
        }),
    }
}

fn text_time(t: Option<chrono::DateTime<Utc>>, none: &str) -> String {
    t.map_or(none.to_string(), |t| t.format("%Y-%m-%d %H:%M").to_string())
}

/// The connections in the selection, by id.
async fn select(
    store: &dyn ConnectionStore,
    selection: &Selection,
) -> Result<Vec<Arc<Connection>>, StoreError> {
    let filter = ListFilter {
        provider: selection.provider,
        team_id: selection.team_id.clone(),
        ..ListFilter::default()
    };
    let found = store.list(&filter).await?;
    Ok(found.into_iter().filter(|c| selection.matches(c)).collect())
}

/// The store as it is on disk, opened read-only, and its connections in a
/// selection.
struct Looked {
    store: Arc<dyn ConnectionStore>,
    selected: Vec<Arc<Connection>>,
}

/// The store's connections in the selection, read without the lock or the
/// key (nothing is decrypted).
fn read_selected(settings: &Settings, selection: &Selection) -> Result<Looked, ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("the tokio runtime starts");
    let read = runtime.block_on(async {
        let store: Arc<dyn ConnectionStore> =
            Arc::new(JsonFileStore::open_read_only(&settings.store.data_dir)?);
        let selected = select(&*store, selection).await?;
        Ok::<_, StoreError>(Looked { store, selected })
    });
    read.map_err(|e| {
        eprintln!("tokenkeeper: {e}");
        ExitCode::FAILURE
    })
}

/// `tokens status`: from the file, without taking the lock.
pub fn status(settings: &Settings, format: Format, selection: &Selection) -> ExitCode {
    let conns = match read_selected(settings, selection) {
        Ok(looked) => looked.selected,
        Err(code) => return code,
    };
    let registry = crate::providers::registry::Registry::from_settings(settings);
    let now = Utc::now();
    let health_of = |c: &Connection| policy::health(c, now, registry.policy(c.provider));
    let text = match format {
        Format::Json => {
            let items: Vec<ConnectionFacts> = conns
                .iter()
                .map(|c| ConnectionFacts::of(c, health_of(c)))
                .collect();
            format!(
                "{}\n",
                json!({ "count": items.len(), "connections": items })
            )
        }
        Format::Summary => {
            let mut lines = std::collections::BTreeMap::new();
            for c in &conns {
                *lines
                    .entry((c.provider.as_str(), health_of(c).as_str()))
                    .or_insert(0) += 1;
            }
            let rows: Vec<Vec<String>> = lines
                .into_iter()
                .map(|((provider, h), n)| {
                    vec![String::new(), provider.into(), h.into(), n.to_string()]
                })
                .collect();
            let body = table(&["", "PROVIDER", "HEALTH", "COUNT"], &rows);
            format!("{}\n{body}", count(conns.len(), "connection"))
        }
        Format::Table => {
            let rows: Vec<Vec<String>> = conns
                .iter()
                .map(|c| {
                    let kind = serde_json::to_value(c.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    let error = c.last_error.as_ref().map_or(String::new(), |e| {
                        format!(
                            "{} {} {}",
                            crate::providers::class_name(&e.class),
                            e.code.map_or(String::new(), |c| format!(
                                "({c}{})",
                                e.subcode.map_or(String::new(), |s| format!("/{s}"))
                            )),
                            e.message
                        )
                    });
                    vec![
                        c.id.clone(),
                        c.provider.as_str().into(),
                        kind,
                        c.label.chars().take(40).collect(),
                        c.team_id.clone().unwrap_or_else(|| "-".into()),
                        health_of(c).as_str().into(),
                        text_time(c.expires_at, "never"),
                        text_time(c.last_refreshed_at, "-"),
                        error,
                    ]
                })
                .collect();
            table(
                &[
                    "ID",
                    "PROVIDER",
                    "KIND",
                    "LABEL",
                    "TEAM",
                    "HEALTH",
                    "EXPIRES",
                    "LAST REFRESH",
                    "LAST ERROR",
                ],
                &rows,
            )
        }
    };
    finish(&text, ExitCode::SUCCESS)
}

/// What `refresh` and `check` do.
pub struct RunOptions {
    pub selection: Selection,
    pub force: bool,
    pub check_only: bool,
}

/// `tokens refresh --dry-run`: what a refresh would do and why, from the file
/// (like `tokens status`), changing nothing. The sweep's own planner runs on
/// the read-only store: a plan looks only at the connection, the health
/// policies and which providers are configured, so the dry run needs neither
/// the lock nor the key, and shows exactly what a sweep would do.
pub fn dry_run(settings: Settings, options: RunOptions) -> ExitCode {
    let Looked { store, selected } = match read_selected(&settings, &options.selection) {
        Ok(looked) => looked,
        Err(code) => return code,
    };
    if let Some(id) = &options.selection.id
        && selected.is_empty()
    {
        eprintln!("tokenkeeper: no connection {id}");
        return ExitCode::from(2);
    }
    let runtime = tokio::runtime::Runtime::new().expect("the tokio runtime starts");
    runtime.block_on(async move {
        let tokens = match crate::app::token_services(
            Arc::new(settings),
            store,
            &crate::app::Records::Files,
            Arc::new(SystemClock),
        )
        .await
        {
            Ok(services) => services.tokens,
            Err(e) => {
                eprintln!("tokenkeeper: {e}");
                return super::store_failure(&e);
            }
        };
        let rows: Vec<Vec<String>> = selected
            .iter()
            .map(|c| {
                let (action, reason) = match tokens.plan(c, options.force, options.check_only) {
                    Plan::Refresh { force: true } => ("refresh", "forced".to_string()),
                    Plan::Refresh { force: false } => (
                        "refresh",
                        format!("health is {}", tokens.health(c).as_str()),
                    ),
                    Plan::Check => ("check", "validate the token upstream".to_string()),
                    Plan::Skip(why) => ("skip", why.replace('_', " ")),
                };
                vec![
                    action.into(),
                    c.id.clone(),
                    c.provider.as_str().into(),
                    c.label.clone(),
                    reason,
                ]
            })
            .collect();
        let text = format!(
            "{}dry run: {}, nothing changed\n",
            table(&["ACTION", "ID", "PROVIDER", "LABEL", "REASON"], &rows),
            count(selected.len(), "connection")
        );
        finish(&text, ExitCode::SUCCESS)
    })
}

/// Health states only the user can leave, by reconnecting.
fn needs_reconnect(h: Health) -> bool {
    matches!(
        h,
        Health::ReauthRequired | Health::Expired | Health::CannotRefresh
    )
}

/// `tokens refresh` and `tokens check`: a sweep over the selection, run here.
/// Exit 1 when any connection failed or ends up needing reconnection.
pub fn run(settings: Settings, options: RunOptions) -> ExitCode {
    let runtime = tokio::runtime::Runtime::new().expect("the tokio runtime starts");
    runtime.block_on(async move {
        let opened = super::keyring(&settings)
            .and_then(|cipher| JsonFileStore::open(&StoreOptions::from(&settings.store), cipher));
        let store: Arc<dyn ConnectionStore> = match opened {
            Ok(store) => Arc::new(store),
            Err(e @ StoreError::Locked { .. }) => {
                eprintln!("tokenkeeper: {e}.\nWhile the service runs, use POST /internal/scheduled-refresh (or `tokens status` and `tokens refresh --dry-run` to look).");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("tokenkeeper: {e}");
                return super::store_failure(&e);
            }
        };
        let services = match crate::app::token_services(Arc::new(settings), store.clone(), &crate::app::Records::Files, Arc::new(SystemClock)).await {
            Ok(services) => services,
            Err(e) => {
                eprintln!("tokenkeeper: {e}");
                store.close().await;
                return super::store_failure(&e);
            }
        };
        let tokens = services.tokens;
        // The events of this run are sent while it runs; what is still
        // queued at the end waits in the outbox for the service.
        let delivery_cancel = tokio_util::sync::CancellationToken::new();
        let deliverer = services
            .notifier
            .deliverer()
            .map(|d| tokio::spawn(d.run(delivery_cancel.clone())));
        let selected = match select(&*store, &options.selection).await {
            Ok(selected) => selected,
            Err(e) => {
                eprintln!("tokenkeeper: {e}");
                store.close().await;
                return ExitCode::FAILURE;
            }
        };
        if options.selection.id.is_some() && selected.is_empty() {
            eprintln!("tokenkeeper: no connection {}", options.selection.id.as_deref().unwrap_or(""));
            store.close().await;
            return ExitCode::from(2);
        }
        let filter = SweepFilter {
            provider: options.selection.provider,
            teams: options.selection.team_id.clone().map(|t| vec![t]),
            ids: options.selection.id.clone().map(|id| vec![id]),
            force: options.force,
            check_only: options.check_only,
        };
        let (run_id, handle) = match tokens.start_sweep("cli", filter) {
            Ok(started) => started,
            Err(running) => {
                eprintln!("tokenkeeper: a run is already in progress ({running})");
                store.close().await;
                return ExitCode::FAILURE;
            }
        };
        let bar = std::io::stdout().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(selected.len() as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        let mut shown = 0;
        while !handle.is_finished() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if let Some(run) = tokens.run(&run_id) {
                match &bar {
                    Some(bar) => bar.set_position(run.done as u64),
                    None if run.done >= shown + 100 => {
                        shown = run.done;
                        // A closed stdout only loses the progress lines.
                        let _ = output::print(&format!("progress: {}/{}\n", run.done, run.total));
                    }
                    None => {}
                }
            }
        }
        let run = handle.await.expect("the sweep task completes");
        delivery_cancel.cancel();
        if let Some(d) = deliverer {
            let _ = d.await;
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let mut failed_rows: Vec<Vec<String>> = run
            .errors
            .iter()
            .map(|e| {
                vec![
                    "failed".into(),
                    e.connection_id.clone(),
                    e.label.clone(),
                    format!(
                        "{} {}",
                        e.class.as_ref().map(crate::providers::class_name).unwrap_or("error"),
                        e.message
                    ),
                ]
            })
            .collect();
        // What the run leaves for the user to fix, attempted or not.
        let mut reconnect = 0;
        for c in &selected {
            let Ok(Some(now)) = store.get(&c.id).await else { continue };
            let h = tokens.health(&now);
            if needs_reconnect(h) {
                reconnect += 1;
                if !run.errors.iter().any(|e| e.connection_id == c.id) {
                    failed_rows.push(vec![
                        "reconnect".into(),
                        now.id.clone(),
                        now.label.clone(),
                        format!("{}: the user must reconnect", h.as_str()),
                    ]);
                }
            }
        }
        let counts: Vec<String> = run.counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let mut text = if failed_rows.is_empty() { String::new() } else { table(&["", "ID", "LABEL", "WHY"], &failed_rows) };
        text.push_str(&format!(
            "{}: {}\n",
            count(run.total, "connection"),
            if counts.is_empty() { "nothing to do".into() } else { counts.join(", ") }
        ));
        if reconnect > 0 {
            text.push_str(&format!("{} to reconnect\n", count(reconnect, "connection")));
        }
        store.close().await;
        let code = if run.failed() > 0 || reconnect > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS };
        finish(&text, code)
    })
}
