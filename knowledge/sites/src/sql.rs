//! [`SiteActionStore`] on the same `SqlStore`.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use base::sql::{SqlStore, word};

use crate::store::{ActionStatus, SiteAction, SiteActionStore};
use base::error::{Error, Result};
use base::types::now_ms;

const COLUMNS: &str =
    "key, site, user_id, action, request, status, outcome, created_at, finished_at";

fn json_text(v: &serde_json::Value) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Internal(e.to_string()))
}

fn action_from_row(row: &AnyRow) -> Result<SiteAction> {
    let request: String = row.try_get("request")?;
    let outcome: Option<String> = row.try_get("outcome")?;
    Ok(SiteAction {
        key: row.try_get("key")?,
        site: row.try_get("site")?,
        user_id: row.try_get("user_id")?,
        action: row.try_get("action")?,
        request: serde_json::from_str(&request).unwrap_or(serde_json::Value::Null),
        status: word(row, "status", ActionStatus::parse)?,
        outcome: outcome.and_then(|o| serde_json::from_str(&o).ok()),
        created_at: row.try_get("created_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

#[async_trait]
impl SiteActionStore for SqlStore {
    async fn claim_site_action(&self, a: &SiteAction) -> Result<Option<SiteAction>> {
        let inserted = sqlx::query(
            "INSERT INTO site_actions (key, site, user_id, action, request, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, 'pending', $6) ON CONFLICT (key) DO NOTHING",
        )
        .bind(&a.key)
        .bind(&a.site)
        .bind(&a.user_id)
        .bind(&a.action)
        .bind(json_text(&a.request)?)
        .bind(now_ms())
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(None);
        }
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM site_actions WHERE key = $1"
        )))
        .bind(&a.key)
        .fetch_one(&self.pool)
        .await?;
        action_from_row(&row).map(Some)
    }

    async fn finish_site_action(
        &self,
        key: &str,
        status: ActionStatus,
        outcome: &serde_json::Value,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE site_actions SET status = $1, outcome = $2, finished_at = $3 WHERE key = $4",
        )
        .bind(status.as_str())
        .bind(json_text(outcome)?)
        .bind(now_ms())
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn release_site_action(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM site_actions WHERE key = $1 AND status = 'pending'")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn site_actions(&self, user_id: &str, site: &str) -> Result<Vec<SiteAction>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM site_actions WHERE user_id = $1 AND site = $2 \
             ORDER BY created_at DESC, key"
        )))
        .bind(user_id)
        .bind(site)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(action_from_row).collect()
    }
}
