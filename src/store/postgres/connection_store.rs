//! [`ConnectionStore`] over PostgreSQL: reads are plain queries, every write
//! is one transaction (a `write_all` too), leases are rows.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{Postgres, QueryBuilder, Row};

use super::identity;
use super::writes::{self, Written};
use super::{PgConnectionStore, leases};
use crate::domain::Connection;
use crate::store::error::StoreError;
use crate::store::secrets::SecretBox;
use crate::store::storage::{
    ConnectionStore, Edit, Lease, ListFilter, StoreStats, StoreSummary, Write, WriteGuard,
};

impl PgConnectionStore {
    /// Runs `writes` in one transaction; the records come back in order.
    /// Each row written draws the store's next generation in its statement.
    async fn transact(&self, writes: Vec<Write>) -> Result<Vec<Arc<Connection>>, StoreError> {
        let now = self.inner.clock.now();
        let mut tx = self.begin("begin").await?;
        let mut stored = Vec::with_capacity(writes.len());
        let mut bytes = 0;
        for write in writes {
            let Written { conn, bytes: b } = match write {
                Write::Upsert { new, edit } => {
                    writes::upsert(&mut tx, *new, edit, now, &self.inner.rows).await?
                }
                Write::Update { id, guard, edit } => {
                    writes::update(&mut tx, &id, guard, edit, now, &self.inner.rows).await?
                }
            };
            bytes += b;
            stored.push(Arc::new(conn));
        }
        tx.commit().await.map_err(StoreError::database("commit"))?;
        self.committed(bytes);
        Ok(stored)
    }

    async fn one(&self, write: Write) -> Result<Arc<Connection>, StoreError> {
        let mut stored = self.transact(vec![write]).await?;
        Ok(stored.pop().expect("one write stores one record"))
    }
}

#[async_trait::async_trait]
impl ConnectionStore for PgConnectionStore {
    async fn get(&self, id: &str) -> Result<Option<Arc<Connection>>, StoreError> {
        let row = sqlx::query("SELECT record, identity_mac FROM connections WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(StoreError::database("get a connection"))?;
        row.map(|r| writes::record_of(&r, &self.inner.rows).map(Arc::new))
            .transpose()
    }

    async fn list(&self, filter: &ListFilter) -> Result<Vec<Arc<Connection>>, StoreError> {
        let mut q = QueryBuilder::<Postgres>::new(
            "SELECT record, identity_mac FROM connections WHERE true",
        );
        if let Some(p) = filter.provider {
            q.push(" AND provider = ").push_bind(p.as_str());
        }
        if let Some(k) = filter.kind {
            q.push(" AND kind = ").push_bind(writes::text_of(k));
        }
        if let Some(t) = &filter.team_id {
            q.push(" AND team_id = ").push_bind(t.clone());
        }
        if let Some(due) = filter.due_before {
            q.push(" AND next_refresh_at <= ").push_bind(due);
        }
        // By id, as the file store lists them (`COLLATE "C"`: byte order,
        // whatever the database's collation).
        q.push(" ORDER BY id COLLATE \"C\"");
        let rows = q
            .build()
            .fetch_all(&self.inner.pool)
            .await
            .map_err(StoreError::database("list connections"))?;
        let sound = writes::sound_records(&rows, &self.inner.rows)?;
        Ok(sound.into_iter().map(Arc::new).collect())
    }

    async fn upsert(&self, new: Connection, edit: Edit) -> Result<Arc<Connection>, StoreError> {
        self.one(Write::Upsert {
            new: Box::new(new),
            edit,
        })
        .await
    }

    async fn update(
        &self,
        id: &str,
        guard: WriteGuard,
        edit: Edit,
    ) -> Result<Arc<Connection>, StoreError> {
        self.one(Write::Update {
            id: id.to_string(),
            guard,
            edit,
        })
        .await
    }

    async fn write_all(&self, writes: Vec<Write>) -> Result<Vec<Arc<Connection>>, StoreError> {
        self.transact(writes).await
    }

    async fn resign(&self) -> Result<(), StoreError> {
        let rows = &self.inner.rows;
        identity::sign_rows(&self.inner.pool, rows, identity::Signing::Resign).await?;
        let current = rows.key_id();
        sqlx::query("UPDATE store_meta SET value = $1 WHERE name = 'key_id'")
            .bind(current)
            .execute(&self.inner.pool)
            .await
            .map_err(StoreError::database("record the key id"))?;
        Ok(())
    }

    async fn delete(&self, id: &str) -> Result<(), StoreError> {
        let deleted =
            sqlx::query("DELETE FROM connections WHERE id = $1 RETURNING nextval('store_writes')")
                .bind(id)
                .execute(&self.inner.pool)
                .await
                .map_err(StoreError::database("delete a connection"))?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound(id.to_string()));
        }
        self.committed(0);
        Ok(())
    }

    async fn lease(&self, id: &str, holder: &str, ttl: Duration) -> Result<Lease, StoreError> {
        let now = self.inner.clock.now();
        leases::grant(&self.inner.pool, id, holder, ttl, now).await
    }

    async fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        leases::release(&self.inner.pool, lease).await
    }

    async fn claim(
        &self,
        ids: &[String],
        holder: &str,
        ttl: Duration,
    ) -> Result<Vec<(Lease, Arc<Connection>)>, StoreError> {
        let now = self.inner.clock.now();
        let claimed =
            leases::claim(&self.inner.pool, ids, holder, ttl, now, &self.inner.rows).await?;
        Ok(claimed
            .into_iter()
            .map(|(lease, conn)| (lease, Arc::new(conn)))
            .collect())
    }

    fn secrets(&self) -> Result<&SecretBox, StoreError> {
        Ok(&self.inner.secrets)
    }

    /// Ready while the database answers and takes writes (it is not a
    /// standby in recovery). The generation is the last value drawn from
    /// the `store_writes` sequence: it grows with every committed write.
    async fn ready(&self) -> Result<StoreSummary, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT count(*) FROM connections) AS connections, \
                    pg_is_in_recovery() AS standby, \
                    (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM store_writes) \
                        AS generation",
        )
        .fetch_one(&self.inner.pool)
        .await
        .map_err(StoreError::database("check readiness"))?;
        let read = StoreError::database("check readiness");
        let (connections, standby, generation): (i64, bool, i64) = (|| {
            Ok::<_, sqlx::Error>((
                row.try_get("connections")?,
                row.try_get("standby")?,
                row.try_get("generation")?,
            ))
        })()
        .map_err(read)?;
        if standby {
            return Err(StoreError::Unavailable(
                "the database is a standby in recovery and takes no writes".into(),
            ));
        }
        Ok(StoreSummary {
            connections: connections as usize,
            generation: generation as u64,
        })
    }

    fn stats(&self) -> StoreStats {
        self.store_stats()
    }

    async fn close(&self) {
        self.inner.pool.close().await;
    }
}
