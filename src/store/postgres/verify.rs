//! `store verify` on PostgreSQL: every row's identity HMAC and every secret
//! checked, every problem named, as the file store's verify does.

use sqlx::Row;

use super::PgConnectionStore;
use crate::domain::Connection;
use crate::store::backup::VerifyReport;
use crate::store::error::StoreError;
use crate::store::secret_check;
use crate::store::storage::ConnectionStore;

impl PgConnectionStore {
    /// Reads every row (in one statement), checks its identity HMAC and
    /// opens each secret where it sits. [`StoreError::Unsound`] lists every
    /// problem found.
    pub async fn verify(&self) -> Result<VerifyReport, StoreError> {
        let found = sqlx::query("SELECT id, record, identity_mac FROM connections ORDER BY id")
            .fetch_all(&self.inner.pool)
            .await
            .map_err(StoreError::database("read the connections"))?;
        let mut problems = Vec::new();
        let mut records: Vec<Connection> = Vec::with_capacity(found.len());
        for row in &found {
            let id: String = row
                .try_get("id")
                .map_err(StoreError::database("read the connections"))?;
            match row.try_get::<sqlx::types::Json<Connection>, _>("record") {
                Ok(sqlx::types::Json(record)) => {
                    let mac: Option<String> = row.try_get("identity_mac").unwrap_or_default();
                    if let Err(e) = self.inner.rows.check(&record, mac.as_deref()) {
                        problems.push(e.to_string());
                    }
                    records.push(record);
                }
                Err(e) => {
                    problems.push(format!("connection {id}: its record does not parse ({e})"))
                }
            }
        }
        let all: Vec<&Connection> = records.iter().collect();
        let secrets = secret_check::check_all(&all, self.inner.secrets.cipher());
        problems.extend(secrets.problems);
        if !problems.is_empty() {
            return Err(StoreError::Unsound {
                what: "the PostgreSQL store".into(),
                problems,
            });
        }
        let generation = self.ready().await?.generation;
        Ok(VerifyReport {
            connections: records.len(),
            secrets: secrets.opened,
            generation,
            census: secrets.census,
        })
    }
}
