//! The mail outbox on the SQL store.

use async_trait::async_trait;
use sqlx::Row;

use base::sql::SqlStore;

use crate::store::{MailStore, QueuedMail};
use base::error::Result;
use base::types::now_ms;

/// A message's bodies once it is sent or given up: they may hold live links (reset,
/// verification, address change), which must not outlive their delivery in the database.
const BLANK: &str = "text_body = '', html_body = ''";

#[async_trait]
impl MailStore for SqlStore {
    async fn enqueue_mail(&self, mail: &QueuedMail) -> Result<()> {
        sqlx::query(
            "INSERT INTO mail_outbox (id, recipient, subject, text_body, html_body, created_at, \
             attempts, next_attempt_at, user_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&mail.id)
        .bind(&mail.recipient)
        .bind(&mail.subject)
        .bind(&mail.text_body)
        .bind(&mail.html_body)
        .bind(now_ms())
        .bind(mail.attempts)
        .bind(mail.next_attempt_at)
        .bind(mail.user_id.as_deref())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn due_mail(&self, now: i64, limit: usize) -> Result<Vec<QueuedMail>> {
        let rows = sqlx::query(
            "SELECT id, user_id, recipient, subject, text_body, html_body, attempts, \
             next_attempt_at FROM mail_outbox WHERE sent_at IS NULL AND failed_at IS NULL \
             AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2",
        )
        .bind(now)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(QueuedMail {
                    id: r.try_get("id")?,
                    user_id: r.try_get("user_id")?,
                    recipient: r.try_get("recipient")?,
                    subject: r.try_get("subject")?,
                    text_body: r.try_get("text_body")?,
                    html_body: r.try_get("html_body")?,
                    attempts: r.try_get("attempts")?,
                    next_attempt_at: r.try_get("next_attempt_at")?,
                })
            })
            .collect()
    }

    async fn claim_mail(&self, mail: &QueuedMail, lease_until: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE mail_outbox SET next_attempt_at = $1, attempts = attempts + 1 \
             WHERE id = $2 AND next_attempt_at = $3 AND sent_at IS NULL AND failed_at IS NULL",
        )
        .bind(lease_until)
        .bind(&mail.id)
        .bind(mail.next_attempt_at)
        .bind(mail.user_id.as_deref())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn mail_sent(&self, id: &str) -> Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE mail_outbox SET sent_at = $1, last_error = '', {BLANK} WHERE id = $2"
        )))
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn mail_failed(&self, id: &str, error: &str, retry_at: Option<i64>) -> Result<()> {
        let error: String = error.chars().take(1000).collect();
        match retry_at {
            Some(at) => {
                sqlx::query(
                    "UPDATE mail_outbox SET next_attempt_at = $1, last_error = $2 WHERE id = $3",
                )
                .bind(at)
                .bind(&error)
                .bind(id)
                .execute(&self.pool)
                .await?
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE mail_outbox SET failed_at = $1, last_error = $2, {BLANK} WHERE id = $3"
                )))
                .bind(now_ms())
                .bind(&error)
                .bind(id)
                .execute(&self.pool)
                .await?
            }
        };
        Ok(())
    }
}
