//! [`RunStore`] over PostgreSQL: the recent finished runs of every
//! instance, one row each, the most recent by start kept.

use sqlx::types::Json;
use sqlx::{PgPool, Row};

use crate::domain::{RefreshRun, RunStatus};
use crate::store::error::StoreError;
use crate::store::runs::{RunStore, StoredRun};

/// The runs in the `refresh_runs` table. As with the runs file, only
/// finished runs are written: one a crash interrupted would never finish,
/// and would show as running forever on every instance.
pub struct PgRuns {
    pool: PgPool,
    keep: i64,
}

impl PgRuns {
    /// Keeps the `keep` most recent runs (at least one).
    pub fn new(pool: PgPool, keep: usize) -> Self {
        Self {
            pool,
            keep: i64::try_from(keep.max(1)).unwrap_or(i64::MAX),
        }
    }
}

fn run_of(row: &sqlx::postgres::PgRow) -> Result<RefreshRun, StoreError> {
    row.try_get::<Json<StoredRun>, _>("run")
        .map(|j| j.0.into_run())
        .map_err(StoreError::database("read a refresh run"))
}

#[async_trait::async_trait]
impl RunStore for PgRuns {
    async fn save(&self, run: &RefreshRun) -> Result<(), StoreError> {
        if run.status != RunStatus::Finished {
            return Ok(());
        }
        // The trim runs after the upsert, in one transaction, so that it
        // sees the new run.
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::database("begin"))?;
        sqlx::query(
            "INSERT INTO refresh_runs (id, started_at, run) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET started_at = EXCLUDED.started_at, run = EXCLUDED.run",
        )
        .bind(&run.id)
        .bind(run.started_at)
        .bind(Json(StoredRun::from_run(run)))
        .execute(&mut *tx)
        .await
        .map_err(StoreError::database("save a refresh run"))?;
        sqlx::query(
            "DELETE FROM refresh_runs WHERE id NOT IN (
                 SELECT id FROM refresh_runs ORDER BY started_at DESC, id DESC LIMIT $1)",
        )
        .bind(self.keep)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::database("drop old refresh runs"))?;
        tx.commit().await.map_err(StoreError::database("commit"))
    }

    async fn recent(&self, n: usize) -> Result<Vec<RefreshRun>, StoreError> {
        let rows =
            sqlx::query("SELECT run FROM refresh_runs ORDER BY started_at DESC, id DESC LIMIT $1")
                .bind(i64::try_from(n).unwrap_or(i64::MAX))
                .fetch_all(&self.pool)
                .await
                .map_err(StoreError::database("list refresh runs"))?;
        rows.iter().map(run_of).collect()
    }

    async fn get(&self, id: &str) -> Result<Option<RefreshRun>, StoreError> {
        let row = sqlx::query("SELECT run FROM refresh_runs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::database("get a refresh run"))?;
        row.as_ref().map(run_of).transpose()
    }
}
