//! Upload jobs on the SQL store.

use async_trait::async_trait;
use sqlx::Row;

use base::error::Result;
use base::sql::{SqlStore, word};

use crate::sources::ProgressSnapshot;
use crate::store::{UploadJob, UploadStatus, UploadStore};

const COLUMNS: &str = "id, collection, user_id, filename, bytes, status, documents_total, \
                       documents_done, passages_total, passages_done, report, error, \
                       cancel_requested, created_at, updated_at, finished_at";

fn count(r: &sqlx::any::AnyRow, column: &str) -> Result<u64> {
    Ok(u64::try_from(r.try_get::<i64, _>(column)?).unwrap_or(0))
}

fn upload_of(r: &sqlx::any::AnyRow) -> Result<UploadJob> {
    let report: String = r.try_get("report")?;
    Ok(UploadJob {
        id: r.try_get("id")?,
        collection: r.try_get("collection")?,
        user_id: r.try_get("user_id")?,
        filename: r.try_get("filename")?,
        bytes: r.try_get("bytes")?,
        status: word(r, "status", UploadStatus::parse)?,
        progress: ProgressSnapshot {
            documents_total: count(r, "documents_total")?,
            documents_done: count(r, "documents_done")?,
            passages_total: count(r, "passages_total")?,
            passages_done: count(r, "passages_done")?,
        },
        report: serde_json::from_str(&report).unwrap_or(serde_json::Value::Null),
        error: r.try_get("error")?,
        cancel_requested: r.try_get::<i64, _>("cancel_requested")? != 0,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        finished_at: r.try_get("finished_at")?,
    })
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[async_trait]
impl UploadStore for SqlStore {
    async fn insert_upload(&self, job: &UploadJob) -> Result<()> {
        sqlx::query(
            "INSERT INTO upload_jobs (id, collection, user_id, filename, bytes, status, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&job.id)
        .bind(&job.collection)
        .bind(&job.user_id)
        .bind(&job.filename)
        .bind(job.bytes)
        .bind(job.status.as_str())
        .bind(job.created_at)
        .bind(job.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn upload(&self, id: &str) -> Result<Option<UploadJob>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM upload_jobs WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(upload_of).transpose()
    }

    async fn uploads(&self, collection: &str, limit: usize) -> Result<Vec<UploadJob>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM upload_jobs WHERE collection = $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2"
        )))
        .bind(collection)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(upload_of).collect()
    }

    async fn upload_progress(&self, id: &str, p: &ProgressSnapshot, now: i64) -> Result<bool> {
        // no row back: the job ended (or is gone), and its runner should stop too
        let cancel: Option<i64> = sqlx::query_scalar(
            "UPDATE upload_jobs SET documents_total = $2, documents_done = $3, \
             passages_total = $4, passages_done = $5, updated_at = $6 \
             WHERE id = $1 AND status = 'running' RETURNING cancel_requested",
        )
        .bind(id)
        .bind(signed(p.documents_total))
        .bind(signed(p.documents_done))
        .bind(signed(p.passages_total))
        .bind(signed(p.passages_done))
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(cancel.is_none_or(|c| c != 0))
    }

    async fn cancel_upload(&self, id: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE upload_jobs SET cancel_requested = 1 WHERE id = $1 AND status = 'running'",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn finish_upload(
        &self,
        id: &str,
        status: UploadStatus,
        p: &ProgressSnapshot,
        report: &serde_json::Value,
        error: &str,
        now: i64,
    ) -> Result<()> {
        let report = if report.is_null() {
            String::new()
        } else {
            report.to_string()
        };
        sqlx::query(
            "UPDATE upload_jobs SET status = $2, documents_total = $3, documents_done = $4, \
             passages_total = $5, passages_done = $6, report = $7, error = $8, \
             updated_at = $9, finished_at = $9 WHERE id = $1 AND status = 'running'",
        )
        .bind(id)
        .bind(status.as_str())
        .bind(signed(p.documents_total))
        .bind(signed(p.documents_done))
        .bind(signed(p.passages_total))
        .bind(signed(p.passages_done))
        .bind(report)
        .bind(error)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn interrupt_stale_uploads(&self, before: i64, now: i64) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE upload_jobs SET status = 'interrupted', finished_at = $2, \
             error = 'the server running it stopped before it finished; upload the file again' \
             WHERE status = 'running' AND updated_at < $1",
        )
        .bind(before)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
