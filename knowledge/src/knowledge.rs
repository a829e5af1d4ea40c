//! The façade every transport calls.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::sync::Arc;

use serde::Serialize;
use tracing::{info, warn};

use crate::accounts::Principal;
use crate::config::{Config, RetrievalConfig};
use crate::embed::{Embedder, FastEmbedder};
use crate::error::{Error, Result, blocking};
use crate::lexical::{LexicalDoc, LexicalIndex, TantivyIndex};
use crate::rerank::{HttpReranker, Reranker};
use crate::retrieval::fuse;
use crate::store::{ChunkView, CollectionHead, DocumentState, SqlStore, Store};
use crate::types::{
    Collection, CollectionName, DocumentSummary, DocumentWrite, Hit, MemberRole, QueryText,
    RerankOutcome, SearchMode, SearchResults, StoredChunk, TopK, Visibility, embedding_input,
    passage_heading,
};
use crate::vector::{EdgeVectorStore, VectorPoint, VectorStore};

/// Chunks read from SQL per page when rebuilding the derived indexes.
const REBUILD_PAGE: usize = 512;

fn passage_view(v: ChunkView) -> PassageView {
    PassageView {
        chunk_id: v.chunk_id,
        document_id: v.document_id,
        collection: v.collection,
        title: v.title,
        source: v.source,
        location: v.location.to_string(),
        location_detail: v.location,
        text: v.text,
    }
}

/// The user whose readable collections bound a search; `None` reads everything.
fn reader_of(principal: &Principal) -> Option<&str> {
    (!principal.is_admin()).then_some(principal.user.id.as_str())
}

/// One passage with where it comes from.
#[derive(Debug, Clone, Serialize)]
pub struct PassageView {
    pub chunk_id: String,
    pub document_id: String,
    pub collection: String,
    pub title: String,
    pub source: String,
    pub location: String,
    pub location_detail: crate::types::Location,
    pub text: String,
}

/// A document with its passages in order.
#[derive(Debug, Clone, Serialize)]
pub struct DocumentView {
    pub id: String,
    pub collection: String,
    pub title: String,
    pub source: String,
    pub passages: Vec<PassageView>,
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

impl SearchRequest {
    /// Passages returned when the caller does not say.
    pub const DEFAULT_K: usize = 10;

    /// The one parser of a search, whichever surface asked (CLI, HTTP, MCP): the query's
    /// length, the collection names, the mode (default hybrid) and k (default
    /// [`Self::DEFAULT_K`], at most [`TopK::MAX`]). No collections means every readable one.
    pub fn parse(
        query: &str,
        collections: &[String],
        mode: Option<&str>,
        k: Option<i64>,
    ) -> Result<Self> {
        let k = match k {
            None => Self::DEFAULT_K,
            Some(k) => usize::try_from(k).map_err(|_| {
                Error::InvalidInput(format!("k must be between 1 and {}, got {k}", TopK::MAX))
            })?,
        };
        let collections = collections
            .iter()
            .map(|c| c.trim())
            .filter(|c| !c.is_empty())
            .map(CollectionName::parse)
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            query: QueryText::parse(query)?,
            collections: (!collections.is_empty()).then_some(collections),
            mode: mode.unwrap_or("hybrid").parse()?,
            k: TopK::new(k)?,
        })
    }
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
#[derive(Debug, Clone, Serialize, Default)]
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

