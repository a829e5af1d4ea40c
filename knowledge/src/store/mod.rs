//! The SQL source of truth: collections, documents and chunks (with their embeddings, so the
//! derived indexes can be rebuilt without re-embedding).

mod sql;

use std::collections::HashMap;

use async_trait::async_trait;

pub use sql::SqlStore;

use crate::error::Result;
use crate::types::{
    Collection, CollectionName, DocumentSummary, DocumentWrite, Location, StoredChunk,
};

/// A document's stored hash and whether the derived indexes are known to hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentState {
    pub content_hash: String,
    pub indexed: bool,
}

/// A chunk joined with its document, as search hits show it.
#[derive(Debug, Clone)]
pub struct ChunkView {
    pub chunk_id: String,
    pub document_id: String,
    pub collection: String,
    pub title: String,
    pub source: String,
    pub location: Location,
    pub text: String,
}

#[async_trait]
pub trait Store: Send + Sync {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Creates the collection for this model, or checks that an existing one was built with it.
    async fn ensure_collection(
        &self,
        name: &CollectionName,
        model: &str,
        dimension: usize,
    ) -> Result<()>;
    async fn collection(&self, name: &CollectionName) -> Result<Option<Collection>>;
    async fn collections(&self) -> Result<Vec<Collection>>;
    /// Records that a collection's vectors now come from another model (after a re-embedding).
    async fn set_collection_model(&self, name: &str, model: &str, dimension: usize) -> Result<()>;

    async fn document_states(&self, ids: &[String]) -> Result<HashMap<String, DocumentState>>;
    /// Replaces each document and all its chunks in one transaction; the documents are left
    /// `pending` until [`Store::mark_indexed`].
    async fn write_documents(&self, docs: &[DocumentWrite]) -> Result<()>;
    async fn mark_indexed(&self, ids: &[String]) -> Result<()>;
    async fn pending_documents(&self) -> Result<Vec<String>>;
    /// Deletes documents and their chunks, leaving a tombstone for each so the derived indexes
    /// are cleaned even after a crash. Returns how many existed.
    async fn delete_documents(&self, ids: &[String]) -> Result<usize>;
    async fn tombstones(&self) -> Result<Vec<String>>;
    async fn clear_tombstones(&self, ids: &[String]) -> Result<()>;

    async fn documents(&self, collection: Option<&CollectionName>) -> Result<Vec<DocumentSummary>>;
    /// Documents whose source is `source`, or a record inside it (`source#id` for JSONL lines).
    async fn documents_by_source(&self, source: &str) -> Result<Vec<String>>;
    async fn chunks_of_documents(&self, ids: &[String]) -> Result<Vec<StoredChunk>>;
    /// One page of all chunks ordered by id, for rebuilding the derived indexes.
    async fn chunk_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<StoredChunk>>;
    /// Replaces stored embeddings (after re-embedding with another model).
    async fn update_embeddings(&self, embeddings: &[(String, Vec<f32>)]) -> Result<()>;
    /// Records that the derived indexes were rebuilt from SQL: nothing pending, no tombstones.
    async fn mark_all_indexed(&self) -> Result<()>;
    async fn chunk_ids(&self) -> Result<Vec<String>>;
    /// The chunks with these ids that exist, in no particular order.
    async fn chunk_views(&self, ids: &[String]) -> Result<Vec<ChunkView>>;
}
