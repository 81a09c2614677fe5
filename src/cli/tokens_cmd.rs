//! `tokenkeeper tokens status|refresh|check`: the seeds' operator tasks
//! (`rake facebook:tokens:*`, `php artisan tiktok:*`) on the same store as the
//! service. `status` reads the file without the lock, so it works while the
//! service runs; `refresh` and `check` need the lock and refuse politely while
//! a service holds it (use the internal HTTP endpoints then).

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};

use crate::clock::SystemClock;
use crate::config::Settings;
use crate::store::{self, Cipher, Connection, Provider, Store, StoreError, StoreOptions};
use crate::tokens::health;
use crate::tokens::{Plan, SweepFilter, facts};

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

pub fn parse_provider(text: &str) -> Result<Provider, String> {
    serde_json::from_value(json!(text))
        .map_err(|_| format!("unknown provider '{text}' (facebook, tiktok_shop, google)"))
}

fn text_time(t: Option<chrono::DateTime<Utc>>, none: &str) -> String {
    t.map_or(none.to_string(), |t| t.format("%Y-%m-%d %H:%M").to_string())
}

/// `tokens status`: from the file, without taking the lock.
pub fn status(settings: &Settings, format: Format, selection: &Selection) -> ExitCode {
    let path = settings.store.data_dir.join(store::STORE_FILE_NAME);
    let doc = match store::file::read(&path) {
        Ok(doc) => doc,
        Err(e) => {
            eprintln!("tokenkeeper: {e}");
            return ExitCode::FAILURE;
        }
    };
    let policies = crate::tokens::policies(settings);
    let now = Utc::now();
    let conns: Vec<&Connection> = doc
        .connections
        .values()
        .map(|c| &**c)
        .filter(|c| selection.matches(c))
        .collect();
    let health_of = |c: &Connection| health::health(c, now, &policies[&c.provider]);
    match format {
        Format::Json => {
            let items: Vec<Value> = conns.iter().map(|c| facts(c, health_of(c))).collect();
            println!("{}", json!({ "count": items.len(), "connections": items }));
        }
        Format::Summary => {
            let mut lines = std::collections::BTreeMap::new();
            for c in &conns {
                *lines
                    .entry((c.provider.as_str(), health_of(c).as_str()))
                    .or_insert(0) += 1;
            }
            println!("{} connections", conns.len());
            for ((provider, h), n) in lines {
                println!("  {provider:<12} {h:<16} {n}");
            }
        }
        Format::Table => {
            println!(
                "{:<36}  {:<11} {:<11} {:<24} {:<10} {:<15} {:<16} {:<16} LAST ERROR",
                "ID", "PROVIDER", "KIND", "LABEL", "TEAM", "HEALTH", "EXPIRES", "LAST REFRESH"
            );
            for c in &conns {
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
                let label: String = c.label.chars().take(24).collect();
                println!(
                    "{:<36}  {:<11} {:<11} {:<24} {:<10} {:<15} {:<16} {:<16} {}",
                    c.id,
                    c.provider.as_str(),
                    kind,
                    label,
                    c.team_id.as_deref().unwrap_or("-"),
                    health_of(c).as_str(),
                    text_time(c.expires_at, "never"),
                    text_time(c.last_refreshed_at, "-"),
                    error
                );
            }
        }
    }
    ExitCode::SUCCESS
}

/// What `refresh` and `check` do.
pub struct RunOptions {
    pub selection: Selection,
    pub force: bool,
    pub dry_run: bool,
    pub check_only: bool,
}

/// `tokens refresh` and `tokens check`: a sweep over the selection, run here.
pub fn run(settings: Settings, options: RunOptions) -> ExitCode {
    let runtime = tokio::runtime::Runtime::new().expect("the tokio runtime starts");
    runtime.block_on(async move {
        let dir = settings.store.data_dir.clone();
        let opened = Cipher::load_existing(settings.secrets.encryption_key.as_ref(), &dir)
            .and_then(|cipher| Store::open(&StoreOptions::from(&settings.store), cipher));
        let store = match opened {
            Ok(store) => store,
            Err(e @ StoreError::Locked { .. }) => {
                eprintln!("tokenkeeper: {e}.\nWhile the service runs, use POST /internal/scheduled-refresh (or `tokens status` to look).");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("tokenkeeper: {e}");
                return ExitCode::FAILURE;
            }
        };
        let services = crate::app::token_services(Arc::new(settings), store.clone(), Arc::new(SystemClock));
        let tokens = services.tokens;
        let selected: Vec<Arc<Connection>> = store.list().into_iter().filter(|c| options.selection.matches(c)).collect();
        if options.selection.id.is_some() && selected.is_empty() {
            eprintln!("tokenkeeper: no connection {}", options.selection.id.as_deref().unwrap_or(""));
            store.close().await;
            return ExitCode::from(2);
        }
        if options.dry_run {
            for c in &selected {
                let (action, reason) = match tokens.plan(c, options.force, options.check_only) {
                    Plan::Refresh { force: true } => ("refresh", "forced".to_string()),
                    Plan::Refresh { force: false } => ("refresh", format!("health is {}", tokens.health(c).as_str())),
                    Plan::Check => ("check", "validate the token upstream".to_string()),
                    Plan::Skip(why) => ("skip", why.replace('_', " ")),
                };
                println!("{:<8} {:<36} {:<12} {:<24} {}", action, c.id, c.provider.as_str(), c.label, reason);
            }
            println!("dry run: {} connections, nothing changed", selected.len());
            store.close().await;
            return ExitCode::SUCCESS;
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
                        println!("progress: {}/{}", run.done, run.total);
                    }
                    None => {}
                }
            }
        }
        let run = handle.await.expect("the sweep task completes");
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        for e in &run.errors {
            println!(
                "failed   {:<36} {:<24} {} {}",
                e.connection_id,
                e.label,
                e.class.as_ref().map(crate::providers::class_name).unwrap_or("error"),
                e.message
            );
        }
        let counts: Vec<String> = run.counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!("{} connections: {}", run.total, if counts.is_empty() { "nothing to do".into() } else { counts.join(", ") });
        store.close().await;
        if run.failed() > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS }
    })
}