fn lock_data_dir(config: &Config) -> Result<File> {
    let dir = &config.data_dir;
    crate::files::create_private_dir(dir)?;
    let path = dir.join("lariat.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
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
    pub async fn open(config: &Config) -> Result<Self> {
        let lock = lock_data_dir(config)?;
        let store = SqlStore::open_config(config).await?;
        Self::open_locked(config, Arc::new(store), lock).await
    }

    /// Takes the data dir's exclusive lock (held for as long as the returned file lives).
    pub fn lock(config: &Config) -> Result<File> {
        lock_data_dir(config)
    }

    /// [`Knowledge::open`] on a store the caller opened, under a lock it took.
    pub async fn open_locked(config: &Config, store: Arc<dyn Store>, lock: File) -> Result<Self> {
        let embedding = config.embedding.clone();
        let embedder: Arc<dyn Embedder> =
            Arc::new(blocking(move || FastEmbedder::load(&embedding)).await?);
        let dimension = embedder.model().dimension;
        let (vdir, ldir, retrieval) = (
            config.data_dir.join("vectors"),
            config.data_dir.join("lexical"),
            config.retrieval.clone(),
        );
        let (vectors, lexical) = blocking(move || {
            Ok((
                EdgeVectorStore::open(&vdir, dimension, &retrieval)?,
                TantivyIndex::open(&ldir)?,
            ))
        })
        .await?;
        let mut knowledge = Self::from_parts(Parts {
            store,
            vectors: Arc::new(vectors),
            lexical: Arc::new(lexical),
            embedder,
            retrieval: config.retrieval.clone(),
            reranker: HttpReranker::new(&config.rerank)?
                .map(|r| (Arc::new(r) as Arc<dyn Reranker>, config.rerank.depth)),
        });
        knowledge._lock = Some(lock);
        let recovered = knowledge.recover().await?;
        if recovered.reindexed_documents + recovered.cleared_deletions > 0 {
            info!(
                reindexed = recovered.reindexed_documents,
                deletions = recovered.cleared_deletions,
                "finished the work of an interrupted run"
            );
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

    // ---- writes ----------------------------------------------------------------------------

    /// Creates the collection for the configured model or checks it was built with it.
    pub async fn ensure_collection(&self, name: &CollectionName) -> Result<()> {
        let m = self.embedder.model();
        self.store
            .ensure_collection(name, &m.name, m.dimension)
            .await
    }

    /// What the stores hold for these document ids: unknown ids are absent.
    pub async fn document_states(&self, ids: &[String]) -> Result<HashMap<String, DocumentState>> {
        self.store.document_states(ids).await
    }

    /// Replaces each document (all its chunks) in every store. SQL commits first with the
    /// documents marked pending; the derived indexes follow; then the documents are marked
    /// indexed. A crash anywhere leaves pending documents that the next open re-indexes.
    pub async fn write_documents(&self, docs: Vec<DocumentWrite>) -> Result<()> {
        if docs.is_empty() {
            return Ok(());
        }
        let collections: BTreeSet<&CollectionName> = docs.iter().map(|d| &d.collection).collect();
        for c in collections {
            self.ensure_collection(c).await?;
        }
        let dimension = self.embedder.model().dimension;
        for doc in &docs {
            if let Some(bad) = doc.chunks.iter().find(|c| c.embedding.len() != dimension) {
                return Err(Error::InvalidInput(format!(
                    "a chunk of {} has a {}-d embedding; the model gives {dimension}-d",
                    doc.source,
                    bad.embedding.len()
                )));
            }
        }
        let ids: Vec<String> = docs.iter().map(DocumentWrite::id).collect();
        let _locked = self.lock_documents(&ids).await;
        self.store.write_documents(&docs).await?;
        let mut points = Vec::new();
        let mut lexical = Vec::new();
        for doc in docs {
            let id = doc.id();
            for (chunk, chunk_id) in doc.chunks.iter().zip(doc.chunk_ids()) {
                lexical.push(LexicalDoc {
                    chunk_id: chunk_id.to_string(),
                    document_id: id.clone(),
                    collection: doc.collection.to_string(),
                    title: passage_heading(&doc.title, &chunk.location),
                    text: chunk.text.clone(),
                });
                points.push(VectorPoint {
                    chunk_id,
                    document_id: id.clone(),
                    collection: doc.collection.to_string(),
                    vector: chunk.embedding.clone(),
                });
            }
        }
        self.index(&ids, points, lexical).await
    }

    async fn index(
        &self,
        document_ids: &[String],
        points: Vec<VectorPoint>,
        lexical: Vec<LexicalDoc>,
    ) -> Result<()> {
        let (v, l) = tokio::join!(
            self.vectors.replace(document_ids, points),
            self.lexical.replace(document_ids, lexical)
        );
        v?;
        l?;
        self.store.mark_indexed(document_ids).await
    }

    /// Deletes documents from every store; returns how many existed.
    pub async fn delete_documents(&self, ids: &[String]) -> Result<usize> {
        let _locked = self.lock_documents(ids).await;
        let deleted = self.store.delete_documents(ids).await?;
        self.clear_from_indexes(ids).await?;
        Ok(deleted)
    }

    async fn clear_from_indexes(&self, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let (v, l) = tokio::join!(
            self.vectors.replace(ids, Vec::new()),
            self.lexical.replace(ids, Vec::new())
        );
        v?;
        l?;
        self.store.clear_tombstones(ids).await
    }

    /// Holds the write lock of each document in `ids` (stripes by id hash, taken in order, so two
    /// writers never deadlock): two uploads of one document, or an upload racing its deletion,
    /// run one after the other through SQL and both derived indexes.
    async fn lock_documents(&self, ids: &[String]) -> Vec<tokio::sync::MutexGuard<'_, ()>> {
        let stripes: BTreeSet<usize> = ids
            .iter()
            .map(|id| {
                let head = id.as_bytes().iter().take(8).fold(0usize, |h, b| {
                    h.wrapping_mul(31).wrapping_add(usize::from(*b))
                });
                head % DOCUMENT_LOCK_STRIPES
            })
            .collect();
        let mut guards = Vec::with_capacity(stripes.len());
        for stripe in stripes {
            guards.push(self.document_locks[stripe].lock().await);
        }
        guards
    }

    /// Document ids stored for a source path (and the records inside it).
    pub async fn documents_by_source(&self, source: &str) -> Result<Vec<String>> {
        self.store.documents_by_source(source).await
    }

    /// Re-indexes documents left pending and clears deletions left half-done by a crash.
    pub async fn recover(&self) -> Result<RecoveryReport> {
        let tombstones = self.store.tombstones().await?;
        self.clear_from_indexes(&tombstones).await?;
        let pending = self.store.pending_documents().await?;
        for batch in pending.chunks(256) {
            let _locked = self.lock_documents(batch).await;
            let chunks = self.store.chunks_of_documents(batch).await?;
            let (points, lexical) = derived_records(chunks);
            self.index(batch, points, lexical).await?;
        }
        Ok(RecoveryReport {
            reindexed_documents: pending.len(),
            cleared_deletions: tombstones.len(),
        })
    }

    // ---- reads -----------------------------------------------------------------------------

    pub async fn collections(&self) -> Result<Vec<Collection>> {
        self.store.collections().await
    }

    pub async fn documents(
        &self,
        collection: Option<&CollectionName>,
    ) -> Result<Vec<DocumentSummary>> {
        if let Some(c) = collection {
            self.require_collection(c).await?;
        }
        self.store.documents(collection).await
    }

    /// Makes a collection public (readable by every signed-in user) or private (members only).
    pub async fn set_visibility(
        &self,
        name: &CollectionName,
        visibility: Visibility,
    ) -> Result<()> {
        self.require_collection(name).await?;
        self.store.set_visibility(name.as_str(), visibility).await
    }

    /// Adds, changes or (with `None`) removes a member of a collection (who may is decided by
    /// [`crate::collections::Collections`]).
    pub(crate) async fn set_member(
        &self,
        name: &CollectionName,
        user_id: &str,
        role: Option<MemberRole>,
    ) -> Result<()> {
        self.require_collection(name).await?;
        self.store.set_member(name.as_str(), user_id, role).await
    }

    /// The collection's domain instructions, which open the assistant's prompt.
    pub async fn instructions(&self, name: &str) -> Result<String> {
        self.store.instructions(name).await
    }

    pub(crate) async fn set_instructions(
        &self,
        name: &CollectionName,
        instructions: &str,
    ) -> Result<()> {
        self.require_collection(name).await?;
        self.store
            .set_instructions(name.as_str(), instructions)
            .await
    }

    /// The role of `user_id` in the collection, if a member.
    pub async fn member_role(
        &self,
        name: &CollectionName,
        user_id: &str,
    ) -> Result<Option<MemberRole>> {
        self.store.member_role(name.as_str(), user_id).await
    }

    pub async fn collection_exists(&self, name: &CollectionName) -> Result<bool> {
        Ok(self.store.collection(name).await?.is_some())
    }

    async fn require_collection(&self, name: &CollectionName) -> Result<Collection> {
        self.store
            .collection(name)
            .await?
            .ok_or_else(|| Error::NotFound(format!("unknown collection {name}")))
    }

    /// Ranked passages for a query, hydrated from SQL (so a chunk the indexes still hold after
    /// its document changed is never shown).
    /// Searches as the local operator: every collection is readable.
    pub async fn search(&self, request: &SearchRequest) -> Result<SearchResults> {
        self.search_in(None, request).await
    }

    /// Searches only what `principal` may read. The readable collections become the collection
    /// filter inside both index queries; a collection the caller may not read is "unknown".
    pub async fn search_as(
        &self,
        principal: &Principal,
        request: &SearchRequest,
    ) -> Result<SearchResults> {
        self.search_in(reader_of(principal), request).await
    }

    /// The collections `principal` may read (all of them for admins).
    pub async fn readable_collections(&self, principal: &Principal) -> Result<Vec<CollectionHead>> {
        self.store.readable_collections(reader_of(principal)).await
    }

    async fn require_readable(
        &self,
        principal: &Principal,
        collection: &str,
        what: &str,
    ) -> Result<()> {
        let readable = self.readable_collections(principal).await?;
        if readable.iter().any(|c| c.name == collection) {
            Ok(())
        } else {
            Err(Error::NotFound(format!("no {what}")))
        }
    }

    /// A passage by chunk id, if `principal` may read its collection (else "not found").
    pub async fn passage(&self, principal: &Principal, chunk_id: &str) -> Result<PassageView> {
        let view = self
            .store
            .chunk_views(&[chunk_id.to_owned()])
            .await?
            .pop()
            .ok_or_else(|| Error::NotFound(format!("no passage {chunk_id}")))?;
        self.require_readable(principal, &view.collection, &format!("passage {chunk_id}"))
            .await?;
        Ok(passage_view(view))
    }

    /// A document and its passages, if `principal` may read its collection (else "not found").
    pub async fn document(&self, principal: &Principal, id: &str) -> Result<DocumentView> {
        let chunks = self.store.chunks_of_documents(&[id.to_owned()]).await?;
        let first = chunks
            .first()
            .ok_or_else(|| Error::NotFound(format!("no document {id}")))?;
        self.require_readable(principal, &first.collection, &format!("document {id}"))
            .await?;
        let ids: Vec<String> = chunks.iter().map(|c| c.id.clone()).collect();
        let mut views: HashMap<String, ChunkView> = self
            .store
            .chunk_views(&ids)
            .await?
            .into_iter()
            .map(|v| (v.chunk_id.clone(), v))
            .collect();
        let passages: Vec<PassageView> = ids
            .iter()
            .filter_map(|c| views.remove(c))
            .map(passage_view)
            .collect();
        let head = passages
            .first()
            .ok_or_else(|| Error::NotFound(format!("no document {id}")))?;
        Ok(DocumentView {
            id: id.to_owned(),
            collection: head.collection.clone(),
            title: head.title.clone(),
            source: head.source.clone(),
            passages,
        })
    }

    async fn search_in(
        &self,
        reader: Option<&str>,
        request: &SearchRequest,
    ) -> Result<SearchResults> {
        let started = std::time::Instant::now();
        let results = self.search_unmetered(reader, request).await;
        crate::metrics::Metrics::get()
            .retrieval_seconds
            .with_label_values(&[request.mode.as_str()])
            .observe(started.elapsed().as_secs_f64());
        results
    }

    async fn search_unmetered(
        &self,
        reader: Option<&str>,
        request: &SearchRequest,
    ) -> Result<SearchResults> {
        let readable = self.store.readable_collections(reader).await?;
        let collections: Vec<CollectionHead> = match &request.collections {
            Some(names) => names
                .iter()
                .map(|n| {
                    readable
                        .iter()
                        .find(|c| c.name == n.as_str())
                        .cloned()
                        .ok_or_else(|| Error::NotFound(format!("unknown collection {n}")))
                })
                .collect::<Result<_>>()?,
            None => readable,
        };
        let model = self.embedder.model();
        if request.mode != SearchMode::Bm25
            && let Some(c) = collections.iter().find(|c| c.model != model.name)
        {
            return Err(Error::Conflict(format!(
                "collection {} was embedded with {} but {} is configured; run `lariat reindex`",
                c.name, c.model, model.name
            )));
        }
        if request.mode == SearchMode::Rerank && self.reranker.is_none() {
            return Err(Error::InvalidInput(
                "mode rerank needs a reranker: set rerank.url (LARIAT_RERANK__URL) in the configuration".into(),
            ));
        }
        if collections.is_empty() {
            return Ok(SearchResults {
                query: request.query.as_str().to_owned(),
                mode: request.mode,
                hits: Vec::new(),
                rerank: None,
            });
        }
        let names: Vec<String> = collections.into_iter().map(|c| c.name).collect();
        let k = request.k.get();
        let r = &self.retrieval;
        let depth = r.candidates.max(k);
        let query = request.query.as_str();
        let ranked = match request.mode {
            SearchMode::Bm25 => self.lexical.search(query, &names, k, r.title_boost).await?,
            SearchMode::Dense => {
                let t = std::time::Instant::now();
                let v = self.embedder.embed_query(query).await?;
                let embed_ms = t.elapsed().as_secs_f64() * 1000.0;
                let hits = self.vectors.search(v, &names, k).await?;
                tracing::debug!(
                    embed_ms,
                    vector_ms = t.elapsed().as_secs_f64() * 1000.0 - embed_ms,
                    "dense stage"
                );
                hits
            }
            SearchMode::Hybrid | SearchMode::Rerank => {
                let dense = async {
                    let v = self.embedder.embed_query(query).await?;
                    self.vectors.search(v, &names, depth).await
                };
                let (lexical, dense) = tokio::join!(
                    self.lexical.search(query, &names, depth, r.title_boost),
                    dense
                );
                let (lexical, dense) = (lexical?, dense?);
                let mut fused = fuse(
                    &[(&lexical, r.bm25_weight), (&dense, r.dense_weight)],
                    r.fusion,
                    r.rrf_k,
                );
                let keep = match (&self.reranker, request.mode) {
                    (Some((_, depth)), SearchMode::Rerank) => k.max(*depth),
                    _ => k,
                };
                fused.truncate(keep);
                fused
            }
        };
        let ids: Vec<String> = ranked.iter().map(|(id, _)| id.clone()).collect();
        let hydrating = std::time::Instant::now();
        let mut views: HashMap<String, _> = self
            .store
            .chunk_views(&ids)
            .await?
            .into_iter()
            .map(|v| (v.chunk_id.clone(), v))
            .collect();
        tracing::debug!(
            hydrate_ms = hydrating.elapsed().as_secs_f64() * 1000.0,
            "hydrated"
        );
        let mut scored: Vec<(ChunkView, f32)> = ranked
            .into_iter()
            .filter_map(|(id, score)| views.remove(&id).map(|v| (v, score)))
            .collect();
        let rerank = match (&self.reranker, request.mode) {
            (Some((reranker, depth)), SearchMode::Rerank) => {
                Some(rerank_top(reranker.as_ref(), *depth, query, &mut scored).await)
            }
            _ => None,
        };
        scored.truncate(k);
        let hits = scored
            .into_iter()
            .enumerate()
            .map(|(i, (v, score))| Hit {
                rank: i + 1,
                score,
                chunk_id: v.chunk_id,
                document_id: v.document_id,
                collection: v.collection,
                title: v.title,
                source: v.source,
                location: v.location.to_string(),
                location_detail: v.location,
                text: v.text,
            })
            .collect();
        Ok(SearchResults {
            query: query.to_owned(),
            mode: request.mode,
            hits,
            rerank,
        })
    }

    // ---- consistency -----------------------------------------------------------------------

    /// Compares the chunk ids of SQL, the vector store and the lexical index.
    pub async fn check(&self) -> Result<CheckReport> {
        let sql: HashSet<String> = self.store.chunk_ids().await?.into_iter().collect();
        let vectors: HashSet<String> = self.vectors.chunk_ids().await?.into_iter().collect();
        let lexical_list = self.lexical.chunk_ids().await?;
        let lexical: HashSet<String> = lexical_list.iter().cloned().collect();
        let diff = |a: &HashSet<String>, b: &HashSet<String>| {
            let mut d: Vec<String> = a.difference(b).cloned().collect();
            d.sort();
            d
        };
        Ok(CheckReport {
            sql_chunks: sql.len(),
            vector_chunks: vectors.len(),
            lexical_chunks: lexical_list.len(),
            missing_in_vectors: diff(&sql, &vectors),
            orphans_in_vectors: diff(&vectors, &sql),
            missing_in_lexical: diff(&sql, &lexical),
            orphans_in_lexical: diff(&lexical, &sql),
            duplicates_in_lexical: lexical_list.len() - lexical.len(),
            pending_documents: self.store.pending_documents().await?.len(),
            tombstones: self.store.tombstones().await?.len(),
        })
    }

    /// Rebuilds the vector and lexical indexes from SQL. Collections embedded with another
    /// model are re-embedded with the configured one first. Returns the chunks indexed.
    pub async fn reindex(&self) -> Result<usize> {
        let model = self.embedder.model().clone();
        let stale: HashSet<String> = self
            .store
            .collections()
            .await?
            .into_iter()
            .filter(|c| c.model != model.name || c.dimension != model.dimension as i64)
            .map(|c| c.name)
            .collect();
        self.vectors.reset(model.dimension).await?;
        self.lexical.reset().await?;
        let mut after: Option<String> = None;
        let mut total = 0;
        loop {
            let mut page = self
                .store
                .chunk_page(after.as_deref(), REBUILD_PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            let to_embed: Vec<usize> = (0..page.len())
                .filter(|&i| stale.contains(&page[i].collection))
                .collect();
            if !to_embed.is_empty() {
                let inputs = to_embed
                    .iter()
                    .map(|&i| embedding_input(&page[i].title, &page[i].location, &page[i].text))
                    .collect();
                let vectors = self.embedder.embed_passages(inputs).await?;
                let mut updates = Vec::with_capacity(vectors.len());
                for (&i, v) in to_embed.iter().zip(vectors) {
                    page[i].embedding = v.clone();
                    updates.push((page[i].id.clone(), v));
                }
                self.store.update_embeddings(&updates).await?;
            }
            total += page.len();
            let (points, lexical) = derived_records(page);
            let (v, l) = tokio::join!(
                self.vectors.replace(&[], points),
                self.lexical.replace(&[], lexical)
            );
            v?;
            l?;
        }
        for name in &stale {
            warn!(collection = %name, model = %model.name, "collection re-embedded");
            self.store
                .set_collection_model(name, &model.name, model.dimension)
                .await?;
        }
        self.vectors.flush().await?;
        self.store.mark_all_indexed().await?;
        Ok(total)
    }

    /// Makes every write durable (the vector store buffers in memory until flushed).
    pub async fn flush(&self) -> Result<()> {
        self.vectors.flush().await
    }
}

/// Rescores the first `depth` passages with the reranker and reorders them; on failure the
/// fused order stays and the outcome says why.
async fn rerank_top(
    reranker: &dyn Reranker,
    depth: usize,
    query: &str,
    scored: &mut [(ChunkView, f32)],
) -> RerankOutcome {
    let n = depth.min(scored.len());
    let started = std::time::Instant::now();
    let documents: Vec<String> = scored[..n]
        .iter()
        .map(|(v, _)| embedding_input(&v.title, &v.location, &v.text))
        .collect();
    let result = reranker.rerank(query, &documents).await;
    let milliseconds = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(scores) => {
            for ((_, score), new) in scored[..n].iter_mut().zip(scores) {
                *score = new;
            }
            scored[..n].sort_by(|a, b| b.1.total_cmp(&a.1));
            RerankOutcome {
                applied: true,
                candidates: n,
                milliseconds,
                error: None,
            }
        }
        Err(e) => {
            warn!(error = %e, "reranking failed; keeping the hybrid order");
            RerankOutcome {
                applied: false,
                candidates: n,
                milliseconds,
                error: Some(e.to_string()),
            }
        }
    }
}

fn derived_records(chunks: Vec<StoredChunk>) -> (Vec<VectorPoint>, Vec<LexicalDoc>) {
    let mut points = Vec::with_capacity(chunks.len());
    let mut lexical = Vec::with_capacity(chunks.len());
    for c in chunks {
        let Ok(chunk_id) = uuid::Uuid::parse_str(&c.id) else {
            warn!(chunk = %c.id, "skipping a chunk whose id is not a UUID");
            continue;
        };
        lexical.push(LexicalDoc {
            chunk_id: c.id,
            document_id: c.document_id.clone(),
            collection: c.collection.clone(),
            title: passage_heading(&c.title, &c.location),
            text: c.text,
        });
        points.push(VectorPoint {
            chunk_id,
            document_id: c.document_id,
            collection: c.collection,
            vector: c.embedding,
        });
    }
    (points, lexical)
}
