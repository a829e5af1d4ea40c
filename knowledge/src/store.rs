//! The retrieval store: collections, documents and chunks (with their embeddings, so the derived
//! indexes can be rebuilt without re-embedding), and who may read each collection.

use std::collections::HashMap;

use async_trait::async_trait;
use base::Result;
use base::types::{
    Collection, CollectionName, CollectionUpdate, DocumentSummary, DocumentWrite, MemberRole,
    Passage, StoredChunk,
};

/// A document's stored hash and whether the derived indexes are known to hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentState {
    pub content_hash: String,
    pub indexed: bool,
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
    /// Documents whose source is `source`, or a record inside it (`source#id` for JSONL lines),
    /// in one collection or any.
    async fn documents_by_source(
        &self,
        collection: Option<&CollectionName>,
        source: &str,
    ) -> Result<Vec<String>>;
    /// Every chunk of these documents, each document's chunks together and in position order.
    async fn chunks_of_documents(&self, ids: &[String]) -> Result<Vec<StoredChunk>>;
    /// Every chunk of the first `documents` documents (that have chunks) whose ids follow
    /// `after`, ordered by document id and position: a page of whole documents, for rebuilding
    /// the derived indexes.
    async fn document_chunks_page(
        &self,
        after: Option<&str>,
        documents: usize,
    ) -> Result<Vec<StoredChunk>>;
    /// Replaces stored embeddings (after re-embedding with another model).
    async fn update_embeddings(&self, embeddings: &[(String, Vec<f32>)]) -> Result<()>;
    /// Records that the derived indexes were rebuilt from SQL: nothing pending, no tombstones.
    async fn mark_all_indexed(&self) -> Result<()>;
    async fn chunk_ids(&self) -> Result<Vec<String>>;
    /// The passages (chunks joined with their documents) with these ids that exist, in no
    /// particular order.
    async fn passages(&self, ids: &[String]) -> Result<Vec<Passage>>;
    /// The stored embeddings of the chunks with these ids that exist, in no particular order.
    async fn chunk_embeddings(&self, ids: &[String]) -> Result<Vec<(String, Vec<f32>)>>;

    // ---- access ------------------------------------------------------------------------------

    /// The collections `user_id` may read (the public ones and those it is a member of), by
    /// name; `None` reads every collection.
    async fn readable_collections(&self, user_id: Option<&str>) -> Result<Vec<CollectionHead>>;
    async fn member_role(&self, collection: &str, user_id: &str) -> Result<Option<MemberRole>>;
    /// Adds, changes or (with `None`) removes a member.
    async fn set_member(
        &self,
        collection: &str,
        user_id: &str,
        role: Option<MemberRole>,
    ) -> Result<()>;
    /// Writes the settings `update` gives, keeping the others, in one statement.
    async fn update_collection(&self, collection: &str, update: &CollectionUpdate) -> Result<()>;
    /// The collection's domain instructions for the assistant's prompt.
    async fn instructions(&self, collection: &str) -> Result<String>;
    /// The collection's members with their emails, curators first, then by email.
    async fn members(&self, collection: &str) -> Result<Vec<Member>>;
}

/// A member of a collection.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Member {
    pub user_id: String,
    pub email: String,
    pub role: MemberRole,
}

/// What search needs to know of a collection.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct CollectionHead {
    pub name: String,
    pub model: String,
    pub version: i64,
}
