//! [`ExportJobStore`] over PostgreSQL, so that every instance on one
//! database sees every job and serves every download: a job is a row
//! holding its JSON, a file is a row of its size and chunk count, its bytes
//! are `bytea` chunks written and read one at a time, never whole.

use std::io::{self, Write};
use std::time::Duration;

use futures::TryStreamExt;
use sqlx::types::Json;
use sqlx::{PgPool, Row};
use tokio::sync::mpsc;

use crate::domain::{ExportJob, ExportStatus};
use crate::store::error::StoreError;
use crate::store::export_jobs::{ExportJobStore, FileReader, RenderFile};

/// A file is stored in chunks of this many bytes (the last one shorter).
const CHUNK: usize = 512 * 1024;

/// Export jobs and their files in the database `pool` is on.
pub struct PgExportJobs {
    pool: PgPool,
}

impl PgExportJobs {
    /// The jobs on `pool`, whose schema [`super::migrate`] has brought up
    /// to date (the pool of a connected [`super::PgConnectionStore`]).
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

fn status_name(status: ExportStatus) -> &'static str {
    match status {
        ExportStatus::Queued => "queued",
        ExportStatus::Running => "running",
        ExportStatus::Completed => "completed",
        ExportStatus::Failed => "failed",
    }
}

fn job_of(row: &sqlx::postgres::PgRow) -> Result<ExportJob, StoreError> {
    row.try_get::<Json<ExportJob>, _>("job")
        .map(|Json(job)| job)
        .map_err(StoreError::database("decode an export job"))
}

