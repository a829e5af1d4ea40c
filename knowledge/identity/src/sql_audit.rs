//! The audit log on the SQL store.

use async_trait::async_trait;
use sqlx::Row;

use base::sql::SqlStore;

use crate::audit::AuditStore;
use crate::audit::{AuditCursor, AuditEntry, AuditEvent};
use base::error::Result;

#[async_trait]
impl AuditStore for SqlStore {
    async fn record_audit(&self, entry: &AuditEntry) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (id, at, event, actor_id, subject_id, address, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&entry.id)
        .bind(entry.at)
        .bind(entry.event.as_str())
        .bind(&entry.actor_id)
        .bind(&entry.subject_id)
        .bind(&entry.address)
        .bind(entry.detail.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn audit_entries(
        &self,
        event: Option<AuditEvent>,
        user_id: Option<&str>,
        after: Option<&AuditCursor>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT id, at, event, actor_id, subject_id, address, detail FROM audit_log \
             WHERE ($1 = '' OR event = $1) \
             AND ($2 = '' OR subject_id = $2 OR actor_id = $2) \
             AND (at < $3 OR (at = $3 AND id < $4)) \
             ORDER BY at DESC, id DESC LIMIT $5",
        )
        .bind(event.map_or("", AuditEvent::as_str))
        .bind(user_id.unwrap_or_default())
        .bind(after.map_or(i64::MAX, |c| c.at))
        .bind(after.map_or("", |c| c.id.as_str()))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    event: AuditEvent::parse(&r.try_get::<String, _>("event")?)?,
                    actor_id: r.try_get("actor_id")?,
                    subject_id: r.try_get("subject_id")?,
                    address: r.try_get("address")?,
                    detail: serde_json::from_str(&r.try_get::<String, _>("detail")?)
                        .unwrap_or(serde_json::Value::Null),
                })
            })
            .collect()
    }

    async fn purge_audit(&self, before: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM audit_log WHERE at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
