//! Exports and erasure on the SQL store.

use async_trait::async_trait;
use sqlx::Row;

use base::sql::{Dialect, SqlStore, word};

use crate::privacy::{ExportInfo, ExportStatus};
use crate::store::PrivacyStore;
use base::error::Result;
use base::types::now_ms;

#[async_trait]
impl PrivacyStore for SqlStore {
    async fn create_export(&self, user_id: &str, export: &ExportInfo) -> Result<()> {
        sqlx::query(
            "INSERT INTO exports (id, user_id, status, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&export.id)
        .bind(user_id)
        .bind(export.status.as_str())
        .bind(export.created_at)
        .bind(export.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn finish_export(
        &self,
        id: &str,
        outcome: std::result::Result<&str, &str>,
    ) -> Result<()> {
        let (status, content, error) = match outcome {
            Ok(content) => (ExportStatus::Ready, content, ""),
            Err(error) => (ExportStatus::Failed, "", error),
        };
        sqlx::query(
            "UPDATE exports SET status = $1, content = $2, error = $3, finished_at = $4 \
             WHERE id = $5",
        )
        .bind(status.as_str())
        .bind(content)
        .bind(error)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn exports(&self, user_id: &str, now: i64) -> Result<Vec<ExportInfo>> {
        let rows = sqlx::query(
            "SELECT id, status, created_at, finished_at, expires_at, \
             CAST(LENGTH(content) AS BIGINT) AS size FROM exports \
             WHERE user_id = $1 AND expires_at > $2 ORDER BY created_at DESC, id",
        )
        .bind(user_id)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ExportInfo {
                    id: r.try_get("id")?,
                    status: word(r, "status", ExportStatus::parse)?,
                    created_at: r.try_get("created_at")?,
                    finished_at: r.try_get("finished_at")?,
                    expires_at: r.try_get("expires_at")?,
                    size_bytes: r.try_get("size")?,
                })
            })
            .collect()
    }

    async fn export_content(&self, user_id: &str, id: &str, now: i64) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT content FROM exports WHERE id = $1 AND user_id = $2 AND status = 'ready' \
             AND expires_at > $3",
        )
        .bind(id)
        .bind(user_id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get("content")).transpose()?)
    }

    async fn erase_user(&self, user_id: &str, placeholder: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for statement in [
            // every message about the account, whatever address it went to (its own, an old
            // one), before the row forgets the address
            "DELETE FROM mail_outbox WHERE user_id = $1 \
             OR recipient = (SELECT email FROM users WHERE id = $1)",
            "DELETE FROM conversations WHERE user_id = $1",
            "DELETE FROM sessions WHERE user_id = $1",
            "UPDATE usage_events SET api_key_id = NULL WHERE user_id = $1",
            "DELETE FROM api_keys WHERE user_id = $1",
            "DELETE FROM identities WHERE user_id = $1",
            "DELETE FROM sso_states WHERE user_id = $1",
            "DELETE FROM auth_tokens WHERE user_id = $1",
            "DELETE FROM collection_members WHERE user_id = $1",
            "DELETE FROM exports WHERE user_id = $1",
            "DELETE FROM upload_jobs WHERE user_id = $1",
            "DELETE FROM answer_feedback WHERE user_id = $1",
            // what the user asked of the domain's sites (with the people named in them)
            "DELETE FROM site_actions WHERE user_id = $1",
            // invoices stay (the books need them), by user id and without Stripe's page (which
            // shows the customer); the subscriptions and the link to the payment account go
            "DELETE FROM billing_subscriptions WHERE user_id = $1",
            "UPDATE billing_invoices SET hosted_invoice_url = '' WHERE user_id = $1",
            "DELETE FROM billing_customers WHERE user_id = $1",
            "UPDATE audit_log SET detail = '{}', address = '' WHERE subject_id = $1",
            "UPDATE audit_log SET detail = '{}', address = '' WHERE actor_id = $1",
        ] {
            sqlx::query(statement)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "UPDATE users SET email = $1, password_hash = '!', disabled = 1, \
             email_verified = 0, erased_at = $2 WHERE id = $3",
        )
        .bind(placeholder)
        .bind(now_ms())
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn drop_deleted(&self) -> Result<()> {
        match self.dialect {
            Dialect::Sqlite => {
                sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(&self.pool)
                    .await?;
            }
            Dialect::Postgres => {
                for table in [
                    "messages",
                    "conversations",
                    "sessions",
                    "api_keys",
                    "identities",
                    "users",
                ] {
                    sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM {table}")))
                        .execute(&self.pool)
                        .await?;
                }
            }
        }
        Ok(())
    }
}
