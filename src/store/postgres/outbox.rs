//! [`OutboxStore`] over PostgreSQL: the outbox every instance shares, so an
//! event queued by one instance is retried by any other. A claim is a
//! `claimed_until` time set under `FOR UPDATE SKIP LOCKED`, so two
//! instances never take the same delivery at once.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgPool, Row};

use crate::domain::Delivery;
use crate::store::error::StoreError;
use crate::store::outbox::{DeliveryFilter, OutboxStore};

/// The outbox in the database `pool` is on.
pub struct PgOutbox {
    pool: PgPool,
}

impl PgOutbox {
    /// The outbox on `pool`, whose schema [`super::migrate`] has brought up
    /// to date (the pool of a connected [`super::PgConnectionStore`]).
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

fn delivery_of(row: &sqlx::postgres::PgRow) -> Result<Delivery, StoreError> {
    row.try_get::<Json<Delivery>, _>("delivery")
        .map(|Json(d)| d)
        .map_err(StoreError::database("decode a webhook delivery"))
}

fn all_of(rows: &[sqlx::postgres::PgRow]) -> Result<Vec<Delivery>, StoreError> {
    rows.iter().map(delivery_of).collect()
}

#[async_trait::async_trait]
impl OutboxStore for PgOutbox {
    async fn enqueue(&self, deliveries: &[Delivery]) -> Result<(), StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::database("queue webhook events"))?;
        for d in deliveries {
            sqlx::query(
                "INSERT INTO webhook_deliveries \
                 (id, event_type, team_id, connection_id, status, next_attempt_at, created_at, delivery) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&d.id)
            .bind(&d.event_type)
            .bind(&d.team_id)
            .bind(&d.connection_id)
            .bind(d.status.as_str())
            .bind(d.next_attempt_at)
            .bind(d.created_at)
            .bind(Json(d))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::database("queue a webhook event"))?;
        }
        tx.commit()
            .await
            .map_err(StoreError::database("queue webhook events"))
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(
            "UPDATE webhook_deliveries SET claimed_until = $2 WHERE id IN ( \
               SELECT id FROM webhook_deliveries \
               WHERE status = 'pending' AND next_attempt_at <= $1 \
                 AND (claimed_until IS NULL OR claimed_until <= $1) \
               ORDER BY next_attempt_at, created_at LIMIT $3 \
               FOR UPDATE SKIP LOCKED) \
             RETURNING delivery",
        )
        .bind(now)
        .bind(until)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::database("claim due webhook deliveries"))?;
        let mut due = all_of(&rows)?;
        due.sort_by_key(|d| (d.next_attempt_at, d.created_at));
        Ok(due)
    }

    async fn record(&self, d: &Delivery) -> Result<(), StoreError> {
        write_row(&self.pool, d)
            .await
            .map_err(StoreError::database("record a webhook attempt"))
    }

    async fn get(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        let row = sqlx::query("SELECT delivery FROM webhook_deliveries WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::database("read a webhook delivery"))?;
        row.as_ref().map(delivery_of).transpose()
    }

    async fn list(&self, filter: &DeliveryFilter) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(
            "SELECT delivery FROM webhook_deliveries \
             WHERE ($1::text IS NULL OR status = $1) \
               AND ($2::text IS NULL OR event_type = $2) \
               AND ($3::text[] IS NULL OR team_id = ANY($3)) \
               AND ($4::text IS NULL OR connection_id = $4) \
             ORDER BY created_at DESC, id DESC LIMIT $5",
        )
        .bind(filter.status.map(|s| s.as_str()))
        .bind(&filter.event_type)
        .bind(&filter.teams)
        .bind(&filter.connection_id)
        .bind(filter.limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::database("list webhook deliveries"))?;
        all_of(&rows)
    }

    async fn requeue(&self, id: &str, now: DateTime<Utc>) -> Result<Option<Delivery>, StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::database("requeue a webhook delivery"))?;
        let row = sqlx::query("SELECT delivery FROM webhook_deliveries WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::database("requeue a webhook delivery"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut d = delivery_of(&row)?;
        d.requeued(now);
        write_row(&mut *tx, &d)
            .await
            .map_err(StoreError::database("requeue a webhook delivery"))?;
        tx.commit()
            .await
            .map_err(StoreError::database("requeue a webhook delivery"))?;
        Ok(Some(d))
    }

    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row = sqlx::query(
            "SELECT min(next_attempt_at) AS due FROM webhook_deliveries WHERE status = 'pending'",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::database("read the next webhook due"))?;
        row.try_get("due")
            .map_err(StoreError::database("read the next webhook due"))
    }

    async fn prune(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        let done = sqlx::query(
            "DELETE FROM webhook_deliveries WHERE status <> 'pending' AND created_at < $1",
        )
        .bind(before)
        .execute(&self.pool)
        .await
        .map_err(StoreError::database("prune webhook deliveries"))?;
        Ok(done.rows_affected() as usize)
    }
}

/// Writes `d` over its row (and the columns queries use), unclaimed.
async fn write_row<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    d: &Delivery,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE webhook_deliveries SET status = $2, next_attempt_at = $3, \
         claimed_until = NULL, delivery = $4 WHERE id = $1",
    )
    .bind(&d.id)
    .bind(d.status.as_str())
    .bind(d.next_attempt_at)
    .bind(Json(d))
    .execute(executor)
    .await?;
    Ok(())
}
