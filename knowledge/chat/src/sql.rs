//! [`ConversationStore`] on the same `SqlStore`.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use base::sql::{Dialect, SqlStore, like_escaped, word};
use base::types::AnswerStatus;

use crate::citations;
use crate::feedback::{Feedback, MessageRating, RatedPassage, Rating, RatingSummary};
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
        rating: match row.try_get::<Option<String>, _>("rating")? {
            Some(r) => Some(MessageRating {
                rating: Rating::parse(&r)?,
                comment: row
                    .try_get::<Option<String>, _>("rating_comment")?
                    .unwrap_or_default(),
            }),
            None => None,
        },
    })
}

/// `%query%` for LIKE, lowercased, with the wildcard characters of the query escaped.
fn like_pattern(query: &str) -> String {
    format!("%{}%", like_escaped(&query.to_lowercase()))
}

const MESSAGE_SELECT: &str = "SELECT id, seq, role, content, citations, unsupported, \
     standalone_query, model, prompt_tokens, completion_tokens, cost_usd, latency_ms, status, \
     created_at, (SELECT f.rating FROM answer_feedback f WHERE f.message_id = messages.id) \
     AS rating, (SELECT f.comment FROM answer_feedback f WHERE f.message_id = messages.id) \
     AS rating_comment FROM messages";

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

    async fn rate(&self, f: &Feedback) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO answer_feedback (message_id, conversation_id, user_id, rating, comment, \
             question, model, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (message_id) DO UPDATE SET rating = excluded.rating, \
             comment = excluded.comment, updated_at = excluded.updated_at",
        )
        .bind(&f.message_id)
        .bind(&f.conversation_id)
        .bind(&f.user_id)
        .bind(f.given.rating.as_str())
        .bind(&f.given.comment)
        .bind(&f.question)
        .bind(&f.model)
        .bind(f.created_at)
        .bind(f.updated_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM answer_feedback_passages WHERE message_id = $1")
            .bind(&f.message_id)
            .execute(&mut *tx)
            .await?;
        for p in &f.passages {
            sqlx::query(
                "INSERT INTO answer_feedback_passages (message_id, n, chunk_id, document_id, \
                 collection) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&f.message_id)
            .bind(p.n as i64)
            .bind(&p.chunk_id)
            .bind(&p.document_id)
            .bind(&p.collection)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn unrate(&self, user_id: &str, conversation_id: &str, message_id: &str) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM answer_feedback WHERE message_id = $1 AND conversation_id = $2 \
             AND user_id = $3",
        )
        .bind(message_id)
        .bind(conversation_id)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn rating_summary(&self) -> Result<Vec<RatingSummary>> {
        let rows = sqlx::query(
            "SELECT p.collection, f.model, \
             SUM(CASE WHEN f.rating = 'up' THEN 1 ELSE 0 END) AS up, \
             SUM(CASE WHEN f.rating = 'down' THEN 1 ELSE 0 END) AS down, \
             SUM(CASE WHEN f.comment <> '' THEN 1 ELSE 0 END) AS comments \
             FROM answer_feedback f JOIN (SELECT DISTINCT message_id, collection \
             FROM answer_feedback_passages) p ON p.message_id = f.message_id \
             GROUP BY p.collection, f.model ORDER BY p.collection, f.model",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RatingSummary {
                    collection: r.try_get("collection")?,
                    model: r.try_get("model")?,
                    up: r.try_get("up")?,
                    down: r.try_get("down")?,
                    comments: r.try_get("comments")?,
                })
            })
            .collect()
    }

    async fn ratings(&self, collections: &[String]) -> Result<Vec<Feedback>> {
        const COLUMNS: &str = "SELECT f.message_id, f.conversation_id, f.user_id, f.rating, \
             f.comment, f.question, f.model, f.created_at, f.updated_at FROM answer_feedback f";
        let rows = if collections.is_empty() {
            sqlx::query(COLUMNS).fetch_all(&self.pool).await?
        } else {
            self.fetch_in(
                &format!(
                    "{COLUMNS} WHERE EXISTS (SELECT 1 FROM answer_feedback_passages p \
                     WHERE p.message_id = f.message_id AND p.collection IN"
                ),
                ")",
                collections,
            )
            .await?
        };
        let mut found: Vec<Feedback> = Vec::with_capacity(rows.len());
        let mut seen = std::collections::HashSet::new();
        for r in &rows {
            let message_id: String = r.try_get("message_id")?;
            if !seen.insert(message_id.clone()) {
                continue;
            }
            found.push(Feedback {
                message_id,
                conversation_id: r.try_get("conversation_id")?,
                user_id: r.try_get("user_id")?,
                given: MessageRating {
                    rating: word(r, "rating", Rating::parse)?,
                    comment: r.try_get("comment")?,
                },
                question: r.try_get("question")?,
                model: r.try_get("model")?,
                passages: Vec::new(),
                created_at: r.try_get("created_at")?,
                updated_at: r.try_get("updated_at")?,
            });
        }
        found.sort_by(|a, b| (a.created_at, &a.message_id).cmp(&(b.created_at, &b.message_id)));
        let ids: Vec<String> = found.iter().map(|f| f.message_id.clone()).collect();
        let passages = self
            .fetch_in(
                "SELECT message_id, n, chunk_id, document_id, collection \
                 FROM answer_feedback_passages WHERE message_id IN",
                "",
                &ids,
            )
            .await?;
        let at: std::collections::HashMap<String, usize> =
            ids.into_iter().enumerate().map(|(i, id)| (id, i)).collect();
        for r in &passages {
            let message_id: String = r.try_get("message_id")?;
            let n: i64 = r.try_get("n")?;
            if let Some(f) = at.get(&message_id).map(|&i| &mut found[i]) {
                f.passages.push(RatedPassage {
                    n: n.max(0) as usize,
                    chunk_id: r.try_get("chunk_id")?,
                    document_id: r.try_get("document_id")?,
                    collection: r.try_get("collection")?,
                });
            }
        }
        for f in &mut found {
            f.passages.sort_by_key(|p| p.n);
        }
        Ok(found)
    }
}
