//! Key rotation: every secret not yet sealed with the current key, or not
//! yet bound to its record, is opened and sealed again, many at a time, through
//! the storage seam, so that it runs on either backend while the service
//! serves. Each write is guarded by the version it read: a record written
//! meanwhile (a refresh, which seals with the current key anyway) is read
//! again rather than overwritten. Rotation keeps no state of its own: after
//! a crash, running it again picks up what is left.

use std::sync::Arc;

use futures::stream::{self, StreamExt};

use super::crypto::{Binding, Cipher, Field, Seal};
use super::error::StoreError;
use super::secret_check::{self, KeyCensus};
use super::storage::{ConnectionStore, Edit, ListFilter, WriteGuard};
use crate::domain::Connection;

/// Connections re-sealed at once unless told otherwise: enough to fill the
/// file store's group commits and a PostgreSQL pool.
pub const DEFAULT_AT_ONCE: usize = 64;

/// How often a rotation reports its progress, in connections.
pub const PROGRESS_EVERY: usize = 500;

/// How far a rotation has come.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Connections that needed re-sealing when the rotation began.
    pub to_reseal: usize,
    /// Of those, how many are done.
    pub resealed: usize,
}

/// What a finished rotation found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationReport {
    pub connections: usize,
    /// Connections whose secrets were sealed again.
    pub resealed: usize,
    /// The current key's id.
    pub key_id: String,
    /// The keys that seal the secrets now: only the current one, unless
    /// another instance with another key wrote meanwhile.
    pub in_use: KeyCensus,
}

/// The connection's secrets all sealed with the current key for it.
fn is_current(conn: &Connection, current: &str) -> bool {
    let sealed = |secret, field| {
        Seal::of(secret).is_ok_and(|seal| seal.is_current(current, &Binding::of(conn, field)))
    };
    sealed(&conn.secrets.access_token, Field::AccessToken)
        && conn
            .secrets
            .refresh_token
            .as_ref()
            .is_none_or(|rt| sealed(rt, Field::RefreshToken))
}

/// The edit that re-seals `conn`'s secrets, and the guard that applies it
/// only to the version read.
fn reseal(conn: &Connection, cipher: &Cipher) -> Result<(WriteGuard, Edit), StoreError> {
    let bound = |field| Binding::of(conn, field);
    let access = cipher.decrypt(
        &conn.id,
        &conn.secrets.access_token,
        &bound(Field::AccessToken),
    )?;
    let access = cipher.encrypt(&access, &bound(Field::AccessToken))?;
    let refresh = match &conn.secrets.refresh_token {
        Some(rt) => {
            let plain = cipher.decrypt(&conn.id, rt, &bound(Field::RefreshToken))?;
            Some(cipher.encrypt(&plain, &bound(Field::RefreshToken))?)
        }
        None => None,
    };
    let edit: Edit = Box::new(move |c| {
        c.secrets.access_token = access;
        c.secrets.refresh_token = refresh;
    });
    Ok((WriteGuard::Version(conn.version), edit))
}

/// Re-seals every secret of `store` under its current key, `at_once`
/// connections at a time, calling `progress` every [`PROGRESS_EVERY`].
///
/// Each connection is its own write, guarded by the version read: none
/// holds more than its own row, so a rotation cannot deadlock with a
/// refresh writing a user and its pages, and the file store's group commit
/// still folds the writes in flight into one journal line.
pub async fn rotate(
    store: &dyn ConnectionStore,
    at_once: usize,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<RotationReport, StoreError> {
    let cipher = store.secrets()?.cipher().clone();
    let current = cipher.key_id().to_string();
    let all = store.list(&ListFilter::default()).await?;
    let connections = all.len();
    let todo: Vec<Arc<Connection>> = all
        .into_iter()
        .filter(|c| !is_current(c, &current))
        .collect();
    let mut done = Progress {
        to_reseal: todo.len(),
        resealed: 0,
    };
    progress(done);
    let mut writes = stream::iter(todo)
        .map(|conn| reseal_one(store, &cipher, conn))
        .buffer_unordered(at_once.max(1));
    while let Some(written) = writes.next().await {
        written?;
        done.resealed += 1;
        if done.resealed.is_multiple_of(PROGRESS_EVERY) || done.resealed == done.to_reseal {
            progress(done);
        }
    }
    drop(writes);
    store.resign().await?;
    let after = store.list(&ListFilter::default()).await?;
    Ok(RotationReport {
        connections,
        resealed: done.resealed,
        key_id: current,
        in_use: secret_check::census(after.iter().map(|c| &**c)),
    })
}

/// Re-seals `conn`, reading it again while other writes race it.
async fn reseal_one(
    store: &dyn ConnectionStore,
    cipher: &Cipher,
    mut conn: Arc<Connection>,
) -> Result<(), StoreError> {
    loop {
        if is_current(&conn, cipher.key_id()) {
            return Ok(());
        }
        let (guard, edit) = reseal(&conn, cipher)?;
        let id = conn.id.clone();
        match store.update(&id, guard, edit).await {
            Ok(_) | Err(StoreError::NotFound(_)) => return Ok(()),
            Err(StoreError::VersionConflict { .. }) => match store.get(&id).await? {
                Some(now) => conn = now,
                None => return Ok(()),
            },
            Err(e) => return Err(e),
        }
    }
}
