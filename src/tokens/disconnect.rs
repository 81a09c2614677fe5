//! Disconnecting: deleting a connection here and, when asked, revoking the
//! app's grant at its platform first. A connection others were derived
//! from (a Facebook user and its pages) goes only together with them.

use std::sync::Arc;

use serde_json::json;

use super::error::TokenError;
use super::manager::TokenManager;
use super::need::kind_name;
use super::revoked::Subject;
use crate::domain::{Connection, ConnectionKind, ErrorClass, Provider};
use crate::notify::{Event, types};
use crate::providers::UpstreamError;
use crate::providers::lifecycle::{Held, Revocable, Revoked};
use crate::store::{ListFilter, StoreError};

/// What a disconnect is asked to do besides deleting the connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct Disconnect {
    /// Revoke the grant at the platform first (where it has a call for it).
    pub revoke: bool,
    /// Delete the connections derived from this one too.
    pub cascade: bool,
}

/// What became of a deleted connection's grant at its platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// The platform revoked it.
    Revoked,
    /// The platform already rejected the token: as good as revoked.
    AlreadyInvalid,
    /// The platform has no way to revoke it; the reason says what to do.
    NotSupported,
    /// No revocation was asked for: deleted here only.
    NotRequested,
}

impl Revocation {
    pub fn as_str(self) -> &'static str {
        match self {
            Revocation::Revoked => "revoked",
            Revocation::AlreadyInvalid => "already_invalid",
            Revocation::NotSupported => "not_supported",
            Revocation::NotRequested => "not_requested",
        }
    }
}

/// One deleted connection and what became of its grant.
#[derive(Debug, Clone)]
pub struct Removed {
    pub connection: Arc<Connection>,
    pub revocation: Revocation,
    /// Why, in words, for anything but a plain revocation or none asked.
    pub reason: Option<String>,
}

/// A connection another one was derived from, named in a refusal.
#[derive(Debug, Clone)]
pub struct DerivedRef {
    pub id: String,
    pub kind: ConnectionKind,
    pub label: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DisconnectError {
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Deleting it alone would leave connections derived from a connection
    /// that is gone; nothing was deleted.
    #[error("connection {id} has {} connection(s) derived from it ({}): add cascade=true to delete them with it, or delete them first", .derived.len(), names(.derived))]
    HasDerived {
        id: String,
        derived: Vec<DerivedRef>,
    },
    /// The platform did not revoke the grant (unreachable, or it refused
    /// for another reason than an invalid token); nothing was deleted.
    #[error(
        "revoking connection {id} at {platform} failed, so nothing was deleted (retry, or delete without revoke=true): {source}"
    )]
    RevocationFailed {
        id: String,
        platform: &'static str,
        #[source]
        source: UpstreamError,
    },
}

fn names(derived: &[DerivedRef]) -> String {
    derived
        .iter()
        .map(|d| format!("{} {} \"{}\"", kind_name(d.kind), d.id, d.label))
        .collect::<Vec<_>>()
        .join(", ")
}

impl From<StoreError> for DisconnectError {
    fn from(e: StoreError) -> Self {
        DisconnectError::Token(e.into())
    }
}

impl TokenManager {
    /// Deletes `conn` (one the caller may see, from
    /// [`TokenManager::connection_for`]) and, with `cascade`, the
    /// connections derived from it; with `revoke`, only once its platform
    /// revoked the grant or said the token already was invalid. Each
    /// deletion is announced with a `connection.deleted` event. Answers
    /// with the deleted connections, `conn` first.
    pub async fn disconnect(
        &self,
        conn: Arc<Connection>,
        options: Disconnect,
    ) -> Result<Vec<Removed>, DisconnectError> {
        let derived = self.derived_from(&conn).await?;
        if !derived.is_empty() && !options.cascade {
            return Err(DisconnectError::HasDerived {
                id: conn.id.clone(),
                derived: derived
                    .iter()
                    .map(|d| DerivedRef {
                        id: d.id.clone(),
                        kind: d.kind,
                        label: d.label.clone(),
                    })
                    .collect(),
            });
        }
        let (revocation, reason) = if options.revoke {
            self.revoke_grant(&conn).await?
        } else {
            (Revocation::NotRequested, None)
        };
        // Derived tokens live on their parent's grant: they share its fate.
        let parent = format!("the {} connection {}", kind_name(conn.kind), conn.id);
        let inherited = match revocation {
            Revocation::Revoked => Some(format!("revoked with {parent} it was derived from")),
            Revocation::AlreadyInvalid => Some(format!(
                "{parent} it was derived from was already invalid at the platform"
            )),
            Revocation::NotSupported => reason.clone(),
            Revocation::NotRequested => None,
        };
        let mut removed = Vec::with_capacity(1 + derived.len());
        for d in derived {
            if self.delete_if_present(&d.id).await? {
                removed.push(Removed {
                    connection: d,
                    revocation,
                    reason: inherited.clone(),
                });
            }
        }
        self.store
            .delete(&conn.id)
            .await
            .map_err(TokenError::from)?;
        removed.insert(
            0,
            Removed {
                connection: conn.clone(),
                revocation,
                reason,
            },
        );
        // A refresh of `conn` that was writing its re-derived pages while
        // they were deleted may have stored them again; its own record it
        // cannot (a refresh updates, never inserts, the connection itself).
        for late in self.derived_from(&conn).await? {
            if self.delete_if_present(&late.id).await? {
                removed.push(Removed {
                    connection: late,
                    revocation,
                    reason: inherited.clone(),
                });
            }
        }
        let now = self.now();
        let events = removed
            .iter()
            .map(|r| {
                let data = json!({
                    "connection": self.facts(&r.connection),
                    "revocation": r.revocation.as_str(),
                });
                Event::new(types::DELETED, now, data)
            })
            .collect();
        self.notifier.send_all(events).await;
        Ok(removed)
    }

