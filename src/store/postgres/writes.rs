//! The writes of a connection inside a transaction: each locks the rows it
//! changes, applies the caller's edit in Rust to the record as stored, and
//! sets the bookkeeping fields as the file store's writer does.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;
use sqlx::{PgConnection, Row};

use super::identity::RowMac;
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
async fn lock_by_id(
    tx: &mut PgConnection,
    id: &str,
    rows: &RowMac,
) -> Result<Option<Connection>, StoreError> {
    let row = sqlx::query("SELECT record, identity_mac FROM connections WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::database("lock a connection"))?;
    row.map(|r| record_of(&r, rows)).transpose()
}

/// The records of rows read with their `identity_mac`, leaving out (and
/// logging) those whose HMAC fails: one row edited in the database is not
/// served, and does not stop every listing and sweep of the others.
pub fn sound_records(
    found: &[sqlx::postgres::PgRow],
    rows: &RowMac,
) -> Result<Vec<Connection>, StoreError> {
    let mut records = Vec::with_capacity(found.len());
    for row in found {
        match record_of(row, rows) {
            Ok(record) => records.push(record),
            Err(e @ (StoreError::Tampered { .. } | StoreError::UnknownKey { .. })) => {
                tracing::error!(error = %e, "left a connection out: its row fails its check");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(records)
}

/// The record of a row read with its `identity_mac`, which must match it.
pub fn record_of(row: &sqlx::postgres::PgRow, rows: &RowMac) -> Result<Connection, StoreError> {
    let read = StoreError::database("read a connection");
    let (record, mac) = match (
        row.try_get::<Json<Connection>, _>("record"),
        row.try_get::<Option<String>, _>("identity_mac"),
    ) {
        (Ok(Json(record)), Ok(mac)) => (record, mac),
        (Err(e), _) | (_, Err(e)) => return Err(read(e)),
    };
    rows.check(&record, mac.as_deref())?;
    Ok(record)
}

/// The refusal of a write fenced by `token`: a newer lease was granted.
async fn stale_lease(tx: &mut PgConnection, id: &str, token: FencingToken) -> StoreError {
    let newest: Result<Option<i64>, _> =
        sqlx::query_scalar("SELECT fencing_token FROM leases WHERE connection_id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await;
    match newest {
        Ok(newest) => StoreError::StaleLease {
            id: id.to_string(),
            token: token.0,
            newest: newest.map_or(token.0, |n| n as u64),
        },
        Err(e) => StoreError::database("check a fencing token")(e),
    }
}

/// The update of a locked row, in one statement (one round trip): for a
/// fenced write, the fence is checked in its `WHERE` ($9 the token), and
/// with $10 the lease ends in the same statement. No lease can be granted
/// between the check and the commit: granting one locks the connection's
/// row, which this transaction holds `FOR UPDATE`, and the statement's
/// snapshot is taken after that lock, so it sees every lease granted before.
const UPDATE: &str = "WITH released AS ( \
         UPDATE leases SET holder = NULL, expires_at = NULL \
         WHERE $10 AND connection_id = $1 AND fencing_token = $9 \
     ) \
     UPDATE connections SET provider = $2, kind = $3, external_id = $4, team_id = $5, \
         version = $6, next_refresh_at = $7, record = $8::jsonb, identity_mac = $11 \
     WHERE id = $1 AND ($9::bigint IS NULL OR NOT EXISTS ( \
         SELECT 1 FROM leases WHERE connection_id = $1 AND fencing_token > $9)) \
     RETURNING nextval('store_writes')";

/// Applies `edit` to the stored connection `id` if `guard` holds.
pub async fn update(
    tx: &mut PgConnection,
    id: &str,
    guard: WriteGuard,
    edit: Edit,
    now: DateTime<Utc>,
    rows: &RowMac,
) -> Result<Written, StoreError> {
    let stored = lock_by_id(tx, id, rows)
        .await?
        .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
    let (fence, release) = match guard {
        WriteGuard::Latest => (None, false),
        WriteGuard::Version(expected) if expected != stored.version => {
            return Err(StoreError::VersionConflict {
                id: id.to_string(),
                expected,
                current: stored.version,
            });
        }
        WriteGuard::Version(_) => (None, false),
        WriteGuard::Fenced(token) => (Some(token), false),
        WriteGuard::FencedLast(token) => (Some(token), true),
    };
    let mut conn = stored.clone();
    edit(&mut conn);
    // The identity and bookkeeping fields belong to the store.
    conn.id = stored.id;
    conn.created_at = stored.created_at;
    conn.version = stored.version + 1;
    conn.updated_at = now;
    let fence_token = fence.map(|t| i64::try_from(t.0).unwrap_or(i64::MAX));
    let (record, version) = row_values(&conn)?;
    let written = bind_row(sqlx::query(UPDATE), &conn, version, &record)
        .bind(fence_token)
        .bind(release)
        .bind(rows.sign(&conn))
        .execute(&mut *tx)
        .await
        .map_err(StoreError::database("write a connection"))?;
    if written.rows_affected() == 0 {
        let token = fence.expect("only a fenced update can be refused");
        return Err(stale_lease(tx, id, token).await);
    }
    Ok(Written {
        conn,
        bytes: record.len() as u64,
    })
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
    rows: &RowMac,
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
        return update(tx, &id, WriteGuard::Latest, edit, now, rows).await;
    }
    let mut conn = new;
    edit(&mut conn);
    conn.version = 1;
    conn.updated_at = now;
    let bytes = insert_row(tx, &conn, rows).await?;
    Ok(Written { conn, bytes })
}

/// Inserts `conn` exactly as it is (version and times kept) unless a row
/// with its id exists; whether it did.
pub async fn insert_as_is(
    tx: &mut PgConnection,
    conn: &Connection,
    rows: &RowMac,
) -> Result<bool, StoreError> {
    let before: Option<i64> = sqlx::query_scalar("SELECT version FROM connections WHERE id = $1")
        .bind(&conn.id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::database("look up a connection"))?;
    if before.is_some() {
        return Ok(false);
    }
    insert_row(tx, conn, rows).await?;
    Ok(true)
}

/// The record as JSON and its version as PostgreSQL keeps it.
fn row_values(conn: &Connection) -> Result<(String, i64), StoreError> {
    let record = serde_json::to_string(conn).map_err(|e| StoreError::WriteFailed(e.to_string()))?;
    let version = i64::try_from(conn.version)
        .map_err(|_| StoreError::WriteFailed(format!("connection {} version overflow", conn.id)))?;
    Ok((record, version))
}

/// Binds the row's columns as $1..$8.
fn bind_row<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    conn: &'q Connection,
    version: i64,
    record: &'q str,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(&conn.id)
        .bind(text_of(conn.provider))
        .bind(text_of(conn.kind))
        .bind(&conn.external_id)
        .bind(&conn.team_id)
        .bind(version)
        .bind(conn.next_refresh_at)
        .bind(record)
}

/// Inserts `conn`, drawing the store's next generation in the same statement.
async fn insert_row(
    tx: &mut PgConnection,
    conn: &Connection,
    rows: &RowMac,
) -> Result<u64, StoreError> {
    let (record, version) = row_values(conn)?;
    bind_row(
        sqlx::query(
            "INSERT INTO connections (id, provider, kind, external_id, team_id, version, \
             next_refresh_at, record, identity_mac) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9) RETURNING nextval('store_writes')",
        ),
        conn,
        version,
        &record,
    )
    .bind(rows.sign(conn))
    .execute(&mut *tx)
    .await
    .map_err(StoreError::database("write a connection"))?;
    Ok(record.len() as u64)
}
