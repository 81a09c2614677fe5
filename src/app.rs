//! The service: build (open the store, bind the port), then run until
//! cancelled, then flush the store.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::auth::Gate;
use crate::api::oauth_state::StateSigner;
use crate::api::{self, AppState};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{Settings, StoreBackend};
use crate::insights::cache::InsightsCache;
use crate::notify::Notifier;
use crate::providers::registry::Registry;
use crate::store::crypto::{KeySource, MissingKey};
use crate::store::postgres::{PgAudit, PgNonces, PgRuns};
use crate::store::{
    self, AuditTrail, Cipher, ConnectionStore, JsonFileStore, NonceStore, PgConnectionStore,
    Presence, RunStore, StoreError, StoreOptions,
};
use crate::tokens::TokenManager;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("exports: {0}")]
    Exports(String),
}

pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    /// Set on the JSON backend.
    file_store: Option<JsonFileStore>,
}

impl Application {
    /// Opens the store and binds the listener (port 0 picks a free port).
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// Like [`Application::build`], with the clock the domain uses (tests
    /// pass one they can move).
    pub async fn build_with_clock(
        settings: Settings,
        clock: SharedClock,
    ) -> Result<Self, StartError> {
        let addr = settings.socket_addr()?;
        let server_addr = settings.server.addr.clone();
        crate::metrics::install();
        let (store, file_store, records, cipher) = match settings.store.backend {
            StoreBackend::Json => {
                let (file_store, cipher) = open_store(&settings, clock.clone())?;
                let store: Arc<dyn ConnectionStore> = Arc::new(file_store.clone());
                (store, Some(file_store), Records::Files, cipher)
            }
            StoreBackend::Postgres => {
                let (store, cipher) = open_database(&settings, clock.clone()).await?;
                let records = Records::Database(store.pool().clone());
                let store: Arc<dyn ConnectionStore> = Arc::new(store);
                (store, None, records, cipher)
            }
        };
        let state = services(settings, store, records, &cipher, clock).await?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: server_addr.clone(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: server_addr,
            source,
        })?;
        Ok(Self {
            listener,
            addr,
            state,
            file_store,
        })
    }

    /// The address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The JSON file store behind `state().store` (none on PostgreSQL):
    /// tests and benchmarks look at its file and counters, and write records
    /// directly.
    pub fn file_store(&self) -> Option<&JsonFileStore> {
        self.file_store.as_ref()
    }

    /// Serves until `cancel` fires, drains in-flight requests (bounded by the
    /// shutdown timeout), then writes every pending store update.
    pub async fn run(self, cancel: CancellationToken) -> std::io::Result<()> {
        let timeout = Duration::from_secs(self.state.settings.server.shutdown_timeout_secs);
        let store = self.state.store.clone();
        let tokens = self.state.tokens.clone();
        let exports = self.state.exports.clone();
        let scheduler_cancel = cancel.child_token();
        let schedules = if self.state.settings.refresh.enabled {
            crate::scheduler::spawn(
                tokens.clone(),
                &self.state.settings,
                self.state.next_runs.clone(),
                scheduler_cancel.clone(),
            )
        } else {
            Vec::new()
        };
        // Stopped after the server and a running sweep, which queue events.
        let delivery_cancel = CancellationToken::new();
        let deliverer = self
            .state
            .notifier
            .deliverer()
            .map(|d| tokio::spawn(d.run(delivery_cancel.clone())));
        let limits = crate::serve::ConnectionLimits::from_settings(&self.state.settings.server);
        let router = api::router(self.state);
        tracing::info!(addr = %self.addr, "tokenkeeper listening");
        let server = crate::serve::serve(self.listener, router, limits, cancel.clone());
        let served = tokio::select! {
            r = server => r,
            _ = async { cancel.cancelled().await; tokio::time::sleep(timeout).await } => {
                tracing::warn!("in-flight requests did not finish within the shutdown timeout");
                Ok(())
            }
        };
        scheduler_cancel.cancel();
        for s in schedules {
            let _ = s.await;
        }
        // A running sweep finishes its writes before the store closes.
        let deadline = tokio::time::Instant::now() + timeout;
        while tokens.running_run().is_some() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // What is still queued is sent after the next start.
        delivery_cancel.cancel();
        if let Some(d) = deliverer {
            let _ = d.await;
        }
        exports.shutdown().await;
        store.close().await;
        tracing::info!("store flushed; stopped");
        served
    }
}

