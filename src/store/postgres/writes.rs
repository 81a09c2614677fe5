//! The writes of a connection inside a transaction: each locks the rows it
//! changes, applies the caller's edit in Rust to the record as stored, and
//! sets the bookkeeping fields as the file store's writer does.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;
use sqlx::{PgConnection, Row};

use crate::domain::Connection;
use crate::store::error::StoreError;
use crate::store::storage::{Edit, FencingToken, WriteGuard};

/// What one write stored, and how many bytes of record it sent.
pub struct Written {
    pub conn: Connection,
    pub bytes: u64,
}

/// The text a provider or kind has in the record's JSON (and so in its
/// column): one spelling for both.
pub fn text_of(value: impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => unreachable!("providers and kinds serialize as strings: {other:?}"),
    }
}

/// The stored record `id`, locked until the transaction ends.
async fn lock_by_id(tx: &mut PgConnection, id: &str) -> Result<Option<Connection>, StoreError> {
    let row = sqlx::query("SELECT record FROM connections WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::database("lock a connection"))?;
    record_of(row)
}

fn record_of(row: Option<sqlx::postgres::PgRow>) -> Result<Option<Connection>, StoreError> {
    row.map(|r| r.try_get::<Json<Connection>, _>("record").map(|j| j.0))
        .transpose()
        .map_err(StoreError::database("read a connection"))
}

/// `Ok` unless a lease newer than `token` was granted on `id`. The lease
/// row stays locked until the transaction ends, so no lease is granted
/// between this check and the write's commit.
async fn check_fence(
    tx: &mut PgConnection,
    id: &str,
    token: FencingToken,
) -> Result<(), StoreError> {
    let newest: Option<i64> =
        sqlx::query_scalar("SELECT fencing_token FROM leases WHERE connection_id = $1 FOR SHARE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::database("check a fencing token"))?;
    match newest {
        Some(newest) if newest as u64 > token.0 => Err(StoreError::StaleLease {
            id: id.to_string(),
            token: token.0,
            newest: newest as u64,
        }),
        _ => Ok(()),
    }
}

/// Applies `edit` to the stored connection `id` if `guard` holds.
pub async fn update(
    tx: &mut PgConnection,
    id: &str,
    guard: WriteGuard,
    edit: Edit,
    now: DateTime<Utc>,
) -> Result<Written, StoreError> {
    let stored = lock_by_id(tx, id)
        .await?
        .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
    match guard {
        WriteGuard::Latest => {}
        WriteGuard::Version(expected) if expected != stored.version => {
            return Err(StoreError::VersionConflict {
                id: id.to_string(),
                expected,
                current: stored.version,
            });
        }
        WriteGuard::Version(_) => {}
        WriteGuard::Fenced(token) => check_fence(tx, id, token).await?,
    }
    let mut conn = stored.clone();
    edit(&mut conn);
    // The identity and bookkeeping fields belong to the store.
    conn.id = stored.id;
    conn.created_at = stored.created_at;
    conn.version = stored.version + 1;
    conn.updated_at = now;
    let bytes = write_row(
        tx,
        &conn,
        "UPDATE connections SET provider = $2, kind = $3, external_id = $4, team_id = $5, \
         version = $6, next_refresh_at = $7, record = $8::jsonb WHERE id = $1",
    )
    .await?;
    Ok(Written { conn, bytes })
}

/// Changes the connection with `new`'s natural key with `edit`, or inserts
/// `new` with `edit` applied. Upserts of one key take a transaction-level
/// advisory lock on it first, so that of two concurrent ones the second
/// finds the row the first inserted (a hash collision of two keys only
/// makes them wait for each other).
pub async fn upsert(
    tx: &mut PgConnection,
    new: Connection,
    edit: Edit,
    now: DateTime<Utc>,
) -> Result<Written, StoreError> {
    let (provider, kind) = (text_of(new.provider), text_of(new.kind));
    let key = format!(
        "{provider}\u{1f}{kind}\u{1f}{}\u{1f}{}",
        new.external_id,
        new.team_id.as_deref().unwrap_or("")
    );
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(&key)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::database("lock a natural key"))?;
    let existing: Option<String> = sqlx::query_scalar(
        "SELECT id FROM connections WHERE provider = $1 AND kind = $2 AND external_id = $3 \
         AND coalesce(team_id, '') = coalesce($4, '')",
    )
    .bind(&provider)
    .bind(&kind)
    .bind(&new.external_id)
    .bind(&new.team_id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(StoreError::database("find a natural key"))?;
    if let Some(id) = existing {
        return update(tx, &id, WriteGuard::Latest, edit, now).await;
    }
    let mut conn = new;
    edit(&mut conn);
    conn.version = 1;
    conn.updated_at = now;
    let bytes = write_row(
        tx,
        &conn,
        "INSERT INTO connections \
         (id, provider, kind, external_id, team_id, version, next_refresh_at, record) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)",
    )
    .await?;
    Ok(Written { conn, bytes })
}

/// Inserts `conn` exactly as it is (version and times kept) unless a row
/// with its id exists; whether it did.
pub async fn insert_as_is(tx: &mut PgConnection, conn: &Connection) -> Result<bool, StoreError> {
    let before: Option<i64> = sqlx::query_scalar("SELECT version FROM connections WHERE id = $1")
        .bind(&conn.id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::database("look up a connection"))?;
    if before.is_some() {
        return Ok(false);
    }
    write_row(
        tx,
        conn,
        "INSERT INTO connections \
         (id, provider, kind, external_id, team_id, version, next_refresh_at, record) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)",
    )
    .await?;
    Ok(true)
}

/// Runs `sql`, an insert or update binding the row's columns as $1..$8.
async fn write_row(
    tx: &mut PgConnection,
    conn: &Connection,
    sql: &'static str,
) -> Result<u64, StoreError> {
    let record = serde_json::to_string(conn).map_err(|e| StoreError::WriteFailed(e.to_string()))?;
    let version = i64::try_from(conn.version)
        .map_err(|_| StoreError::WriteFailed(format!("connection {} version overflow", conn.id)))?;
    sqlx::query(sql)
        .bind(&conn.id)
        .bind(text_of(conn.provider))
        .bind(text_of(conn.kind))
        .bind(&conn.external_id)
        .bind(&conn.team_id)
        .bind(version)
        .bind(conn.next_refresh_at)
        .bind(&record)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::database("write a connection"))?;
    Ok(record.len() as u64)
}
