//! Listing connections: the filters callers ask by, turned into the store's
//! filter plus what only the manager knows (visible teams, health).

use std::sync::Arc;

use super::error::TokenError;
use super::manager::TokenManager;
use crate::domain::{Connection, ConnectionKind, Health, Provider};
use crate::store::ListFilter;

/// Which connections a listing shows.
#[derive(Debug, Clone, Default)]
pub struct ConnectionFilter {
    pub provider: Option<Provider>,
    pub kind: Option<ConnectionKind>,
    pub health: Option<Health>,
    pub team_id: Option<String>,
    /// The caller's teams, when its key is limited to some.
    pub visible_teams: Option<Vec<String>>,
}

impl TokenManager {
    /// Connections matching `filter`, oldest first.
    pub async fn list(
        &self,
        filter: &ConnectionFilter,
    ) -> Result<Vec<Arc<Connection>>, TokenError> {
        let stored = ListFilter {
            provider: filter.provider,
            kind: filter.kind,
            team_id: filter.team_id.clone(),
            due_before: None,
        };
        let mut found: Vec<Arc<Connection>> = self
            .store
            .list(&stored)
            .await?
            .into_iter()
            .filter(|c| {
                filter
                    .visible_teams
                    .as_ref()
                    .is_none_or(|teams| c.team_id.as_ref().is_some_and(|t| teams.contains(t)))
            })
            .filter(|c| filter.health.is_none_or(|h| self.health(c) == h))
            .collect();
        found.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(found)
    }

    /// The connection of `provider` and `kind` for an account id at the
    /// platform (a Facebook page id), if the caller may see it.
    pub async fn find_external(
        &self,
        provider: Provider,
        kind: ConnectionKind,
        external_id: &str,
        visible_teams: Option<&[String]>,
    ) -> Result<Option<Arc<Connection>>, TokenError> {
        let of_kind = ListFilter {
            provider: Some(provider),
            kind: Some(kind),
            ..ListFilter::default()
        };
        Ok(self.store.list(&of_kind).await?.into_iter().find(|c| {
            c.external_id == external_id
                && visible_teams
                    .is_none_or(|teams| c.team_id.as_ref().is_some_and(|t| teams.contains(t)))
        }))
    }
}
