//! [`DeletionStore`] over PostgreSQL: the `data_deletion_requests` table,
//! so that any instance shows a request's status page.

use sqlx::PgPool;
use sqlx::types::Json;

use crate::domain::DeletionRequest;
use crate::store::deletions::DeletionStore;
use crate::store::error::StoreError;

pub struct PgDeletions {
    pool: PgPool,
}

impl PgDeletions {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait::async_trait]
impl DeletionStore for PgDeletions {
    async fn save(&self, request: &DeletionRequest) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO data_deletion_requests (code, received_at, request) VALUES ($1, $2, $3)
             ON CONFLICT (code) DO UPDATE SET request = EXCLUDED.request",
        )
        .bind(&request.code)
        .bind(request.received_at)
        .bind(Json(request))
        .execute(&self.pool)
        .await
        .map_err(StoreError::database("save a data deletion request"))?;
        Ok(())
    }

    async fn get(&self, code: &str) -> Result<Option<DeletionRequest>, StoreError> {
        let found: Option<Json<DeletionRequest>> =
            sqlx::query_scalar("SELECT request FROM data_deletion_requests WHERE code = $1")
                .bind(code)
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::database("read a data deletion request"))?;
        Ok(found.map(|j| j.0))
    }
}
