//! Leases in the database: granting one is a single conditional upsert of
//! the connection's lease row, so two instances racing for a connection
//! cannot both win, and its fencing token is drawn under the row's lock.

use std::time::Duration;

use chrono::{DateTime, DurationRound, Utc};
use sqlx::{PgPool, Row};

use super::identity::RowMac;
use crate::domain::Connection;

use crate::store::error::StoreError;
use crate::store::storage::{FencingToken, Lease};

/// When a lease granted at `now` for `ttl` ends, as the database keeps it
/// (to the microsecond), so that the lease handed out is the one stored.
fn expiry(now: DateTime<Utc>, ttl: Duration) -> DateTime<Utc> {
    let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    let expires_at = now
        .checked_add_signed(ttl)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    expires_at
        .duration_trunc(chrono::Duration::microseconds(1))
        .unwrap_or(expires_at)
}

/// A new lease on `id` for `holder` unless another holder's is live at `now`.
pub async fn grant(
    pool: &PgPool,
    id: &str,
    holder: &str,
    ttl: Duration,
    now: DateTime<Utc>,
) -> Result<Lease, StoreError> {
    let expires_at = expiry(now, ttl);
    let mut tx = pool.begin().await.map_err(StoreError::database("begin"))?;
    // Keeps the connection from being deleted before the lease is in place.
    let exists = sqlx::query("SELECT 1 FROM connections WHERE id = $1 FOR KEY SHARE")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::database("grant a lease"))?;
    if exists.is_none() {
        return Err(StoreError::NotFound(id.to_string()));
    }
    // On a conflict the new token is drawn in SET, once the row is locked,
    // so it is above every token granted on this connection before.
    let granted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO leases AS l (connection_id, holder, fencing_token, expires_at) \
         VALUES ($1, $2, nextval('fencing_tokens'), $3) \
         ON CONFLICT (connection_id) DO UPDATE \
         SET holder = EXCLUDED.holder, fencing_token = nextval('fencing_tokens'), \
             expires_at = EXCLUDED.expires_at \
         WHERE l.holder IS NULL OR l.holder = EXCLUDED.holder OR l.expires_at <= $4 \
         RETURNING fencing_token",
    )
    .bind(id)
    .bind(holder)
    .bind(expires_at)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await
    .map_err(StoreError::database("grant a lease"))?;
    let Some(token) = granted else {
        // ON CONFLICT locked the row even though it refused to update it,
        // so this reads the live lease that won.
        let row = sqlx::query("SELECT holder, expires_at FROM leases WHERE connection_id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::database("read a lease"))?;
        let holder: Option<String> = row
            .try_get("holder")
            .map_err(StoreError::database("read a lease"))?;
        let until: Option<DateTime<Utc>> = row
            .try_get("expires_at")
            .map_err(StoreError::database("read a lease"))?;
        return Err(StoreError::Leased {
            id: id.to_string(),
            holder: holder.unwrap_or_default(),
            expires_at: until.unwrap_or(now),
        });
    };
    tx.commit()
        .await
        .map_err(StoreError::database("commit a lease"))?;
    Ok(Lease {
        connection_id: id.to_string(),
        holder: holder.to_string(),
        fencing_token: FencingToken(token as u64),
        expires_at,
    })
}

/// Leases to `holder`, in one statement, each connection of `ids` that has
/// no live lease, with its record. Rows another
/// transaction has locked (a claim by another instance, a write) are
/// skipped rather than waited for, as PostgreSQL job queues claim jobs: the
/// sweep comes back to them.
pub async fn claim(
    pool: &PgPool,
    ids: &[String],
    holder: &str,
    ttl: Duration,
    now: DateTime<Utc>,
    rows: &RowMac,
) -> Result<Vec<(Lease, Connection)>, StoreError> {
    let expires_at = expiry(now, ttl);
    // As in `grant`, a conflicting row's token is drawn in SET, under the
    // lease row's lock. The record returned is the one the locking read
    // got: the newest committed version of the row. The statement's own
    // snapshot may predate a refresh that committed (and ended its lease,
    // `WriteGuard::FencedLast`) while it ran; planning on that older
    // record would refresh the connection a second time.
    let found = sqlx::query(
        "WITH candidates AS ( \
             SELECT id, record, identity_mac FROM connections WHERE id = ANY($1) \
             FOR NO KEY UPDATE SKIP LOCKED \
         ), granted AS ( \
             INSERT INTO leases AS l (connection_id, holder, fencing_token, expires_at) \
             SELECT id, $2, nextval('fencing_tokens'), $3 FROM candidates \
             ON CONFLICT (connection_id) DO UPDATE \
             SET holder = EXCLUDED.holder, fencing_token = nextval('fencing_tokens'), \
                 expires_at = EXCLUDED.expires_at \
             WHERE l.holder IS NULL OR l.expires_at <= $4 \
             RETURNING connection_id, fencing_token \
         ) \
         SELECT g.fencing_token, c.record, c.identity_mac \
         FROM granted g JOIN candidates c ON c.id = g.connection_id",
    )
    .bind(ids)
    .bind(holder)
    .bind(expires_at)
    .bind(now)
    .fetch_all(pool)
    .await
    .map_err(StoreError::database("claim connections"))?;
    let mut claimed = Vec::with_capacity(found.len());
    for row in &found {
        let token: i64 = row
            .try_get("fencing_token")
            .map_err(StoreError::database("read a claimed connection"))?;
        let conn = match super::writes::record_of(row, rows) {
            Ok(conn) => conn,
            // Not served; its lease runs out unused.
            Err(e @ (StoreError::Tampered { .. } | StoreError::UnknownKey { .. })) => {
                tracing::error!(error = %e, "left a connection out: its row fails its check");
                continue;
            }
            Err(e) => return Err(e),
        };
        let lease = Lease {
            connection_id: conn.id.clone(),
            holder: holder.to_string(),
            fencing_token: FencingToken(token as u64),
            expires_at,
        };
        claimed.push((lease, conn));
    }
    Ok(claimed)
}

/// Ends `lease` if it is still the newest on its connection.
pub async fn release(pool: &PgPool, lease: &Lease) -> Result<(), StoreError> {
    let token = i64::try_from(lease.fencing_token.0).unwrap_or(i64::MAX);
    sqlx::query(
        "UPDATE leases SET holder = NULL, expires_at = NULL \
         WHERE connection_id = $1 AND fencing_token = $2",
    )
    .bind(&lease.connection_id)
    .bind(token)
    .execute(pool)
    .await
    .map_err(StoreError::database("release a lease"))?;
    Ok(())
}
