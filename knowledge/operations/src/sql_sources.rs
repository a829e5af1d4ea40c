//! Collections' sources and their items on the SQL store.

use async_trait::async_trait;
use sqlx::Row;

use base::sql::SqlStore;

use crate::sources::{Source, SourceKind};
use crate::store::{SourceItem, SourceStore};
use base::error::{Error, Result};

const SOURCE_COLUMNS: &str = "SELECT id, collection, kind, targets, schedule, max_misses, created_by, \
                              created_at, updated_at FROM sources";

fn source_of(r: &sqlx::any::AnyRow) -> Result<Source> {
    let targets: String = r.try_get("targets")?;
    Ok(Source {
        id: r.try_get("id")?,
        collection: r.try_get("collection")?,
        kind: SourceKind::parse(&r.try_get::<String, _>("kind")?)?,
        targets: serde_json::from_str(&targets)
            .map_err(|e| Error::Internal(format!("a source's stored targets: {e}")))?,
        schedule: r.try_get("schedule")?,
        max_misses: u32::try_from(r.try_get::<i64, _>("max_misses")?).unwrap_or(u32::MAX),
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn targets_json(source: &Source) -> Result<String> {
    serde_json::to_string(&source.targets).map_err(|e| Error::Internal(e.to_string()))
}

#[async_trait]
impl SourceStore for SqlStore {
    async fn insert_source(&self, s: &Source) -> Result<()> {
        sqlx::query(
            "INSERT INTO sources (id, collection, kind, targets, schedule, max_misses, created_by, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&s.id)
        .bind(&s.collection)
        .bind(s.kind.as_str())
        .bind(targets_json(s)?)
        .bind(&s.schedule)
        .bind(i64::from(s.max_misses))
        .bind(&s.created_by)
        .bind(s.created_at)
        .bind(s.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn sources(&self, collection: Option<&str>) -> Result<Vec<Source>> {
        let rows = match collection {
            Some(c) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{SOURCE_COLUMNS} WHERE collection = $1 ORDER BY created_at, id"
                )))
                .bind(c)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{SOURCE_COLUMNS} ORDER BY created_at, id"
                )))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(source_of).collect()
    }

    async fn source(&self, id: &str) -> Result<Option<Source>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SOURCE_COLUMNS} WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(source_of)
        .transpose()
    }

    async fn update_source(&self, s: &Source) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE sources SET targets = $1, schedule = $2, max_misses = $3, updated_at = $4 \
             WHERE id = $5",
        )
        .bind(targets_json(s)?)
        .bind(&s.schedule)
        .bind(i64::from(s.max_misses))
        .bind(s.updated_at)
        .bind(&s.id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_source(&self, id: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM source_items WHERE source_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM sources WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn source_items(&self, id: &str) -> Result<Vec<SourceItem>> {
        let rows = sqlx::query(
            "SELECT item, document_source, etag, last_modified, misses, seen_at \
             FROM source_items WHERE source_id = $1 ORDER BY item",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SourceItem {
                    item: r.try_get("item")?,
                    document_source: r.try_get("document_source")?,
                    etag: r.try_get("etag")?,
                    last_modified: r.try_get("last_modified")?,
                    misses: u32::try_from(r.try_get::<i64, _>("misses")?).unwrap_or(u32::MAX),
                    seen_at: r.try_get("seen_at")?,
                })
            })
            .collect()
    }

    async fn save_source_items(&self, id: &str, items: &[SourceItem]) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let exists: Option<String> = sqlx::query_scalar("SELECT id FROM sources WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Ok(false);
        }
        sqlx::query("DELETE FROM source_items WHERE source_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for item in items {
            sqlx::query(
                "INSERT INTO source_items (source_id, item, document_source, etag, \
                 last_modified, misses, seen_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(id)
            .bind(&item.item)
            .bind(&item.document_source)
            .bind(&item.etag)
            .bind(&item.last_modified)
            .bind(i64::from(item.misses))
            .bind(item.seen_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}
