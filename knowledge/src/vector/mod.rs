//! Dense vectors of the chunks, searched by similarity. Derived from SQL; rebuilt by `reindex`.
//! Three backends pass one suite (`knowledge/tests/indexes.rs`): qdrant-edge in the data dir (the
//! default), and pgvector in the deployment's PostgreSQL or a Qdrant server, which any number of
//! servers share.

mod edge;
mod pgvector;
mod qdrant;

use async_trait::async_trait;

pub use edge::EdgeVectorStore;
pub use pgvector::PgVectorStore;
pub use qdrant::QdrantVectorStore;

use base::error::{Error, Result};

/// A vector engine's failure, as the domain's error.
fn vector_err(e: impl std::fmt::Display) -> Error {
    Error::Vector(e.to_string())
}

/// One chunk's vector and the ids a search filters on.
#[derive(Debug, Clone)]
pub struct VectorPoint {
    pub chunk_id: uuid::Uuid,
    pub document_id: String,
    pub collection: String,
    pub vector: Vec<f32>,
}

/// A chunk a vector search found: its id, its cosine score and, when asked for, its vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbour {
    pub chunk_id: String,
    pub score: f32,
    /// The stored vector (unit length), when the search asked for vectors; empty otherwise.
    pub vector: Vec<f32>,
}

#[async_trait]
pub trait VectorStore: Send + Sync {
    /// Removes every point of `delete_documents`, then inserts `points` (an update of a document
    /// lists it in both).
    async fn replace(&self, delete_documents: &[String], points: Vec<VectorPoint>) -> Result<()>;
    /// The `limit` nearest chunks in any of `collections`, best first, each with its vector when
    /// `with_vectors` (hybrid search's feedback pass rescores them without searching again).
    async fn nearest(
        &self,
        vector: Vec<f32>,
        collections: &[String],
        limit: usize,
        with_vectors: bool,
    ) -> Result<Vec<Neighbour>>;
    /// The `limit` nearest chunks in any of `collections`, best first, as (chunk id, cosine score).
    async fn search(
        &self,
        vector: Vec<f32>,
        collections: &[String],
        limit: usize,
    ) -> Result<Vec<(String, f32)>> {
        Ok(self
            .nearest(vector, collections, limit, false)
            .await?
            .into_iter()
            .map(|n| (n.chunk_id, n.score))
            .collect())
    }
    /// Every chunk id held, for consistency checks.
    async fn chunk_ids(&self) -> Result<Vec<String>>;
    /// Drops everything and starts empty with vectors of `dimension`.
    async fn reset(&self, dimension: usize) -> Result<()>;
    /// Makes every applied write durable.
    async fn flush(&self) -> Result<()>;
    /// Waits until what was written is indexed for fast search. The embedded store builds its
    /// HNSW graph in the background; PostgreSQL's index is written with each row, and a Qdrant
    /// server optimizes on its own while searches stay correct, so they return at once.
    async fn settle(&self) -> Result<()> {
        Ok(())
    }
}