/// Opens the configured store with its key (generated only beside a store
/// about to be created).
pub fn open_store(
    settings: &Settings,
    clock: SharedClock,
) -> Result<(JsonFileStore, Cipher), StartError> {
    let options = StoreOptions::from(&settings.store);
    // A key is generated only beside a store about to be created: one made
    // for an existing store would never open it, and would linger.
    let missing_key = match store::presence::check(&options.data_dir)? {
        Presence::Fresh => MissingKey::Generate,
        Presence::Present => MissingKey::Refuse,
    };
    let (cipher, source) = Cipher::load(
        settings.secrets.encryption_key.as_ref(),
        &options.data_dir,
        missing_key,
    )?;
    let cipher = cipher.with_previous(settings.secrets.previous_keys.as_ref())?;
    match &source {
        KeySource::Generated(path) => tracing::warn!(
            path = %path.display(),
            "TOKENKEEPER_ENCRYPTION_KEY is not set: generated a master key file; \
             production should set the variable (and back the key up)"
        ),
        // Said on every start: a key beside the data it protects is for
        // development only, and it cannot rotate.
        KeySource::File(path) => tracing::warn!(
            path = %path.display(),
            "the master key comes from a file beside the store (a development \
             convenience): production should set TOKENKEEPER_ENCRYPTION_KEY; \
             docs/operations.md says how to move to it"
        ),
        KeySource::Environment => {}
    }
    let store = JsonFileStore::open_with_clock(&options, cipher.clone(), clock)?;
    Ok((store, cipher))
}

/// Connects to the PostgreSQL store (`store.backend = "postgres"`) and
/// migrates it. Configuration has checked that the URL and the key are set:
/// every instance seals secrets with the one key from the environment.
pub async fn open_database(
    settings: &Settings,
    clock: SharedClock,
) -> Result<(PgConnectionStore, Cipher), StoreError> {
    let (Some(url), Some(key)) = (
        settings.secrets.database_url.as_ref(),
        settings.secrets.encryption_key.as_ref(),
    ) else {
        unreachable!("Settings::validate (and store migrate) require both");
    };
    let cipher = Cipher::load_existing(Some(key), &settings.store.data_dir)?
        .with_previous(settings.secrets.previous_keys.as_ref())?;
    let pg = &settings.store.postgres;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(pg.max_connections)
        .acquire_timeout(Duration::from_secs(pg.acquire_timeout_secs));
    let store = PgConnectionStore::connect(url.expose(), pool, cipher.clone(), clock).await?;
    Ok((store, cipher))
}

/// Where the records kept beside connections live (OAuth nonces, refresh
/// runs, the audit trail, the webhook outbox, the insights cache, export
/// jobs and their files, data deletion requests):
/// files in the data folder (and nonces in memory) beside a JSON store; the
/// store's database on PostgreSQL, so that every instance shares them.
pub enum Records {
    Files,
    Database(PgPool),
}

impl Records {
    fn nonces(&self) -> Arc<dyn NonceStore> {
        match self {
            Records::Files => Arc::new(store::MemoryNonces::default()),
            Records::Database(pool) => Arc::new(PgNonces::new(pool.clone())),
        }
    }

    fn runs(&self, settings: &Settings) -> Arc<dyn RunStore> {
        let keep = settings.refresh.runs_kept;
        match self {
            // Beside the store, so that the recent runs survive a restart.
            Records::Files => Arc::new(store::RunsFile::open(&settings.store.data_dir, keep)),
            Records::Database(pool) => Arc::new(PgRuns::new(pool.clone(), keep)),
        }
    }

    fn audit(&self, settings: &Settings) -> Arc<dyn AuditTrail> {
        match self {
            Records::Files => Arc::new(store::AuditLog::new(&settings.store.data_dir)),
            Records::Database(pool) => Arc::new(PgAudit::new(pool.clone())),
        }
    }

    /// On PostgreSQL every instance sees every job and serves every file.
    async fn export_jobs(&self, dir: &Path) -> Result<Arc<dyn store::ExportJobStore>, StartError> {
        Ok(match self {
            Records::Files => Arc::new(
                store::ExportFiles::open(dir.to_path_buf())
                    .await
                    .map_err(|e| StartError::Exports(e.to_string()))?,
            ),
            Records::Database(pool) => Arc::new(store::postgres::PgExportJobs::new(pool.clone())),
        })
    }

    /// The webhook outbox: `webhooks.json` beside a JSON store; a table
    /// every instance shares on PostgreSQL.
    fn outbox(&self, settings: &Settings) -> Result<Arc<dyn store::OutboxStore>, StoreError> {
        Ok(match self {
            Records::Files => Arc::new(store::OutboxFile::open(&settings.store.data_dir)?),
            Records::Database(pool) => Arc::new(store::postgres::PgOutbox::new(pool.clone())),
        })
    }

