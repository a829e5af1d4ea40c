//! The façade every transport calls, one room per concern: `writes` (documents in and out of
//! every store, and recovery after a crash), `search` (the ranking pipeline), `access` (reads
//! bounded by what the caller may see, collection settings) and `maintenance` (consistency
//! checks and rebuilding the derived indexes).

mod access;
mod locks;
mod maintenance;
mod migrate;
mod search;
mod writes;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::sync::Arc;

use serde::Serialize;
use tracing::{info, warn};

use crate::config::Setup;
use crate::config::{LexicalBackend, RetrievalConfig, VectorBackend};
use crate::embed::{Embedder, FastEmbedder};
use crate::lexical::{
    LexicalDocument, LexicalIndex, LexicalPassage, QdrantLexicalIndex, SqlLexicalIndex,
    TantivyIndex,
};
use crate::qdrant::QdrantEngine;
use crate::rerank::{HttpReranker, Reranker};
use crate::retrieval::fuse;
use crate::store::{CollectionHead, DocumentState, Member, Store};
use crate::vector::{
    EdgeVectorStore, Neighbour, PgVectorStore, QdrantVectorStore, VectorPoint, VectorStore,
};
use base::error::{Error, Result, blocking};
use base::principal::{Principal, Scope};
use base::sql::SqlStore;
use base::types::{
    Collection, CollectionName, CollectionUpdate, DocumentSummary, DocumentWrite, Hit, MemberRole,
    Passage, QueryText, RerankOutcome, SearchMode, SearchResults, StoredChunk, TopK,
    embedding_input,
};
use locks::SharedLocks;
pub use migrate::{MoveProgress, MoveReport};

/// Documents (with all their chunks) read from SQL per page when rebuilding the derived indexes.
const REBUILD_PAGE: usize = 128;

/// The user whose readable collections bound a search; `None` reads everything.
fn reader_of(principal: &Principal) -> Option<&str> {
    (!principal.is_admin()).then_some(principal.user.id.as_str())
}

/// A document with its passages in order.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DocumentView {
    pub id: String,
    pub collection: String,
    pub title: String,
    pub source: String,
    pub passages: Vec<Passage>,
}

/// A document's whole text: its passages joined in order.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentText {
    pub id: String,
    pub title: String,
    pub text: String,
}

/// A passage among its neighbours: `document.passages` holds only the window around it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PassageInContext {
    pub document: DocumentView,
    /// The cited passage's index in `document.passages`.
    pub cited: usize,
    /// Its index among all the document's passages, and how many there are.
    pub ordinal: usize,
    pub total: usize,
}

/// A parsed search.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub query: QueryText,
    /// `None` searches every collection.
    pub collections: Option<Vec<CollectionName>>,
    pub mode: SearchMode,
    pub k: TopK,
}

/// The stores and the embedder a [`Knowledge`] is built from.
pub struct Parts {
    pub store: Arc<dyn Store>,
    pub vectors: Arc<dyn VectorStore>,
    pub lexical: Arc<dyn LexicalIndex>,
    pub embedder: Arc<dyn Embedder>,
    pub retrieval: RetrievalConfig,
    /// The second stage of mode `rerank`, and how many passages it rescores.
    pub reranker: Option<(Arc<dyn Reranker>, usize)>,
}

/// Whether the three stores agree, chunk for chunk.
#[derive(Debug, Clone, Serialize, Default, schemars::JsonSchema)]
pub struct CheckReport {
    pub sql_chunks: usize,
    pub vector_chunks: usize,
    pub lexical_chunks: usize,
    pub missing_in_vectors: Vec<String>,
    pub orphans_in_vectors: Vec<String>,
    pub missing_in_lexical: Vec<String>,
    pub orphans_in_lexical: Vec<String>,
    pub duplicates_in_lexical: usize,
    pub pending_documents: usize,
    pub tombstones: usize,
}

impl CheckReport {
    pub fn is_consistent(&self) -> bool {
        self.missing_in_vectors.is_empty()
            && self.orphans_in_vectors.is_empty()
            && self.missing_in_lexical.is_empty()
            && self.orphans_in_lexical.is_empty()
            && self.duplicates_in_lexical == 0
            && self.pending_documents == 0
            && self.tombstones == 0
    }
}

/// What start-up recovery finished from an interrupted run.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RecoveryReport {
    pub reindexed_documents: usize,
    pub cleared_deletions: usize,
}

/// The façade: ingestion writes, deletion, listing, search, consistency checks.
pub struct Knowledge {
    store: Arc<dyn Store>,
    vectors: Arc<dyn VectorStore>,
    lexical: Arc<dyn LexicalIndex>,
    embedder: Arc<dyn Embedder>,
    retrieval: RetrievalConfig,
    reranker: Option<(Arc<dyn Reranker>, usize)>,
    /// Writes and deletions of one document go one at a time (see [`Knowledge::lock_documents`]).
    document_locks: Vec<tokio::sync::Mutex<()>>,
    /// On a shared deployment, the same across servers.
    shared_locks: Option<SharedLocks>,
    _lock: Option<File>,
}

/// Stripes of the per-document write lock.
const DOCUMENT_LOCK_STRIPES: usize = 64;