#[async_trait::async_trait]
impl ExportJobStore for PgExportJobs {
    async fn create(&self, job: &ExportJob) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO export_jobs (id, owner, status, attempts, created_at, heartbeat_at, job) \
             VALUES ($1, $2, $3, $4, $5, now(), $6)",
        )
        .bind(&job.id)
        .bind(&job.owner)
        .bind(status_name(job.status))
        .bind(job.attempts as i32)
        .bind(job.created_at)
        .bind(Json(job))
        .execute(&self.pool)
        .await
        .map_err(StoreError::database("record an export job"))?;
        Ok(())
    }

    async fn update(&self, job: &ExportJob) -> Result<(), StoreError> {
        // Fenced by attempts: a run taken over must not overwrite the new one.
        let updated = sqlx::query(
            "UPDATE export_jobs SET status = $2, attempts = $3, heartbeat_at = now(), job = $4 \
             WHERE id = $1 AND attempts <= $3",
        )
        .bind(&job.id)
        .bind(status_name(job.status))
        .bind(job.attempts as i32)
        .bind(Json(job))
        .execute(&self.pool)
        .await
        .map_err(StoreError::database("update an export job"))?;
        if updated.rows_affected() == 1 {
            return Ok(());
        }
        match self.get(&job.id).await? {
            Some(_) => Err(StoreError::TakenOver(job.id.clone())),
            None => Err(StoreError::NotFound(job.id.clone())),
        }
    }

    async fn claim(
        &self,
        from: &ExportJob,
        to: &ExportJob,
        stale_after: Duration,
    ) -> Result<bool, StoreError> {
        // One statement: of concurrent claims from one state, one matches.
        let claimed = sqlx::query(
            "UPDATE export_jobs SET status = $4, attempts = $5, heartbeat_at = now(), job = $6 \
             WHERE id = $1 AND status = $2 AND attempts = $3 \
             AND (status <> 'running' OR heartbeat_at < now() - make_interval(secs => $7))",
        )
        .bind(&from.id)
        .bind(status_name(from.status))
        .bind(from.attempts as i32)
        .bind(status_name(to.status))
        .bind(to.attempts as i32)
        .bind(Json(to))
        .bind(stale_after.as_secs_f64())
        .execute(&self.pool)
        .await
        .map_err(StoreError::database("claim an export job"))?;
        Ok(claimed.rows_affected() == 1)
    }

    async fn get(&self, id: &str) -> Result<Option<ExportJob>, StoreError> {
        let row = sqlx::query("SELECT job FROM export_jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::database("read an export job"))?;
        row.as_ref().map(job_of).transpose()
    }

    async fn list(&self) -> Result<Vec<ExportJob>, StoreError> {
        let rows = sqlx::query("SELECT job FROM export_jobs ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::database("list export jobs"))?;
        rows.iter().map(job_of).collect()
    }

    async fn delete(&self, ids: &[String]) -> Result<(), StoreError> {
        // The files and their chunks go with the jobs (ON DELETE CASCADE).
        sqlx::query("DELETE FROM export_jobs WHERE id = ANY($1)")
            .bind(ids)
            .execute(&self.pool)
            .await
            .map_err(StoreError::database("delete export jobs"))?;
        Ok(())
    }

    async fn write_file(&self, id: &str, render: RenderFile) -> Result<u64, StoreError> {
        let (chunks, mut received) = mpsc::channel(2);
        let rendering = tokio::task::spawn_blocking(move || {
            let mut out = ChunkWriter {
                chunk: Vec::with_capacity(CHUNK),
                chunks,
            };
            let bytes = render(&mut out)?;
            out.send()?;
            Ok::<_, io::Error>(bytes)
        });
        let failed = StoreError::database;
        let mut tx = self.pool.begin().await.map_err(failed("begin a file"))?;
        sqlx::query("DELETE FROM export_files WHERE job_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(failed("replace an export file"))?;
        let file_id = uuid::Uuid::new_v4();
        let inserted = sqlx::query(
            "INSERT INTO export_files (file_id, job_id, bytes, chunks) \
             SELECT $1, id, 0, 0 FROM export_jobs WHERE id = $2",
        )
        .bind(file_id)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(failed("record an export file"))?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::NotFound(id.to_string()));
        }
        let mut seq: i32 = 0;
        while let Some(chunk) = received.recv().await {
            sqlx::query("INSERT INTO export_chunks (file_id, seq, bytes) VALUES ($1, $2, $3)")
                .bind(file_id)
                .bind(seq)
                .bind(chunk)
                .execute(&mut *tx)
                .await
                .map_err(failed("write an export chunk"))?;
            seq += 1;
        }
        let bytes = rendering
            .await
            .map_err(io::Error::other)
            .and_then(|rendered| rendered)
            .map_err(|e| StoreError::WriteFailed(format!("rendering export {id}: {e}")))?;
        sqlx::query("UPDATE export_files SET bytes = $2, chunks = $3 WHERE file_id = $1")
            .bind(file_id)
            .bind(bytes as i64)
            .bind(seq)
            .execute(&mut *tx)
            .await
            .map_err(failed("record an export file"))?;
        tx.commit().await.map_err(failed("commit an export file"))?;
        Ok(bytes)
    }

    async fn open_file(&self, id: &str) -> Result<Option<FileReader>, StoreError> {
        let row = sqlx::query("SELECT file_id, chunks FROM export_files WHERE job_id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::database("open an export file"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let (file_id, count): (uuid::Uuid, i32) =
            (|| Ok((row.try_get("file_id")?, row.try_get("chunks")?)))()
                .map_err(StoreError::database("open an export file"))?;
        let pool = self.pool.clone();
        let chunks = futures::stream::try_unfold(0, move |seq| {
            let pool = pool.clone();
            async move {
                if seq >= count {
                    return Ok::<_, io::Error>(None);
                }
                let chunk = read_chunk(&pool, file_id, seq).await?;
                Ok(Some((io::Cursor::new(chunk), seq + 1)))
            }
        });
        Ok(Some(Box::pin(tokio_util::io::StreamReader::new(
            chunks.into_stream(),
        ))))
    }

    async fn delete_file(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM export_files WHERE job_id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(StoreError::database("delete an export file"))?;
        Ok(())
    }
}

/// Chunk `seq` of file `file_id`; one gone means the file was replaced or
/// removed while it was read, and the download ends with an error rather
/// than with bytes of another file.
async fn read_chunk(pool: &PgPool, file_id: uuid::Uuid, seq: i32) -> io::Result<Vec<u8>> {
    let row = sqlx::query("SELECT bytes FROM export_chunks WHERE file_id = $1 AND seq = $2")
        .bind(file_id)
        .bind(seq)
        .fetch_optional(pool)
        .await
        .map_err(io::Error::other)?;
    let row = row.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "the export file was removed while it was read",
        )
    })?;
    row.try_get("bytes").map_err(io::Error::other)
}

/// Cuts what a render writes into chunks and hands each to the writing
/// task; the channel's bound keeps at most a few chunks in memory.
struct ChunkWriter {
    chunk: Vec<u8>,
    chunks: mpsc::Sender<Vec<u8>>,
}

impl ChunkWriter {
    /// Hands over the chunk so far, if it holds anything.
    fn send(&mut self) -> io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK));
        self.chunks
            .blocking_send(full)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the file write stopped"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(CHUNK - self.chunk.len());
        self.chunk.extend_from_slice(&buf[..n]);
        if self.chunk.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