    /// Deletes every `provider` connection `subject` names, with those
    /// derived from them, without revoking anything (the platform asked:
    /// Meta's Data Deletion callback), each announced with a
    /// `connection.deleted` event. Answers with the deleted connections;
    /// none when nothing is stored, so the same request twice deletes
    /// nothing more.
    pub async fn erase_subject(
        &self,
        provider: Provider,
        subject: Subject<'_>,
    ) -> Result<Vec<Removed>, DisconnectError> {
        let named = self.named(provider, subject).await?;
        let ids: Vec<&str> = named.iter().map(|c| c.id.as_str()).collect();
        let roots = named
            .iter()
            .filter(|c| c.parent_id.as_deref().is_none_or(|p| !ids.contains(&p)));
        let cascade = Disconnect {
            revoke: false,
            cascade: true,
        };
        let mut removed = Vec::new();
        for root in roots {
            match self.disconnect(root.clone(), cascade).await {
                Ok(gone) => removed.extend(gone),
                // Deleted meanwhile by another caller: as wanted.
                Err(DisconnectError::Token(TokenError::NotFound(_))) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }

    /// The connections whose `parent_id` is `conn`.
    async fn derived_from(&self, conn: &Connection) -> Result<Vec<Arc<Connection>>, TokenError> {
        let filter = ListFilter {
            provider: Some(conn.provider),
            ..ListFilter::default()
        };
        let all = self.store.list(&filter).await?;
        Ok(all
            .into_iter()
            .filter(|c| c.parent_id.as_deref() == Some(conn.id.as_str()))
            .collect())
    }

    /// Deletes `id`; false when another caller deleted it first.
    async fn delete_if_present(&self, id: &str) -> Result<bool, TokenError> {
        match self.store.delete(id).await {
            Ok(()) => Ok(true),
            Err(StoreError::NotFound(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Asks `conn`'s own platform (never another: the lifecycle is its
    /// provider's) to revoke the grant behind it.
    async fn revoke_grant(
        &self,
        conn: &Connection,
    ) -> Result<(Revocation, Option<String>), DisconnectError> {
        let lifecycle = self.lifecycle(conn.provider)?;
        let secrets = self.store.secrets()?;
        let held = Held {
            access_token: secrets.access_token(conn)?,
            refresh_token: secrets.refresh_token(conn)?,
        };
        let asked = Revocable {
            kind: conn.kind,
            external_id: conn.external_id.clone(),
            held,
        };
        match lifecycle.revoke(&self.upstream, asked).await {
            Ok(Revoked::Revoked) => Ok((Revocation::Revoked, None)),
            Ok(Revoked::NotSupported(why)) => Ok((Revocation::NotSupported, Some(why))),
            // By its code (Graph 190/102, Google `invalid_token`), as classified.
            Err(e) if e.class == ErrorClass::ReauthRequired => {
                let code = match (e.code, e.subcode) {
                    (Some(c), Some(s)) => format!(" (code {c}/{s})"),
                    (Some(c), None) => format!(" (code {c})"),
                    _ => String::new(),
                };
                Ok((
                    Revocation::AlreadyInvalid,
                    Some(format!(
                        "the platform already rejects the token{code}: nothing is left to revoke"
                    )),
                ))
            }
            Err(source) => {
                tracing::warn!(connection = %conn.id, error = %source, "revocation failed; nothing deleted");
                Err(DisconnectError::RevocationFailed {
                    id: conn.id.clone(),
                    platform: self.registry.spec(conn.provider).display_name,
                    source,
                })
            }
        }
    }
}