impl std::fmt::Debug for Knowledge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Knowledge")
            .field("store", &self.store.backend())
            .field("model", self.embedder.model())
            .finish()
    }
}

/// The data dir's exclusive lock, unless the deployment is [`Setup::shared`].
fn lock_data_dir(config: &Setup) -> Result<Option<File>> {
    if config.shared() {
        return Ok(None);
    }
    let dir = config.data_dir;
    base::files::create_private_dir(dir)?;
    let path = dir.join("lariat.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Unavailable(format!(
            "data dir {} is in use by another lariat process (a running `lariat serve`?); stop it or use its HTTP API",
            dir.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(Error::io(format!("locking {}", path.display()), e))
        }
    }
}

impl Knowledge {
    /// Opens everything under `config.data_dir` (taking an exclusive lock on it), loads the
    /// embedding model and finishes whatever an interrupted run left half-done.
    pub async fn open(config: &Setup<'_>) -> Result<Self> {
        let lock = lock_data_dir(config)?;
        let store = SqlStore::open_config(config.data_dir, config.database_url).await?;
        Self::open_locked(config, Arc::new(store), lock).await
    }

    /// Takes the data dir's exclusive lock (held for as long as the returned file lives), unless
    /// the deployment is [`Setup::shared`].
    pub fn lock(config: &Setup<'_>) -> Result<Option<File>> {
        lock_data_dir(config)
    }

    /// [`Knowledge::open`] on a store the caller opened, under a lock it took.
    pub async fn open_locked(
        config: &Setup<'_>,
        sql: Arc<SqlStore>,
        lock: Option<File>,
    ) -> Result<Self> {
        let knowledge = Self::open_stores(config, sql, lock).await?;
        let recovered = knowledge.recover().await?;
        if recovered.reindexed_documents + recovered.cleared_deletions > 0 {
            info!(
                reindexed = recovered.reindexed_documents,
                deletions = recovered.cleared_deletions,
                "finished the work of an interrupted run"
            );
        }
        if let Some(chunks) = knowledge.rebuild_stale_lexical().await? {
            info!(
                chunks,
                "rebuilt the lexical index for this version's analyzer"
            );
        }
        Ok(knowledge)
    }

    /// The stores opened, as they are: nothing recovered or rebuilt.
    async fn open_stores(
        config: &Setup<'_>,
        sql: Arc<SqlStore>,
        lock: Option<File>,
    ) -> Result<Self> {
        let embedding = config.embedding.clone();
        let embedder: Arc<dyn Embedder> =
            Arc::new(blocking(move || FastEmbedder::load(&embedding)).await?);
        let dimension = embedder.model().dimension;
        let vectors: Arc<dyn VectorStore> = match config.retrieval.vector_store {
            VectorBackend::Embedded => {
                let (dir, retrieval) = (config.data_dir.join("vectors"), config.retrieval.clone());
                Arc::new(
                    blocking(move || EdgeVectorStore::open(&dir, dimension, &retrieval)).await?,
                )
            }
            VectorBackend::Pgvector => {
                Arc::new(PgVectorStore::open(&sql, dimension, config.retrieval).await?)
            }
            VectorBackend::Qdrant => Arc::new(
                QdrantVectorStore::open(
                    QdrantEngine::connect(&config.retrieval.qdrant)?,
                    dimension,
                    config.retrieval,
                )
                .await?,
            ),
        };
        let lexical: Arc<dyn LexicalIndex> = match config.retrieval.lexical_store {
            LexicalBackend::Embedded => {
                let dir = config.data_dir.join("lexical");
                Arc::new(blocking(move || TantivyIndex::open(&dir)).await?)
            }
            LexicalBackend::Database => Arc::new(SqlLexicalIndex::open(&sql).await?),
            LexicalBackend::Qdrant => Arc::new(
                QdrantLexicalIndex::open(
                    QdrantEngine::connect(&config.retrieval.qdrant)?,
                    &config.retrieval.lexical(),
                )
                .await?,
            ),
        };
        let mut knowledge = Self::from_parts(Parts {
            store: sql.clone(),
            vectors,
            lexical,
            embedder,
            retrieval: config.retrieval.clone(),
            reranker: HttpReranker::new(config.rerank)?
                .map(|r| (Arc::new(r) as Arc<dyn Reranker>, config.rerank.depth)),
        });
        knowledge._lock = lock;
        if config.shared() {
            knowledge.shared_locks = Some(SharedLocks::new(&sql));
        }
        Ok(knowledge)
    }

    pub fn from_parts(parts: Parts) -> Self {
        Self {
            store: parts.store,
            vectors: parts.vectors,
            lexical: parts.lexical,
            embedder: parts.embedder,
            retrieval: parts.retrieval,
            reranker: parts.reranker,
            document_locks: (0..DOCUMENT_LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            shared_locks: None,
            _lock: None,
        }
    }

    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.embedder
    }

    pub fn store_backend(&self) -> &'static str {
        self.store.backend()
    }

    pub fn retrieval(&self) -> &RetrievalConfig {
        &self.retrieval
    }

    /// Sets retrieval parameters (fusion, depth, boosts) for the searches that follow.
    pub fn set_retrieval(&mut self, retrieval: RetrievalConfig) {
        self.retrieval = retrieval;
    }
}
