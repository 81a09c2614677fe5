//! Insights: campaigns and ads insights, page post and reel insights, and
//! business-wide fan-out. Every call gets its token from the TokenManager
//! (refreshed first, or a typed error); answers are kept in the
//! [`InsightsCache`] handed in (files, for the embedded backend; a table on
//! PostgreSQL).

pub mod answers;
pub mod business;
pub mod cache;
pub mod campaigns;
pub mod export_source;
pub mod google;
pub mod metrics;
pub mod pg_cache;
pub mod posts;
pub mod sources;
pub mod values;

use std::future::Future;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::Settings;
use crate::domain::{Connection, ConnectionKind, Health, Provider};
use crate::providers::UpstreamError;
use crate::providers::facebook::GraphClient;
use crate::secret::Secret;
use crate::tokens::{ConnectionFilter, Need, TokenError, TokenManager};
use cache::InsightsCache;
use metrics::BadMetric;

pub use answers::Row;

#[derive(Debug, thiserror::Error)]
pub enum InsightsError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("unusable metrics: {}", .0.iter().map(|m| format!("{} ({})", m.metric, m.reason)).collect::<Vec<_>>().join(", "))]
    BadMetrics(Vec<BadMetric>),
    #[error("{0}")]
    NoConnection(String),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("the async report failed: {0}")]
    ReportFailed(String),
}

pub fn invalid(field: &str, message: impl Into<String>) -> InsightsError {
    InsightsError::Invalid {
        field: field.to_string(),
        message: message.into(),
    }
}

/// Which connections a caller may use.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// The caller's teams, when its key is limited to some.
    pub teams: Option<Vec<String>>,
}

impl Access {
    /// What an insights call needs of the connection named by `connection_id`.
    pub(crate) fn need<'a>(&'a self, provider: Provider, kinds: &'a [ConnectionKind]) -> Need<'a> {
        Need::of("connection_id", provider, kinds, self.teams.as_deref())
    }
}

pub struct InsightsService {
    pub(crate) tokens: Arc<TokenManager>,
    pub(crate) settings: Arc<Settings>,
    cache: Arc<dyn InsightsCache>,
    google_ads: Option<Arc<crate::providers::google::ads::GoogleAds>>,
}

impl InsightsService {
    pub fn new(
        tokens: Arc<TokenManager>,
        settings: Arc<Settings>,
        cache: Arc<dyn InsightsCache>,
        google_ads: Option<Arc<crate::providers::google::ads::GoogleAds>>,
    ) -> Self {
        Self {
            tokens,
            settings,
            cache,
            google_ads,
        }
    }

    /// Google Ads reads, when the developer token is configured.
    pub fn google(&self) -> Result<google::GoogleInsights<'_>, InsightsError> {
        let ads = self.google_ads.as_deref().ok_or_else(|| {
            InsightsError::NoConnection(
                "Google Ads is not configured: set GOOGLE_ADS_DEVELOPER_TOKEN".into(),
            )
        })?;
        Ok(google::GoogleInsights {
            tokens: &self.tokens,
            ads,
        })
    }

    pub(crate) fn graph(&self) -> Result<&GraphClient, InsightsError> {
        Ok(self
            .tokens
            .registry()
            .facebook()
            .map_err(TokenError::from)?)
    }

    /// The answer for `key` from the cache, or computed and cached with the
    /// connections it was computed from. A cached entry that no longer reads
    /// as `T` counts as a miss.
    pub async fn cached<T, F, Fut>(
        &self,
        key: &str,
        refresh: bool,
        compute: F,
    ) -> Result<T, InsightsError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, InsightsError>>,
    {
        let now = self.tokens.now();
        if !refresh
            && let Some(hit) = self.cache.get(key, now).await
            && let Ok(answer) = serde_json::from_value(hit)
        {
            return Ok(answer);
        }
        let (answer, used) = sources::recording(compute()).await;
        let answer = answer?;
        match serde_json::to_value(&answer) {
            Ok(value) => self.cache.put(key, &value, &used, now).await,
            Err(e) => tracing::warn!(key, error = %e, "could not cache an insights answer"),
        }
        Ok(answer)
    }

    /// Removes the cached answers computed from `connection_ids`' tokens
    /// (their data is to be erased); answers how many.
    pub async fn forget(&self, connection_ids: &[String]) -> Result<usize, cache::CacheError> {
        self.cache.forget(connection_ids).await
    }

    /// A token for reading ads and business data: the given connection, else
    /// the first usable system-user connection, else user connection.
    pub(crate) async fn account_token(
        &self,
        access: &Access,
        connection_id: Option<&str>,
        kinds: &[ConnectionKind],
    ) -> Result<(Arc<Connection>, Secret), InsightsError> {
        let rank = |c: &Connection| {
            (
                kinds.iter().position(|k| *k == c.kind),
                self.tokens.health(c) != Health::Healthy,
            )
        };
        let missing = "no usable Facebook connection: connect a user or register a business token";
        let need = access.need(Provider::Facebook, kinds);
        pick_token(&self.tokens, &need, access, connection_id, rank, missing).await
    }

    /// The connection and token of a connected page.
    pub(crate) async fn page_token(
        &self,
        access: &Access,
        page_id: &str,
    ) -> Result<(Arc<Connection>, Secret), InsightsError> {
        let page = self
            .tokens
            .find_external(
                Provider::Facebook,
                ConnectionKind::Page,
                page_id,
                access.teams.as_deref(),
            )
            .await?
            .ok_or_else(|| {
                InsightsError::NoConnection(format!("no connection for page {page_id}"))
            })?;
        let need = access.need(Provider::Facebook, &[ConnectionKind::Page]);
        let token = self.tokens.token_for(&page.id, &need).await?;
        sources::note(&token.connection.id);
        Ok((token.connection, token.access_token))
    }

    /// Awaits `work`, an upstream call made with `conn`'s token, and records
    /// on the connection a rejection of that token (code 190 and the like),
    /// so the next hand-out or health check knows it at once.
    pub(crate) async fn using<T>(
        &self,
        conn: &Connection,
        work: impl Future<Output = Result<T, InsightsError>>,
    ) -> Result<T, InsightsError> {
        let result = work.await;
        if let Err(InsightsError::Upstream(e)) = &result {
            self.tokens.observe(&conn.id, e).await;
        }
        result
    }
}

/// A token for `need`: of the named connection, else of the usable one the
/// caller may see that `rank`s first; `missing` says what to connect when
/// there is none.
pub(crate) async fn pick_token<K: Ord>(
    tokens: &TokenManager,
    need: &Need<'_>,
    access: &Access,
    connection_id: Option<&str>,
    rank: impl Fn(&Connection) -> K,
    missing: &str,
) -> Result<(Arc<Connection>, Secret), InsightsError> {
    let id = match connection_id {
        Some(id) => id.to_string(),
        None => {
            let mut candidates: Vec<Arc<Connection>> = tokens
                .list(&ConnectionFilter {
                    provider: need.provider,
                    visible_teams: access.teams.clone(),
                    ..ConnectionFilter::default()
                })
                .await?
                .into_iter()
                .filter(|c| need.fits(c) && tokens.health(c).is_usable())
                .collect();
            candidates.sort_by_key(|c| rank(c));
            candidates
                .first()
                .map(|c| c.id.clone())
                .ok_or_else(|| InsightsError::NoConnection(missing.into()))?
        }
    };
    let token = tokens.token_for(&id, need).await?;
    sources::note(&token.connection.id);
    Ok((token.connection, token.access_token))
}
