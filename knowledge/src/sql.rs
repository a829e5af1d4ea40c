//! [`Store`] on the shared [`SqlStore`]: collections, documents, chunks and members.

use std::collections::HashMap;

use async_trait::async_trait;
use base::sql::{SqlStore, word};
use base::types::{
    Collection, CollectionName, CollectionUpdate, DocumentSummary, DocumentWrite, Location,
    MemberRole, Passage, StoredChunk, Visibility, content_hash, decode_embedding, encode_embedding,
    now_ms,
};
use base::{Error, Result};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::store::{CollectionHead, DocumentState, Member, Store};

fn collection_from_row(row: &AnyRow) -> Result<Collection> {
    Ok(Collection {
        name: row.try_get("name")?,
        model: row.try_get("model")?,
        dimension: row.try_get("dimension")?,
        version: row.try_get("version")?,
        visibility: word(row, "visibility", Visibility::parse)?,
        conversation_retention_days: u32::try_from(
            row.try_get::<i64, _>("conversation_retention_days")?,
        )
        .unwrap_or(0),
        documents: row.try_get("documents")?,
        chunks: row.try_get("chunks")?,
    })
}

/// A row's document source as readers are shown it (see [`base::types::shown_source`]).
fn source_of(row: &sqlx::any::AnyRow) -> Result<String> {
    let source: String = row.try_get("source")?;
    let metadata: String = row.try_get("metadata")?;
    let metadata = serde_json::from_str(&metadata).unwrap_or(serde_json::Value::Null);
    Ok(base::types::shown_source(&source, &metadata))
}

fn location_from(json: &str) -> Location {
    serde_json::from_str(json).unwrap_or_default()
}

fn stored_chunk_from_row(row: &AnyRow) -> Result<StoredChunk> {
    let location: String = row.try_get("location")?;
    let embedding: Vec<u8> = row.try_get("embedding")?;
    Ok(StoredChunk {
        id: row.try_get("id")?,
        document_id: row.try_get("document_id")?,
        collection: row.try_get("collection")?,
        ordinal: row.try_get("ordinal")?,
        title: row.try_get("title")?,
        text: row.try_get("text")?,
        location: location_from(&location),
        embedding: decode_embedding(&embedding),
    })
}

const COLLECTION_SELECT: &str = "SELECT c.name, c.model, c.dimension, c.version, c.visibility, \
     c.conversation_retention_days, \
     (SELECT COUNT(*) FROM documents d WHERE d.collection = c.name) AS documents, \
     (SELECT COUNT(*) FROM chunks k WHERE k.collection = c.name) AS chunks \
     FROM collections c";

