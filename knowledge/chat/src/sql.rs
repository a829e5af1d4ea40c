//! [`ConversationStore`] on the same `SqlStore`.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use base::sql::{Dialect, SqlStore, like_escaped, word};
use base::types::AnswerStatus;

use crate::citations;
use crate::store::{ConversationStore, ConversationSummary, Speaker, StoredMessage};
use base::error::{Error, Result};
use base::types::now_ms;

const CONVERSATION_COLUMNS: &str = "c.id, c.title, c.collections, c.created_at, c.updated_at";

fn conversation_from_row(row: &AnyRow) -> Result<ConversationSummary> {
    let collections: String = row.try_get("collections")?;
    Ok(ConversationSummary {
        id: row.try_get("id")?,
        title: row.try_get("title")?,
        collections: serde_json::from_str(&collections).unwrap_or_default(),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn message_from_row(row: &AnyRow) -> Result<StoredMessage> {
    let citations: String = row.try_get("citations")?;
    let unsupported: String = row.try_get("unsupported")?;
    Ok(StoredMessage {
        id: row.try_get("id")?,
        seq: row.try_get("seq")?,
        role: word(row, "role", Speaker::parse)?,
        content: row.try_get("content")?,
        citations: citations::decode(&citations)?,
        unsupported: serde_json::from_str(&unsupported).unwrap_or_default(),
        standalone_query: row.try_get("standalone_query")?,
        model: row.try_get("model")?,
        prompt_tokens: row.try_get("prompt_tokens")?,
        completion_tokens: row.try_get("completion_tokens")?,
        cost_usd: row.try_get("cost_usd")?,
        latency_ms: row.try_get("latency_ms")?,
        status: word(row, "status", AnswerStatus::parse)?,
        created_at: row.try_get("created_at")?,
    })
}

/// `%query%` for LIKE, lowercased, with the wildcard characters of the query escaped.
fn like_pattern(query: &str) -> String {
    format!("%{}%", like_escaped(&query.to_lowercase()))
}

const MESSAGE_SELECT: &str = "SELECT id, seq, role, content, citations, unsupported, \
     standalone_query, model, prompt_tokens, completion_tokens, cost_usd, latency_ms, status, \
     created_at FROM messages";

#[async_trait]
impl ConversationStore for SqlStore {
    async fn answer_cache_epoch(&self) -> Result<i64> {
        Ok(
            sqlx::query("SELECT epoch FROM answer_cache_epoch WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get("epoch"))
                .transpose()?
                .unwrap_or(0),
        )
    }

    async fn move_answer_cache_epoch(&self) -> Result<i64> {
        Ok(sqlx::query(
            "INSERT INTO answer_cache_epoch (id, epoch) VALUES (1, 1)
             ON CONFLICT (id) DO UPDATE SET epoch = answer_cache_epoch.epoch + 1
             RETURNING epoch",
        )
        .fetch_one(&self.pool)
        .await?
        .try_get("epoch")?)
    }

    async fn create_conversation(&self, user_id: &str, c: &ConversationSummary) -> Result<()> {
        let collections =
            serde_json::to_string(&c.collections).map_err(|e| Error::Internal(e.to_string()))?;
        sqlx::query(
            "INSERT INTO conversations (id, user_id, title, collections, created_at, updated_at, \
             title_folded) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&c.id)
        .bind(user_id)
        .bind(&c.title)
        .bind(collections)
        .bind(c.created_at)
        .bind(c.updated_at)
        .bind(c.title.to_lowercase())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn conversations(
        &self,
        user_id: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<ConversationSummary>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations c WHERE c.user_id = $1 \
             ORDER BY c.updated_at DESC, c.id LIMIT $2 OFFSET $3"
        )))
        .bind(user_id)
        .bind(limit as i64)
        .bind(offset as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(conversation_from_row).collect()
    }

    async fn conversation(&self, user_id: &str, id: &str) -> Result<Option<ConversationSummary>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations c WHERE c.id = $1 AND c.user_id = $2"
        )))
        .bind(id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(conversation_from_row).transpose()
    }

    async fn messages(&self, conversation_id: &str) -> Result<Vec<StoredMessage>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{MESSAGE_SELECT} WHERE conversation_id = $1 ORDER BY seq"
        )))
        .bind(conversation_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(message_from_row).collect()
    }

    async fn message(&self, conversation_id: &str, id: &str) -> Result<Option<StoredMessage>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "{MESSAGE_SELECT} WHERE conversation_id = $1 AND id = $2"
        )))
        .bind(conversation_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(message_from_row).transpose()
    }

    async fn rename_conversation(&self, user_id: &str, id: &str, title: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE conversations SET title = $1, updated_at = $2, title_folded = $5 \
             WHERE id = $3 AND user_id = $4",
        )
        .bind(title)
        .bind(now_ms())
        .bind(id)
        .bind(user_id)
        .bind(title.to_lowercase())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_conversation(&self, user_id: &str, id: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let owned: Option<String> =
            sqlx::query_scalar("SELECT id FROM conversations WHERE id = $1 AND user_id = $2")
                .bind(id)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
        if owned.is_none() {
            return Ok(false);
        }
        sqlx::query("DELETE FROM messages WHERE conversation_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM conversations WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn search_conversations(
        &self,
        user_id: &str,
        query: &str,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations c WHERE c.user_id = $1 AND \
             (c.title_folded LIKE $2 ESCAPE '\\' OR EXISTS (SELECT 1 FROM messages m WHERE \
             m.conversation_id = c.id AND m.content_folded LIKE $2 ESCAPE '\\')) \
             ORDER BY c.updated_at DESC, c.id LIMIT $3"
        )))
        .bind(user_id)
        .bind(like_pattern(query))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(conversation_from_row).collect()
    }

    async fn append_messages(
        &self,
        conversation_id: &str,
        messages: &[StoredMessage],
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        // The conversation's row is locked (PostgreSQL; SQLite's write transaction holds the whole
        // database) so two appends to one conversation number their messages one after the other.
        let lock = match self.dialect {
            Dialect::Postgres => "SELECT id FROM conversations WHERE id = $1 FOR UPDATE",
            Dialect::Sqlite => "SELECT id FROM conversations WHERE id = $1",
        };
        let exists: Option<String> = sqlx::query_scalar(lock)
            .bind(conversation_id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(Error::NotFound(format!(
                "no conversation {conversation_id}"
            )));
        }
        let last: Option<i64> =
            sqlx::query_scalar("SELECT MAX(seq) FROM messages WHERE conversation_id = $1")
                .bind(conversation_id)
                .fetch_one(&mut *tx)
                .await?;
        let mut seq = last.unwrap_or(0);
        for m in messages {
            seq += 1;
            sqlx::query(
                "INSERT INTO messages (id, conversation_id, seq, role, content, citations, \
                 standalone_query, model, prompt_tokens, completion_tokens, cost_usd, latency_ms, \
                 status, created_at, content_folded, unsupported) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
            )
            .bind(&m.id)
            .bind(conversation_id)
            .bind(seq)
            .bind(m.role.as_str())
            .bind(&m.content)
            .bind(citations::encode(&m.citations)?)
            .bind(m.standalone_query.as_deref())
            .bind(m.model.as_deref())
            .bind(m.prompt_tokens)
            .bind(m.completion_tokens)
            .bind(m.cost_usd)
            .bind(m.latency_ms)
            .bind(m.status.as_str())
            .bind(m.created_at)
            .bind(m.content.to_lowercase())
            .bind(serde_json::to_string(&m.unsupported).unwrap_or_else(|_| "[]".into()))
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE conversations SET updated_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(conversation_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
