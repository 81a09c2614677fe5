//! [`AuditTrail`] over PostgreSQL: every instance appends to one table, so
//! the trail of hand-outs is whole whichever instance served them.

use sqlx::PgPool;

use crate::audit::{AuditEntry, AuditError};
use crate::store::audit_log::AuditTrail;

/// The `audit_log` table, only ever inserted into.
pub struct PgAudit {
    pool: PgPool,
}

impl PgAudit {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait::async_trait]
impl AuditTrail for PgAudit {
    /// Returns once the insert has committed; an error means it did not.
    async fn record(&self, entry: AuditEntry) -> Result<(), AuditError> {
        entry.log();
        sqlx::query(
            "INSERT INTO audit_log (at, action, key_id, connection_id, outcome)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(entry.at)
        .bind(entry.action)
        .bind(&entry.key_id)
        .bind(&entry.connection_id)
        .bind(&entry.outcome)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "audit table insert failed");
            AuditError::Database(e)
        })?;
        Ok(())
    }
}