    /// Data deletion requests: `data_deletions.json` beside a JSON store.
    fn deletions(&self, settings: &Settings) -> Result<Arc<dyn store::DeletionStore>, StoreError> {
        Ok(match self {
            Records::Files => Arc::new(store::DeletionsFile::open(&settings.store.data_dir)?),
            Records::Database(pool) => Arc::new(store::postgres::PgDeletions::new(pool.clone())),
        })
    }

    fn insights_cache(&self, settings: &Settings) -> Arc<dyn InsightsCache> {
        let ttl = Duration::from_secs(settings.insights.cache_ttl_secs);
        match self {
            Records::Files => Arc::new(crate::insights::cache::FileCache::new(
                &settings.store.data_dir.join("cache"),
                ttl,
            )),
            Records::Database(pool) => {
                Arc::new(crate::insights::pg_cache::PgCache::new(pool.clone(), ttl))
            }
        }
    }
}

/// Builds every service (no HTTP) on an open store: what `serve` runs,
/// with the records beside connections kept where `records` says.
pub async fn services(
    settings: Settings,
    store: Arc<dyn ConnectionStore>,
    records: Records,
    cipher: &Cipher,
    clock: SharedClock,
) -> Result<AppState, StartError> {
    let settings = Arc::new(settings);
    let TokenServices {
        tokens,
        registry,
        notifier,
    } = token_services(settings.clone(), store.clone(), &records, clock.clone()).await?;
    let oauth = StateSigner::new(
        cipher.derive_key("oauth-state"),
        settings.auth.state_ttl_secs,
        records.nonces(),
    );
    let insights = Arc::new(crate::insights::InsightsService::new(
        tokens.clone(),
        settings.clone(),
        records.insights_cache(&settings),
        registry.clients.google_ads.clone(),
    ));
    let exports_dir = settings.store.data_dir.join("exports");
    let export_jobs = records.export_jobs(&exports_dir).await?;
    let storage = crate::export::jobs::ExportsStorage {
        jobs: export_jobs,
        spool_dir: exports_dir,
    };
    let exports = crate::export::jobs::Exports::open_with_clock(
        storage,
        Duration::from_secs(settings.exports.retention_hours * 3600),
        settings.exports.concurrency,
        Arc::new(crate::insights::export_source::InsightsRows(
            insights.clone(),
        )),
        clock,
    )
    .await
    .map_err(|e| StartError::Exports(e.to_string()))?;
    let exports = Arc::new(exports);
    let audit = records.audit(&settings);
    let erasure = crate::erasure::Erasure::new(
        tokens.clone(),
        insights.clone(),
        exports.clone(),
        records.deletions(&settings)?,
        audit.clone(),
        cipher.derive_key("data-deletion-code"),
    );
    let state = AppState {
        registry,
        exports,
        erasure: Arc::new(erasure),
        next_runs: Arc::new(crate::scheduler::NextRuns::default()),
        insights,
        gate: Arc::new(Gate::new(&settings)),
        oauth: Arc::new(oauth),
        audit,
        notifier,
        key_rotation: Arc::default(),
        settings,
        store,
        tokens,
    };
    Ok(state)
}

/// The TokenManager and the provider registry, from configuration.
pub struct TokenServices {
    pub tokens: Arc<TokenManager>,
    pub registry: Arc<Registry>,
    /// Queues the webhook events; its deliverer runs with the server.
    pub notifier: Notifier,
}

/// Builds the provider registry (a client and lifecycle for every provider
/// whose app credentials are configured) and the TokenManager on it.
pub async fn token_services(
    settings: Arc<Settings>,
    store: Arc<dyn ConnectionStore>,
    records: &Records,
    clock: SharedClock,
) -> Result<TokenServices, StoreError> {
    let registry = Arc::new(Registry::from_settings(&settings));
    for spec in registry.specs().filter(|s| s.lifecycle.is_none()) {
        tracing::info!(
            provider = spec.provider.as_str(),
            "{}; its endpoints answer 503",
            spec.not_configured()
        );
    }
    let notifier = if settings.notifications.webhook_url.is_empty() {
        Notifier::disabled()
    } else {
        Notifier::new(
            &settings.notifications,
            settings.secrets.webhook_secret.as_ref(),
            records.outbox(&settings)?,
            clock.clone(),
        )
    };
    let runs = crate::tokens::Runs::open(records.runs(&settings), settings.refresh.runs_kept).await;
    let tokens = Arc::new(TokenManager::new(
        store,
        runs,
        clock,
        settings,
        registry.clone(),
        notifier.clone(),
    ));
    Ok(TokenServices {
        tokens,
        registry,
        notifier,
    })
}