const CHUNK_SELECT: &str = "SELECT k.id, k.document_id, k.collection, k.ordinal, d.title, k.text, \
     k.location, k.embedding FROM chunks k JOIN documents d ON d.id = k.document_id";

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        SqlStore::backend(self)
    }

    async fn ensure_collection(
        &self,
        name: &CollectionName,
        model: &str,
        dimension: usize,
    ) -> Result<()> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO collections (name, model, dimension, version, created_at, updated_at) \
             VALUES ($1, $2, $3, 0, $4, $4) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name.as_str())
        .bind(model)
        .bind(dimension as i64)
        .bind(now)
        .execute(&self.pool)
        .await?;
        let existing = self
            .collection(name)
            .await?
            .ok_or_else(|| Error::Internal(format!("collection {name} vanished")))?;
        if existing.model != model || existing.dimension != dimension as i64 {
            return Err(Error::Conflict(format!(
                "collection {name} was built with the embedding model {} ({}-d) but {model} ({dimension}-d) is configured; run `lariat reindex` to re-embed it with the configured model",
                existing.model, existing.dimension
            )));
        }
        Ok(())
    }

    async fn collection(&self, name: &CollectionName) -> Result<Option<Collection>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "{COLLECTION_SELECT} WHERE c.name = $1"
        )))
        .bind(name.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(collection_from_row).transpose()
    }

    async fn collections(&self) -> Result<Vec<Collection>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{COLLECTION_SELECT} ORDER BY c.name"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(collection_from_row).collect()
    }

    async fn set_collection_model(&self, name: &str, model: &str, dimension: usize) -> Result<()> {
        sqlx::query(
            "UPDATE collections SET model = $1, dimension = $2, version = version + 1, \
             updated_at = $3 WHERE name = $4",
        )
        .bind(model)
        .bind(dimension as i64)
        .bind(now_ms())
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn document_states(&self, ids: &[String]) -> Result<HashMap<String, DocumentState>> {
        let rows = self
            .fetch_in(
                "SELECT id, content_hash, state FROM documents WHERE id IN",
                "",
                ids,
            )
            .await?;
        rows.iter()
            .map(|row| {
                let state: String = row.try_get("state")?;
                Ok((
                    row.try_get("id")?,
                    DocumentState {
                        content_hash: row.try_get("content_hash")?,
                        indexed: state == "indexed",
                    },
                ))
            })
            .collect()
    }

    async fn write_documents(&self, docs: &[DocumentWrite]) -> Result<()> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        for doc in docs {
            let id = doc.id();
            sqlx::query(
                "INSERT INTO documents (id, collection, source, title, content_hash, metadata, \
                 state, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7) \
                 ON CONFLICT (id) DO UPDATE SET title = excluded.title, \
                 content_hash = excluded.content_hash, metadata = excluded.metadata, \
                 state = 'pending', updated_at = excluded.updated_at",
            )
            .bind(&id)
            .bind(doc.collection.as_str())
            .bind(&doc.source)
            .bind(&doc.title)
            .bind(&doc.content_hash)
            .bind(doc.metadata.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            // A rewrite supersedes an earlier deletion: its replace removes the old points anyway.
            sqlx::query("DELETE FROM index_tombstones WHERE document_id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM chunks WHERE document_id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            for ((ordinal, chunk), chunk_id) in doc.chunks.iter().enumerate().zip(doc.chunk_ids()) {
                let hash = content_hash(chunk.text.as_bytes());
                let location = serde_json::to_string(&chunk.location)
                    .map_err(|e| Error::Internal(e.to_string()))?;
                sqlx::query(
                    "INSERT INTO chunks (id, document_id, collection, ordinal, text, location, \
                     token_count, content_hash, embedding) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(chunk_id.to_string())
                .bind(&id)
                .bind(doc.collection.as_str())
                .bind(ordinal as i64)
                .bind(&chunk.text)
                .bind(location)
                .bind(i64::from(chunk.token_count))
                .bind(hash)
                .bind(encode_embedding(&chunk.embedding))
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(
                "UPDATE collections SET version = version + 1, updated_at = $1 WHERE name = $2",
            )
            .bind(now)
            .bind(doc.collection.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn mark_indexed(&self, ids: &[String]) -> Result<()> {
        self.execute_in("UPDATE documents SET state = 'indexed' WHERE id IN", ids)
            .await
    }

    async fn pending_documents(&self) -> Result<Vec<String>> {
        // 'pending' is the only other state: an equality the state index answers, where `<>`
        // scanned every document (1.2 s at start-up with a million passages)
        let rows = sqlx::query("SELECT id FROM documents WHERE state = 'pending' ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }

    async fn delete_documents(&self, ids: &[String]) -> Result<usize> {
        let now = now_ms();
        let mut deleted = 0;
        let mut tx = self.begin_write().await?;
        for id in ids {
            let collection: Option<String> =
                sqlx::query_scalar("SELECT collection FROM documents WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(collection) = collection else {
                continue;
            };
            sqlx::query(
                "INSERT INTO index_tombstones (document_id, created_at) VALUES ($1, $2) \
                 ON CONFLICT (document_id) DO NOTHING",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM chunks WHERE document_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM documents WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE collections SET version = version + 1, updated_at = $1 WHERE name = $2",
            )
            .bind(now)
            .bind(collection)
            .execute(&mut *tx)
            .await?;
            deleted += 1;
        }
        tx.commit().await?;
        Ok(deleted)
    }

    async fn tombstones(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT document_id FROM index_tombstones ORDER BY document_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("document_id")?)).collect()
    }

    async fn clear_tombstones(&self, ids: &[String]) -> Result<()> {
        self.execute_in("DELETE FROM index_tombstones WHERE document_id IN", ids)
            .await
    }

    async fn documents(&self, collection: Option<&CollectionName>) -> Result<Vec<DocumentSummary>> {
        let base = "SELECT d.id, d.collection, d.source, d.metadata, d.title, d.content_hash, \
                    d.updated_at, (SELECT COUNT(*) FROM chunks k WHERE k.document_id = d.id) AS chunks \
                    FROM documents d";
        let rows = match collection {
            Some(c) => {
                sqlx::query(AssertSqlSafe(format!(
                    "{base} WHERE d.collection = $1 ORDER BY d.collection, d.source"
                )))
                .bind(c.as_str())
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(AssertSqlSafe(format!(
                    "{base} ORDER BY d.collection, d.source"
                )))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter()
            .map(|row| {
                Ok(DocumentSummary {
                    id: row.try_get("id")?,
                    collection: row.try_get("collection")?,
                    source: source_of(row)?,
                    title: row.try_get("title")?,
                    chunks: row.try_get("chunks")?,
                    content_hash: row.try_get("content_hash")?,
                    updated_at: row.try_get("updated_at")?,
                })
            })
            .collect()
    }

    async fn documents_by_source(
        &self,
        collection: Option<&CollectionName>,
        source: &str,
    ) -> Result<Vec<String>> {
        // Records inside a file (JSONL lines) are stored as `file#record`.
        let prefix = format!("{source}#");
        let rows = sqlx::query(
            "SELECT id FROM documents WHERE (source = $1 OR substr(source, 1, CAST($2 AS INTEGER)) = $3) \
             AND ($4 = '' OR collection = $4) ORDER BY id",
        )
        .bind(source)
        .bind(prefix.chars().count() as i64)
        .bind(&prefix)
        .bind(collection.map_or("", |c| c.as_str()))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }

    async fn chunks_of_documents(&self, ids: &[String]) -> Result<Vec<StoredChunk>> {
        let rows = self
            .fetch_in(
                &format!("{CHUNK_SELECT} WHERE k.document_id IN"),
                "ORDER BY k.document_id, k.ordinal",
                ids,
            )
            .await?;
        rows.iter().map(stored_chunk_from_row).collect()
    }

    async fn document_chunks_page(
        &self,
        after: Option<&str>,
        documents: usize,
    ) -> Result<Vec<StoredChunk>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{CHUNK_SELECT} WHERE k.document_id IN (SELECT p.id FROM documents p WHERE p.id > $1 \
             AND EXISTS (SELECT 1 FROM chunks c WHERE c.document_id = p.id) ORDER BY p.id LIMIT $2) \
             ORDER BY k.document_id, k.ordinal"
        )))
        .bind(after.unwrap_or(""))
        .bind(documents as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(stored_chunk_from_row).collect()
    }

    async fn update_embeddings(&self, embeddings: &[(String, Vec<f32>)]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for (id, vector) in embeddings {
            sqlx::query("UPDATE chunks SET embedding = $1 WHERE id = $2")
                .bind(encode_embedding(vector))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn mark_all_indexed(&self) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE documents SET state = 'indexed'")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM index_tombstones")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn chunk_ids(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT id FROM chunks ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }

    async fn passages(&self, ids: &[String]) -> Result<Vec<Passage>> {
        let rows = self
            .fetch_in(
                "SELECT k.id, k.document_id, k.collection, d.title, d.source, d.metadata, \
                 k.location, k.text FROM chunks k JOIN documents d ON d.id = k.document_id \
                 WHERE k.id IN",
                "",
                ids,
            )
            .await?;
        rows.iter()
            .map(|row| {
                let location = location_from(&row.try_get::<String, _>("location")?);
                let title: String = row.try_get("title")?;
                Ok(Passage {
                    chunk_id: row.try_get("id")?,
                    document_id: row.try_get("document_id")?,
                    collection: row.try_get("collection")?,
                    source: source_of(row)?,
                    location: location.below(&title),
                    title,
                    location_detail: location,
                    text: row.try_get("text")?,
                })
            })
            .collect()
    }

    async fn chunk_embeddings(&self, ids: &[String]) -> Result<Vec<(String, Vec<f32>)>> {
        let rows = self
            .fetch_in("SELECT id, embedding FROM chunks WHERE id IN", "", ids)
            .await?;
        rows.iter()
            .map(|row| {
                let embedding: Vec<u8> = row.try_get("embedding")?;
                Ok((row.try_get("id")?, decode_embedding(&embedding)))
            })
            .collect()
    }

    async fn readable_collections(&self, user_id: Option<&str>) -> Result<Vec<CollectionHead>> {
        let select = "SELECT c.name, c.model, c.version FROM collections c";
        let rows = match user_id {
            None => {
                sqlx::query(AssertSqlSafe(format!("{select} ORDER BY c.name")))
                    .fetch_all(&self.pool)
                    .await?
            }
            Some(user_id) => {
                sqlx::query(AssertSqlSafe(format!(
                    "{select} WHERE c.visibility = 'public' OR EXISTS (SELECT 1 FROM \
                     collection_members m WHERE m.collection = c.name AND m.user_id = $1) \
                     ORDER BY c.name"
                )))
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter()
            .map(|r| {
                Ok(CollectionHead {
                    name: r.try_get("name")?,
                    model: r.try_get("model")?,
                    version: r.try_get("version")?,
                })
            })
            .collect()
    }

    async fn member_role(&self, collection: &str, user_id: &str) -> Result<Option<MemberRole>> {
        let role: Option<String> = sqlx::query_scalar(
            "SELECT role FROM collection_members WHERE collection = $1 AND user_id = $2",
        )
        .bind(collection)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        role.as_deref().map(MemberRole::parse).transpose()
    }

    async fn set_member(
        &self,
        collection: &str,
        user_id: &str,
        role: Option<MemberRole>,
    ) -> Result<()> {
        match role {
            Some(role) => sqlx::query(
                "INSERT INTO collection_members (collection, user_id, role) VALUES ($1, $2, $3) \
                     ON CONFLICT (collection, user_id) DO UPDATE SET role = excluded.role",
            )
            .bind(collection)
            .bind(user_id)
            .bind(role.as_str())
            .execute(&self.pool)
            .await?,
            None => {
                sqlx::query("DELETE FROM collection_members WHERE collection = $1 AND user_id = $2")
                    .bind(collection)
                    .bind(user_id)
                    .execute(&self.pool)
                    .await?
            }
        };
        Ok(())
    }

    async fn update_collection(&self, collection: &str, update: &CollectionUpdate) -> Result<()> {
        sqlx::query(
            "UPDATE collections SET visibility = COALESCE($1, visibility), \
             instructions = COALESCE($2, instructions), \
             conversation_retention_days = COALESCE($3, conversation_retention_days), \
             updated_at = $4 WHERE name = $5",
        )
        .bind(update.visibility.map(|v| v.as_str()))
        .bind(update.instructions.as_deref())
        .bind(update.conversation_retention_days.map(i64::from))
        .bind(now_ms())
        .bind(collection)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn instructions(&self, collection: &str) -> Result<String> {
        let text: Option<String> =
            sqlx::query_scalar("SELECT instructions FROM collections WHERE name = $1")
                .bind(collection)
                .fetch_optional(&self.pool)
                .await?;
        Ok(text.unwrap_or_default())
    }

    async fn members(&self, collection: &str) -> Result<Vec<Member>> {
        let rows = sqlx::query(
            "SELECT m.user_id, u.email, m.role FROM collection_members m \
             JOIN users u ON u.id = m.user_id WHERE m.collection = $1 \
             ORDER BY CASE m.role WHEN 'curator' THEN 0 ELSE 1 END, u.email",
        )
        .bind(collection)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Member {
                    user_id: r.try_get("user_id")?,
                    email: r.try_get("email")?,
                    role: word(r, "role", MemberRole::parse)?,
                })
            })
            .collect()
    }
}
