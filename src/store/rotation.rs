//! Key rotation: every secret not yet sealed with the current key, or not
//! yet bound to its record, is opened and sealed again, in batches, through
//! the storage seam, so that it runs on either backend while the service
//! serves. Each batch is one atomic write guarded by the versions it read:
//! a record written meanwhile (a refresh, which seals with the current key
//! anyway) is read again rather than overwritten. Rotation keeps no state
//! of its own: after a crash, running it again picks up what is left.

use std::sync::Arc;

use super::crypto::{Binding, Cipher, Field, Seal};
use super::error::StoreError;
use super::secret_check::{self, KeyCensus};
use super::storage::{ConnectionStore, ListFilter, Write, WriteGuard};
use crate::domain::Connection;

/// Connections re-sealed per write unless told otherwise.
pub const DEFAULT_BATCH: usize = 500;

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

/// The write that re-seals `conn`'s secrets, if it is still at the version read.
fn reseal(conn: &Connection, cipher: &Cipher) -> Result<Write, StoreError> {
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
    Ok(Write::Update {
        id: conn.id.clone(),
        guard: WriteGuard::Version(conn.version),
        edit: Box::new(move |c| {
            c.secrets.access_token = access;
            c.secrets.refresh_token = refresh;
        }),
    })
}

/// Re-seals every secret of `store` under its current key, `batch`
/// connections per write, calling `progress` after each.
pub async fn rotate(
    store: &dyn ConnectionStore,
    batch: usize,
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
    for chunk in todo.chunks(batch.max(1)) {
        let writes = chunk
            .iter()
            .map(|c| reseal(c, &cipher))
            .collect::<Result<Vec<_>, _>>()?;
        match store.write_all(writes).await {
            Ok(_) => {}
            // One of them was written (or deleted) since it was read.
            Err(StoreError::VersionConflict { .. } | StoreError::NotFound(_)) => {
                for conn in chunk {
                    reseal_one(store, &cipher, &conn.id).await?;
                }
            }
            Err(e) => return Err(e),
        }
        done.resealed += chunk.len();
        progress(done);
    }
    store.resign().await?;
    let after = store.list(&ListFilter::default()).await?;
    Ok(RotationReport {
        connections,
        resealed: done.resealed,
        key_id: current,
        in_use: secret_check::census(after.iter().map(|c| &**c)),
    })
}

/// Re-seals one connection as it is now, reading it again while writes race.
async fn reseal_one(
    store: &dyn ConnectionStore,
    cipher: &Cipher,
    id: &str,
) -> Result<(), StoreError> {
    loop {
        let Some(conn) = store.get(id).await? else {
            return Ok(());
        };
        if is_current(&conn, cipher.key_id()) {
            return Ok(());
        }
        let Write::Update { guard, edit, .. } = reseal(&conn, cipher)? else {
            unreachable!("reseal makes an update")
        };
        match store.update(id, guard, edit).await {
            Ok(_) | Err(StoreError::NotFound(_)) => return Ok(()),
            Err(StoreError::VersionConflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
}
